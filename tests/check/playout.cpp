/* The answers' audio from the rate the service serves to the src pad's rate
 * (PcmResampler inside Playout): plain classes, no network.  Checked by
 * content: each answer's length, the tone's frequency, no jump inside an
 * answer, timestamps with no hole or overlap.
 *
 * The deltas' sizes are random: YRT_PLAYOUT_SEED=<n> repeats a run (the seed
 * is printed on stderr). */
#include "yrt-playout.h"
#include "yrt-resample.h"
#include "tone.h"

#include <gst/check/gstcheck.h>

#include <cmath>
#include <vector>

using namespace yrt;
using yrt::test::max_step;
using yrt::test::tone_frequency;

namespace {

constexpr double kToneHz = 440.0;

std::vector<gint16> tone (guint rate, guint ms, double hz = kToneHz)
{
  std::vector<gint16> pcm ((gsize) rate * ms / 1000);
  for (gsize i = 0; i < pcm.size (); i++)
    pcm[i] = (gint16) std::lround (8000.0 * std::sin (2 * G_PI * hz * (double) i / rate));
  return pcm;
}

guint32 seed ()
{
  const char *env = g_getenv ("YRT_PLAYOUT_SEED");
  guint32 s = env ? (guint32) g_ascii_strtoull (env, nullptr, 10) : g_random_int ();
  g_printerr ("playout: YRT_PLAYOUT_SEED=%u\n", s);
  return s;
}

/* `pcm` as deltas of random byte counts (odd ones too), like a service's. */
template <typename Push>
void in_deltas (const std::vector<gint16> &pcm, GRand *rand, Push push)
{
  const guint8 *bytes = (const guint8 *) pcm.data ();
  gsize size = pcm.size () * 2, pos = 0;
  while (pos < size) {
    gsize n = (gsize) g_rand_int_range (rand, 1, 9000);
    n = MIN (n, size - pos);
    push (bytes + pos, n);
    pos += n;
  }
}

std::vector<gint16> samples_of (GstBuffer *buffer)
{
  std::vector<gint16> out (gst_buffer_get_size (buffer) / 2);
  if (!out.empty ())
    gst_buffer_extract (buffer, 0, out.data (), out.size () * 2);
  return out;
}

struct Popped {
  std::vector<gint16> pcm;
  std::vector<GstClockTime> pts, end;
};

/* Non-live: everything queued until EOS. */
Popped pop_all (Playout &playout)
{
  Popped out;
  playout.finish ();
  for (;;) {
    PlayoutItem item = playout.pop ([] { return GST_CLOCK_TIME_NONE; });
    if (item.kind == PlayoutItem::Kind::Eos)
      break;
    fail_unless (item.kind == PlayoutItem::Kind::Buffer);
    std::vector<gint16> pcm = samples_of (item.buffer);
    out.pcm.insert (out.pcm.end (), pcm.begin (), pcm.end ());
    out.pts.push_back (GST_BUFFER_PTS (item.buffer));
    out.end.push_back (GST_BUFFER_PTS (item.buffer) + GST_BUFFER_DURATION (item.buffer));
    gst_buffer_unref (item.buffer);
  }
  return out;
}

}  // namespace

/* Equal rates: the samples pass untouched. */
GST_START_TEST (test_same_rate_passes_through)
{
  PcmResampler r;
  r.configure (44100, 44100, 4);
  fail_unless (r.passthrough ());
  std::vector<gint16> in = tone (44100, 100), out, tail;
  r.process ("r1", in.data (), in.size (), out, tail);
  r.finish ("r1", out);
  fail_unless (out == in);
  fail_unless (tail.empty ());
}
GST_END_TEST;

/* Each answer comes out whole at the new rate: its length N * out / in, its
 * tone at 440 Hz, no jump inside it, whatever the deltas' sizes; the next
 * answer starts with no history of the previous one. */
