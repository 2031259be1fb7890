/* yrt-bench latency and ttfa: one live session fed in real time, timed by
 * the element's trace points (latency: each chunk through the element) and
 * at the sink (ttfa: the end of each turn to the first answer buffer). */
#include "bench-common.h"

#include <gst/app/gstappsink.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

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

}  // namespace

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
