/* Faults against the emulator: connections cut while uploading and while
 * answering, expiring sessions, refused handshakes, garbage among the deltas,
 * a server that stops reading; plus stats, rollover and plain-ws refusal, and
 * elements sharing a network thread that stay out of each other's way. */
#include "harness.h"

#include <json-glib/json-glib.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

using namespace yrt::test;
namespace emu = yrt::emu;

/* The next `connection` message in state `state`. */
static GstMessage *wait_connection (Fixture &f, const char *state)
{
  for (;;) {
    GstMessage *m = f.wait_message ("connection");
    fail_unless (m != nullptr, "no connection state %s", state);
    if (g_strcmp0 (gst_structure_get_string (structure (m), "state"), state) == 0)
      return m;
    gst_message_unref (m);
  }
}

static bool contains (const std::vector<guint8> &hay, const void *needle, gsize size)
{
  return size <= hay.size () &&
      std::search (hay.begin (), hay.end (), (const guint8 *) needle,
          (const guint8 *) needle + size) != hay.end ();
}

static GstStructure *stats (GstElement *e)
{
  GstStructure *s = nullptr;
  g_object_get (e, "stats", &s, nullptr);
  fail_unless (s != nullptr);
  return s;
}

static guint64 stat_u64 (GstStructure *s, const char *field)
{
  guint64 v = 0;
  fail_unless (gst_structure_get_uint64 (s, field, &v), "no %s", field);
  return v;
}

static guint stat_uint (GstStructure *s, const char *field)
{
  guint v = 0;
  fail_unless (gst_structure_get_uint (s, field, &v), "no %s", field);
  return v;
}

/* The connection dies in the middle of the user's speech: the new session
 * gets the whole turn again, and the pipeline still ends with the answer. */
GST_START_TEST (test_cut_mid_upload)
{
  emu::Config config;
  config.faults.drop_after_client_events = 12;  /* session.update + 11 chunks */
  config.faults.sessions = 1;
  Fixture f (config);
  f.make ("reconnect-backoff-ms=20");
  f.start ();
  std::vector<gint16> in = turn (24000);
  f.push (in);
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless (concat (out) == f.server.sent_audio ());
  fail_unless_equals_int (concat (out).size (), 44100 * 2);

  GstMessage *m = wait_connection (f, "reconnecting");
  guint attempt = 0;
  fail_unless (gst_structure_get_uint (structure (m), "attempt", &attempt));
  fail_unless_equals_int (attempt, 1);
  fail_unless (gst_structure_get_string (structure (m), "reason") != nullptr);
  gst_message_unref (m);
  fail_unless_equals_int (f.server.sessions_opened (), 2);
  /* Every input byte of the turn reached the server in one piece. */
  fail_unless (contains (f.server.received_audio (), in.data (), in.size () * 2));
  GstStructure *st = stats (f.element);
  fail_unless_equals_int (stat_uint (st, "reconnects"), 1);
  gst_structure_free (st);
  unref_all (out);
}
GST_END_TEST;

/* Cut while answering: the answer is reported failed and what arrived of it
 * never reaches the output (the file holds whole answers only); the turn is
 * still owed an answer, so the new session gets its audio again (not its
 * transcript: the question must not be asked twice) and answers it once. */
GST_START_TEST (test_cut_mid_answer)
{
  emu::Config config;
  config.faults.drop_mid_answer = true;
  Fixture f (config);
  f.make ("reconnect-backoff-ms=20");
  f.start ();
  std::vector<gint16> in = turn (24000);
  f.push (in);
  std::vector<GstBuffer *> out = f.end_input ();
  std::vector<guint8> sent = f.server.sent_audio ();
  std::vector<guint8> got = concat (out);
  fail_unless_equals_int (got.size (), 44100 * 2);  /* one answer, whole */
  fail_unless (sent.size () > got.size ());         /* after a cut one */
  fail_unless (memcmp (got.data (), sent.data () + sent.size () - got.size (),
          got.size ()) == 0);

  GstMessage *m;
  for (;;) {
    m = f.wait_message ("response-done");
    fail_unless (m != nullptr);
    if (g_strcmp0 (gst_structure_get_string (structure (m), "status"), "failed") == 0)
      break;
    gst_message_unref (m);
  }
  gst_message_unref (m);
  fail_unless_equals_int (f.server.sessions_opened (), 2);
  /* The question's speech reached both sessions whole, and was never
   * replayed as text. */
  std::vector<guint8> received = f.server.received_audio ();
  const guint8 *speech = (const guint8 *) in.data ();
  gsize speech_bytes = 24000 * 800 / 1000 * 2;
  auto first = std::search (received.begin (), received.end (), speech, speech + speech_bytes);
  fail_unless (first != received.end ());
  fail_unless (std::search (first + 1, received.end (), speech, speech + speech_bytes) !=
      received.end ());
  for (const emu::ClientEvent &ev : f.server.client_events ())
    fail_if (ev.type == "conversation.item.create" && ev.json.find ("turn 1") != std::string::npos);
  unref_all (out);
}
GST_END_TEST;

