/* yrt-bench's shared harness: the utilities (CPU, memory, time,
 * statistics), the options, and the live session every mode but gen-wav and
 * scale --bare builds: appsrc ! yandexrealtime ! sink, with bus book-keeping,
 * and the real-time feeding of its appsrc. */
#include "bench-common.h"

#include <gst/app/gstappsrc.h>

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

/* ---------------------------------------------------------------- utils -- */

void die (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fprintf (stderr, "yrt-bench: ");
  vfprintf (stderr, fmt, ap);
  fprintf (stderr, "\n");
  va_end (ap);
  exit (1);
}

gint64 now_us ()
{
  return g_get_monotonic_time ();
}

/* Sleeps until an absolute g_get_monotonic_time() deadline (same clock). */
void sleep_until_us (gint64 deadline)
{
  struct timespec ts;
  ts.tv_sec = deadline / G_USEC_PER_SEC;
  ts.tv_nsec = (deadline % G_USEC_PER_SEC) * 1000;
  while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

double process_cpu_s ()
{
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
      (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double thread_cpu_s ()
{
  struct timespec ts;
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A field of /proc/<pid>/status in kB ("VmRSS:", "VmHWM:"); -1 if absent. */
long status_kb (const std::string &pid, const char *field)
{
  std::ifstream f ("/proc/" + pid + "/status");
  std::string line;
  size_t n = strlen (field);
  while (std::getline (f, line))
    if (line.compare (0, n, field) == 0)
      return atol (line.c_str () + n);
  return -1;
}

/* utime + stime of another process, in seconds; -1 if unreadable. */
double other_cpu_s (const std::string &pid)
{
  if (pid.empty ())
    return -1;
  std::ifstream f ("/proc/" + pid + "/stat");
  std::string all ((std::istreambuf_iterator<char> (f)), std::istreambuf_iterator<char> ());
  size_t close = all.rfind (')');
  if (close == std::string::npos)
    return -1;
  std::istringstream rest (all.substr (close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  /* After "pid (comm) ": state is field 3; utime 14, stime 15. */
  for (int i = 3; i <= 15 && rest >> field; i++) {
    if (i == 14)
      utime = strtoull (field.c_str (), nullptr, 10);
    if (i == 15)
      stime = strtoull (field.c_str (), nullptr, 10);
  }
  return (double) (utime + stime) / sysconf (_SC_CLK_TCK);
}

Stats stats (std::vector<double> v)
{
  Stats s;
  s.n = v.size ();
  if (v.empty ())
    return s;
  std::sort (v.begin (), v.end ());
  auto at = [&] (double q) {
    size_t i = (size_t) std::ceil (q * v.size ());
    return v[std::min (v.size () - 1, i == 0 ? 0 : i - 1)];
  };
  s.min = v.front ();
  s.p50 = at (0.5);
  s.p90 = at (0.9);
  s.p99 = at (0.99);
  s.max = v.back ();
  return s;
}

/* --------------------------------------------------------------- options -- */

Options parse_options (int argc, char **argv)
{
  Options o;
  for (int i = 2; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&] () -> std::string {
      if (i + 1 >= argc)
        die ("%s needs a value", a.c_str ());
      return argv[++i];
    };
    if (a == "--url") o.url = value ();
    else if (a == "--api-key") o.api_key = value ();
    else if (a == "--emulator-pid") o.emulator_pid = value ();
    else if (a == "--seconds") o.seconds = atof (value ().c_str ());
    else if (a == "--minutes") o.minutes = atof (value ().c_str ());
    else if (a == "--turns") o.turns = atoi (value ().c_str ());
    else if (a == "--sessions") o.sessions = atoi (value ().c_str ());
    else if (a == "--sessions-per-thread") o.sessions_per_thread = atoi (value ().c_str ());
    else if (a == "--bare") o.bare = true;
    else if (a == "--silence-ms") o.silence_ms = atoi (value ().c_str ());
    else if (a == "--iterations") o.iterations = atol (value ().c_str ());
    else if (a.compare (0, 2, "--") == 0) die ("unknown option %s", a.c_str ());
    else o.positional.push_back (a);
  }
  return o;
}

void need_endpoint (const Options &o)
{
  if (o.url.empty () || o.api_key.empty ())
    die ("--url and --api-key are required (run.sh starts the emulator)");
}

/* ----------------------------------------------------------- live session -- */

namespace {

/* Counts an ERROR or WARNING and prints the first three of each kind. */
void report_problem (GstMessage *msg, std::atomic<guint> &count)
{
  GError *err = nullptr;
  gchar *dbg = nullptr;
  bool error = GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR;
  if (error)
    gst_message_parse_error (msg, &err, &dbg);
  else
    gst_message_parse_warning (msg, &err, &dbg);
  if (count++ < 3)
    fprintf (stderr, "%s from %s: %s (%s)\n", error ? "ERROR" : "WARNING",
        GST_OBJECT_NAME (msg->src), err->message, dbg ? dbg : "");
  g_clear_error (&err);
  g_free (dbg);
}

}  // namespace

GstBusSyncReply on_bus (GstBus *, GstMessage *msg, gpointer data)
{
  auto *s = static_cast<Session *> (data);
  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ERROR:
      report_problem (msg, s->errors);
      break;
    case GST_MESSAGE_WARNING:
      report_problem (msg, s->warnings);
      break;
    case GST_MESSAGE_ELEMENT: {
      const GstStructure *st = gst_message_get_structure (msg);
      if (gst_structure_has_name (st, "yandexrealtime/session")) {
        s->session_created_us = now_us ();
        s->session_created = true;
      } else if (gst_structure_has_name (st, "yandexrealtime/response-done")) {
        s->responses_done++;
      } else if (gst_structure_has_name (st, "yandexrealtime/interrupted")) {
        s->interrupted++;
      }
      break;
    }
    default:
      break;
  }
  return GST_BUS_DROP;
}

std::unique_ptr<Session> make_session (const Options &o, bool live, SinkKind sink_kind,
    const char *name)
{
  auto s = std::make_unique<Session> ();
  s->pipeline = gst_pipeline_new (name);
  s->src = gst_element_factory_make ("appsrc", nullptr);
  s->element = gst_element_factory_make ("yandexrealtime", nullptr);
  const char *sink_factory = sink_kind == SinkKind::AppSink ? "appsink" : "fakesink";
  s->sink = gst_element_factory_make (sink_factory, nullptr);
  if (!s->src || !s->element || !s->sink)
    die ("missing element (run it through tests/bench/run.sh, or with GST_PLUGIN_PATH=<build>/gst)");
  GstCaps *caps = gst_caps_new_simple ("audio/x-raw", "format", G_TYPE_STRING, "S16LE",
      "rate", G_TYPE_INT, (gint) kInRate, "channels", G_TYPE_INT, 1,
      "layout", G_TYPE_STRING, "interleaved", nullptr);
  g_object_set (s->src, "caps", caps, "format", GST_FORMAT_TIME, "is-live", live,
      "do-timestamp", live, "block", !live, "max-bytes", (guint64) (live ? 200000 : 96000),
      nullptr);
  gst_caps_unref (caps);
  g_object_set (s->element, "location", o.url.c_str (), "api-key", o.api_key.c_str (),
      nullptr);
  if (o.sessions_per_thread > 0)  /* an element built before the property has none */
    g_object_set (s->element, "sessions-per-thread", (guint) o.sessions_per_thread, nullptr);
  g_object_set (s->sink, "sync", sink_kind == SinkKind::FakeSinkSync, nullptr);
  /* No queue before the sink, so no room for basesink's default 20 ms. */
  if (live)
    g_object_set (s->sink, "processing-deadline", (guint64) 0, nullptr);
  if (sink_kind == SinkKind::AppSink)
    g_object_set (s->sink, "emit-signals", FALSE, "drop", TRUE, "max-buffers", 8u, nullptr);
  gst_bin_add_many (GST_BIN (s->pipeline), s->src, s->element, s->sink, nullptr);
  if (!gst_element_link_many (s->src, s->element, s->sink, nullptr))
    die ("cannot link appsrc ! yandexrealtime ! %s", sink_factory);
  GstBus *bus = gst_element_get_bus (s->pipeline);
  gst_bus_set_sync_handler (bus, on_bus, s.get (), nullptr);
  gst_object_unref (bus);
  return s;
}

bool wait_for (const std::function<bool ()> &cond, double timeout_s)
{
  gint64 end = now_us () + (gint64) (timeout_s * G_USEC_PER_SEC);
  while (!cond ()) {
    if (now_us () > end)
      return false;
    g_usleep (2000);
  }
  return true;
}

void start (Session &s)
{
  if (gst_element_set_state (s.pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
    die ("cannot start the pipeline");
}

/* Pushes `pcm` (looped) into a live appsrc in real time, one chunk-sized
 * buffer per chunk period, each pushed when its last sample would have been
 * captured.  `on_pushed(buffer index, time pushed)` runs after each push. */
void push_live (Session &s, const std::vector<gint16> &pcm, double seconds,
    const std::function<void (guint64, gint64)> &on_pushed)
{
  const guint64 count = (guint64) (seconds * 1000 / kChunkMs);
  const gsize period = pcm.size () / kChunkSamples;
  const gint64 t0 = now_us ();
  for (guint64 k = 0; k < count; k++) {
    sleep_until_us (t0 + (gint64) (k + 1) * kChunkMs * 1000);
    gsize first = (k % period) * kChunkSamples;
    if (gst_app_src_push_buffer (GST_APP_SRC (s.src), wrap (pcm, first, kChunkSamples)) !=
        GST_FLOW_OK)
      die ("appsrc refused a buffer");
    on_pushed (k, now_us ());
  }
}
