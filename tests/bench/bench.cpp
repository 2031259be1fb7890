/* yrt-bench: the measuring programs behind tests/bench/run.sh.
 *
 *   yrt-bench gen-wav FILE MINUTES
 *   yrt-bench latency --url U --api-key K [--seconds S]
 *   yrt-bench ttfa    --url U --api-key K [--turns N] [--silence-ms MS]
 *   yrt-bench memory  --url U --api-key K [--minutes M] [--emulator-pid P]
 *   yrt-bench scale   --url U --api-key K --sessions N [--seconds S] [--emulator-pid P]
 *                     [--sessions-per-thread M] [--bare]
 *   yrt-bench micro   [--seconds S | --iterations N]    (micro.cpp: no emulator)
 *   yrt-bench verify                                    (micro.cpp: no emulator)
 *
 * Every mode talks to an emulator that runs in another process (run.sh
 * starts it) and ends with one line
 *   RESULT <mode> key=value ...
 * that run.sh collects.  Human-readable detail goes before it.  Exit status
 * 77 means "skipped" (e.g. the element has no trace points yet). */
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/base/gstbasesink.h>
#include <gst/gst.h>

#include "micro.h"

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kSkip = 77;
constexpr guint kInRate = 24000;    /* what the live benches send: the element passes it through */
constexpr guint kChunkMs = 40;      /* the element's default chunk-ms */
constexpr guint kChunkSamples = kInRate * kChunkMs / 1000;

/* ---------------------------------------------------------------- utils -- */

[[noreturn]] void die (const char *fmt, ...) G_GNUC_PRINTF (1, 2);
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

struct Stats {
  double p50 = 0, p90 = 0, p99 = 0, max = 0, min = 0;
  size_t n = 0;
};

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

struct Options {
  std::string url;
  std::string api_key;
  std::string emulator_pid;
  double seconds = 0;
  double minutes = 0;
  int turns = 0;
  int sessions = 0;
  int sessions_per_thread = 0;  /* 0: the element's default */
  bool bare = false;             /* scale: the harness alone, no element */
  int silence_ms = 400;
  long iterations = 0;
  std::vector<std::string> positional;
};

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

/* ---------------------------------------------------------------- signal -- */

/* A speech-like voice: a harmonic complex (10 partials, 1/k) whose
 * fundamental glides around 140 Hz, under a syllable-rate envelope that never
 * falls below -8 dB of its peak, so that every 10 ms frame of a voiced
 * stretch is well above the VAD threshold (-35 dBFS) and every frame of a
 * pause (digital silence) well below it.  Peak about -10 dBFS. */
class Voice {
 public:
  explicit Voice (guint rate) : rate_ (rate) {}
  double next ()
  {
    double t = (double) n_++ / rate_;
    double f0 = 140.0 + 30.0 * std::sin (2 * G_PI * 0.7 * t) + 12.0 * std::sin (2 * G_PI * 3.1 * t);
    phase_ += 2 * G_PI * f0 / rate_;
    if (phase_ > 2 * G_PI)
      phase_ -= 2 * G_PI;
    double s = 0;
    for (int k = 1; k <= 10; k++)
      s += std::sin (k * phase_) / k;
    double env = 0.4 + 0.6 * std::fabs (std::sin (2 * G_PI * 2.2 * t));
    return 0.3 * env * s / 1.85;
  }

 private:
  guint rate_;
  guint64 n_ = 0;
  double phase_ = 0;
};

gint16 to_s16 (double v)
{
  return (gint16) std::lround (std::clamp (v, -1.0, 1.0) * 32767.0);
}

/* `voiced_ms` of voice then `silence_ms` of digital silence, mono S16 at
 * kInRate: one period of the live benches' input. */
std::vector<gint16> talk_pattern (guint voiced_ms, guint silence_ms)
{
  Voice voice (kInRate);
  std::vector<gint16> pcm ((gsize) kInRate * (voiced_ms + silence_ms) / 1000, 0);
  gsize voiced = (gsize) kInRate * voiced_ms / 1000;
  for (gsize i = 0; i < voiced; i++)
    pcm[i] = to_s16 (voice.next ());
  return pcm;
}

/* A buffer that points into `pcm` (which outlives the pipeline): no copy. */
GstBuffer *wrap (const std::vector<gint16> &pcm, gsize first_sample, gsize samples)
{
  auto *data = const_cast<gint16 *> (pcm.data () + first_sample);
  return gst_buffer_new_wrapped_full (GST_MEMORY_FLAG_READONLY, data,
      samples * 2, 0, samples * 2, nullptr, nullptr);
}

/* ---------------------------------------------------------------- gen-wav -- */

void put_le (std::FILE *f, guint32 v, int bytes)
{
  for (int i = 0; i < bytes; i++)
    fputc ((v >> (8 * i)) & 0xff, f);
}

