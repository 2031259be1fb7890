/* Credentials never leak: not into GStreamer's debug log (every category at
 * MEMDUMP), not into GLib's log, not into bus messages (errors and warnings
 * with their debug text, element messages, property notifications), not
 * into readable properties, and not into what `gst-launch-1.0 -v` prints
 * (deep-notify).  Each test plays a real session against the emulator, or
 * fails one, with a distinctive secret and scans everything that came out.
 *
 * Known and outside the element: a secret written into a pipeline
 * description (gst_parse_launch, gst-launch-1.0 api-key=...) is logged by
 * GStreamer's parser itself (GST_PIPELINE at INFO, "default" at DEBUG); this
 * suite therefore sets the secrets with g_object_set() or the environment,
 * as the README recommends. */
#include "harness.h"

#include <glib/gstdio.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <set>

using namespace yrt::test;
namespace emu = yrt::emu;

namespace {

const char *const kApiKey = "AQVNsecretApiKey-7c1e0f94b2d3";
const char *const kIamToken = "t1.secretIamToken-52a9e8d07f6b";
const char *const kWrongKey = "another-key-for-the-emulator";

/* ---- everything that comes out, scanned for the secrets ---- */

std::mutex g_lock;
std::vector<std::string> g_secrets;
std::vector<std::string> g_hits;     /* where a secret showed up (first 20) */
guint64 g_gst_lines = 0;             /* GStreamer debug lines seen */
guint64 g_own_lines = 0;             /* ... of the yandexrealtime category */
guint64 g_glib_lines = 0;            /* GLib log messages seen */
guint64 g_bus_messages = 0;
guint64 g_property_reads = 0;
std::set<std::string> g_notified;    /* property names seen by deep-notify */

void scan (const char *where, const char *text)
{
  if (!text)
    return;
  std::lock_guard<std::mutex> guard (g_lock);
  for (const std::string &secret : g_secrets) {
    if (strstr (text, secret.c_str ()) && g_hits.size () < 20)
      g_hits.push_back (std::string (where) + ": " + std::string (text).substr (0, 400));
  }
}

void gst_log_capture (GstDebugCategory *category, GstDebugLevel, const gchar *,
    const gchar *, gint, GObject *, GstDebugMessage *message, gpointer)
{
  const gchar *text = gst_debug_message_get (message);
  {
    std::lock_guard<std::mutex> guard (g_lock);
    g_gst_lines++;
    if (g_strcmp0 (gst_debug_category_get_name (category), "yandexrealtime") == 0)
      g_own_lines++;
  }
  scan ("GStreamer log", text);
}

std::atomic<bool> capturing {false};

/* GLib, three ways in: structured messages (the writer), g_log() of domains
 * without a handler (the default handler), and the domains gst-check handles
 * itself (its log filters, which see the message and then let gst-check
 * fail the test on a critical as usual). */
GLogWriterOutput glib_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields,
    gpointer)
{
  if (capturing) {
    for (gsize i = 0; i < n_fields; i++) {
      if (g_strcmp0 (fields[i].key, "MESSAGE") == 0 && fields[i].length < 0) {
        {
          std::lock_guard<std::mutex> guard (g_lock);
          g_glib_lines++;
        }
        scan ("GLib log", (const char *) fields[i].value);
      }
    }
    /* Debug and info only counted: printing them all would drown the output. */
    if (level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO))
      return G_LOG_WRITER_HANDLED;
  }
  return g_log_writer_default (level, fields, n_fields, nullptr);
}

void glib_default_handler (const gchar *domain, GLogLevelFlags level, const gchar *message,
    gpointer)
{
  if (capturing) {
    {
      std::lock_guard<std::mutex> guard (g_lock);
      g_glib_lines++;
    }
    scan ("GLib log", message);
    if (level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO))
      return;
  }
  g_log_default_handler (domain, level, message, nullptr);
}

gboolean glib_check_filter (const gchar *, GLogLevelFlags, const gchar *message, gpointer)
{
  if (capturing) {
    {
      std::lock_guard<std::mutex> guard (g_lock);
      g_glib_lines++;
    }
    scan ("GLib log", message);
  }
  return FALSE;  /* not discarded: gst-check goes on as usual */
}