GST_START_TEST (test_answers_are_converted_whole)
{
  GRand *rand = g_rand_new_with_seed (seed ());
  const guint rates[][2] = {{44100, 48000}, {44100, 16000}, {44100, 8000}, {24000, 44100},
      {16000, 48000}};
  for (const auto &rate : rates) {
    PcmResampler r;
    r.configure (rate[0], rate[1], 4);
    for (const char *id : {"r1", "r2"}) {
      std::vector<gint16> in = tone (rate[0], 2000), out, tail;
      for (gsize pos = 0; pos < in.size ();) {
        gsize n = (gsize) g_rand_int_range (rand, 1, 4000);
        n = MIN (n, in.size () - pos);
        r.process (id, in.data () + pos, n, out, tail);
        pos += n;
      }
      fail_unless (tail.empty (), "%u -> %u: a tail of nothing", rate[0], rate[1]);
      r.finish (id, out);
      fail_unless_equals_int (out.size (), (gsize) rate[1] * 2);
      double hz = tone_frequency (out, rate[1]);
      fail_unless (std::fabs (hz - kToneHz) < 0.5, "%u -> %u: %.2f Hz", rate[0], rate[1], hz);
      /* Away from the two edges (the filter's ramp), the sine is smooth. */
      gint limit = (gint) (2 * G_PI * kToneHz * 8000 / rate[1] * 1.05) + 2;
      gint step = max_step (out, 32, out.size () - 32);
      fail_unless (step <= limit, "%u -> %u: a step of %d (> %d) inside the answer", rate[0],
          rate[1], step, limit);
    }
  }
  g_rand_free (rand);
}
GST_END_TEST;

/* A new answer's first delta ends the previous answer: its tail comes out,
 * for the previous answer, before anything of the new one. */
GST_START_TEST (test_next_answer_ends_the_previous)
{
  PcmResampler r;
  r.configure (44100, 48000, 4);
  std::vector<gint16> a = tone (44100, 500), b = tone (44100, 500), out_a, out_b, tail;
  r.process ("a", a.data (), a.size (), out_a, tail);
  r.process ("b", b.data (), b.size (), out_b, out_a);
  fail_unless_equals_int (out_a.size (), 24000);
  r.finish ("b", out_b);
  fail_unless_equals_int (out_b.size (), 24000);
}
GST_END_TEST;

/* A dropped answer (barge-in) leaves nothing behind: the next one starts
 * from silence, as the first one did. */
GST_START_TEST (test_forgotten_answer_leaves_no_history)
{
  PcmResampler fresh, used;
  fresh.configure (44100, 48000, 4);
  used.configure (44100, 48000, 4);
  std::vector<gint16> loud (4410, 30000), t = tone (44100, 200), x, y, z, tail;
  used.process ("cut", loud.data (), loud.size (), z, tail);
  used.forget ("cut");
  fresh.process ("next", t.data (), t.size (), x, tail);
  used.process ("next", t.data (), t.size (), y, tail);
  fail_unless (tail.empty ());
  fail_unless (x == y);
}
GST_END_TEST;

/* Playout at 48 kHz from a service serving 44.1 kHz: two answers in odd
 * deltas come out whole, back to back, with timestamps that leave no hole. */
GST_START_TEST (test_playout_converts_with_exact_timestamps)
{
  GRand *rand = g_rand_new_with_seed (seed ());
  Playout playout;
  playout.configure (48000, false);
  playout.set_source_rate (44100);
  for (const char *id : {"r1", "r2"}) {
    std::vector<gint16> in = tone (44100, 2000);
    in_deltas (in, rand, [&] (const guint8 *data, gsize size) {
      playout.push_audio (id, std::string ("item-") + id, data, size, GST_CLOCK_TIME_NONE);
    });
    playout.complete_response (id);
    fail_unless_equals_uint64 (playout.received_samples (id), 96000);
  }
  Popped out = pop_all (playout);
  fail_unless_equals_int (out.pcm.size (), 2 * 96000);
  for (gsize i = 1; i < out.pts.size (); i++)
    fail_unless_equals_uint64 (out.pts[i], out.end[i - 1]);
  fail_unless_equals_uint64 (out.end.back (), 4 * GST_SECOND);
  std::vector<gint16> second (out.pcm.begin () + 96000, out.pcm.end ());
  fail_unless (std::fabs (tone_frequency (second, 48000) - kToneHz) < 0.5);
  g_rand_free (rand);
}
GST_END_TEST;

