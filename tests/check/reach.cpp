/* Protocol reach (issue 11) against the emulator: a strict location, values
 * refused where the user sees them, empty values, unpositioned multichannel
 * input, gst-inspect details. */
#include "harness.h"

#include <json-glib/json-glib.h>

#include <mutex>

using namespace yrt::test;
namespace emu = yrt::emu;

namespace {

/* A bare element on its own bus, not started. */
struct Bare {
  explicit Bare (GstElement *e = nullptr)
  {
    element = e ? e : gst_element_factory_make ("yandexrealtime", nullptr);
    fail_unless (element != nullptr);
    bus = gst_bus_new ();
  }
  ~Bare ()
  {
    gst_element_set_state (element, GST_STATE_NULL);
    gst_element_set_bus (element, nullptr);
    gst_object_unref (element);
    gst_bus_set_flushing (bus, TRUE);
    gst_object_unref (bus);
  }
  /* NULL→READY must fail with a RESOURCE/SETTINGS error; returns its text
   * (message, then debug). */
  std::string expect_settings_error ()
  {
    gst_element_set_bus (element, bus);
    fail_unless_equals_int (gst_element_set_state (element, GST_STATE_READY),
        GST_STATE_CHANGE_FAILURE);
    GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    fail_unless (msg != nullptr, "no error posted");
    GError *err = nullptr;
    gchar *debug = nullptr;
    gst_message_parse_error (msg, &err, &debug);
    fail_unless (g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS),
        "got %s", err->message);
    std::string text = std::string (err->message) + " | " + (debug ? debug : "");
    g_error_free (err);
    g_free (debug);
    gst_message_unref (msg);
    return text;
  }
  GstElement *element;
  GstBus *bus;
};

/* Not fail_unless_equals_string: it keeps a pointer into a temporary. */
void expect_equal (const std::string &actual, const std::string &expected)
{
  fail_unless (actual == expected, "\"%s\", not \"%s\"", actual.c_str (), expected.c_str ());
}

bool contains (const std::string &text, const char *part)
{
  return text.find (part) != std::string::npos;
}

JsonObject *object_at (JsonNode *root, std::initializer_list<const char *> path)
{
  JsonObject *o = json_node_get_object (root);
  for (const char *name : path) {
    fail_unless (o && json_object_has_member (o, name), "no %s", name);
    o = json_object_get_object_member (o, name);
  }
  return o;
}

}  // namespace

/* Not ws:// or wss:// with a host: a SETTINGS error that says so, before the
 * credential check, and libsoup never sees it (a CRITICAL fails the test). */
GST_START_TEST (test_strict_location)
{
  for (const char *location : {"garbage", "", "http://x", "ftp://x/y", "wss://", "ws://",
           "wss:///v1/realtime", "127.0.0.1:8080"}) {
    for (bool credential : {false, true}) {
      Bare b;
      g_object_set (b.element, "location", location, nullptr);
      if (credential)
        g_object_set (b.element, "api-key", "test-key", nullptr);
      std::string text = b.expect_settings_error ();
      fail_unless (contains (text, "not a ws:// or wss:// URL with a host"), "%s: %s",
          location, text.c_str ());
      fail_if (contains (text, "unencrypted"), "%s", text.c_str ());
    }
  }
  /* Good ones pass (ws:// to loopback needs no credential). */
  Bare b;
  g_object_set (b.element, "location", "WS://127.0.0.1:9/v1/realtime", nullptr);
  fail_unless_equals_int (gst_element_set_state (b.element, GST_STATE_READY),
      GST_STATE_CHANGE_SUCCESS);
}
GST_END_TEST;

/* tools refused before the element has a bus (as gst-launch sets it): the
 * NULL→READY fails, naming the property and the parse error; a valid value
 * set later lifts it. */
