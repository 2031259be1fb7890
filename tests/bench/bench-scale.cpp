/* yrt-bench scale: N live sessions in one process fed by one real-time
 * thread; CPU per session-second, late output buffers, answers (--bare: the
 * harness alone, without the element). */
#include "bench-common.h"

#include <gst/app/gstappsrc.h>
#include <gst/base/gstbasesink.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

/* ------------------------------------------------------------------- scale -- */

namespace {

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

}  // namespace

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