/* 44.1 kHz stereo S16LE: voiced stretches of 1.5-4.5 s and pauses of
 * 0.3-1.5 s (deterministic), a -66 dBFS noise floor throughout, the right
 * channel a little quieter than the left. */
int cmd_gen_wav (const Options &o)
{
  if (o.positional.size () != 2)
    die ("usage: yrt-bench gen-wav FILE MINUTES");
  const std::string path = o.positional[0];
  const double minutes = atof (o.positional[1].c_str ());
  const guint rate = 44100, channels = 2;
  const guint64 frames = (guint64) std::llround (minutes * 60 * rate);
  std::FILE *f = fopen (path.c_str (), "wb");
  if (!f)
    die ("cannot write %s", path.c_str ());
  const guint32 data_bytes = (guint32) (frames * channels * 2);
  fwrite ("RIFF", 1, 4, f);
  put_le (f, 36 + data_bytes, 4);
  fwrite ("WAVEfmt ", 1, 8, f);
  put_le (f, 16, 4);
  put_le (f, 1, 2);  /* PCM */
  put_le (f, channels, 2);
  put_le (f, rate, 4);
  put_le (f, rate * channels * 2, 4);
  put_le (f, channels * 2, 2);
  put_le (f, 16, 2);
  fwrite ("data", 1, 4, f);
  put_le (f, data_bytes, 4);

  Voice voice (rate);
  guint32 rng = 12345;
  auto rand01 = [&rng] {
    rng = rng * 1664525u + 1013904223u;
    return (rng >> 8) / 16777216.0;
  };
  std::vector<gint16> block;
  block.reserve (8192 * channels);
  bool voiced = true;
  guint64 left = (guint64) ((1.5 + 3.0 * rand01 ()) * rate);
  for (guint64 i = 0; i < frames; i++) {
    if (left == 0) {
      voiced = !voiced;
      left = (guint64) ((voiced ? 1.5 + 3.0 * rand01 () : 0.3 + 1.2 * rand01 ()) * rate);
    }
    left--;
    double v = voiced ? voice.next () : 0.0;
    double noise = (rand01 () - 0.5) * 0.001;
    block.push_back (to_s16 (v + noise));
    block.push_back (to_s16 (0.9 * v + noise));
    if (block.size () >= 8192 * channels) {
      fwrite (block.data (), 2, block.size (), f);
      block.clear ();
    }
  }
  fwrite (block.data (), 2, block.size (), f);
  if (fclose (f) != 0)
    die ("cannot write %s", path.c_str ());
  printf ("wrote %s: %.1f min, %u Hz, %u channels\n", path.c_str (), minutes, rate, channels);
  return 0;
}

/* ----------------------------------------------------------- live session -- */

/* appsrc (S16LE mono 24 kHz) ! yandexrealtime ! sink, with bus book-keeping. */
struct Session {
  GstElement *pipeline = nullptr;
  GstElement *src = nullptr;
  GstElement *element = nullptr;
  GstElement *sink = nullptr;
  std::atomic<bool> session_created {false};
  std::atomic<guint> responses_done {0};
  std::atomic<guint> interrupted {0};
  std::atomic<guint> errors {0};
  std::atomic<guint> warnings {0};
  std::atomic<gint64> session_created_us {0};

  ~Session ()
  {
    if (pipeline) {
      gst_element_set_state (pipeline, GST_STATE_NULL);
      gst_object_unref (pipeline);
    }
  }
};

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

enum class SinkKind { AppSink, FakeSinkSync, FakeSinkNoSync };

std::unique_ptr<Session> make_session (const Options &o, bool live, SinkKind sink_kind,
    const char *name = "bench")
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

/* ----------------------------------------------------------------- latency -- */

/* The element's trace points (see docs/performance.md): lines
 *   "<point> seq=<n> t=<g_get_monotonic_time() µs>"
 * in the debug category yandexrealtime-trace at TRACE level. */
/* Pulls and drops an appsink's samples on a thread of its own, so that its
 * queue never fills; until stop() or destruction. */
class SinkDrain {
 public:
  explicit SinkDrain (GstElement *sink)
      : thread_ ([this, sink] {
          while (!done_) {
            GstSample *sample = gst_app_sink_try_pull_sample (GST_APP_SINK (sink), 50 * GST_MSECOND);
            if (sample)
              gst_sample_unref (sample);
          }
        })
  {
  }
  ~SinkDrain () { stop (); }
  void stop ()
  {
    done_ = true;
    if (thread_.joinable ())
      thread_.join ();
  }

 private:
  std::atomic<bool> done_ {false};  /* before thread_: set when it starts */
  std::thread thread_;
};

struct TracePoint {
  char point[16];
  guint64 seq;
  gint64 t;
};

GstDebugCategory *g_trace_cat = nullptr;
std::mutex g_trace_lock;
std::vector<TracePoint> g_trace;