/* The server ends the session (session_expired, then a normal close): the
 * element carries on in a new one. */
GST_START_TEST (test_session_expires)
{
  emu::Config config;
  config.faults.session_lifetime_ms = 200;
  config.faults.sessions = 1;
  Fixture f (config);
  f.make ("reconnect-backoff-ms=20");
  f.start ();
  gst_message_unref (wait_connection (f, "reconnecting"));
  fail_unless (f.server.wait_for_server_event ("session.created", 2, 20000));
  f.push (turn (24000));
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless_equals_int (concat (out).size (), 44100 * 2);
  fail_unless (concat (out) == f.server.sent_audio ());
  unref_all (out);
}
GST_END_TEST;

static void expect_handshake_error (guint status, GQuark domain, gint code, const char *hint)
{
  emu::Config config;
  config.faults.refuse_status = status;
  Fixture f (config);
  f.start ();
  GstMessage *msg = gst_bus_timed_pop_filtered (f.bus, 20 * GST_SECOND, GST_MESSAGE_ERROR);
  std::string debug = expect_gerror (msg, domain, code, hint);
  fail_unless (debug.find (std::to_string (status)) != std::string::npos, "%s", debug.c_str ());
  gst_message_unref (msg);
  /* Not retried. */
  for (GstMessage *m : f.seen)
    fail_if (g_strcmp0 (gst_structure_get_string (gst_message_get_structure (m), "state"),
        "reconnecting") == 0);
  while (GstMessage *m = gst_bus_pop (f.bus)) {
    const GstStructure *s = gst_message_get_structure (m);
    fail_if (s && g_strcmp0 (gst_structure_get_string (s, "state"), "reconnecting") == 0);
    gst_message_unref (m);
  }
  fail_unless_equals_int (f.server.sessions_opened (), 0);
}

GST_START_TEST (test_handshake_refusals)
{
  expect_handshake_error (401, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED, "api-key");
  expect_handshake_error (403, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED, "api-key");
  expect_handshake_error (404, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND, "model");
}
GST_END_TEST;

/* Unknown events, non-JSON text and binary frames among the deltas change
 * nothing in the answer; they are counted. */
GST_START_TEST (test_garbage_among_deltas)
{
  emu::Config config;
  config.faults.unknown_events = true;
  config.faults.odd_deltas = true;
  Fixture f (config);
  f.start ();
  f.push (turn (24000));
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless_equals_int (concat (out).size (), 44100 * 2);
  fail_unless (concat (out) == f.server.sent_audio ());
  GstStructure *st = stats (f.element);
  fail_unless (stat_uint (st, "bad-events") > 0);
  fail_unless_equals_int (stat_uint (st, "reconnects"), 0);
  gst_structure_free (st);
  unref_all (out);
}
GST_END_TEST;

/* A server that stops reading: live input keeps flowing, the element's
 * backlog stays within max-buffer-ms and the oldest audio goes. */
