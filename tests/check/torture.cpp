/* State-change torture: one pipeline, appsrc ! yandexrealtime ! fakesink,
 * taken NULL→PLAYING→NULL 200 times (after one warm-up cycle) against one
 * emulator and stopped at a random moment each time: right away, while
 * connecting, while uploading, in the middle of an answer, and with the
 * server no longer reading (so the close handshake times out).  Every stop
 * must return within a second (a bound on a blocking call, not a benchmark),
 * post no error, and leave nothing behind: no open session on the server
 * and (with the leaks tracer, which main() turns on) no GstObject or
 * GstMiniObject created during the cycles still alive afterwards.  Memory
 * in general is LeakSanitizer's job (the sanitized pass of tests/run.sh).
 *
 * TORTURE_SEED=<n> replays one sequence; TORTURE_CYCLES=<n> changes the
 * count. */
#include "harness.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>

using namespace yrt::test;
namespace emu = yrt::emu;

namespace {

constexpr gint64 kStopBoundUs = G_USEC_PER_SEC;  /* set_state (NULL) must be quicker */

enum Moment { RightAway, Connecting, Uploading, MidAnswer, Stalled, kMoments };
const char *const kMomentNames[] = {"right away", "connecting", "uploading", "mid-answer",
  "server stalled"};

struct Watch {
  std::mutex lock;
  std::condition_variable cond;
  bool got_buffer = false;
  std::atomic<guint> errors {0};
  std::string first_error;
};

GstPadProbeReturn on_buffer (GstPad *, GstPadProbeInfo *, gpointer data)
{
  auto *w = static_cast<Watch *> (data);
  std::lock_guard<std::mutex> guard (w->lock);
  w->got_buffer = true;
  w->cond.notify_all ();
  return GST_PAD_PROBE_OK;
}

/* The pipeline's bus is flushed when it goes to NULL, so errors are caught
 * as they are posted. */
GstBusSyncReply on_message (GstBus *, GstMessage *msg, gpointer data)
{
  auto *w = static_cast<Watch *> (data);
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *err = nullptr;
    gchar *debug = nullptr;
    gst_message_parse_error (msg, &err, &debug);
    std::lock_guard<std::mutex> guard (w->lock);
    if (w->errors++ == 0)
      w->first_error = std::string (err->message) + " (" + (debug ? debug : "") + ")";
    g_error_free (err);
    g_free (debug);
  }
  gst_message_unref (msg);  /* dropping is the handler's job */
  return GST_BUS_DROP;
}

void push (GstElement *src, const std::vector<gint16> &pcm, guint64 &frames)
{
  const gsize step = 24000 / 50;  /* 20 ms */
  for (gsize pos = 0; pos < pcm.size (); pos += step) {
    gsize n = MIN (step, pcm.size () - pos);
    GstBuffer *buf = gst_buffer_new_memdup (pcm.data () + pos, n * 2);
    GST_BUFFER_PTS (buf) = gst_util_uint64_scale (frames, GST_SECOND, 24000);
    GST_BUFFER_DURATION (buf) = gst_util_uint64_scale (n, GST_SECOND, 24000);
    frames += n;
    GstFlowReturn ret;
    g_signal_emit_by_name (src, "push-buffer", buf, &ret);
    gst_buffer_unref (buf);
  }
}

GstTracer *leaks_tracer ()
{
  GstTracer *found = nullptr;
  GList *tracers = gst_tracing_get_active_tracers ();
  for (GList *l = tracers; l; l = l->next) {
    if (!found && g_strcmp0 (G_OBJECT_TYPE_NAME (l->data), "GstLeaksTracer") == 0)
      found = GST_TRACER (gst_object_ref (l->data));
  }
  g_list_free_full (tracers, gst_object_unref);
  return found;
}

/* A checkpoint lists every object created and every object destroyed since
 * tracking started, by type and address.  What was created and not
 * destroyed at the same address is still alive: those types, counted. */