const char *const kCheckDomains[] = {
  nullptr, "GLib", "GLib-GObject", "GLib-GIO", "GStreamer", "GStreamer-Base",
  "GStreamer-Audio", "GStreamer-App", "GStreamer-Check", "libsoup", "Json",
};

/* Turns everything on for one test; checks the result when it ends. */
struct Capture {
  explicit Capture (std::vector<std::string> secrets)
  {
    {
      std::lock_guard<std::mutex> guard (g_lock);
      g_secrets = std::move (secrets);
      g_hits.clear ();
      g_gst_lines = g_own_lines = g_glib_lines = g_bus_messages = g_property_reads = 0;
      g_notified.clear ();
    }
    for (const char *domain : kCheckDomains)
      filters.push_back (gst_check_add_log_filter (domain,
          (GLogLevelFlags) (G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION),
          g_regex_new (".*", G_REGEX_DOTALL, (GRegexMatchFlags) 0, nullptr),
          glib_check_filter, nullptr, nullptr));
    g_log_set_debug_enabled (TRUE);
    capturing = true;
    gst_debug_set_active (TRUE);
    gst_debug_remove_log_function (gst_debug_log_default);
    gst_debug_add_log_function (gst_log_capture, nullptr, nullptr);
    gst_debug_set_default_threshold (GST_LEVEL_MEMDUMP);
    /* The hooks work: a probe of each kind is seen. */
    GST_MEMDUMP ("security probe", (const guint8 *) "probe", 5);
    g_debug ("security probe");
    g_log_structured ("security", G_LOG_LEVEL_DEBUG, "MESSAGE", "security probe");
  }

  ~Capture ()
  {
    gst_debug_set_default_threshold (GST_LEVEL_NONE);
    gst_debug_remove_log_function (gst_log_capture);
    gst_debug_add_log_function (gst_debug_log_default, nullptr, nullptr);
    capturing = false;
    g_log_set_debug_enabled (FALSE);
    for (GstCheckLogFilter *f : filters)
      gst_check_remove_log_filter (f);
  }

  /* No secret anywhere, and the capture really saw things. */
  void check ()
  {
    std::lock_guard<std::mutex> guard (g_lock);
    std::string hits;
    for (const std::string &h : g_hits)
      hits += "\n  " + h;
    fail_unless (g_hits.empty (), "a secret leaked:%s", hits.c_str ());
    fail_unless (g_gst_lines > 100, "only %" G_GUINT64_FORMAT " GStreamer log lines", g_gst_lines);
    fail_unless (g_own_lines > 0, "no yandexrealtime log line was captured");
    fail_unless (g_glib_lines >= 2, "the GLib log capture saw nothing");
    fail_unless (g_bus_messages > 0, "no bus message was captured");
    fail_unless (g_property_reads > 0, "no property was read");
    g_print ("  scanned %" G_GUINT64_FORMAT " GStreamer log lines (%" G_GUINT64_FORMAT
        " of yandexrealtime), %" G_GUINT64_FORMAT " GLib messages, %" G_GUINT64_FORMAT
        " bus messages, %" G_GUINT64_FORMAT " property values\n", g_gst_lines, g_own_lines,
        g_glib_lines, g_bus_messages, g_property_reads);
  }

  Capture (const Capture &) = delete;
  Capture &operator= (const Capture &) = delete;

  std::vector<GstCheckLogFilter *> filters;
};

/* Everything a message carries, as an application would print it. */
void scan_message (GstMessage *msg)
{
  {
    std::lock_guard<std::mutex> guard (g_lock);
    g_bus_messages++;
  }
  const char *where = GST_MESSAGE_TYPE_NAME (msg);
  if (const GstStructure *s = gst_message_get_structure (msg)) {
    gchar *text = gst_structure_to_string (s);
    scan (where, text);
    g_free (text);
  }
  GError *err = nullptr;
  gchar *debug = nullptr;
  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ERROR: gst_message_parse_error (msg, &err, &debug); break;
    case GST_MESSAGE_WARNING: gst_message_parse_warning (msg, &err, &debug); break;
    case GST_MESSAGE_INFO: gst_message_parse_info (msg, &err, &debug); break;
    default: break;
  }
  if (err)
    scan (where, err->message);
  scan (where, debug);
  g_clear_error (&err);
  g_free (debug);
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_PROPERTY_NOTIFY) {
    const gchar *name = nullptr;
    const GValue *value = nullptr;
    gst_message_parse_property_notify (msg, nullptr, &name, &value);
    if (value) {
      gchar *text = g_strdup_value_contents (value);
      scan ("property-notify", text);
      g_free (text);
    }
  }
}