void trace_log (GstDebugCategory *category, GstDebugLevel level, const gchar *file,
    const gchar *function, gint line, GObject *object, GstDebugMessage *message,
    gpointer)
{
  if (category != g_trace_cat || !g_trace_cat) {
    gst_debug_log_default (category, level, file, function, line, object, message, nullptr);
    return;
  }
  TracePoint p {};
  unsigned long long seq = 0;
  long long t = 0;
  if (sscanf (gst_debug_message_get (message), "%15s seq=%llu t=%lld", p.point, &seq, &t) != 3)
    return;
  p.seq = seq;
  p.t = t;
  std::lock_guard<std::mutex> guard (g_trace_lock);
  g_trace.push_back (p);
}

/* Pairs `in` and `out` points by seq; µs from in to out, for ins at or
 * after `from_us`. */
std::vector<double> pair_up (const char *in, const char *out, gint64 from_us)
{
  std::map<guint64, gint64> ins;
  std::vector<double> d;
  for (const TracePoint &p : g_trace)
    if (strcmp (p.point, in) == 0 && p.t >= from_us)
      ins.emplace (p.seq, p.t);
  for (const TracePoint &p : g_trace) {
    if (strcmp (p.point, out) != 0)
      continue;
    auto it = ins.find (p.seq);
    if (it != ins.end ())
      d.push_back ((double) (p.t - it->second));
  }
  return d;
}

/* Routes the trace category to trace_log() (before the element exists). */
void capture_trace ()
{
  gst_debug_set_active (TRUE);
  gst_debug_set_threshold_for_name ("yandexrealtime-trace", GST_LEVEL_TRACE);
  gst_debug_remove_log_function (gst_debug_log_default);
  gst_debug_add_log_function (trace_log, nullptr, nullptr);
}

/* After an element exists: does it have trace points? */
bool find_trace_category ()
{
  GSList *all = gst_debug_get_all_categories ();
  for (GSList *l = all; l; l = l->next)
    if (strcmp (gst_debug_category_get_name ((GstDebugCategory *) l->data),
            "yandexrealtime-trace") == 0)
      g_trace_cat = (GstDebugCategory *) l->data;
  g_slist_free (all);
  return g_trace_cat != nullptr;
}

/* The time of trace point `point` with `seq`, or 0. */
gint64 trace_time (const char *point, guint64 seq)
{
  for (const TracePoint &p : g_trace)
    if (p.seq == seq && strcmp (p.point, point) == 0)
      return p.t;
  return 0;
}

/* The first trace point `point` at or after `t`. */
const TracePoint *trace_after (const char *point, gint64 t)
{
  const TracePoint *best = nullptr;
  for (const TracePoint &p : g_trace)
    if (strcmp (p.point, point) == 0 && p.t >= t && (!best || p.t < best->t))
      best = &p;
  return best;
}

int cmd_latency (const Options &o)
{
  need_endpoint (o);
  const double seconds = o.seconds > 0 ? o.seconds : 60;
  capture_trace ();

  /* appsink sync=false: what is measured is the element, not the playout
   * clock (a synchronised sink would hold each buffer until its time). */
  auto s = make_session (o, true, SinkKind::AppSink);
  if (!find_trace_category ()) {
    printf ("trace points missing: the element has no yandexrealtime-trace debug category "
        "(see docs/performance.md, \"Trace points\")\n");
    printf ("RESULT latency status=missing\n");
    return kSkip;
  }
  start (*s);
  if (!wait_for ([&] { return s->session_created.load (); }, 10))
    die ("no session within 10 s");
  /* Frames held until the session exists wait by design; measure after. */
  const gint64 from = now_us () + 500000;
  auto pcm = talk_pattern (2000, 4000);
  SinkDrain drain (s->sink);
  push_live (*s, pcm, seconds, [] (guint64, gint64) {});
  g_usleep (3 * G_USEC_PER_SEC);  /* the last answer */
  drain.stop ();
  gst_element_set_state (s->pipeline, GST_STATE_NULL);

  std::lock_guard<std::mutex> guard (g_trace_lock);
  std::map<std::string, size_t> seen;
  for (const TracePoint &p : g_trace)
    seen[p.point]++;
  std::vector<std::string> missing;
  for (const char *name : {"uplink-in", "uplink-out", "downlink-in", "downlink-out"})
    if (!seen[name])
      missing.push_back (name);
  if (!missing.empty ()) {
    std::string list;
    for (auto &m : missing)
      list += (list.empty () ? "" : ",") + m;
    printf ("trace points missing: no %s lines in yandexrealtime-trace\n", list.c_str ());
    printf ("RESULT latency status=missing missing=%s\n", list.c_str ());
    return kSkip;
  }
  Stats up = stats (pair_up ("uplink-in", "uplink-out", from));
  Stats down = stats (pair_up ("downlink-in", "downlink-out", from));
  printf ("uplink   (chain -> socket): n=%zu p50=%.0f us p99=%.0f us max=%.0f us\n",
      up.n, up.p50, up.p99, up.max);
  printf ("downlink (frame -> src push): n=%zu p50=%.0f us p99=%.0f us max=%.0f us\n",
      down.n, down.p50, down.p99, down.max);
  printf ("RESULT latency status=ok seconds=%.0f up_n=%zu up_p50_us=%.0f up_p99_us=%.0f "
      "up_max_us=%.0f down_n=%zu down_p50_us=%.0f down_p99_us=%.0f down_max_us=%.0f "
      "responses=%u interrupted=%u errors=%u\n",
      seconds, up.n, up.p50, up.p99, up.max, down.n, down.p50, down.p99, down.max,
      s->responses_done.load (), s->interrupted.load (), s->errors.load ());
  return s->errors ? 1 : 0;
}

