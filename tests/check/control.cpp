/* Conversation control against the emulator: function calls, text input,
 * barge-in truncation, push-to-talk, live session updates, clearing. */
#include "harness.h"

#include <json-glib/json-glib.h>

#include <algorithm>

using namespace yrt::test;
namespace emu = yrt::emu;

/* Valid as long as `msg`. */
static const char *get_string (GstMessage *msg, const char *field)
{
  const char *value = gst_structure_get_string (structure (msg), field);
  fail_unless (value != nullptr, "no %s", field);
  return value;
}

/* Client events of one type, parsed. */
#define EMIT(e, signal, ...) \
  ([&] { gboolean r = FALSE; g_signal_emit_by_name (e, signal, ##__VA_ARGS__, &r); return r; }) ()

static std::vector<std::string> client_types (const emu::Server &server)
{
  return server.client_event_types ();
}

static gsize index_of_last (const std::vector<std::string> &types, const char *type)
{
  for (gsize i = types.size (); i > 0; i--)
    if (types[i - 1] == type)
      return i - 1;
  return G_MAXSIZE;
}

/* Two calls in one response: one message each; the outputs go up together
 * with exactly one response.create after them; EOS waits for all of it. */
GST_START_TEST (test_function_call_round_trip)
{
  Fixture f;
  emu::TurnScript calls;
  calls.calls = {{"get_weather", R"({"city":"Moscow"})"}, {"get_weather", R"({"city":"Paris"})"}};
  f.server.push_turn (calls);
  /* Double quotes, the inner ones escaped: gst_parse_launch() strips
   * unescaped quotes inside single ones (the value was silently refused). */
  f.make (R"(tools="[{\"type\":\"function\",\"name\":\"get_weather\",\"parameters\":{}}]")");
  f.start ();
  f.push (turn (24000));
  /* EOS right away: the drain must wait for the calls and the answer. */
  fail_unless (gst_harness_push_event (f.h, gst_event_new_eos ()));

  std::vector<std::string> call_ids;
  std::string response;
  for (const char *city : {"Moscow", "Paris"}) {
    GstMessage *m = f.wait_message ("function-call");
    fail_unless_equals_string (get_string (m, "name"), "get_weather");
    std::string args = get_string (m, "arguments");
    fail_unless (args.find (city) != std::string::npos, "%s", args.c_str ());
    call_ids.push_back (get_string (m, "call-id"));
    if (response.empty ())
      response = get_string (m, "response-id");
    fail_unless_equals_string (get_string (m, "response-id"), response.c_str ());
    gst_message_unref (m);
  }
  fail_unless (call_ids[0] != call_ids[1]);
  GstMessage *done = f.wait_message ("response-done");
  fail_unless_equals_string (get_string (done, "response-id"), response.c_str ());
  gst_message_unref (done);

  fail_unless (EMIT (f.element, "send-function-output", call_ids[0].c_str (), "{\"t\":-3}"));
  fail_if (EMIT (f.element, "send-function-output", "call_unknown", "{}"));
  fail_if (EMIT (f.element, "send-function-output", call_ids[0].c_str (), "{}"));  /* twice */
  fail_unless (EMIT (f.element, "send-function-output", call_ids[1].c_str (), "{\"t\":12}"));

  /* The follow-up answer arrives, and only then EOS. */
  std::vector<GstBuffer *> out = f.pull_until_eos ();
  fail_unless_equals_int (samples_in (out), 44100);
  fail_unless (concat (out) == f.server.sent_audio ());
  unref_all (out);

  std::vector<JsonNode *> items = events_of (f.server, "conversation.item.create");
  fail_unless_equals_int (items.size (), 2);
  for (gsize i = 0; i < 2; i++) {
    JsonObject *item = json_object_get_object_member (json_node_get_object (items[i]), "item");
    fail_unless_equals_string (json_object_get_string_member (item, "type"), "function_call_output");
    fail_unless_equals_string (json_object_get_string_member (item, "call_id"), call_ids[i].c_str ());
    fail_unless_equals_string (json_object_get_string_member (item, "output"),
        i == 0 ? "{\"t\":-3}" : "{\"t\":12}");
  }
  free_nodes (items);
  std::vector<std::string> types = client_types (f.server);
  gsize last_output = index_of_last (types, "conversation.item.create");
  gsize creates_after = std::count (types.begin () + last_output, types.end (),
      std::string ("response.create"));
  fail_unless_equals_int (creates_after, 1);
}
GST_END_TEST;

GST_START_TEST (test_send_text_is_answered)
{
  Fixture f;
  f.start ();
  gst_message_unref (f.wait_message ("session"));
  fail_unless (f.server.wait_for_server_event ("session.updated", 1, 20000));
  fail_unless (EMIT (f.element, "send-text", "Какая погода в Москве?"));
  GstMessage *done = f.wait_message ("response-done");
  guint64 latency = 0;
  fail_unless (gst_structure_get_uint64 (structure (done), "first-audio-latency", &latency));
  fail_unless (latency > 0 && latency < 20 * GST_SECOND);
  gst_message_unref (done);
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless_equals_int (samples_in (out), 44100);
  unref_all (out);

  std::vector<JsonNode *> items = events_of (f.server, "conversation.item.create");
  fail_unless_equals_int (items.size (), 1);
  JsonObject *item = json_object_get_object_member (json_node_get_object (items[0]), "item");
  fail_unless_equals_string (json_object_get_string_member (item, "role"), "user");
  JsonObject *content = json_array_get_object_element (
      json_object_get_array_member (item, "content"), 0);
  fail_unless_equals_string (json_object_get_string_member (content, "type"), "input_text");
  fail_unless_equals_string (json_object_get_string_member (content, "text"), "Какая погода в Москве?");
  free_nodes (items);
  std::vector<std::string> types = client_types (f.server);
  fail_unless (index_of_last (types, "response.create") > index_of_last (types, "conversation.item.create"));
}
GST_END_TEST;

/* Starts a 5 s answer in a live harness whose downstream takes buffers only
 * when pulled and reports `latency`, pulls one buffer, then talks over it.
 * Returns what the element said it let the user hear (played-ms). */
static guint64 interrupt_a_long_answer (Fixture &f, GstClockTime latency,
    std::string *item_of_answer = nullptr)
{
  emu::TurnScript long_answer;
  long_answer.answer_ms = 5000;
  f.server.push_turn (long_answer);
  f.make ("interrupt-response=false");  /* the dropping is the element's */
  f.start (kLiveCaps, true);
  gst_harness_set_blocking_push_mode (f.h);
  if (latency)
    fail_unless (gst_harness_push_upstream_event (f.h, gst_event_new_latency (latency)));
  f.push (turn (24000));
  gst_message_unref (f.wait_message ("response-done"));
  gst_buffer_unref (pull_buffer (f.h));
  f.push (tone (24000, 600));
  GstMessage *m = f.wait_message ("interrupted");
  guint64 played_ms = G_MAXUINT64;
  fail_unless (gst_structure_get_uint64 (structure (m), "played-ms", &played_ms));
  if (item_of_answer)
    *item_of_answer = get_string (m, "item-id");
  gst_message_unref (m);
  return played_ms;
}

static gint64 truncated_at (const emu::Server &server, std::string *item = nullptr)
{
  std::vector<JsonNode *> truncates = events_of (server, "conversation.item.truncate");
  fail_unless_equals_int (truncates.size (), 1);
  JsonObject *t = json_node_get_object (truncates[0]);
  fail_unless_equals_int (json_object_get_int_member (t, "content_index"), 0);
  if (item)
    *item = json_object_get_string_member (t, "item_id");
  gint64 ms = json_object_get_int_member (t, "audio_end_ms");
  free_nodes (truncates);
  return ms;
}

GST_START_TEST (test_barge_in_truncates_what_was_heard)
{
  Fixture f;
  std::string item, truncated_item;
  guint64 played_ms = interrupt_a_long_answer (f, 0, &item);
  /* Downstream cannot tell its position here and reported no latency: what
   * was pushed counts as heard: one or two 100 ms deltas. */
  fail_unless (played_ms == 100 || played_ms == 200);
  fail_unless (f.server.wait_for_server_event ("conversation.item.truncated", 1, 20000));
  fail_unless_equals_int (truncated_at (f.server, &truncated_item), played_ms);
  fail_unless_equals_string (truncated_item.c_str (), item.c_str ());
  std::vector<std::string> sent = f.server.server_event_types ();
  fail_unless_equals_int (std::count (sent.begin (), sent.end (), std::string ("error")), 0);
}
GST_END_TEST;

/* What is still in downstream's latency was not heard; nothing heard means
 * no truncate at all. */
GST_START_TEST (test_barge_in_minus_latency_skips_zero)
{
  Fixture f;
  fail_unless_equals_uint64 (interrupt_a_long_answer (f, GST_SECOND), 0);
  /* Turn 2 is answered; by then a truncate would have reached the server. */
  f.push (silence (24000, 800));
  gst_message_unref (f.wait_message ("response-done"));
  fail_unless (f.server.wait_for_server_event ("response.done", 2, 20000));
  fail_unless_equals_int (events_of (f.server, "conversation.item.truncate").size (), 0);
}
GST_END_TEST;

/* Audio still within downstream's latency was not heard: the truncate says
 * so, and a flush makes downstream drop it. */
GST_START_TEST (test_barge_in_flushes_what_was_not_heard)
{
  Fixture f;
  guint64 played_ms = interrupt_a_long_answer (f, 50 * GST_MSECOND);
  /* One or two 100 ms deltas had gone out, 50 ms of them unheard. */
  fail_unless (played_ms == 50 || played_ms == 150, "played %" G_GUINT64_FORMAT, played_ms);
  if (played_ms == 150)
    gst_buffer_unref (pull_buffer (f.h));  /* the second one, blocked downstream */
  for (;;) {
    GstEvent *ev = gst_harness_pull_event (f.h);
    fail_unless (ev != nullptr, "no flush");
    bool stop = GST_EVENT_TYPE (ev) == GST_EVENT_FLUSH_STOP;
    gst_event_unref (ev);
    if (stop)
      break;
  }
  fail_unless (f.server.wait_for_server_event ("conversation.item.truncated", 1, 20000));
  fail_unless_equals_int (truncated_at (f.server), played_ms);
}
GST_END_TEST;

/* Speaking after the answer was heard interrupts nothing. */
GST_START_TEST (test_no_barge_in_after_the_answer)
{
  Fixture f;
  f.make ();
  f.start (kLiveCaps, true);
  gst_harness_use_testclock (f.h);
  gst_harness_set_time (f.h, 5 * GST_SECOND);
  f.push (turn (24000));
  gst_message_unref (f.wait_message ("response-done"));
  /* The 1 s answer went out stamped 5..6 s; at 10 s it has been heard. */
  gst_harness_set_time (f.h, 10 * GST_SECOND);
  f.push (turn (24000));
  gst_message_unref (f.wait_message ("response-done"));
  for (GstMessage *m : f.seen)
    fail_if (gst_message_has_name (m, "yandexrealtime/interrupted"));
  fail_unless_equals_int (events_of (f.server, "conversation.item.truncate").size (), 0);
}
GST_END_TEST;

/* Muted input sends nothing; only what comes after unmuting goes up. */
GST_START_TEST (test_mute_sends_nothing)
{
  Fixture f;
  f.make ("turn-detection=none mute=true");
  f.start ();
  f.push (tone (24000, 1000));
  g_object_set (f.element, "mute", FALSE, nullptr);
  std::vector<gint16> spoken = tone (24000, 300, 5000, 440.0);
  f.push (spoken);
  std::vector<GstBuffer *> out = f.end_input ();
  std::vector<guint8> got = f.server.received_audio ();
  fail_unless_equals_int (got.size (), spoken.size () * 2);
  fail_unless (memcmp (got.data (), spoken.data (), got.size ()) == 0);
  unref_all (out);
}
GST_END_TEST;

/* Muting mid-speech under server VAD ends the turn: it is answered although
 * the input itself never paused. */
GST_START_TEST (test_mute_mid_speech_closes_the_turn)
{
  Fixture f;
  f.start ();
  f.push (tone (24000, 800));
  g_object_set (f.element, "mute", TRUE, nullptr);
  f.push (tone (24000, 1000));
  GstMessage *m = f.wait_message ("response-done");
  fail_unless_equals_string (get_string (m, "status"), "completed");
  gst_message_unref (m);
  /* 800 ms of speech, then silence-duration + 300 ms of silence. */
  fail_unless_equals_int (f.server.received_audio ().size (), (24000 * 800 / 1000 + 24000 * 700 / 1000) * 2);
}
GST_END_TEST;

static JsonObject *session_update (const emu::Server &server, guint index, JsonNode **root)
{
  *root = json_from_string (server.session_update_json (index).c_str (), nullptr);
  fail_unless (*root != nullptr, "no session.update #%u", index);
  return json_node_get_object (*root);
}

/* Settings changed together while a session is open go out as one update. */
GST_START_TEST (test_session_updates_are_coalesced)
{
  Fixture f;
  f.make ();
  f.start (kLiveCaps, true);
  fail_unless (f.server.wait_for_server_event ("session.updated", 1, 20000));
  g_object_set (f.element, "voice", "alena", "instructions", "Отвечай кратко",
      "tools", "[{\"type\":\"function\",\"name\":\"web_search\",\"description\":\"Поиск\",\"parameters\":\"{}\"}]",
      "tool-choice", "required", nullptr);
  fail_unless (f.server.wait_for_server_event ("session.updated", 2, 20000));
  g_object_set (f.element, "voice", "filipp", nullptr);
  fail_unless (f.server.wait_for_server_event ("session.updated", 3, 20000));
  std::vector<std::string> types = client_types (f.server);
  fail_unless_equals_int (std::count (types.begin (), types.end (), std::string ("session.update")), 3);

  JsonNode *root;
  JsonObject *s = session_update (f.server, 1, &root);
  JsonObject *output = json_object_get_object_member (json_object_get_object_member (s, "audio"), "output");
  fail_unless_equals_string (json_object_get_string_member (output, "voice"), "alena");
  fail_unless_equals_string (json_object_get_string_member (s, "instructions"), "Отвечай кратко");
  fail_unless_equals_string (json_object_get_string_member (s, "tool_choice"), "required");
  JsonArray *tools = json_object_get_array_member (s, "tools");
  fail_unless_equals_int (json_array_get_length (tools), 1);
  fail_unless_equals_string (json_object_get_string_member (
      json_array_get_object_element (tools, 0), "name"), "web_search");
  json_node_unref (root);
  s = session_update (f.server, 2, &root);
  output = json_object_get_object_member (json_object_get_object_member (s, "audio"), "output");
  fail_unless_equals_string (json_object_get_string_member (output, "voice"), "filipp");
  json_node_unref (root);
}
GST_END_TEST;

GST_START_TEST (test_invalid_tools_are_refused)
{
  GstElement *e = gst_element_factory_make ("yandexrealtime", nullptr);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (e, bus);
  const char *good = "[{\"type\":\"function\",\"name\":\"get_weather\"}]";
  g_object_set (e, "tools", good, nullptr);
  for (const char *bad : {"not json", "{\"type\":\"function\"}", "[{]"}) {
    g_object_set (e, "tools", bad, nullptr);
    GstMessage *warning = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
    expect_gerror (warning, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_SETTINGS, "tools");
    gst_message_unref (warning);
    gchar *now = nullptr;
    g_object_get (e, "tools", &now, nullptr);
    fail_unless_equals_string (now, good);
    g_free (now);
  }
  gst_element_set_bus (e, nullptr);
  gst_object_unref (bus);
  gst_object_unref (e);
}
GST_END_TEST;

GST_START_TEST (test_clear_conversation_deletes_items)
{
  Fixture f;
  f.start ();
  f.push (turn (24000));
  GstMessage *transcript = f.wait_message ("transcript");
  std::string user_item = get_string (transcript, "item-id");
  gst_message_unref (transcript);
  gst_message_unref (f.wait_message ("response-done"));
  fail_unless (EMIT (f.element, "clear-conversation"));
  std::vector<JsonNode *> deletes;
  fail_unless (f.server.wait_for_client_event ("conversation.item.delete", 2, 20000));
  deletes = events_of (f.server, "conversation.item.delete");
  fail_unless (f.server.wait_for_server_event ("conversation.item.deleted", deletes.size (), 20000));
  bool user_deleted = false;
  for (JsonNode *n : deletes)
    user_deleted |= user_item == json_object_get_string_member (json_node_get_object (n), "item_id");
  fail_unless (user_deleted);
  free_nodes (deletes);
  std::vector<std::string> sent = f.server.server_event_types ();
  fail_unless_equals_int (std::count (sent.begin (), sent.end (), std::string ("error")), 0);
}
GST_END_TEST;

GST_START_TEST (test_cancel_response)
{
  emu::Config config;
  config.pace_ms = 100;
  Fixture f (config);
  emu::TurnScript long_answer;
  long_answer.answer_ms = 5000;
  f.server.push_turn (long_answer);
  f.start (kLiveCaps, true);
  fail_if (EMIT (f.element, "cancel-response"));  /* nothing to cancel yet */
  f.push (turn (24000));
  gst_buffer_unref (pull_buffer (f.h));
  fail_unless (EMIT (f.element, "cancel-response"));
  GstMessage *m = f.wait_message ("response-done");
  fail_unless_equals_string (get_string (m, "status"), "cancelled");
  gst_message_unref (m);
  fail_unless (f.server.sent_audio ().size () < 5 * 44100 * 2);
}
GST_END_TEST;

/* Manual turns: nothing is committed until `commit`. */
GST_START_TEST (test_commit_by_hand)
{
  Fixture f;
  f.make ("turn-detection=none");
  f.start (kLiveCaps, true);
  f.push (tone (24000, 500));
  f.push (silence (24000, 1000));
  fail_unless (f.server.wait_for_client_event ("input_audio_buffer.append", 1, 20000));
  std::vector<std::string> types = client_types (f.server);
  fail_unless_equals_int (std::count (types.begin (), types.end (), std::string ("input_audio_buffer.commit")), 0);
  fail_unless (EMIT (f.element, "commit"));
  GstMessage *m = f.wait_message ("response-done");
  fail_unless_equals_string (get_string (m, "status"), "completed");
  gst_message_unref (m);
  types = client_types (f.server);
  fail_unless (index_of_last (types, "response.create") > index_of_last (types, "input_audio_buffer.commit"));
}
GST_END_TEST;

/* Bytes of input_audio_buffer.append audio before the first commit. */
static gsize appended_before_commit (const emu::Server &server)
{
  gsize bytes = 0;
  for (const emu::ClientEvent &ev : server.client_events ()) {
    if (ev.type == "input_audio_buffer.commit")
      return bytes;
    if (ev.type != "input_audio_buffer.append")
      continue;
    JsonNode *root = json_from_string (ev.json.c_str (), nullptr);
    gsize size = 0;
    g_free (g_base64_decode (json_object_get_string_member (json_node_get_object (root), "audio"), &size));
    json_node_unref (root);
    bytes += size;
  }
  fail ("no commit");
  return 0;
}

/* Push-to-talk with manual turns: everything said before `commit`, down to
 * the last partial chunk, is in the committed turn. */
GST_START_TEST (test_commit_includes_the_last_partial_chunk)
{
  Fixture f;
  f.make ("turn-detection=none chunk-ms=40");
  f.start (kLiveCaps, true);
  fail_unless (f.server.wait_for_server_event ("session.updated", 1, 20000));
  f.push (tone (24000, 530));  /* 13 chunks and 10 ms still in the uplink */
  fail_unless (EMIT (f.element, "commit"));
  f.push (silence (24000, 20));  /* the next turn's first buffer */
  fail_unless (f.server.wait_for_client_event ("input_audio_buffer.commit", 1, 20000));
  fail_unless_equals_int (appended_before_commit (f.server), 24000 * 530 / 1000 * 2);
}
GST_END_TEST;

GST_START_TEST (test_signals_need_a_session)
{
  GstElement *e = gst_element_factory_make ("yandexrealtime", nullptr);
  fail_if (EMIT (e, "commit"));
  fail_if (EMIT (e, "send-text", "hi"));
  fail_if (EMIT (e, "create-response", nullptr));
  fail_if (EMIT (e, "cancel-response"));
  fail_if (EMIT (e, "clear-input"));
  fail_if (EMIT (e, "clear-conversation"));
  fail_if (EMIT (e, "send-function-output", "call_1", "{}"));
  gst_object_unref (e);
}
GST_END_TEST;

static Suite *control_suite (void)
{
  Suite *s = suite_create ("yandexrealtime-control");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_function_call_round_trip);
  tcase_add_test (tc, test_send_text_is_answered);
  tcase_add_test (tc, test_barge_in_truncates_what_was_heard);
  tcase_add_test (tc, test_barge_in_minus_latency_skips_zero);
  tcase_add_test (tc, test_barge_in_flushes_what_was_not_heard);
  tcase_add_test (tc, test_no_barge_in_after_the_answer);
  tcase_add_test (tc, test_mute_sends_nothing);
  tcase_add_test (tc, test_mute_mid_speech_closes_the_turn);
  tcase_add_test (tc, test_session_updates_are_coalesced);
  tcase_add_test (tc, test_invalid_tools_are_refused);
  tcase_add_test (tc, test_clear_conversation_deletes_items);
  tcase_add_test (tc, test_cancel_response);
  tcase_add_test (tc, test_commit_by_hand);
  tcase_add_test (tc, test_commit_includes_the_last_partial_chunk);
  tcase_add_test (tc, test_signals_need_a_session);
  return s;
}

GST_CHECK_MAIN (control);
