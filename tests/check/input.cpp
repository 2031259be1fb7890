/* Unit tests of the input path (yrt-input): what reaches the dialog from
 * the sink pad's buffers, and when.  No pipeline and no network: Input runs
 * against a fake host that records what it is sent, on S16 mono at 16 kHz
 * (sent as is, 640-sample chunks). */
#include "yrt-input.h"

#include <gst/check/gstcheck.h>

#include <string>
#include <vector>

using namespace yrt;

namespace yrt {
void debug_init ();  /* yrt-debug.h, whose GST_CAT_DEFAULT is not the test's */
}

namespace {

constexpr guint kRate = 16000;
constexpr guint kChunkMs = 40;
constexpr gint16 kLoud = 1000;

guint64 samples (GstClockTime t)
{
  return gst_util_uint64_scale (t, kRate, GST_SECOND);
}

/* Records what the input path hands the dialog, in order: "audio" runs of
 * samples and "commit"s. */
struct FakeHost : InputHost {
  Dialog::SendResult send_audio (const guint8 *pcm, gsize size) override
  {
    const gint16 *s = reinterpret_cast<const gint16 *> (pcm);
    sent.insert (sent.end (), s, s + size / 2);
    log.push_back ("audio");
    return result;
  }
  bool take_commit_request () override
  {
    bool asked = commit_asked;
    commit_asked = false;
    return asked;
  }
  void commit_now () override
  {
    log.push_back ("commit");
    commits_at.push_back (sent.size ());
  }
  bool pushed_span (GstClockTime &s, GstClockTime &e) override
  {
    if (!GST_CLOCK_TIME_IS_VALID (span_start))
      return false;
    s = span_start;
    e = span_end;
    return true;
  }
  GstClockTime running_time () override { return now; }
  GstClockTime downstream_latency () override { return latency; }

  std::vector<gint16> sent;
  std::vector<std::string> log;
  std::vector<gsize> commits_at;
  bool commit_asked = false;
  Dialog::SendResult result = Dialog::SendResult::Ok;
  GstClockTime span_start = GST_CLOCK_TIME_NONE, span_end = 0;
  GstClockTime latency = 0;
  GstClockTime now = GST_CLOCK_TIME_NONE;
};

/* An upstream peer for the sink pad that answers the LATENCY query. */
gboolean upstream_query (GstPad *pad, GstObject *, GstQuery *query)
{
  if (GST_QUERY_TYPE (query) != GST_QUERY_LATENCY)
    return FALSE;
  gboolean live = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (pad), "live"));
  gst_query_set_latency (query, live, 0, GST_CLOCK_TIME_NONE);
  return TRUE;
}

struct Rig {
  explicit Rig (bool live = false)
  {
    yrt::debug_init ();
    element = gst_bin_new (nullptr);
    gst_object_ref_sink (element);
    input = new Input (host, element);
    input->configure (kRate, kChunkMs, 3);
    GstCaps *caps = gst_caps_from_string (
        "audio/x-raw, format=S16LE, rate=16000, channels=1, layout=interleaved");
    fail_unless (input->set_caps (caps));
    gst_caps_unref (caps);
    upstream = gst_pad_new ("up", GST_PAD_SRC);
    g_object_set_data (G_OBJECT (upstream), "live", GINT_TO_POINTER (live));
    gst_pad_set_query_function (upstream, upstream_query);
    sink = gst_pad_new ("sink", GST_PAD_SINK);
    fail_unless_equals_int (gst_pad_link (upstream, sink), GST_PAD_LINK_OK);
    fail_unless (input->check_live (sink));
    fail_unless (!input->check_live (sink));  /* asked once */
    fail_unless_equals_int (input->live (), live);
  }
  ~Rig ()
  {
    delete input;
    gst_object_unref (upstream);
    gst_object_unref (sink);
    gst_object_unref (element);
  }

  /* `ms` of constant `value` captured at `pts`. */
  GstFlowReturn push (GstClockTime pts, guint ms, gint16 value = kLoud)
  {
    std::vector<gint16> pcm (kRate * ms / 1000, value);
    GstBuffer *buffer = gst_buffer_new_memdup (pcm.data (), pcm.size () * 2);
    GST_BUFFER_PTS (buffer) = pts;
    GST_BUFFER_DURATION (buffer) = ms * GST_MSECOND;
    return input->chain (buffer, GST_FLOW_OK, now);
  }
  /* The samples sent in [from, to) of what was sent, all equal to `value`. */
  void expect_sent (gsize from, gsize to, gint16 value)
  {
    fail_unless (to <= host.sent.size (), "only %zu samples sent", host.sent.size ());
    for (gsize i = from; i < to; i++)
      fail_unless_equals_int (host.sent[i], value);
  }