/* -------------------------------------------------------------------- ttfa -- */

/* Last voiced buffer pushed -> first answer buffer at the appsink. */
int cmd_ttfa (const Options &o)
{
  need_endpoint (o);
  const int turns = o.turns > 0 ? o.turns : 10;
  const guint voiced_ms = 1200, silence_ms = 2800;  /* both multiples of kChunkMs */
  capture_trace ();  /* used when the element has trace points, to split the time */
  auto s = make_session (o, true, SinkKind::AppSink);
  const bool traced = find_trace_category ();
  if (!traced)
    gst_debug_unset_threshold_for_name ("yandexrealtime-trace");
  g_object_set (s->element, "silence-duration-ms", (guint) o.silence_ms, nullptr);

  std::atomic<gint64> waiting_since {0};  /* last voiced push, 0 = not waiting */
  std::mutex lock;
  std::vector<double> ttfa_ms;
  std::vector<gint64> first_at;          /* when each first answer buffer arrived */
  GstPad *pad = gst_element_get_static_pad (s->sink, "sink");
  struct ProbeData {
    std::atomic<gint64> *waiting;
    std::mutex *lock;
    std::vector<double> *out;
    std::vector<gint64> *at;
  } pd {&waiting_since, &lock, &ttfa_ms, &first_at};
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER,
      [] (GstPad *, GstPadProbeInfo *, gpointer data) -> GstPadProbeReturn {
        gint64 t = now_us ();
        auto *p = static_cast<ProbeData *> (data);
        gint64 since = p->waiting->exchange (0);
        if (since) {
          std::lock_guard<std::mutex> guard (*p->lock);
          p->out->push_back ((t - since) / 1000.0);
          p->at->push_back (t);
        }
        return GST_PAD_PROBE_OK;
      }, &pd, nullptr);
  gst_object_unref (pad);

  start (*s);
  if (!wait_for ([&] { return s->session_created.load (); }, 10))
    die ("no session within 10 s");
  SinkDrain drain (s->sink);
  /* One turn of silence first: the session settles, the VAD clock starts. */
  auto pcm = talk_pattern (voiced_ms, silence_ms);
  std::vector<gint16> quiet (pcm.size (), 0);
  push_live (*s, quiet, 1.0, [] (guint64, gint64) {});
  const guint64 last_voiced = voiced_ms / kChunkMs - 1;
  const gsize period = pcm.size () / kChunkSamples;
  const guint64 quiet_buffers = 1000 / kChunkMs;
  guint missed = 0;
  /* Input buffer (= uplink-in seq) that completes each turn's VAD window. */
  std::vector<guint64> closing;
  push_live (*s, pcm, turns * (voiced_ms + silence_ms) / 1000.0, [&] (guint64 k, gint64 t) {
    if (k % period == 0 && waiting_since.exchange (0))
      missed++;  /* no answer within the turn */
    if (k % period == last_voiced) {
      waiting_since = t;
      closing.push_back (quiet_buffers + k + o.silence_ms / kChunkMs);
    }
  });
  g_usleep (G_USEC_PER_SEC / 2);
  drain.stop ();
  gst_element_set_state (s->pipeline, GST_STATE_NULL);

  std::vector<double> overhead;
  for (double v : ttfa_ms)
    overhead.push_back (v - o.silence_ms);
  Stats t = stats (ttfa_ms), over = stats (overhead);
  for (size_t i = 0; i < ttfa_ms.size (); i++)
    printf ("turn %zu: %.2f ms (VAD window %d ms + %.2f ms)\n", i + 1, ttfa_ms[i],
        o.silence_ms, overhead[i]);
  /* With trace points, where the time over the window goes: the closing
   * chunk through the element, the emulator and loopback until the first
   * delta is back, that delta through the element, then to the appsink. */
  std::string split = " split=none";
  if (traced && g_trace.size () > 0 && first_at.size () == closing.size ()) {
    std::lock_guard<std::mutex> guard (g_trace_lock);
    std::vector<double> up, emu, down, app;
    for (size_t i = 0; i < closing.size (); i++) {
      gint64 in = trace_time ("uplink-in", closing[i]);
      gint64 out = trace_time ("uplink-out", closing[i]);
      const TracePoint *din = out ? trace_after ("downlink-in", out) : nullptr;
      gint64 dout = din ? trace_time ("downlink-out", din->seq) : 0;
      if (!in || !out || !din || !dout)
        continue;
      up.push_back ((out - in) / 1000.0);
      emu.push_back ((din->t - out) / 1000.0);
      down.push_back ((dout - din->t) / 1000.0);
      app.push_back ((first_at[i] - dout) / 1000.0);
    }
    Stats a = stats (up), b = stats (emu), c = stats (down), d = stats (app);
    printf ("split (p50): element uplink %.3f ms, emulator + loopback %.3f ms, element downlink "
        "%.3f ms, src push -> appsink %.3f ms (%zu turns)\n", a.p50, b.p50, c.p50, d.p50, a.n);
    char buf[256];
    snprintf (buf, sizeof buf, " split_up_ms=%.3f split_emu_ms=%.3f split_down_ms=%.3f "
        "split_app_ms=%.3f", a.p50, b.p50, c.p50, d.p50);
    split = buf;
  }
  printf ("RESULT ttfa turns=%zu missed=%u silence_ms=%d ttfa_p50_ms=%.2f ttfa_max_ms=%.2f "
      "over_p50_ms=%.2f over_p90_ms=%.2f over_max_ms=%.2f over_min_ms=%.2f responses=%u "
      "interrupted=%u errors=%u%s\n",
      t.n, missed, o.silence_ms, t.p50, t.max, over.p50, over.p90, over.max, over.min,
      s->responses_done.load (), s->interrupted.load (), s->errors.load (), split.c_str ());
  return s->errors || t.n == 0 ? 1 : 0;
}

