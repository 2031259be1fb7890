/* yrt-bench memory: one non-live session fed as fast as it goes for
 * --minutes of stream time (an hour by default), its VmRSS sampled at every
 * stream minute; the process's and the emulator's CPU and memory at the end. */
#include "bench-common.h"

#include <gst/app/gstappsrc.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <vector>

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