GST_START_TEST (test_refused_in_null_fails_ready)
{
  GError *error = nullptr;
  GstElement *e = gst_parse_launch (
      "yandexrealtime tools=\"[{\" location=ws://127.0.0.1:9/v1/realtime", &error);
  fail_unless (e != nullptr, "%s", error ? error->message : "?");
  Bare b (e);  /* a description of one element gives it bare, without a bus */
  std::string text = b.expect_settings_error ();
  fail_unless (contains (text, "tools"), "%s", text.c_str ());
  fail_unless (contains (text, "not valid JSON"), "%s", text.c_str ());
  g_object_set (b.element, "tools", "[]", nullptr);
  fail_unless_equals_int (gst_element_set_state (b.element, GST_STATE_READY),
      GST_STATE_CHANGE_SUCCESS);
}
GST_END_TEST;

/* In PLAYING a bad value is a warning; the session keeps the previous one. */
GST_START_TEST (test_refused_in_playing_keeps_the_previous)
{
  Fixture f;
  f.make ("tools=\"[]\"");
  f.start ();
  gst_message_unref (f.wait_message ("session"));
  g_object_set (f.element, "tools", "{\"type\":\"function\"}", nullptr);
  GstMessage *warning = gst_bus_pop_filtered (f.bus, GST_MESSAGE_WARNING);
  expect_gerror (warning, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_SETTINGS, "tools");
  gst_message_unref (warning);
  gchar *now = nullptr;
  g_object_get (f.element, "tools", &now, nullptr);
  fail_unless_equals_string (now, "[]");
  g_free (now);
  /* Still going: a turn is answered. */
  f.push (turn (24000));
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless (samples_in (out) > 0);
  unref_all (out);
}
GST_END_TEST;

/* voice="" and model="" mean the defaults: never sent as "" or built into
 * gpt://<folder>/. */
GST_START_TEST (test_empty_voice_and_model_mean_the_defaults)
{
  Fixture f;
  f.make ("voice=\"\" model=\"\" folder-id=b1gfolder");
  gchar *voice = nullptr, *model = nullptr;
  g_object_get (f.element, "voice", &voice, "model", &model, nullptr);
  fail_unless_equals_string (voice, "marina");
  fail_unless_equals_string (model, "speech-realtime-250923");
  g_free (voice);
  g_free (model);
  f.start ();
  gst_message_unref (f.wait_message ("session"));
  fail_unless (contains (f.server.last_request_path_and_query (),
                   "model=gpt://b1gfolder/speech-realtime-250923"),
      "%s", f.server.last_request_path_and_query ().c_str ());
  /* Set again while the session runs: the update carries the default too. */
  g_object_set (f.element, "voice", "", nullptr);
  fail_unless (f.server.wait_for_client_event ("session.update", 2, 20000));
  for (guint i = 0; i < 2; i++) {
    JsonNode *session = json_from_string (f.server.session_update_json (i).c_str (), nullptr);
    JsonObject *output = object_at (session, {"audio", "output"});
    fail_unless_equals_string (json_object_get_string_member (output, "voice"), "marina");
    json_node_unref (session);
  }
}
GST_END_TEST;

/* 6 and 64 channels without positions (channel-mask=0, or no mask at all)
 * link and are mixed down equally: a tone on one channel arrives at 1/N. */