GstBusSyncReply bus_sync (GstBus *, GstMessage *msg, gpointer)
{
  scan_message (msg);
  return GST_BUS_PASS;
}

/* A property value as gst-launch-1.0 -v would print it. */
std::string value_text (const GValue *value)
{
  gchar *text = nullptr;
  if (G_VALUE_HOLDS_STRING (value))
    text = g_value_dup_string (value);
  else
    text = gst_value_serialize (value);
  if (!text)
    text = g_strdup_value_contents (value);
  std::string out = text ? text : "";
  g_free (text);
  return out;
}

/* Every readable property of `object`. */
void scan_properties (GObject *object)
{
  guint n = 0;
  GParamSpec **specs = g_object_class_list_properties (G_OBJECT_GET_CLASS (object), &n);
  for (guint i = 0; i < n; i++) {
    if (!(specs[i]->flags & G_PARAM_READABLE))
      continue;
    GValue value = G_VALUE_INIT;
    g_value_init (&value, specs[i]->value_type);
    g_object_get_property (object, specs[i]->name, &value);
    std::string where = std::string ("property ") + specs[i]->name;
    scan (where.c_str (), value_text (&value).c_str ());
    g_value_unset (&value);
    std::lock_guard<std::mutex> guard (g_lock);
    g_property_reads++;
  }
  g_free (specs);
}

/* gst-launch-1.0 -v up to 1.14 printed deep-notify itself, like this. */
void on_deep_notify (GstObject *, GstObject *origin, GParamSpec *pspec, gpointer)
{
  std::string line = std::string (GST_OBJECT_NAME (origin)) + ": " + pspec->name + " = ";
  if (pspec->flags & G_PARAM_READABLE) {
    GValue value = G_VALUE_INIT;
    g_value_init (&value, pspec->value_type);
    g_object_get_property (G_OBJECT (origin), pspec->name, &value);
    line += value_text (&value);
    g_value_unset (&value);
  } else {
    line += "(no value)";
  }
  scan ("deep-notify", line.c_str ());
  std::lock_guard<std::mutex> guard (g_lock);
  g_notified.insert (pspec->name);
}

/* ---- one session through a pipeline ---- */

struct Outcome {
  GstStateChangeReturn play = GST_STATE_CHANGE_FAILURE;
  GstMessageType end = GST_MESSAGE_UNKNOWN;  /* EOS, ERROR, or UNKNOWN on timeout */
  GQuark error_domain = 0;
  gint error_code = 0;
  guint64 output_bytes = 0;
};

GstPadProbeReturn count_bytes (GstPad *, GstPadProbeInfo *info, gpointer data)
{
  if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER)
    *static_cast<guint64 *> (data) += gst_buffer_get_size (GST_PAD_PROBE_INFO_BUFFER (info));
  return GST_PAD_PROBE_OK;
}

/* appsrc ! yandexrealtime ! fakesink, as `gst-launch-1.0 -v` runs it (a
 * deep-notify watch with values).  `configure` sets the element's
 * properties once it is in the pipeline, so their notifications propagate.
 * With `speak`, one spoken turn goes in followed by EOS. */