GST_START_TEST (test_server_stops_reading)
{
  emu::Config config;
  Fixture f (config);
  f.make ("max-buffer-ms=1000");
  f.start (kLiveCaps, true);
  fail_unless (f.server.wait_for_server_event ("session.updated", 1, 20000));
  emu::Faults faults;
  faults.stop_reading = true;
  f.server.set_faults (faults);
  fail_unless (f.server.wait_for_server_event ("session.updated", 1, 20000));
  /* Until the kernel's buffers are full and our own bound is reached. */
  std::vector<gint16> second = silence (24000, 1000);
  guint pushed_s = 0;
  GstStructure *st = nullptr;
  for (; pushed_s < 3600; pushed_s++) {
    f.push (second);
    if (pushed_s % 10 != 9)
      continue;
    st = stats (f.element);
    if (stat_u64 (st, "dropped-input") > 0)
      break;
    gst_structure_free (st);
    st = nullptr;
  }
  fail_unless (st != nullptr, "nothing dropped after %u s", pushed_s);
  fail_unless (stat_u64 (st, "queued-bytes") <= 24000 * 2 * 4 / 3 + 4096 + 65536,
      "queued %" G_GUINT64_FORMAT, stat_u64 (st, "queued-bytes"));
  gst_structure_free (st);

  /* The server reads again: every sample pushed either reached it or is
   * counted in dropped-input, exactly (not estimated from the size of the
   * events dropped, whose JSON around the audio is no audio). */
  f.server.set_faults (emu::Faults ());
  std::vector<GstBuffer *> out = f.end_input ();
  unref_all (out);
  st = stats (f.element);
  guint64 dropped = gst_util_uint64_scale_round (stat_u64 (st, "dropped-input"), 24000, GST_SECOND);
  gst_structure_free (st);
  guint64 pushed = (guint64) (pushed_s + 1) * 24000;
  /* At EOS the element adds silence-duration-ms (400) + 300 ms of silence. */
  const guint64 trail = 24000 * 700 / 1000;
  guint64 received = 0;
  for (gint i = 0; i < 500 && (received = f.server.received_audio ().size () / 2) <
       pushed - dropped + trail; i++)
    g_usleep (10000);  /* the server reads what was on its way */
  fail_unless (received == pushed - dropped + trail, "%" G_GUINT64_FORMAT " samples received "
      "(with %" G_GUINT64_FORMAT " of trailing silence), %" G_GUINT64_FORMAT " counted dropped, %"
      G_GUINT64_FORMAT " pushed", received, trail, dropped, pushed);
}
GST_END_TEST;

/* Non-live input into a server that stops reading for a while: the
 * streaming thread waits with at most max-buffer-ms queued, nothing is
 * dropped, and once the server reads again it gets every sample, in order. */
GST_START_TEST (test_file_waits_for_a_stalled_server)
{
  Fixture f;
  f.make ("max-buffer-ms=500 turn-detection=none");
  f.start ();
  fail_unless (f.server.wait_for_server_event ("session.updated", 1, 20000));
  emu::Faults stalled;
  stalled.stop_reading = true;
  f.server.set_faults (stalled);

  /* 300 s of distinct samples: more than the kernel's socket buffers hold. */
  std::vector<gint16> input (24000 * 300);
  for (gsize i = 0; i < input.size (); i++)
    input[i] = (gint16) (i * 7919);
  std::atomic<bool> pushed_all {false};
  std::thread pusher ([&] {
    f.push (input);
    pushed_all = true;
  });

  /* No barrier comes back: the element stops at max-buffer-ms of input the
   * service has not confirmed.  audio-sent settles (unchanged for 200 ms)
   * while the pusher is still blocked. */
  guint64 sent = 0;
  guint settled_ms = 0;
  for (gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
       (sent == 0 || settled_ms < 200) && g_get_monotonic_time () < deadline;
       g_usleep (20000)) {
    GstStructure *st = stats (f.element);
    guint64 now_sent = stat_u64 (st, "audio-sent");
    gst_structure_free (st);
    settled_ms = now_sent == sent ? settled_ms + 20 : 0;
    sent = now_sent;
  }
  fail_unless (settled_ms >= 200, "audio-sent did not settle");
  fail_if (pushed_all, "the streaming thread did not wait");
  fail_unless (sent >= 450 * GST_MSECOND && sent <= 540 * GST_MSECOND,
      "sent %" GST_TIME_FORMAT " unconfirmed", GST_TIME_ARGS (sent));

  f.server.set_faults (emu::Faults {});
  pusher.join ();
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless_equals_int (samples_in (out), 44100);
  std::vector<guint8> got = f.server.received_audio ();
  fail_unless_equals_uint64 (got.size (), input.size () * 2);
  fail_unless (memcmp (got.data (), input.data (), got.size ()) == 0);
  GstStructure *st = stats (f.element);
  fail_unless_equals_uint64 (stat_u64 (st, "dropped-input"), 0);
  gst_structure_free (st);
  unref_all (out);
}
GST_END_TEST;