/* The service's rate can change between answers (a refused rate, a new
 * session): each answer is converted from the rate it came at. */
GST_START_TEST (test_playout_follows_the_source_rate)
{
  Playout playout;
  playout.configure (16000, false);
  playout.set_source_rate (16000);
  std::vector<gint16> a = tone (16000, 1000), b = tone (44100, 1000);
  playout.push_audio ("a", "ia", (const guint8 *) a.data (), a.size () * 2, GST_CLOCK_TIME_NONE);
  playout.complete_response ("a");
  playout.set_source_rate (44100);
  playout.push_audio ("b", "ib", (const guint8 *) b.data (), b.size () * 2, GST_CLOCK_TIME_NONE);
  playout.complete_response ("b");
  Popped out = pop_all (playout);
  fail_unless_equals_int (out.pcm.size (), 32000);
  std::vector<gint16> first (out.pcm.begin (), out.pcm.begin () + 16000);
  std::vector<gint16> last (out.pcm.begin () + 16000, out.pcm.end ());
  fail_unless (first == a);
  fail_unless (std::fabs (tone_frequency (last, 16000) - kToneHz) < 0.5);
}
GST_END_TEST;

/* Live: an answer that arrives some time after the output so far (less
 * than a GAP poll) starts at its arrival, and a GAP covers the idle time
 * before it: no hole in the timeline, no DISCONT (the phone's payloader
 * resynced on each one). */
GST_START_TEST (test_live_answer_follows_a_gap)
{
  Playout playout;
  playout.configure (44100, true);
  GstClockTime now = 0;
  auto clock = [&now] { return now; };
  PlayoutItem preroll = playout.pop (clock);
  fail_unless (preroll.kind == PlayoutItem::Kind::Gap);
  fail_unless_equals_clocktime (preroll.gap_start + preroll.gap_duration, 0);

  std::vector<gint16> answer (4410, 1000);  /* 100 ms */
  playout.push_audio ("r1", "i1", (const guint8 *) answer.data (), answer.size () * 2, 0);
  PlayoutItem r1 = playout.pop (clock);
  fail_unless (r1.kind == PlayoutItem::Kind::Buffer);
  fail_unless_equals_clocktime (GST_BUFFER_PTS (r1.buffer), 0);
  gst_buffer_unref (r1.buffer);

  now = 130 * GST_MSECOND;
  playout.push_audio ("r2", "i2", (const guint8 *) answer.data (), answer.size () * 2, now);
  PlayoutItem gap = playout.pop (clock);
  fail_unless (gap.kind == PlayoutItem::Kind::Gap, "no GAP before the answer");
  fail_unless_equals_clocktime (gap.gap_start, 100 * GST_MSECOND);
  fail_unless_equals_clocktime (gap.gap_duration, 30 * GST_MSECOND);
  PlayoutItem r2 = playout.pop (clock);
  fail_unless (r2.kind == PlayoutItem::Kind::Buffer);
  fail_unless_equals_clocktime (GST_BUFFER_PTS (r2.buffer), 130 * GST_MSECOND);
  fail_if (GST_BUFFER_FLAG_IS_SET (r2.buffer, GST_BUFFER_FLAG_DISCONT));
  gst_buffer_unref (r2.buffer);
}
GST_END_TEST;

static Suite *playout_suite (void)
{
  Suite *s = suite_create ("yandexrealtime-playout");
  TCase *tc = tcase_create ("general");
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_same_rate_passes_through);
  tcase_add_test (tc, test_answers_are_converted_whole);
  tcase_add_test (tc, test_next_answer_ends_the_previous);
  tcase_add_test (tc, test_forgotten_answer_leaves_no_history);
  tcase_add_test (tc, test_playout_converts_with_exact_timestamps);
  tcase_add_test (tc, test_playout_follows_the_source_rate);
  tcase_add_test (tc, test_live_answer_follows_a_gap);
  return s;
}

GST_CHECK_MAIN (playout);
