/* Unit tests of the protocol layer: JSON in and out, no network. */
#include "yrt-protocol.h"

#include <gst/check/gstcheck.h>
#include <json-glib/json-glib.h>

using namespace yrt;

static JsonNode *parse (const std::string &text)
{
  JsonNode *node = json_from_string (text.c_str (), nullptr);
  fail_unless (node != nullptr, "not JSON: %s", text.c_str ());
  return node;
}

static ServerEvent parse_event (const char *json)
{
  ServerEvent ev;
  std::string why;
  fail_unless (parse_server_event (json, strlen (json), ev, why), "%s: %s", json, why.c_str ());
  return ev;
}

GST_START_TEST (test_base64_round_trip)
{
  for (gsize size = 0; size < 64; size++) {
    std::vector<guint8> in (size);
    for (gsize i = 0; i < size; i++)
      in[i] = (guint8) (i * 37 + size);
    std::string text;
    base64_encode_append (in.data (), size, text);
    gchar *reference = g_base64_encode (in.data (), size);
    fail_unless_equals_string (text.c_str (), reference);
    g_free (reference);
    std::vector<guint8> out;
    fail_unless (base64_decode (text.data (), text.size (), out));
    fail_unless (out == in);
  }
}
GST_END_TEST;

GST_START_TEST (test_base64_rejects_garbage)
{
  std::vector<guint8> out;
  fail_if (base64_decode ("abc", 3, out));        /* length */
  fail_if (base64_decode ("ab$d", 4, out));       /* alphabet */
  fail_if (base64_decode ("a=bc", 4, out));       /* padding in the middle */
  fail_if (base64_decode ("====", 4, out));
  fail_unless (base64_decode ("AQ==", 4, out));
  fail_unless_equals_int (out.size (), 1);
}
GST_END_TEST;

GST_START_TEST (test_session_update_carries_settings)
{
  SessionConfig c;
  c.voice = "dasha";
  c.instructions = "Be brief";
  c.vad_threshold = 0.25;
  c.silence_duration_ms = 700;
  c.prefix_padding_ms = 100;
  c.create_response = false;
  c.modalities = Modalities::Audio;
  c.input_rate = 16000;
  c.output_rate = 22050;
  c.tools_json = R"([{"type":"function","name":"get_weather"}])";
  JsonNode *root = parse (client::session_update (c));
  JsonObject *o = json_node_get_object (root);
  fail_unless_equals_string (json_object_get_string_member (o, "type"), "session.update");
  JsonObject *s = json_object_get_object_member (o, "session");
  fail_unless_equals_string (json_object_get_string_member (s, "instructions"), "Be brief");
  JsonArray *mods = json_object_get_array_member (s, "output_modalities");
  fail_unless_equals_int (json_array_get_length (mods), 1);
  fail_unless_equals_string (json_array_get_string_element (mods, 0), "audio");
  JsonObject *audio = json_object_get_object_member (s, "audio");
  JsonObject *in = json_object_get_object_member (audio, "input");
  JsonObject *out = json_object_get_object_member (audio, "output");
  fail_unless_equals_int (json_object_get_int_member (
      json_object_get_object_member (in, "format"), "rate"), 16000);
  fail_unless_equals_int (json_object_get_int_member (
      json_object_get_object_member (out, "format"), "rate"), 22050);
  fail_unless_equals_string (json_object_get_string_member (out, "voice"), "dasha");
  JsonObject *td = json_object_get_object_member (in, "turn_detection");
  fail_unless_equals_string (json_object_get_string_member (td, "type"), "server_vad");
  fail_unless_equals_float (json_object_get_double_member (td, "threshold"), 0.25);
  fail_unless_equals_int (json_object_get_int_member (td, "silence_duration_ms"), 700);
  fail_unless_equals_int (json_object_get_int_member (td, "prefix_padding_ms"), 100);
  fail_if (json_object_get_boolean_member (td, "create_response"));
  JsonArray *tools = json_object_get_array_member (s, "tools");
  fail_unless_equals_int (json_array_get_length (tools), 1);
  json_node_unref (root);

  c.turn_detection = TurnDetection::None;
  root = parse (client::session_update (c));
  in = json_object_get_object_member (json_object_get_object_member (json_object_get_object_member (
              json_node_get_object (root), "session"), "audio"), "input");
  fail_unless (json_object_get_null_member (in, "turn_detection"));
  json_node_unref (root);
}
GST_END_TEST;

GST_START_TEST (test_audio_append_is_valid_json)
{
  const guint8 pcm[] = {1, 2, 3, 4, 5};
  JsonNode *root = parse (client::audio_append (pcm, sizeof (pcm)));
  JsonObject *o = json_node_get_object (root);
  fail_unless_equals_string (json_object_get_string_member (o, "type"), "input_audio_buffer.append");
  fail_unless_equals_string (json_object_get_string_member (o, "audio"), "AQIDBAU=");
  json_node_unref (root);
}
GST_END_TEST;

GST_START_TEST (test_parse_audio_delta)
{
  ServerEvent ev = parse_event (R"({"type":"response.output_audio.delta","event_id":"e1",)"
      R"("response_id":"r1","item_id":"i1","output_index":0,"content_index":0,"delta":"AQID"})");
  fail_unless (ev.type == EventType::AudioDelta);
  fail_unless_equals_string (ev.response_id.c_str (), "r1");
  fail_unless_equals_string (ev.item_id.c_str (), "i1");
  fail_unless_equals_int (ev.audio.size (), 3);
  fail_unless_equals_int (ev.audio[2], 3);
}
GST_END_TEST;