static void check_unpositioned (guint channels, bool with_mask)
{
  Fixture f;
  std::string caps = "audio/x-raw,format=S16LE,rate=24000,layout=interleaved,channels=" +
      std::to_string (channels) + (with_mask ? ",channel-mask=(bitmask)0" : "");
  f.make ("turn-detection=none");  /* the turn is committed at EOS, however quiet */
  f.start (caps.c_str ());
  std::vector<gint16> mono = tone (24000, 1000, 30000);
  std::vector<gint16> frames (mono.size () * channels, 0);
  for (gsize i = 0; i < mono.size (); i++)
    frames[i * channels] = mono[i];  /* channel 0 only */
  f.push (frames, 24000, channels);
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless (samples_in (out) > 0, "%u channels: no answer", channels);
  unref_all (out);

  std::vector<guint8> got = f.server.received_audio ();
  fail_unless (got.size () >= mono.size () * 2, "%u channels: %zu bytes arrived", channels,
      got.size ());
  const gint16 *pcm = reinterpret_cast<const gint16 *> (got.data ());
  for (gsize i = 0; i < mono.size (); i += 7) {
    double expected = mono[i] / (double) channels;
    /* The mixer's integer matrix keeps 10 bits of each gain. */
    fail_unless (std::fabs (pcm[i] - expected) <= 2.0 + std::fabs (expected) / 100, "%u channels, sample %zu: %d, not %.1f",
        channels, i, pcm[i], expected);
  }
}

GST_START_TEST (test_unpositioned_channels_are_mixed_down)
{
  check_unpositioned (6, true);
  check_unpositioned (6, false);
  check_unpositioned (64, true);
  check_unpositioned (100, true);
}
GST_END_TEST;

GST_START_TEST (test_inspect_details)
{
  GstElementFactory *factory = gst_element_factory_find ("yandexrealtime");
  fail_unless (factory != nullptr);
  const char *author = gst_element_factory_get_metadata (factory, GST_ELEMENT_METADATA_AUTHOR);
  fail_unless (contains (author, "<") && contains (author, ">"), "no contact in \"%s\"", author);
  GstPlugin *plugin = gst_plugin_feature_get_plugin (GST_PLUGIN_FEATURE (factory));
  const char *origin = gst_plugin_get_origin (plugin);
  fail_unless (contains (origin, "/gst-yandexrealtime/gst-yandexrealtime"), "%s", origin);
  gst_object_unref (plugin);
  gst_object_unref (factory);
}
GST_END_TEST;

/* The debug lines of the element's category, while one is alive. */
struct DebugLines {
  DebugLines ()
  {
    gst_debug_set_threshold_for_name ("yandexrealtime", GST_LEVEL_DEBUG);
    gst_debug_add_log_function (collect, this, nullptr);
  }
  ~DebugLines ()
  {
    gst_debug_remove_log_function_by_data (this);
    gst_debug_set_threshold_for_name ("yandexrealtime", GST_LEVEL_NONE);
  }
  static void collect (GstDebugCategory *category, GstDebugLevel, const gchar *, const gchar *,
      gint, GObject *, GstDebugMessage *message, gpointer data)
  {
    if (g_strcmp0 (gst_debug_category_get_name (category), "yandexrealtime") != 0)
      return;
    auto *self = static_cast<DebugLines *> (data);
    std::lock_guard<std::mutex> guard (self->lock);
    self->text += std::string (gst_debug_message_get (message)) + "\n";
  }
  bool has (const char *part)
  {
    std::lock_guard<std::mutex> guard (lock);
    return contains (text, part);
  }
  std::mutex lock;
  std::string text;
};

static JsonNode *session_update (const emu::Server &server, guint index)
{
  fail_unless (server.wait_for_client_event ("session.update", index + 1, 20000));
  JsonNode *node = json_from_string (server.session_update_json (index).c_str (), nullptr);
  fail_unless (node && JSON_NODE_HOLDS_OBJECT (node), "session.update #%u", index);
  return node;
}

static std::string languages_of (JsonNode *session)
{
  JsonObject *input = object_at (session, {"audio", "input"});
  if (!json_object_has_member (input, "languages"))
    return "(none)";
  std::string out;
  JsonArray *list = json_object_get_array_member (input, "languages");
  for (guint i = 0; i < json_array_get_length (list); i++)
    out += std::string (i ? "," : "") + json_array_get_string_element (list, i);
  return out;
}

static const char *role_of (JsonNode *session)
{
  JsonObject *output = object_at (session, {"audio", "output"});
  return json_object_has_member (output, "role") ?
      json_object_get_string_member (output, "role") : "(none)";
}