Outcome play (const std::function<void (GstElement *)> &configure, bool speak,
    guint timeout_ms = 20000)
{
  Outcome out;
  AppPipeline app = make_app_pipeline ("pipeline", count_bytes, &out.output_bytes);
  GstElement *pipeline = app.pipeline, *src = app.src, *rt = app.rt;

  GstBus *bus = gst_element_get_bus (pipeline);
  gst_bus_set_sync_handler (bus, bus_sync, nullptr, nullptr);
  gulong watch = gst_element_add_property_deep_notify_watch (pipeline, nullptr, TRUE);
  g_signal_connect (pipeline, "deep-notify", G_CALLBACK (on_deep_notify), nullptr);

  configure (rt);
  scan_properties (G_OBJECT (rt));
  out.play = gst_element_set_state (pipeline, GST_STATE_PLAYING);
  if (out.play != GST_STATE_CHANGE_FAILURE && speak) {
    std::vector<gint16> pcm = turn (24000, 600, 800);
    const gsize step = 24000 / 50;
    for (gsize pos = 0; pos < pcm.size (); pos += step) {
      gsize n = MIN (step, pcm.size () - pos);
      GstBuffer *buf = gst_buffer_new_memdup (pcm.data () + pos, n * 2);
      GST_BUFFER_PTS (buf) = gst_util_uint64_scale (pos, GST_SECOND, 24000);
      GST_BUFFER_DURATION (buf) = gst_util_uint64_scale (n, GST_SECOND, 24000);
      GstFlowReturn ret;
      g_signal_emit_by_name (src, "push-buffer", buf, &ret);
      gst_buffer_unref (buf);
    }
    GstFlowReturn ret;
    g_signal_emit_by_name (src, "end-of-stream", &ret);
  }
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, (GstClockTime) timeout_ms * GST_MSECOND,
      (GstMessageType) (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  if (msg) {
    out.end = GST_MESSAGE_TYPE (msg);
    if (out.end == GST_MESSAGE_ERROR) {
      GError *err = nullptr;
      gst_message_parse_error (msg, &err, nullptr);
      out.error_domain = err->domain;
      out.error_code = err->code;
      g_error_free (err);
    }
    gst_message_unref (msg);
  }
  scan_properties (G_OBJECT (rt));  /* stats and all, after the session */
  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  gst_element_remove_property_notify_watch (pipeline, watch);
  gst_bus_set_sync_handler (bus, nullptr, nullptr, nullptr);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
  return out;
}

emu::Config short_answers (emu::Config cfg = {})
{
  cfg.default_turn.answer_ms = 200;
  return cfg;
}

/* deep-notify works (location was reported), and the write-only secret
 * was not reported at all (GObject notifies readable properties only). */
void expect_notifications (const char *secret_property)
{
  std::lock_guard<std::mutex> guard (g_lock);
  fail_unless (g_notified.count ("location") == 1, "deep-notify never reported location");
  fail_unless (g_notified.count (secret_property) == 0, "deep-notify reported %s",
      secret_property);
}

/* Accepts TCP connections on 127.0.0.1 and answers each with a line of
 * plain HTTP: a TLS client fails its handshake at once. */
struct PlainTextServer {
  PlainTextServer ()
  {
    socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
        nullptr);
    GInetAddress *loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
    GSocketAddress *address = g_inet_socket_address_new (loopback, 0);
    fail_unless (g_socket_bind (socket, address, TRUE, nullptr));
    fail_unless (g_socket_listen (socket, nullptr));
    g_object_unref (address);
    g_object_unref (loopback);
    GSocketAddress *bound = g_socket_get_local_address (socket, nullptr);
    port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
    g_object_unref (bound);
    thread = g_thread_new ("plain-text-server", run, this);
  }
  ~PlainTextServer ()
  {
    stop = true;
    g_thread_join (thread);
    g_object_unref (socket);
  }
  static gpointer run (gpointer data)
  {
    auto *self = static_cast<PlainTextServer *> (data);
    while (!self->stop) {
      if (!g_socket_condition_timed_wait (self->socket, G_IO_IN, 20000, nullptr, nullptr))
        continue;
      GSocket *peer = g_socket_accept (self->socket, nullptr, nullptr);
      if (!peer)
        continue;
      static const char reply[] = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";
      g_socket_send (peer, reply, sizeof (reply) - 1, nullptr, nullptr);
      g_socket_close (peer, nullptr);
      g_object_unref (peer);
    }
    return nullptr;
  }
  GSocket *socket;
  GThread *thread;
  guint16 port = 0;
  std::atomic<bool> stop {false};
};

}  // namespace