  FakeHost host;
  GstElement *element;
  Input *input;
  GstPad *upstream, *sink;
  InputSwitches now;
};

}  // namespace

/* Buffers with a hole between them: the audio sent has no hole (nothing is
 * made up for it), and the clock that places transcripts jumps with the
 * input instead; a few ms of jitter does not move it. */
GST_START_TEST (test_non_contiguous_buffers)
{
  Rig rig;
  fail_unless_equals_int (rig.push (0, 100), GST_FLOW_OK);
  fail_unless_equals_int (rig.push (100 * GST_MSECOND, 100), GST_FLOW_OK);
  fail_unless_equals_int (rig.push (300 * GST_MSECOND, 100), GST_FLOW_OK);  /* 100 ms hole */
  fail_unless_equals_int (rig.push (405 * GST_MSECOND, 100), GST_FLOW_OK);  /* 5 ms late */
  rig.input->drain (rig.now);
  fail_unless_equals_int (rig.host.sent.size (), samples (400 * GST_MSECOND));
  rig.expect_sent (0, rig.host.sent.size (), kLoud);

  fail_unless_equals_uint64 (rig.input->time_of (0), 0);
  fail_unless_equals_uint64 (rig.input->time_of (samples (150 * GST_MSECOND)),
      150 * GST_MSECOND);
  fail_unless_equals_uint64 (rig.input->time_of (samples (200 * GST_MSECOND)),
      300 * GST_MSECOND);
  fail_unless_equals_uint64 (rig.input->time_of (samples (250 * GST_MSECOND)),
      350 * GST_MSECOND);
  /* Within 10 ms of where it was due: the anchor before holds. */
  fail_unless_equals_uint64 (rig.input->time_of (samples (350 * GST_MSECOND)),
      450 * GST_MSECOND);

  /* A flush starts the clock over: no anchor until the next buffer. */
  rig.input->flush ();
  fail_unless_equals_uint64 (rig.input->time_of (0), GST_CLOCK_TIME_NONE);
}
GST_END_TEST;

/* The segment maps timestamps to running time. */
GST_START_TEST (test_segment)
{
  Rig rig;
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  segment.start = 10 * GST_SECOND;
  segment.time = 10 * GST_SECOND;
  GstEvent *event = gst_event_new_segment (&segment);
  rig.input->set_segment (event);
  gst_event_unref (event);
  rig.push (10 * GST_SECOND + 500 * GST_MSECOND, 100);
  fail_unless_equals_uint64 (rig.input->time_of (0), 500 * GST_MSECOND);
}
GST_END_TEST;

/* Mute (push-to-talk): muting closes the turn with what is held and, under
 * server VAD, the silence that ends it; nothing goes while muted; no
 * silence for manual turns. */
GST_START_TEST (test_mute_closes_the_turn)
{
  Rig rig;
  rig.now.trailing_silence_ms = 700;
  rig.push (0, 50);  /* one 40 ms chunk sent, 10 ms held */
  fail_unless_equals_int (rig.host.sent.size (), samples (40 * GST_MSECOND));
  rig.now.mute = true;
  rig.push (50 * GST_MSECOND, 50);
  gsize closed = samples (50 * GST_MSECOND) + samples (700 * GST_MSECOND);
  fail_unless_equals_int (rig.host.sent.size (), closed);
  rig.expect_sent (0, samples (50 * GST_MSECOND), kLoud);
  rig.expect_sent (samples (50 * GST_MSECOND), closed, 0);
  rig.push (100 * GST_MSECOND, 500);
  fail_unless_equals_int (rig.host.sent.size (), closed);
  /* EOS while muted: nothing more. */
  rig.input->drain (rig.now);
  fail_unless_equals_int (rig.host.sent.size (), closed);

  Rig manual;
  manual.now.trailing_silence_ms = 0;
  manual.push (0, 50);
  manual.now.mute = true;
  manual.push (50 * GST_MSECOND, 50);
  fail_unless_equals_int (manual.host.sent.size (), samples (50 * GST_MSECOND));
}
GST_END_TEST;