/* languages and voice-role reach session.audio, at the start and live. */
GST_START_TEST (test_languages_and_voice_role)
{
  Fixture f;
  f.make ("languages=\" ru-RU, kk-KZ,,\" voice-role=friendly");
  f.start ();
  gst_message_unref (f.wait_message ("session"));
  JsonNode *update0 = session_update (f.server, 0);
  expect_equal (languages_of (update0), "ru-RU,kk-KZ");
  fail_unless_equals_string (role_of (update0), "friendly");
  json_node_unref (update0);

  g_object_set (f.element, "languages", "en-US", "voice-role", "", nullptr);
  fail_unless (f.server.wait_for_client_event ("session.update", 2, 20000));
  JsonNode *update1 = session_update (f.server, 1);
  expect_equal (languages_of (update1), "en-US");
  fail_unless_equals_string (role_of (update1), "(none)");
  json_node_unref (update1);
  gchar *languages = nullptr;
  g_object_get (f.element, "languages", &languages, nullptr);
  fail_unless_equals_string (languages, "en-US");
  g_free (languages);

  g_object_set (f.element, "languages", "", nullptr);
  fail_unless (f.server.wait_for_client_event ("session.update", 3, 20000));
  JsonNode *update2 = session_update (f.server, 2);
  expect_equal (languages_of (update2), "(none)");
  json_node_unref (update2);
}
GST_END_TEST;

/* session-extra is deep-merged after the element's fields: new fields go
 * in, the element's siblings stay, the user's value wins (a debug line says
 * so); live changes send one update each; a non-object is refused. */
GST_START_TEST (test_session_extra)
{
  DebugLines debug;
  Fixture f;
  f.make ();
  g_object_set (f.element, "session-extra",
      R"({"max_output_tokens":100,"audio":{"output":{"voice":"dasha","speed":1.25},)"
      R"("input":{"noise_reduction":{"type":"near_field"}}}})", nullptr);
  f.start ();
  gst_message_unref (f.wait_message ("session"));
  fail_unless (debug.has ("session-extra sets session.audio.output.voice"), "%s",
      debug.text.c_str ());
  fail_if (debug.has ("session-extra sets session.max_output_tokens"));

  JsonNode *update0 = session_update (f.server, 0);
  JsonObject *session = json_node_get_object (update0);
  fail_unless_equals_int (json_object_get_int_member (session, "max_output_tokens"), 100);
  fail_unless_equals_string (json_object_get_string_member (session, "type"), "realtime");
  JsonObject *output = object_at (update0, {"audio", "output"});
  fail_unless_equals_string (json_object_get_string_member (output, "voice"), "dasha");
  fail_unless (json_object_get_double_member (output, "speed") == 1.25);
  fail_unless (json_object_has_member (output, "format"));
  JsonObject *input = object_at (update0, {"audio", "input"});
  fail_unless (json_object_has_member (input, "format") &&
      json_object_has_member (input, "turn_detection") &&
      json_object_has_member (input, "noise_reduction"));
  json_node_unref (update0);

  g_object_set (f.element, "session-extra", R"({"max_output_tokens":5})", nullptr);
  fail_unless (f.server.wait_for_client_event ("session.update", 2, 20000));
  JsonNode *update1 = session_update (f.server, 1);
  fail_unless_equals_int (json_object_get_int_member (json_node_get_object (update1),
          "max_output_tokens"), 5);
  fail_unless_equals_string (json_object_get_string_member (
          object_at (update1, {"audio", "output"}), "voice"), "marina");
  json_node_unref (update1);

  g_object_set (f.element, "session-extra", "[1]", nullptr);
  GstMessage *warning = gst_bus_pop_filtered (f.bus, GST_MESSAGE_WARNING);
  expect_gerror (warning, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_SETTINGS, "not a JSON object");
  gst_message_unref (warning);
  gchar *now = nullptr;
  g_object_get (f.element, "session-extra", &now, nullptr);
  fail_unless_equals_string (now, R"({"max_output_tokens":5})");
  g_free (now);
  /* The refusal sent nothing: the next update is the next change's. */
  g_object_set (f.element, "voice-role", "strict", nullptr);
  JsonNode *update2 = session_update (f.server, 2);
  fail_unless_equals_string (role_of (update2), "strict");
  json_node_unref (update2);
}
GST_END_TEST;