/* ------------------------------------------------------------------ memory -- */

/* One non-live session fed as fast as possible: 8 s of voice, 2 s of
 * silence, repeated for --minutes of stream time.  VmRSS is sampled as the
 * stream time of the buffers entering the element crosses each minute. */
int cmd_memory (const Options &o)
{
  need_endpoint (o);
  const double minutes = o.minutes > 0 ? o.minutes : 60;
  auto s = make_session (o, false, SinkKind::FakeSinkNoSync);
  auto pcm = talk_pattern (8000, 2000);
  const gsize buffer_samples = kInRate / 10;  /* 100 ms */
  const guint64 total = (guint64) (minutes * 60 * 10);

  struct Probe {
    std::mutex lock;
    std::vector<long> rss_kb;  /* index = stream minute */
    std::vector<double> at_s;  /* wall seconds since start */
    gint64 t0 = 0;
  } probe;
  probe.rss_kb.assign ((size_t) minutes + 1, -1);
  probe.at_s.assign ((size_t) minutes + 1, 0);
  GstPad *pad = gst_element_get_static_pad (s->element, "sink");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER,
      [] (GstPad *, GstPadProbeInfo *info, gpointer data) -> GstPadProbeReturn {
        auto *p = static_cast<Probe *> (data);
        GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER (info);
        /* Minute m is sampled as the buffer that ends it comes in (minute 0
         * at the first buffer). */
        GstClockTime pts = GST_BUFFER_PTS (b), end = pts + GST_BUFFER_DURATION (b);
        size_t minute = pts == 0 ? 0 : (size_t) (end / (60 * GST_SECOND));
        if ((pts == 0 || end % (60 * GST_SECOND) == 0) && minute < p->rss_kb.size ()) {
          p->rss_kb[minute] = status_kb ("self", "VmRSS:");
          p->at_s[minute] = (now_us () - p->t0) / 1e6;
        }
        return GST_PAD_PROBE_OK;
      }, &probe, nullptr);
  gst_object_unref (pad);
  /* The answers: counted at the sink. */
  std::atomic<guint64> out_bytes {0};
  pad = gst_element_get_static_pad (s->sink, "sink");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER,
      [] (GstPad *, GstPadProbeInfo *info, gpointer data) -> GstPadProbeReturn {
        *static_cast<std::atomic<guint64> *> (data) +=
            gst_buffer_get_size (GST_PAD_PROBE_INFO_BUFFER (info));
        return GST_PAD_PROBE_OK;
      }, &out_bytes, nullptr);
  gst_object_unref (pad);

  const double emu0 = other_cpu_s (o.emulator_pid);
  const double cpu0 = process_cpu_s ();
  probe.t0 = now_us ();
  start (*s);
  const gsize period = pcm.size () / buffer_samples;
  for (guint64 k = 0; k < total; k++) {
    GstBuffer *b = wrap (pcm, (k % period) * buffer_samples, buffer_samples);
    GST_BUFFER_PTS (b) = k * 100 * GST_MSECOND;
    GST_BUFFER_DURATION (b) = 100 * GST_MSECOND;
    if (gst_app_src_push_buffer (GST_APP_SRC (s->src), b) != GST_FLOW_OK)
      die ("appsrc refused a buffer at %.1f min", k / 600.0);
  }
  gst_app_src_end_of_stream (GST_APP_SRC (s->src));
  const double pushed_s = (now_us () - probe.t0) / 1e6;
  /* EOS reaches the sink once every answer is out. */
  bool eos = wait_for ([&] {
    GstPad *sp = gst_element_get_static_pad (s->sink, "sink");
    bool e = GST_PAD_IS_EOS (sp);
    gst_object_unref (sp);
    return e;
  }, 600);
  const double drained_s = (now_us () - probe.t0) / 1e6;
  const double cpu = process_cpu_s () - cpu0;
  const double emu = emu0 >= 0 ? other_cpu_s (o.emulator_pid) - emu0 : -1;
  const long rss_end = status_kb ("self", "VmRSS:");
  const long hwm = status_kb ("self", "VmHWM:");
  const long emu_rss = o.emulator_pid.empty () ? -1 : status_kb (o.emulator_pid, "VmRSS:");
  gst_element_set_state (s->pipeline, GST_STATE_NULL);

  for (size_t m = 0; m < probe.rss_kb.size (); m++)
    if (m % 5 == 0 || m + 1 == probe.rss_kb.size ())
      printf ("stream minute %3zu (wall %6.2f s): VmRSS %ld kB\n", m, probe.at_s[m],
          probe.rss_kb[m]);
  const size_t last = probe.rss_kb.size () - 1;
  const long r5 = probe.rss_kb[std::min<size_t> (5, last)], rend = probe.rss_kb[last];
  const double answers_s = out_bytes / 2.0 / 44100;
  printf ("RESULT memory minutes=%.0f pushed_s=%.2f drained_s=%.2f eos=%d rss5_kb=%ld "
      "rss_last_kb=%ld growth_kb=%ld rss_after_kb=%ld peak_kb=%ld answers_s=%.1f "
      "cpu_s=%.2f emu_cpu_s=%.2f emu_rss_kb=%ld\n",
      minutes, pushed_s, drained_s, eos ? 1 : 0, r5, rend, rend - r5, rss_end, hwm,
      answers_s, cpu, emu, emu_rss);
  return eos ? 0 : 1;
}