GST_START_TEST (test_parse_response_done)
{
  ServerEvent ev = parse_event (R"({"type":"response.done","response":{"id":"r9","status":"completed",)"
      R"("output":[{"type":"message","id":"m"},{"type":"function_call","id":"fc","call_id":"c1",)"
      R"("name":"get_weather","arguments":"{\"city\":\"Moscow\"}"}],)"
      R"("usage":{"total_tokens":30,"input_tokens":10,"output_tokens":20}}})");
  fail_unless (ev.type == EventType::ResponseDone);
  fail_unless_equals_string (ev.response_id.c_str (), "r9");
  fail_unless_equals_string (ev.status.c_str (), "completed");
  fail_unless_equals_int (ev.usage.total_tokens, 30);
  fail_unless_equals_int (ev.usage.input_tokens, 10);
  fail_unless_equals_int (ev.usage.output_tokens, 20);
  fail_unless_equals_int (ev.calls.size (), 1);
  fail_unless_equals_string (ev.calls[0].call_id.c_str (), "c1");
  fail_unless_equals_string (ev.calls[0].arguments.c_str (), "{\"city\":\"Moscow\"}");
}
GST_END_TEST;

GST_START_TEST (test_parse_error_and_vad)
{
  ServerEvent ev = parse_event (R"({"type":"error","error":{"type":"invalid_request_error",)"
      R"("code":"input_audio_buffer_commit_empty","message":"too short","event_id":"c7"}})");
  fail_unless (ev.type == EventType::Error);
  fail_unless_equals_string (ev.error.code.c_str (), "input_audio_buffer_commit_empty");
  fail_unless_equals_string (ev.error.event_id.c_str (), "c7");

  ev = parse_event (R"({"type":"input_audio_buffer.speech_started","audio_start_ms":1200,"item_id":"it"})");
  fail_unless (ev.type == EventType::SpeechStarted);
  fail_unless_equals_int (ev.audio_ms, 1200);
  ev = parse_event (R"({"type":"conversation.item.input_audio_transcription.completed",)"
      R"("item_id":"it","content_index":0,"transcript":"привет"})");
  fail_unless (ev.type == EventType::TranscriptCompleted);
  fail_unless_equals_string (ev.text.c_str (), "привет");
  /* Beta-era names still map. */
  ev = parse_event (R"({"type":"response.audio.delta","response_id":"r","delta":""})");
  fail_unless (ev.type == EventType::AudioDelta);
  ev = parse_event (R"({"type":"something.new","x":1})");
  fail_unless (ev.type == EventType::Unknown);
}
GST_END_TEST;

GST_START_TEST (test_parse_rejects_bad_input)
{
  const char *bad[] = {
    "", "not json", "[1,2]", "42", "{}", R"({"type":5})",
    R"({"type":"response.output_audio.delta","delta":"@@@@"})",
    R"({"type":"response.output_audio.delta","delta":7})",
    R"({"type":"response.output_audio.delta"})",
  };
  for (const char *text : bad) {
    ServerEvent ev;
    std::string why;
    fail_if (parse_server_event (text, strlen (text), ev, why), "accepted %s", text);
    fail_if (why.empty ());
  }
  /* Wrong member types are tolerated, not trusted. */
  ServerEvent ev = parse_event (R"({"type":"response.done","response":"nope"})");
  fail_unless (ev.type == EventType::ResponseDone);
  fail_unless (ev.response_id.empty ());
  ev = parse_event (R"({"type":"input_audio_buffer.speech_started","audio_start_ms":"x","item_id":3})");
  fail_unless_equals_int (ev.audio_ms, -1);
  /* A number no integer can hold is not a number of ms (and no UB). */
  ev = parse_event (R"({"type":"input_audio_buffer.speech_started","audio_start_ms":1e300})");
  fail_unless_equals_int (ev.audio_ms, -1);
  ev = parse_event (R"({"type":"input_audio_buffer.speech_stopped","audio_end_ms":-1e300})");
  fail_unless_equals_int (ev.audio_ms, -1);
}
GST_END_TEST;

/* json-glib recurses per level: a hostile nesting must not overflow the
 * network thread's stack. */
GST_START_TEST (test_parse_refuses_deep_nesting)
{
  std::string deep = "{\"type\":\"x\",\"a\":" + std::string (100000, '[') +
      std::string (100000, ']') + "}";
  ServerEvent ev;
  std::string why;
  fail_if (parse_server_event (deep.data (), deep.size (), ev, why));
  fail_unless (why.find ("nests") != std::string::npos, "%s", why.c_str ());
  /* Brackets inside strings do not count. */
  std::string text = "{\"type\":\"response.output_text.delta\",\"delta\":\"" +
      std::string (1000, '[') + "\"}";
  fail_unless (parse_server_event (text.data (), text.size (), ev, why), "%s", why.c_str ());
  fail_unless_equals_int (ev.text.size (), 1000);
}
GST_END_TEST;

static Suite *protocol_suite (void)
{
  Suite *s = suite_create ("protocol");
  TCase *tc = tcase_create ("general");
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_base64_round_trip);
  tcase_add_test (tc, test_base64_rejects_garbage);
  tcase_add_test (tc, test_session_update_carries_settings);
  tcase_add_test (tc, test_audio_append_is_valid_json);
  tcase_add_test (tc, test_parse_audio_delta);
  tcase_add_test (tc, test_parse_response_done);
  tcase_add_test (tc, test_parse_error_and_vad);
  tcase_add_test (tc, test_parse_rejects_bad_input);
  tcase_add_test (tc, test_parse_refuses_deep_nesting);
  return s;
}

GST_CHECK_MAIN (protocol);