GST_START_TEST (test_api_key_stays_secret)
{
  emu::Config cfg = short_answers ();
  cfg.api_key = kApiKey;  /* only the right key passes: it was really sent */
  emu::Server server (cfg);
  fail_unless (server.start () != 0);
  Capture capture ({kApiKey});
  Outcome out = play ([&] (GstElement *rt) {
        g_object_set (rt, "location", server.url ().c_str (), "api-key", kApiKey, nullptr);
      }, true);
  fail_unless_equals_int (out.end, GST_MESSAGE_EOS);
  fail_unless (out.output_bytes > 0, "no answer");
  std::string scheme = server.last_authorization_scheme ();
  fail_unless_equals_string (scheme.c_str (), "Api-Key");
  expect_notifications ("api-key");
  capture.check ();
  server.stop ();
}
GST_END_TEST;

/* A secret in extra-headers reaches the server and nothing else; a refused
 * header names the field, never its value. */
GST_START_TEST (test_extra_header_stays_secret)
{
  const char *const secret = "xhdr-secretValue-90b1c2";
  emu::Server server (short_answers ());
  fail_unless (server.start () != 0);
  Capture capture ({secret});
  Outcome out = play ([&] (GstElement *rt) {
        /* Refused (a line break would inject a header): the warning names
         * the header only.  The valid value set next lifts the refusal. */
        std::string bad = std::string (secret) + "\r\nX-Injected: 1";
        GstStructure *headers = gst_structure_new ("headers", "X-Other", G_TYPE_STRING,
            bad.c_str (), nullptr);
        g_object_set (rt, "location", server.url ().c_str (), "api-key", "k",
            "extra-headers", headers, nullptr);
        gst_structure_free (headers);
        headers = gst_structure_new ("headers", "X-Proxy-Token", G_TYPE_STRING, secret, nullptr);
        g_object_set (rt, "extra-headers", headers, nullptr);
        gst_structure_free (headers);
      }, true);
  fail_unless_equals_int (out.end, GST_MESSAGE_EOS);
  std::vector<std::string> sent = server.last_request_header ("X-Proxy-Token");
  fail_unless (sent.size () == 1 && sent[0] == secret);
  fail_unless (server.last_request_header ("X-Injected").empty ());
  expect_notifications ("extra-headers");
  capture.check ();
  server.stop ();
}
GST_END_TEST;

GST_START_TEST (test_iam_token_stays_secret)
{
  emu::Config cfg = short_answers ();
  cfg.iam_token = kIamToken;
  emu::Server server (cfg);
  fail_unless (server.start () != 0);
  Capture capture ({kIamToken});
  Outcome out = play ([&] (GstElement *rt) {
        g_object_set (rt, "location", server.url ().c_str (), "iam-token", kIamToken, nullptr);
      }, true);
  fail_unless_equals_int (out.end, GST_MESSAGE_EOS);
  fail_unless (out.output_bytes > 0, "no answer");
  std::string scheme = server.last_authorization_scheme ();
  fail_unless_equals_string (scheme.c_str (), "Bearer");
  expect_notifications ("iam-token");
  capture.check ();
  server.stop ();
}
GST_END_TEST;

/* The README's advice: the secret in the environment, not on the command line. */
GST_START_TEST (test_api_key_from_environment_stays_secret)
{
  emu::Config cfg = short_answers ();
  cfg.api_key = kApiKey;
  emu::Server server (cfg);
  fail_unless (server.start () != 0);
  g_setenv ("YANDEX_CLOUD_API_KEY", kApiKey, TRUE);
  Capture capture ({kApiKey});
  Outcome out = play ([&] (GstElement *rt) {
        g_object_set (rt, "location", server.url ().c_str (), nullptr);
      }, true);
  g_setenv ("YANDEX_CLOUD_API_KEY", "", TRUE);
  fail_unless_equals_int (out.end, GST_MESSAGE_EOS);
  capture.check ();
  server.stop ();
}
GST_END_TEST;