/* extra-headers and user-agent go with the handshake; booleans as
 * true/false, arrays as one header per value. */
GST_START_TEST (test_extra_headers_and_user_agent)
{
  Fixture f;
  f.make ();
  GstStructure *headers = gst_structure_from_string (
      "headers, x-data-logging-enabled=false, x-trace=(string)abc-123, x-many=<a, b>", nullptr);
  fail_unless (headers != nullptr);
  g_object_set (f.element, "extra-headers", headers, nullptr);
  gst_structure_free (headers);
  f.start ();
  gst_message_unref (f.wait_message ("session"));
  auto one = [&] (const char *name) {
    std::vector<std::string> values = f.server.last_request_header (name);
    fail_unless_equals_int (values.size (), 1);
    return values[0];
  };
  expect_equal (one ("x-data-logging-enabled"), "false");
  expect_equal (one ("x-trace"), "abc-123");
  std::vector<std::string> many = f.server.last_request_header ("x-many");
  fail_unless (many == std::vector<std::string> ({"a", "b"}) ||
      many == std::vector<std::string> ({"a, b"}), "x-many: %zu values", many.size ());
  fail_unless (g_str_has_prefix (one ("User-Agent").c_str (), "gst-yandexrealtime/"));
  expect_equal (f.server.last_authorization_scheme (), "Api-Key");
}
GST_END_TEST;

GST_START_TEST (test_user_agent_property)
{
  Fixture f;
  f.make ("user-agent=my-agent/2.0");
  f.start ();
  gst_message_unref (f.wait_message ("session"));
  std::vector<std::string> agent = f.server.last_request_header ("User-Agent");
  fail_unless (agent.size () == 1 && agent[0] == "my-agent/2.0");
}
GST_END_TEST;

/* session-extra and extra-headers refused in NULL fail NULL→READY too. */
GST_START_TEST (test_refused_extra_in_null)
{
  {
    Bare b;
    g_object_set (b.element, "location", "ws://127.0.0.1:9/v1/realtime", "session-extra",
        "\"voice\"", nullptr);
    std::string text = b.expect_settings_error ();
    fail_unless (contains (text, "session-extra") && contains (text, "not a JSON object"), "%s",
        text.c_str ());
  }
  for (const char *bad : {"h, Authorization=(string)\"Bearer x\"", "h, Sec-WebSocket-Key=abc",
           "h, x-inject=(string)\"a\\\r\\\nb\""}) {
    Bare b;
    GstStructure *headers = gst_structure_from_string (bad, nullptr);
    fail_unless (headers != nullptr, "%s", bad);
    g_object_set (b.element, "location", "ws://127.0.0.1:9/v1/realtime", "extra-headers",
        headers, nullptr);
    gst_structure_free (headers);
    std::string text = b.expect_settings_error ();
    fail_unless (contains (text, "extra-headers") && contains (text, "header "), "%s",
        text.c_str ());
  }
}
GST_END_TEST;

static std::string string_field (GstMessage *msg, const char *field)
{
  const char *value = gst_structure_get_string (structure (msg), field);
  fail_unless (value != nullptr, "no %s", field);
  return value;
}

static void expect_field (GstMessage *msg, const char *field, const std::string &expected)
{
  std::string value = string_field (msg, field);
  fail_unless (value == expected, "%s is \"%s\", not \"%s\"", field, value.c_str (),
      expected.c_str ());
}