/* EOS: what is held goes, then the turn's closing silence (server VAD). */
GST_START_TEST (test_drain)
{
  Rig rig;
  rig.now.trailing_silence_ms = 400 + 300;
  rig.push (0, 50);
  rig.input->drain (rig.now);
  fail_unless_equals_int (rig.host.sent.size (),
      samples (50 * GST_MSECOND) + samples (700 * GST_MSECOND));
  rig.expect_sent (0, samples (50 * GST_MSECOND), kLoud);
  rig.expect_sent (samples (50 * GST_MSECOND), rig.host.sent.size (), 0);

  /* Nothing sent yet: no silence either. */
  Rig empty;
  empty.now.trailing_silence_ms = 700;
  empty.input->drain (empty.now);
  fail_unless_equals_int (empty.host.sent.size (), 0);
}
GST_END_TEST;

/* `commit` asked for between buffers: what came before it goes first, then
 * the commit, then the next buffer; at EOS too. */
GST_START_TEST (test_commit_requests)
{
  Rig rig;
  rig.push (0, 50);
  rig.host.commit_asked = true;
  rig.push (50 * GST_MSECOND, 50);
  fail_unless_equals_int (rig.host.commits_at.size (), 1);
  fail_unless_equals_int (rig.host.commits_at[0], samples (50 * GST_MSECOND));
  rig.host.commit_asked = true;
  rig.input->drain (rig.now);
  fail_unless_equals_int (rig.host.commits_at.size (), 2);
  fail_unless_equals_int (rig.host.commits_at[1], samples (100 * GST_MSECOND));
  fail_unless_equals_string (rig.host.log.back ().c_str (), "commit");
}
GST_END_TEST;

/* What stops the input: downstream's flow, a refusing dialog, no caps. */
GST_START_TEST (test_flow)
{
  Rig rig;
  GstBuffer *buffer = gst_buffer_new_allocate (nullptr, 640 * 2, nullptr);
  fail_unless_equals_int (rig.input->chain (buffer, GST_FLOW_EOS, rig.now), GST_FLOW_EOS);
  fail_unless_equals_int (rig.host.sent.size (), 0);
  rig.host.result = Dialog::SendResult::Flushing;
  fail_unless_equals_int (rig.push (0, 40), GST_FLOW_FLUSHING);
  rig.host.result = Dialog::SendResult::Failed;
  fail_unless_equals_int (rig.push (40 * GST_MSECOND, 40), GST_FLOW_ERROR);

  FakeHost host;
  GstElement *element = gst_bin_new (nullptr);
  gst_object_ref_sink (element);
  {
    Input input (host, element);
    input.configure (kRate, kChunkMs, 3);
    buffer = gst_buffer_new_allocate (nullptr, 640 * 2, nullptr);
    fail_unless_equals_int (input.chain (buffer, GST_FLOW_OK, InputSwitches ()),
        GST_FLOW_NOT_NEGOTIATED);
  }
  gst_object_unref (element);
}
GST_END_TEST;

/* The echo gate's windows, on their own: from an answer's first sample to
 * its end + latency + the room's tail; the answer before still lingers;
 * unmuting during an answer releases the rest of it. */
GST_START_TEST (test_echo_gate_windows)
{
  const GstClockTime ms = GST_MSECOND;
  EchoGate gate;
  EchoGate::Windows w = gate.update (1000 * ms, 2000 * ms, 100 * ms, 1500 * ms, false);
  fail_unless_equals_uint64 (w.answer.from, 1000 * ms);
  fail_unless_equals_uint64 (w.answer.to, 2000 * ms + 100 * ms + EchoGate::kTail);
  fail_unless (w.previous.from >= w.previous.to);  /* none before */
  fail_unless (!w.released);

  /* The same answer grows. */
  w = gate.update (1000 * ms, 2500 * ms, 100 * ms, 1600 * ms, false);
  fail_unless_equals_uint64 (w.answer.to, 2600 * ms + EchoGate::kTail);

  /* A new answer: the one before lingers until its own end. */
  w = gate.update (3000 * ms, 3500 * ms, 100 * ms, 3000 * ms, false);
  fail_unless_equals_uint64 (w.answer.from, 3000 * ms);
  fail_unless_equals_uint64 (w.previous.from, 1000 * ms);
  fail_unless_equals_uint64 (w.previous.to, 2600 * ms + EchoGate::kTail);

  /* Unmuted during it: released, and so is the lingering one. */
  w = gate.update (3000 * ms, 3500 * ms, 100 * ms, 3100 * ms, true);
  fail_unless (w.released);
  fail_unless (w.answer.from >= w.answer.to);
  fail_unless (w.previous.from >= w.previous.to);
  /* It stays released while it grows. */
  w = gate.update (3000 * ms, 3900 * ms, 100 * ms, 3200 * ms, false);
  fail_unless (w.answer.from >= w.answer.to);

  /* Unmuted after the echo is gone: the next answer is gated again. */
  w = gate.update (5000 * ms, 5500 * ms, 0, 6000 * ms, true);
  fail_unless (!w.released);
  fail_unless_equals_uint64 (w.answer.from, 5000 * ms);
}
GST_END_TEST;