/* ------------------------------------------------------------------- scale -- */

/* N live sessions in this process, each appsrc ! yandexrealtime ! fakesink
 * sync=true.  One thread feeds every appsrc in real time (1.5 s of voice and
 * 3.5 s of silence, phases staggered).  An output buffer is late when it
 * reaches its sink after its running time plus the sink's latency. */
struct ScaleSink {
  std::atomic<guint64> buffers {0};
  std::atomic<guint64> late {0};
  std::atomic<guint64> samples {0};
  std::atomic<gint64> worst_late_us {G_MININT64};  /* max (arrival - deadline) */
  GstElement *sink = nullptr;
};

GstPadProbeReturn scale_probe (GstPad *, GstPadProbeInfo *info, gpointer data)
{
  auto *k = static_cast<ScaleSink *> (data);
  GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER (info);
  GstElement *sink = k->sink;
  GstClock *clock = gst_element_get_clock (sink);
  k->buffers++;
  k->samples += gst_buffer_get_size (b) / 2;
  if (!clock || !GST_BUFFER_PTS_IS_VALID (b)) {
    if (clock)
      gst_object_unref (clock);
    return GST_PAD_PROBE_OK;
  }
  GstClockTime now = gst_clock_get_time (clock);
  gst_object_unref (clock);
  GstClockTime base = gst_element_get_base_time (sink);
  GstClockTime latency = gst_base_sink_get_latency (GST_BASE_SINK (sink));
  gint64 lateness = (gint64) (now - base) - (gint64) (GST_BUFFER_PTS (b) + latency);
  if (lateness > 0)
    k->late++;
  gint64 us = lateness / 1000, prev = k->worst_late_us.load ();
  while (us > prev && !k->worst_late_us.compare_exchange_weak (prev, us)) {
  }
  return GST_PAD_PROBE_OK;
}

/* --bare: the harness alone, appsrc ! fakesink sync=false with the same
 * feeder: what the feeder and the sources' own threads cost, so that the
 * element's share of a scale run can be told from it. */
std::unique_ptr<Session> make_bare_session ()
{
  auto s = std::make_unique<Session> ();
  s->pipeline = gst_pipeline_new ("bare");
  s->src = gst_element_factory_make ("appsrc", nullptr);
  s->sink = gst_element_factory_make ("fakesink", nullptr);
  GstCaps *caps = gst_caps_new_simple ("audio/x-raw", "format", G_TYPE_STRING, "S16LE",
      "rate", G_TYPE_INT, (gint) kInRate, "channels", G_TYPE_INT, 1,
      "layout", G_TYPE_STRING, "interleaved", nullptr);
  g_object_set (s->src, "caps", caps, "format", GST_FORMAT_TIME, "is-live", TRUE,
      "do-timestamp", TRUE, "max-bytes", (guint64) 200000, nullptr);
  gst_caps_unref (caps);
  g_object_set (s->sink, "sync", FALSE, nullptr);
  gst_bin_add_many (GST_BIN (s->pipeline), s->src, s->sink, nullptr);
  if (!gst_element_link (s->src, s->sink))
    die ("cannot link appsrc ! fakesink");
  GstBus *bus = gst_element_get_bus (s->pipeline);
  gst_bus_set_sync_handler (bus, on_bus, s.get (), nullptr);
  gst_object_unref (bus);
  s->session_created = true;
  return s;
}