GST_START_TEST (test_refused_handshake_keeps_the_secret)
{
  emu::Config cfg;
  cfg.api_key = kWrongKey;
  emu::Server server (cfg);
  fail_unless (server.start () != 0);
  Capture capture ({kApiKey, kWrongKey});
  Outcome out = play ([&] (GstElement *rt) {
        g_object_set (rt, "location", server.url ().c_str (), "api-key", kApiKey, nullptr);
      }, true);
  fail_unless_equals_int (out.end, GST_MESSAGE_ERROR);
  fail_unless_equals_int (out.error_domain, GST_RESOURCE_ERROR);
  fail_unless_equals_int (out.error_code, GST_RESOURCE_ERROR_NOT_AUTHORIZED);
  capture.check ();
  server.stop ();
}
GST_END_TEST;

/* wss:// without a folder fails at NULL→READY, before any connection. */
GST_START_TEST (test_missing_folder_keeps_the_secret)
{
  Capture capture ({kApiKey});
  Outcome out = play ([&] (GstElement *rt) {
        g_object_set (rt, "location", "wss://ai.api.cloud.yandex.net/v1/realtime",
            "api-key", kApiKey, nullptr);
      }, false, 5000);
  fail_unless_equals_int (out.play, GST_STATE_CHANGE_FAILURE);
  fail_unless_equals_int (out.end, GST_MESSAGE_ERROR);
  fail_unless_equals_int (out.error_domain, GST_RESOURCE_ERROR);
  fail_unless_equals_int (out.error_code, GST_RESOURCE_ERROR_NOT_AUTHORIZED);
  capture.check ();
}
GST_END_TEST;

/* wss:// to a server that does not speak TLS: the handshake fails with the
 * header set. */
GST_START_TEST (test_tls_failure_keeps_the_secret)
{
  PlainTextServer server;
  std::string location = "wss://127.0.0.1:" + std::to_string (server.port) + "/v1/realtime";
  Capture capture ({kApiKey});
  Outcome out = play ([&] (GstElement *rt) {
        g_object_set (rt, "location", location.c_str (), "folder-id", "b1gfolder",
            "api-key", kApiKey, "max-reconnects", 0, nullptr);
      }, true);
  fail_unless_equals_int (out.end, GST_MESSAGE_ERROR);
  capture.check ();
}
GST_END_TEST;

/* A lost session: the reconnection re-sends the header and says why. */
GST_START_TEST (test_reconnect_keeps_the_secret)
{
  emu::Config cfg = short_answers ();
  cfg.api_key = kApiKey;
  cfg.faults.drop_mid_answer = true;
  emu::Server server (cfg);
  fail_unless (server.start () != 0);
  Capture capture ({kApiKey});
  Outcome out = play ([&] (GstElement *rt) {
        g_object_set (rt, "location", server.url ().c_str (), "api-key", kApiKey,
            "reconnect-backoff-ms", 10, nullptr);
      }, true);
  fail_unless (out.end == GST_MESSAGE_EOS || out.end == GST_MESSAGE_ERROR);
  fail_unless (server.sessions_opened () >= 2, "no reconnection happened");
  capture.check ();
  server.stop ();
}
GST_END_TEST;

static Suite *security_suite (void)
{
  Suite *s = suite_create ("security");
  TCase *tc = tcase_create ("secrets");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_api_key_stays_secret);
  tcase_add_test (tc, test_iam_token_stays_secret);
  tcase_add_test (tc, test_extra_header_stays_secret);
  tcase_add_test (tc, test_api_key_from_environment_stays_secret);
  tcase_add_test (tc, test_refused_handshake_keeps_the_secret);
  tcase_add_test (tc, test_missing_folder_keeps_the_secret);
  tcase_add_test (tc, test_tls_failure_keeps_the_secret);
  tcase_add_test (tc, test_reconnect_keeps_the_secret);
  return s;
}

int main (int argc, char **argv)
{
  /* Before anything logs: GLib allows one writer per process. */
  g_log_set_writer_func (glib_writer, nullptr, nullptr);
  g_log_set_default_handler (glib_default_handler, nullptr);
  gst_check_init (&argc, &argv);
  return gst_check_run_suite (security_suite (), "security", __FILE__);
}