/* The samples silenced: those captured within [from, to). */
GST_START_TEST (test_silence_between)
{
  GstAudioInfo info;
  gst_audio_info_set_format (&info, GST_AUDIO_FORMAT_S16LE, 1000, 1, nullptr);
  std::vector<gint16> pcm (100, kLoud);  /* 100 ms at 1 kHz, from t0 = 1 s */
  GstBuffer *buffer = gst_buffer_new_memdup (pcm.data (), pcm.size () * 2);
  buffer = silence_between (info, buffer, GST_SECOND, GST_SECOND + 20 * GST_MSECOND,
      GST_SECOND + 50 * GST_MSECOND);
  buffer = silence_between (info, buffer, GST_SECOND, 0, GST_SECOND + 5 * GST_MSECOND);
  buffer = silence_between (info, buffer, GST_SECOND, 3 * GST_SECOND, 4 * GST_SECOND);
  GstMapInfo map;
  fail_unless (gst_buffer_map (buffer, &map, GST_MAP_READ));
  const gint16 *s = reinterpret_cast<const gint16 *> (map.data);
  for (guint i = 0; i < 100; i++)
    fail_unless_equals_int (s[i], (i < 5 || (i >= 20 && i < 50)) ? 0 : kLoud);
  gst_buffer_unmap (buffer, &map);
  gst_buffer_unref (buffer);
}
GST_END_TEST;

/* Half-duplex through the input path: live input only, and only with the
 * switch on; the echo of the answer goes as silence. */
GST_START_TEST (test_half_duplex)
{
  const GstClockTime ms = GST_MSECOND;
  auto run = [] (bool live, bool half_duplex, std::vector<gint16> &sent) {
    Rig rig (live);
    rig.now.half_duplex = half_duplex;
    rig.host.span_start = 100 * ms;
    rig.host.span_end = 200 * ms;
    rig.host.latency = 20 * ms;
    for (guint i = 0; i < 10; i++)  /* 0..600 ms */
      rig.push (i * 60 * ms, 60);
    rig.input->drain (rig.now);
    sent = rig.host.sent;
  };
  std::vector<gint16> sent;
  run (false, true, sent);
  fail_unless_equals_int (sent.size (), samples (600 * ms));
  for (gint16 s : sent)
    fail_unless_equals_int (s, kLoud);
  run (true, false, sent);
  for (gint16 s : sent)
    fail_unless_equals_int (s, kLoud);
  run (true, true, sent);
  fail_unless_equals_int (sent.size (), samples (600 * ms));
  guint64 from = samples (100 * ms), to = samples (200 * ms + 20 * ms + EchoGate::kTail);
  for (guint64 i = 0; i < sent.size (); i++)
    fail_unless_equals_int (sent[i], (i >= from && i < to) ? 0 : kLoud);
}
GST_END_TEST;

/* What the input reads of the settings: server VAD closes a turn after its
 * silence-duration-ms and 300 ms more; manual turns need no silence. */
GST_START_TEST (test_switches)
{
  Settings s;
  s.session.silence_duration_ms = 500;
  s.mute = true;
  InputSwitches now = InputSwitches::of (s);
  fail_unless_equals_int (now.trailing_silence_ms, 800);
  fail_unless (now.mute && !now.half_duplex);
  s.session.turn_detection = TurnDetection::None;
  s.half_duplex = true;
  now = InputSwitches::of (s);
  fail_unless_equals_int (now.trailing_silence_ms, 0);
  fail_unless (now.half_duplex);
}
GST_END_TEST;

static Suite *input_suite ()
{
  Suite *s = suite_create ("input");
  TCase *tc = tcase_create ("input");
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_non_contiguous_buffers);
  tcase_add_test (tc, test_segment);
  tcase_add_test (tc, test_mute_closes_the_turn);
  tcase_add_test (tc, test_drain);
  tcase_add_test (tc, test_commit_requests);
  tcase_add_test (tc, test_flow);
  tcase_add_test (tc, test_echo_gate_windows);
  tcase_add_test (tc, test_silence_between);
  tcase_add_test (tc, test_half_duplex);
  tcase_add_test (tc, test_switches);
  return s;
}

GST_CHECK_MAIN (input);