/* Every GA server event the emulator can add: each posts its message or a
 * debug line, and the turn is answered as usual. */
GST_START_TEST (test_new_server_events)
{
  DebugLines debug;
  emu::Config cfg;
  cfg.faults.extra_events = {
    "input_audio_buffer.timeout_triggered",
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.failed",
    "conversation.item.truncated", "conversation.item.deleted",
    "output_audio_buffer.started", "output_audio_buffer.stopped", "output_audio_buffer.cleared",
    "mcp_list_tools.in_progress", "mcp_list_tools.completed", "mcp_list_tools.failed",
    "response.mcp_call_arguments.delta", "response.mcp_call_arguments.done",
    "response.mcp_call.in_progress", "response.mcp_call.completed", "response.mcp_call.failed",
  };
  Fixture f (cfg);
  f.start ();
  f.push (turn (24000));
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless_equals_int (samples_in (out), 44100);  /* the answer, whole */
  unref_all (out);

  GstMessage *m = f.wait_message ("transcript");
  std::string user_item = string_field (m, "item-id");
  gst_message_unref (m);

  m = f.wait_message ("input-timeout");
  expect_field (m, "item-id", user_item);
  guint64 end_ms = 0;
  fail_unless (gst_structure_get_uint64 (structure (m), "audio-end-ms", &end_ms));
  fail_unless (end_ms > 0);
  gst_message_unref (m);

  m = f.wait_message ("transcript");  /* the delta, used although Yandex does not send it */
  expect_field (m, "text", "partial ");
  gboolean final = TRUE;
  fail_unless (gst_structure_get_boolean (structure (m), "final", &final) && !final);
  gst_message_unref (m);

  m = f.wait_message ("transcript-failed");
  expect_field (m, "item-id", user_item);
  expect_field (m, "code", "audio_unintelligible");
  fail_unless (!string_field (m, "message").empty ());
  gst_message_unref (m);

  for (const char *name : {"mcp-list-tools", "mcp-call"}) {
    std::string item;
    for (const char *status : {"in_progress", "completed", "failed"}) {
      m = f.wait_message (name);
      expect_field (m, "status", status);
      if (item.empty ())
        item = string_field (m, "item-id");
      expect_field (m, "item-id", item);
      gst_message_unref (m);
    }
  }
  for (const char *type : {"conversation.item.truncated", "conversation.item.deleted",
           "output_audio_buffer.started", "output_audio_buffer.stopped",
           "output_audio_buffer.cleared"}) {
    std::string line = std::string ("server event ") + type;
    fail_unless (debug.has (line.c_str ()), "no debug line for %s", type);
  }
  GstStructure *stats = nullptr;
  g_object_get (f.element, "stats", &stats, nullptr);
  guint bad = 1;
  fail_unless (gst_structure_get_uint (stats, "bad-events", &bad));
  fail_unless_equals_int (bad, 0);
  gst_structure_free (stats);
}
GST_END_TEST;

static Suite *reach_suite (void)
{
  Suite *s = suite_create ("yandexrealtime-reach");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_strict_location);
  tcase_add_test (tc, test_refused_in_null_fails_ready);
  tcase_add_test (tc, test_refused_in_playing_keeps_the_previous);
  tcase_add_test (tc, test_empty_voice_and_model_mean_the_defaults);
  tcase_add_test (tc, test_unpositioned_channels_are_mixed_down);
  tcase_add_test (tc, test_inspect_details);
  tcase_add_test (tc, test_languages_and_voice_role);
  tcase_add_test (tc, test_session_extra);
  tcase_add_test (tc, test_extra_headers_and_user_agent);
  tcase_add_test (tc, test_user_agent_property);
  tcase_add_test (tc, test_refused_extra_in_null);
  tcase_add_test (tc, test_new_server_events);
  return s;
}

GST_CHECK_MAIN (reach);