/* Live input during an outage is held up to max-buffer-ms; beyond, the
 * oldest goes, with a warning saying how much. */
GST_START_TEST (test_live_outage_drops_oldest)
{
  Fixture f;
  f.make ("max-buffer-ms=1000 turn-detection=none");
  f.start (kLiveCaps, true);
  fail_unless (f.server.wait_for_server_event ("session.updated", 1, 20000));
  /* The delays are random (full jitter): the outage's length comes from the
   * service, whose refusal of the first attempt says "not for 2 s". */
  emu::Faults busy;
  busy.refuse_status = 503;
  busy.retry_after = "2";
  f.server.set_faults (busy);
  f.server.drop_connections ();
  gst_message_unref (wait_connection (f, "reconnecting"));
  std::vector<gint16> in = tone (24000, 3000, 5000, 440.0);
  f.push (in);  /* far faster than the 2 s before the new session */
  gst_message_unref (wait_connection (f, "reconnecting"));  /* the refusal's */
  f.server.set_faults (emu::Faults {});
  fail_unless (f.server.wait_for_server_event ("session.created", 2, 20000));
  GstMessage *warning = gst_bus_timed_pop_filtered (f.bus, 20 * GST_SECOND, GST_MESSAGE_WARNING);
  expect_gerror (warning, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ, "dropped 2000 ms");
  gst_message_unref (warning);
  /* The newest second of it went to the new session. */
  fail_unless (f.server.wait_for_client_event ("input_audio_buffer.append", 25, 20000));
  GstStructure *st = stats (f.element);
  fail_unless_equals_uint64 (stat_u64 (st, "dropped-input"), 2 * GST_SECOND);
  gst_structure_free (st);
  std::vector<guint8> got = f.server.received_audio ();
  fail_unless (contains (got, in.data () + 48000, 24000 * 2), "got %" G_GSIZE_FORMAT " bytes", got.size ());
}
GST_END_TEST;

/* Rollover between turns: a fresh session that knows the conversation, no
 * answer cut. */
GST_START_TEST (test_session_lifetime_rollover)
{
  Fixture f;
  f.make ("session-lifetime-ms=300");
  f.start (kLiveCaps, true);
  f.push (turn (24000));
  GstMessage *m = f.wait_message ("response-done");
  fail_unless_equals_string (gst_structure_get_string (structure (m), "status"), "completed");
  gst_message_unref (m);
  m = wait_connection (f, "reconnecting");
  fail_unless (strstr (gst_structure_get_string (structure (m), "reason"), "lifetime"));
  gst_message_unref (m);
  fail_unless (f.server.wait_for_server_event ("session.created", 2, 20000));
  fail_unless (f.server.wait_for_client_event ("conversation.item.create", 2, 20000));
  std::vector<std::string> replayed;
  for (const emu::ClientEvent &ev : f.server.client_events ())
    if (ev.type == "conversation.item.create")
      replayed.push_back (ev.json);
  fail_unless (replayed.at (0).find ("\"user\"") != std::string::npos &&
      replayed.at (0).find ("turn 1") != std::string::npos);
  fail_unless (replayed.at (1).find ("\"assistant\"") != std::string::npos &&
      replayed.at (1).find ("answer 1") != std::string::npos);
  GstStructure *st = stats (f.element);
  fail_unless_equals_int (stat_uint (st, "answers"), 1);
  gst_structure_free (st);
}
GST_END_TEST;

/* The first session.update whose text has `needle`, waited for. */
static bool wait_for_update_with (Fixture &f, const std::string &needle, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  do {
    for (const emu::ClientEvent &ev : f.server.client_events ())
      if (ev.type == "session.update" && ev.json.find (needle) != std::string::npos)
        return true;
    g_usleep (20000);
  } while (g_get_monotonic_time () < deadline);
  return false;
}

/* A rollover settles the old session as a reconnection does: once the
 * service refused replayed items, each new session gets the conversation
 * so far in its instructions, not the conversation as it was at the
 * refusal; and an answer of a new session is heard as itself. */