std::map<std::string, int> still_alive (const GstStructure *checkpoint)
{
  std::map<std::string, std::pair<std::string, int>> by_address;
  for (auto [field, step] : {std::pair<const char *, int> {"objects-created-list", 1},
           {"objects-removed-list", -1}}) {
    const GValue *list = gst_structure_get_value (checkpoint, field);
    fail_unless (list != nullptr && GST_VALUE_HOLDS_LIST (list), "no %s", field);
    for (guint i = 0; i < gst_value_list_get_size (list); i++) {
      const GstStructure *o = gst_value_get_structure (gst_value_list_get_value (list, i));
      const char *type = gst_structure_get_string (o, "type-name");
      const char *address = gst_structure_get_string (o, "address");
      auto &entry = by_address[std::string (type ? type : "?") + "@" + (address ? address : "?")];
      entry.first = type ? type : "?";
      entry.second += step;
    }
  }
  std::map<std::string, int> alive;
  for (const auto &kv : by_address)
    if (kv.second.second > 0)
      alive[kv.second.first] += kv.second.second;
  return alive;
}

}  // namespace

GST_START_TEST (test_stop_at_random_moments)
{
  emu::Config cfg;
  cfg.default_turn.answer_ms = 2000;
  cfg.audio_delta_ms = 100;
  cfg.pace_ms = 20;  /* the answer streams for ~0.4 s: stops land inside it */
  cfg.record_audio = false;
  emu::Server server (cfg);
  fail_unless (server.start () != 0, "emulator did not start");

  const char *seed_env = g_getenv ("TORTURE_SEED");
  const char *cycles_env = g_getenv ("TORTURE_CYCLES");
  guint32 seed = seed_env ? (guint32) g_ascii_strtoull (seed_env, nullptr, 10) : 20240611;
  guint cycles = cycles_env ? (guint) g_ascii_strtoull (cycles_env, nullptr, 10) : 200;
  g_printerr ("torture: TORTURE_SEED=%u\n", seed);
  GRand *rand = g_rand_new_with_seed (seed);

  Watch watch;
  AppPipeline app = make_app_pipeline ("torture", on_buffer, &watch);
  GstElement *pipeline = app.pipeline, *src = app.src, *rt = app.rt;
  g_object_set (rt, "location", server.url ().c_str (), "api-key", "test-key",
      "max-reconnects", 0, nullptr);
  GstBus *bus = gst_element_get_bus (pipeline);
  gst_bus_set_sync_handler (bus, on_message, &watch, nullptr);
  gst_object_unref (bus);

  GstTracer *tracer = leaks_tracer ();
  std::vector<gint16> speech = turn (24000, 600, 800);
  std::vector<gint16> chunk = tone (24000, 20);
  guint per_moment[kMoments] = {};
  gint64 slowest_stop = 0, started = g_get_monotonic_time ();

  for (guint i = 0; i <= cycles; i++) {
    /* Cycle 0 warms up (lazily created singletons); tracking starts after it. */
    if (i == 1 && tracer) {
      gst_object_unref (gst_system_clock_obtain ());  /* a singleton, kept */
      g_signal_emit_by_name (tracer, "activity-start-tracking");
    }
    /* One in ten: the server stops reading mid-answer, so our close frame
     * goes unanswered and the stop waits out its bound close (500 ms). */
    Moment moment = i == 0 ? MidAnswer
        : g_rand_int_range (rand, 0, 10) == 0 ? Stalled
        : (Moment) g_rand_int_range (rand, 0, Stalled);
    bool live = g_rand_boolean (rand);
    per_moment[moment]++;
    g_object_set (src, "is-live", live, nullptr);
    {
      std::lock_guard<std::mutex> guard (watch.lock);
      watch.got_buffer = false;
    }
    fail_if (gst_element_set_state (pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE,
        "cycle %u: could not start", i);
    guint64 frames = 0;
    switch (moment) {
      case RightAway:
        break;
      case Connecting:
        g_usleep (g_rand_int_range (rand, 0, 3000));
        break;
      case Uploading:
        for (gint k = g_rand_int_range (rand, 5, 50); k > 0; k--)
          push (src, chunk, frames);
        g_usleep (g_rand_int_range (rand, 0, 20000));
        break;
      case MidAnswer:
      case Stalled: {
        push (src, speech, frames);
        std::unique_lock<std::mutex> lock (watch.lock);
        fail_unless (watch.cond.wait_for (lock, std::chrono::seconds (10),
                [&] { return watch.got_buffer; }),
            "cycle %u (%s): no answer within 10 s", i, live ? "live" : "not live");
        break;
      }
      default:
        break;
    }
    if (moment == Stalled) {
      emu::Faults stall;
      stall.stop_reading = true;
      server.set_faults (stall);
      g_usleep (20000);  /* applied on the server thread */
      push (src, chunk, frames);
    }
    gint64 t0 = g_get_monotonic_time ();
    GstStateChangeReturn ret = gst_element_set_state (pipeline, GST_STATE_NULL);
    gint64 took = g_get_monotonic_time () - t0;
    slowest_stop = MAX (slowest_stop, took);
    fail_unless_equals_int (ret, GST_STATE_CHANGE_SUCCESS);
    fail_unless (took < kStopBoundUs, "cycle %u (%s, %s): set_state (NULL) took %" G_GINT64_FORMAT
        " ms (seed %u)", i, kMomentNames[moment], live ? "live" : "not live", took / 1000, seed);
    fail_unless (watch.errors == 0, "cycle %u (%s): error posted: %s (seed %u)", i,
        kMomentNames[moment], watch.first_error.c_str (), seed);
    if (moment == Stalled)
      server.set_faults (emu::Faults ());
  }
  gst_object_unref (pipeline);
  g_rand_free (rand);

  /* Every socket was closed. */
  for (int k = 0; k < 500 && server.sessions_active () > 0; k++)
    g_usleep (10000);
  fail_unless_equals_int (server.sessions_active (), 0);

  g_print ("  %u cycles (seed %u): %u right away, %u connecting, %u uploading, %u mid-answer, "
      "%u server stalled; %u sessions opened; slowest stop %" G_GINT64_FORMAT " ms; %.1f s in "
      "all\n", cycles, seed, per_moment[RightAway], per_moment[Connecting],
      per_moment[Uploading], per_moment[MidAnswer], per_moment[Stalled],
      server.sessions_opened (), slowest_stop / 1000,
      (g_get_monotonic_time () - started) / 1e6);
  server.stop ();

  if (tracer) {
    GstStructure *checkpoint = nullptr;
    g_signal_emit_by_name (tracer, "activity-get-checkpoint", &checkpoint);
    g_signal_emit_by_name (tracer, "activity-stop-tracking");
    fail_unless (checkpoint != nullptr);
    std::map<std::string, int> alive = still_alive (checkpoint);
    gst_structure_free (checkpoint);
    std::string types;
    for (const auto &kv : alive)
      types += " " + kv.first + " x" + std::to_string (kv.second);
    fail_unless (alive.empty (), "objects created during the cycles and still alive:%s",
        types.c_str ());
    gst_object_unref (tracer);
  } else {
    g_print ("  leaks tracer not active (GST_TRACERS=%s): object leak check skipped\n",
        g_getenv ("GST_TRACERS"));
  }
}
GST_END_TEST;

static Suite *torture_suite (void)
{
  Suite *s = suite_create ("torture");
  TCase *tc = tcase_create ("state");
  tcase_set_timeout (tc, 300);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_stop_at_random_moments);
  return s;
}

/* The emulator's SoupServer complains about clients that are gone before it
 * looks at them: that is what this test does, on purpose. */
static void quiet_soup (const gchar *domain, GLogLevelFlags level, const gchar *message,
    gpointer)
{
  if (strstr (message, "could not get remote address"))
    return;
  g_log_default_handler (domain, level, message, nullptr);
}

int main (int argc, char **argv)
{
  g_log_set_handler ("libsoup", G_LOG_LEVEL_WARNING, quiet_soup, nullptr);
  /* Object leak tracking for the checkpoint above (unless the caller chose
   * other tracers). */
  g_setenv ("GST_TRACERS", "leaks", FALSE);
  gst_check_init (&argc, &argv);
  return gst_check_run_suite (torture_suite (), "torture", __FILE__);
}