int cmd_scale (const Options &o)
{
  need_endpoint (o);
  const int n = o.sessions > 0 ? o.sessions : 10;
  const double seconds = o.seconds > 0 ? o.seconds : 30;
  const double warmup = 6;
  const guint voiced_ms = 1520, silence_ms = 3480;  /* 5 s, multiples of kChunkMs */
  auto pcm = talk_pattern (voiced_ms, silence_ms);
  const gsize period = pcm.size () / kChunkSamples;

  std::vector<std::unique_ptr<Session>> sessions;
  std::vector<std::unique_ptr<ScaleSink>> sinks;
  const gint64 t_setup = now_us ();
  for (int i = 0; i < n; i++) {
    auto s = o.bare ? make_bare_session () : make_session (o, true, SinkKind::FakeSinkSync);
    auto k = std::make_unique<ScaleSink> ();
    k->sink = s->sink;
    GstPad *pad = gst_element_get_static_pad (s->sink, "sink");
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, scale_probe, k.get (), nullptr);
    gst_object_unref (pad);
    start (*s);
    sessions.push_back (std::move (s));
    sinks.push_back (std::move (k));
  }
  if (!wait_for ([&] {
        for (auto &s : sessions)
          if (!s->session_created)
            return false;
        return true;
      }, 60))
    die ("not every session was created within 60 s");
  const double setup_s = (now_us () - t_setup) / 1e6;

  /* The feeder. */
  const guint64 ticks = (guint64) ((warmup + seconds + 4) * 1000 / kChunkMs);
  const guint64 window_first = (guint64) (warmup * 1000 / kChunkMs);
  const guint64 window_last = (guint64) ((warmup + seconds) * 1000 / kChunkMs);
  double cpu0 = 0, cpu1 = 0, emu0 = 0, emu1 = 0, feeder0 = 0, feeder1 = 0;
  gint64 wall0 = 0, wall1 = 0;
  std::vector<guint64> buffers0 (n), late0 (n), samples0 (n);
  std::vector<guint> responses0 (n);
  guint64 feeder_late_ticks = 0;
  guint64 max_level = 0;
  gint64 worst_tick_lag_us = 0;
  auto snapshot = [&] (std::vector<guint64> &b, std::vector<guint64> &l,
                      std::vector<guint64> &sm, std::vector<guint> &r) {
    for (int i = 0; i < n; i++) {
      b[i] = sinks[i]->buffers;
      l[i] = sinks[i]->late;
      sm[i] = sinks[i]->samples;
      r[i] = sessions[i]->responses_done;
    }
  };
  std::vector<guint64> buffers1 (n), late1 (n), samples1 (n);
  std::vector<guint> responses1 (n);
  const gint64 t0 = now_us ();
  for (guint64 k = 0; k < ticks; k++) {
    const gint64 deadline = t0 + (gint64) (k + 1) * kChunkMs * 1000;
    sleep_until_us (deadline);
    gint64 lag = now_us () - deadline;
    if (k == window_first) {
      cpu0 = process_cpu_s ();
      emu0 = other_cpu_s (o.emulator_pid);
      feeder0 = thread_cpu_s ();
      wall0 = now_us ();
      snapshot (buffers0, late0, samples0, responses0);
      for (auto &kk : sinks)
        kk->worst_late_us = G_MININT64;
    }
    if (k == window_last) {
      cpu1 = process_cpu_s ();
      emu1 = other_cpu_s (o.emulator_pid);
      feeder1 = thread_cpu_s ();
      wall1 = now_us ();
      snapshot (buffers1, late1, samples1, responses1);
    }
    if (k >= window_first && k < window_last) {
      worst_tick_lag_us = std::max (worst_tick_lag_us, lag);
      if (lag > (gint64) kChunkMs * 1000)
        feeder_late_ticks++;
    }
    for (int i = 0; i < n; i++) {
      gsize idx = (k + (gsize) i * period / n) % period;
      gst_app_src_push_buffer (GST_APP_SRC (sessions[i]->src),
          wrap (pcm, idx * kChunkSamples, kChunkSamples));
    }
    if (k >= window_first && k < window_last && k % 25 == 0)
      for (int i = 0; i < n; i++)
        max_level = std::max (max_level,
            gst_app_src_get_current_level_bytes (GST_APP_SRC (sessions[i]->src)));
  }
  const double wall = (wall1 - wall0) / 1e6;
  const double cpu = cpu1 - cpu0, feeder = feeder1 - feeder0;
  const double emu = emu0 >= 0 ? emu1 - emu0 : -1;
  guint64 buffers = 0, late = 0, samples = 0, responses = 0;
  guint errors = 0, warnings = 0, interrupted = 0;
  gint64 worst = G_MININT64;
  for (int i = 0; i < n; i++) {
    buffers += buffers1[i] - buffers0[i];
    late += late1[i] - late0[i];
    samples += samples1[i] - samples0[i];
    responses += responses1[i] - responses0[i];
    errors += sessions[i]->errors;
    warnings += sessions[i]->warnings;
    interrupted += sessions[i]->interrupted;
    worst = std::max (worst, sinks[i]->worst_late_us.load ());
  }
  const long rss = status_kb ("self", "VmRSS:");
  GstClockTime latency = gst_base_sink_get_latency (GST_BASE_SINK (sessions[0]->sink));
  const int cores = (int) sysconf (_SC_NPROCESSORS_ONLN);
  const gint64 t_teardown = now_us ();
  /* Tear down in parallel: each session waits for its close handshake. */
  {
    std::vector<std::thread> workers;
    std::atomic<size_t> next {0};
    for (int w = 0; w < 8; w++)
      workers.emplace_back ([&] {
        for (size_t i; (i = next++) < sessions.size ();)
          sessions[i].reset ();
      });
    for (auto &w : workers)
      w.join ();
  }
  const double teardown_s = (now_us () - t_teardown) / 1e6;
  const double expected_answers = n * seconds / ((voiced_ms + silence_ms) / 1000.0);
  printf ("%d sessions, %.0f s window: process CPU %.2f s (%.1f%% of one core, %.1f%% of %d cores), "
      "feeder thread %.2f s; emulator %.2f s\n", n, wall, cpu, 100 * cpu / wall,
      100 * cpu / wall / cores, cores, feeder, emu);
  printf ("output buffers %" G_GUINT64_FORMAT ", late %" G_GUINT64_FORMAT
      " (worst %+.1f ms vs deadline, sink latency %.0f ms), answers %" G_GUINT64_FORMAT
      " (~%.0f expected), interrupted %u, errors %u, warnings %u\n", buffers, late,
      worst == G_MININT64 ? 0.0 : worst / 1000.0, latency / 1e6, responses, expected_answers,
      interrupted, errors, warnings);
  printf ("RESULT scale sessions=%d window_s=%.1f cpu_s=%.3f cpu_core_pct=%.1f cpu_machine_pct=%.1f "
      "per_session_ms_per_s=%.3f feeder_s=%.3f emu_cpu_s=%.3f emu_core_pct=%.1f buffers=%" G_GUINT64_FORMAT
      " late=%" G_GUINT64_FORMAT " worst_late_ms=%.1f answers=%" G_GUINT64_FORMAT
      " expected_answers=%.0f answer_s=%.1f interrupted=%u errors=%u warnings=%u "
      "feeder_late_ticks=%" G_GUINT64_FORMAT " feeder_worst_lag_ms=%.1f max_appsrc_level=%" G_GUINT64_FORMAT
      " rss_kb=%ld setup_s=%.1f teardown_s=%.1f cores=%d sessions_per_thread=%d bare=%d\n",
      n, wall, cpu, 100 * cpu / wall, 100 * cpu / wall / cores, 1000 * cpu / wall / n, feeder,
      emu, emu >= 0 ? 100 * emu / wall : -1.0, buffers, late,
      worst == G_MININT64 ? 0.0 : worst / 1000.0, responses, expected_answers,
      samples / 44100.0, interrupted, errors, warnings, feeder_late_ticks,
      worst_tick_lag_us / 1000.0, max_level, rss, setup_s, teardown_s, cores,
      o.sessions_per_thread, o.bare ? 1 : 0);
  return 0;
}

}  // namespace

int main (int argc, char **argv)
{
  if (argc < 2) {
    fprintf (stderr, "usage: yrt-bench gen-wav|latency|ttfa|memory|scale [options]\n");
    return 2;
  }
  std::string mode = argv[1];
  Options o = parse_options (argc, argv);
  if (mode == "gen-wav")
    return cmd_gen_wav (o);
  gst_init (nullptr, nullptr);
  setvbuf (stdout, nullptr, _IOLBF, 0);
  if (mode == "micro")
    return cmd_micro (o.seconds > 0 ? o.seconds : 0.5, (guint64) o.iterations);
  if (mode == "verify")
    return cmd_verify ();
  if (mode == "resampler")
    return cmd_resampler (o.seconds > 0 ? o.seconds : 0.5);
  if (mode == "latency")
    return cmd_latency (o);
  if (mode == "ttfa")
    return cmd_ttfa (o);
  if (mode == "memory")
    return cmd_memory (o);
  if (mode == "scale")
    return cmd_scale (o);
  die ("unknown mode %s", mode.c_str ());
}