GST_START_TEST (test_rollover_carries_the_conversation_so_far)
{
  emu::Config config;
  config.faults.refuse_assistant_items = true;
  Fixture f (config);
  f.make ("session-lifetime-ms=300");
  f.start (kLiveCaps, true);
  f.push (turn (24000));
  GstMessage *m = f.wait_message ("response-done");
  fail_unless (m != nullptr);
  gst_message_unref (m);
  /* The second session refuses "answer 1" as an item: it travels in the
   * instructions from then on, and no session is sent items again. */
  fail_unless (wait_for_update_with (f, "Assistant: answer 1", 20000));
  emu::TurnScript second;
  second.transcript = "second question";
  second.answer_text = "second answer";
  f.server.push_turn (second);
  f.push (turn (24000));
  for (;;) {
    m = f.wait_message ("response-done");
    fail_unless (m != nullptr, "the second question was not answered");
    bool completed = g_strcmp0 (gst_structure_get_string (structure (m), "status"),
        "completed") == 0;
    gst_message_unref (m);
    if (completed)
      break;
  }
  /* Response IDs start again in a new session: the second answer's text
   * is its own, not the first's under the same ID. */
  bool heard = false;
  for (GstMessage *seen : f.seen) {
    const GstStructure *st = gst_message_get_structure (seen);
    gboolean final = FALSE;
    if (st && gst_structure_has_name (st, "yandexrealtime/response-text") &&
        gst_structure_get_boolean (st, "final", &final) && final)
      heard |= g_strcmp0 (gst_structure_get_string (st, "text"), "second answer") == 0;
  }
  fail_unless (heard, "no final response-text \"second answer\"");
  const char *told = "User: second question\\nAssistant: second answer";  /* in JSON */
  fail_unless (wait_for_update_with (f, told, 20000), "no later session was told the second answer");
}
GST_END_TEST;

GST_START_TEST (test_stats)
{
  Fixture f;
  f.make ("turn-detection=none");
  f.start ();
  f.push (tone (24000, 1000));
  std::vector<GstBuffer *> out = f.end_input ();
  GstStructure *st = stats (f.element);
  fail_unless_equals_uint64 (stat_u64 (st, "audio-sent"), GST_SECOND);
  fail_unless_equals_uint64 (stat_u64 (st, "audio-received"), GST_SECOND);
  fail_unless (stat_u64 (st, "bytes-sent") > 48000 * 4 / 3);
  fail_unless (stat_u64 (st, "bytes-received") > 88200 * 4 / 3);
  fail_unless_equals_int (stat_uint (st, "answers"), 1);
  fail_unless_equals_int (stat_uint (st, "reconnects"), 0);
  fail_unless_equals_uint64 (stat_u64 (st, "dropped-input"), 0);
  gst_structure_free (st);
  unref_all (out);
}
GST_END_TEST;

GST_START_TEST (test_plain_ws_elsewhere_is_refused)
{
  GstElement *e = gst_element_factory_make ("yandexrealtime", nullptr);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (e, bus);
  g_object_set (e, "location", "ws://192.0.2.7:8080/v1/realtime", "api-key", "k", nullptr);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY), GST_STATE_CHANGE_FAILURE);
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  expect_gerror (msg, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS, "allow-insecure");
  gst_message_unref (msg);
  g_object_set (e, "allow-insecure", TRUE, nullptr);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  gst_element_set_state (e, GST_STATE_NULL);
  /* Loopback needs no permission. */
  g_object_set (e, "location", "ws://127.0.0.1:9/v1/realtime", "allow-insecure", FALSE, nullptr);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_set_bus (e, nullptr);
  gst_object_unref (bus);
  gst_object_unref (e);
}
GST_END_TEST;

/* A TCP server on 127.0.0.1 that accepts connections (the kernel does)
 * and never answers a byte: a handshake sent there hangs. */
struct SilentServer {
  SilentServer ()
  {
    GInetAddress *loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
    GSocketAddress *any_port = g_inet_socket_address_new (loopback, 0);
    GSocketAddress *bound = nullptr;
    fail_unless (g_socket_listener_add_address (listener, any_port, G_SOCKET_TYPE_STREAM,
        G_SOCKET_PROTOCOL_TCP, nullptr, &bound, nullptr));
    port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
    g_object_unref (bound);
    g_object_unref (any_port);
    g_object_unref (loopback);
  }
  ~SilentServer ()
  {
    g_socket_listener_close (listener);
    g_object_unref (listener);
  }
  GSocketListener *listener = g_socket_listener_new ();
  guint port = 0;
};

/* A server that takes the connection but never answers the upgrade: a clear
 * error after connect-timeout-ms, not "connecting" for ever. */
GST_START_TEST (test_unanswered_handshake_times_out)
{
  SilentServer silent;
  guint port = silent.port;
  std::string location = "ws://127.0.0.1:" + std::to_string (port) + "/v1/realtime";

  GstElement *e = gst_element_factory_make ("yandexrealtime", nullptr);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (e, bus);
  g_object_set (e, "location", location.c_str (), "api-key", "k",
      "connect-timeout-ms", 300, nullptr);
  fail_unless (gst_element_set_state (e, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, 20 * GST_SECOND, GST_MESSAGE_ERROR);
  expect_gerror (msg, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ_WRITE, "within 300 ms");
  gst_message_unref (msg);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  gst_element_set_bus (e, nullptr);
  gst_object_unref (bus);
  gst_object_unref (e);
}
GST_END_TEST;

/* Threads of this process named yrt-network. */
static guint network_threads ()
{
  guint n = 0;
  GDir *dir = g_dir_open ("/proc/self/task", 0, nullptr);
  fail_unless (dir != nullptr);
  while (const char *task = g_dir_read_name (dir)) {
    gchar *path = g_build_filename ("/proc/self/task", task, "comm", nullptr);
    gchar *comm = nullptr;
    if (g_file_get_contents (path, &comm, nullptr, nullptr) && g_str_has_prefix (comm, "yrt-network"))
      n++;
    g_free (comm);
    g_free (path);
  }
  g_dir_close (dir);
  return n;
}

/* A bare element on a bus of its own, started.  `share`: its
 * sessions-per-thread (0, the default: automatic). */
static GstElement *start_bare (const std::string &location, GstBus **bus, guint share = 3)
{
  GstElement *e = gst_element_factory_make ("yandexrealtime", nullptr);
  *bus = gst_bus_new ();
  gst_element_set_bus (e, *bus);
  g_object_set (e, "location", location.c_str (), "api-key", "k", "connect-timeout-ms", 0,
      "max-reconnects", 0, "sessions-per-thread", share, nullptr);
  fail_unless (gst_element_set_state (e, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
  return e;
}

static void stop_bare (GstElement *e, GstBus *bus)
{
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  gst_element_set_bus (e, nullptr);
  gst_object_unref (bus);
  gst_object_unref (e);
}

/* One live turn of `f`: its whole answer (1 s at 44.1 kHz), not silent. */
static void answered_turn (Fixture &f)
{
  f.push (turn (24000));
  GstMessage *done = f.wait_message ("response-done");
  fail_unless (done != nullptr, "no answer");
  gst_message_unref (done);
  guint64 samples = 0;
  gint peak = 0;
  while (samples < 44100) {
    GstBuffer *b = pull_buffer (f.h);
    GstMapInfo map;
    fail_unless (gst_buffer_map (b, &map, GST_MAP_READ));
    const gint16 *pcm = (const gint16 *) map.data;
    for (gsize i = 0; i < map.size / 2; i++)
      peak = MAX (peak, ABS ((gint) pcm[i]));
    samples += map.size / 2;
    gst_buffer_unmap (b, &map);
    gst_buffer_unref (b);
  }
  fail_unless_equals_int (samples, 44100);
  fail_unless (peak > 1000, "a silent answer (peak %d)", peak);
}

/* Elements sharing a network thread (sessions-per-thread) keep the isolation
 * of a thread each: a server that never answers one's handshake, another's
 * refused handshake and stopping the stalled one delay nothing of a third's
 * conversation on the same thread. */
GST_START_TEST (test_shared_thread_isolation)
{
  SilentServer silent;
  guint port = silent.port;
  const guint threads_before = network_threads ();

  GstBus *stalled_bus;
  GstElement *stalled = start_bare ("ws://127.0.0.1:" + std::to_string (port) + "/v1/realtime",
      &stalled_bus);
  Fixture f;
  f.make ("sessions-per-thread=3");
  f.start (kLiveCaps, true);

  /* The conversation goes on while the other handshake hangs.  (A thread
   * names itself once it runs: counted after a whole turn.) */
  answered_turn (f);
  fail_unless_equals_int (network_threads (), threads_before + 1);
  fail_unless (gst_bus_pop_filtered (stalled_bus, GST_MESSAGE_ERROR) == nullptr);

  /* A refused handshake on the same thread: its error, nothing else. */
  emu::Config refusing;
  refusing.faults.refuse_status = 401;
  emu::Server refuser (refusing);
  fail_unless (refuser.start () != 0);
  GstBus *refused_bus;
  GstElement *refused = start_bare (refuser.url (), &refused_bus);
  GstMessage *error = gst_bus_timed_pop_filtered (refused_bus, 20 * GST_SECOND, GST_MESSAGE_ERROR);
  expect_gerror (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED, "api-key");
  gst_message_unref (error);
  answered_turn (f);
  fail_unless_equals_int (network_threads (), threads_before + 1);

  /* Stopping the stalled one (its handshake cancelled) and the refused one
   * is prompt and leaves the conversation alone. */
  gint64 t0 = g_get_monotonic_time ();
  stop_bare (stalled, stalled_bus);
  stop_bare (refused, refused_bus);
  fail_unless (g_get_monotonic_time () - t0 < 2 * G_USEC_PER_SEC, "stopping took %" G_GINT64_FORMAT " us",
      g_get_monotonic_time () - t0);
  answered_turn (f);
  fail_unless_equals_int (f.server.sessions_opened (), 1);
  refuser.stop ();

}
GST_END_TEST;

/* By default (sessions-per-thread 0) the first 16 elements of a process
 * get a network thread each, and more join those (the fullest with room
 * first): 40 elements on 16 threads; a conversation on a shared one is
 * answered in full; the threads go with their last element. */
GST_START_TEST (test_automatic_sharing)
{
  Fixture f;
  emu::Server &server = f.server;
  const guint threads_before = network_threads ();
  std::vector<std::pair<GstElement *, GstBus *>> bare;
  auto opened = [&server] (guint n) {
    gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
    while (server.sessions_opened () < n && g_get_monotonic_time () < deadline)
      g_usleep (10000);
    return server.sessions_opened () >= n;
  };
  auto start = [&] (guint n) {
    while (bare.size () < n) {
      GstBus *bus;
      GstElement *e = start_bare (server.url (), &bus, 0);
      bare.emplace_back (e, bus);
    }
    fail_unless (opened (n), "%u of %u sessions opened", server.sessions_opened (), n);
  };
  start (16);
  fail_unless_equals_int (network_threads (), threads_before + 16);
  start (39);
  fail_unless_equals_int (network_threads (), threads_before + 16);

  f.make ("");
  f.start (kLiveCaps, true);
  answered_turn (f);
  fail_unless_equals_int (network_threads (), threads_before + 16);

  for (auto &b : bare)
    stop_bare (b.first, b.second);
  /* The conversation's thread stays, the others are joined. */
  fail_unless_equals_int (network_threads (), threads_before + 1);
  answered_turn (f);
}
GST_END_TEST;

static Suite *reliability_suite (void)
{
  Suite *s = suite_create ("yandexrealtime-reliability");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 180);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_cut_mid_upload);
  tcase_add_test (tc, test_cut_mid_answer);
  tcase_add_test (tc, test_session_expires);
  tcase_add_test (tc, test_handshake_refusals);
  tcase_add_test (tc, test_garbage_among_deltas);
  tcase_add_test (tc, test_server_stops_reading);
  tcase_add_test (tc, test_file_waits_for_a_stalled_server);
  tcase_add_test (tc, test_live_outage_drops_oldest);
  tcase_add_test (tc, test_session_lifetime_rollover);
  tcase_add_test (tc, test_rollover_carries_the_conversation_so_far);
  tcase_add_test (tc, test_stats);
  tcase_add_test (tc, test_plain_ws_elsewhere_is_refused);
  tcase_add_test (tc, test_unanswered_handshake_times_out);
  tcase_add_test (tc, test_shared_thread_isolation);
  tcase_add_test (tc, test_automatic_sharing);
  return s;
}

GST_CHECK_MAIN (reliability);
