/* The text src pads as outputs of the element: text_src (the answers'
 * words on the src timeline) and transcript_src (the user's words on the
 * input's running time), in files, in live pipelines, as SRT files and
 * captions, and across a reconnection. */
#include "harness.h"

#include <glib/gstdio.h>

#include <tuple>

using namespace yrt::test;
namespace emu = yrt::emu;

static std::string text_of (GstBuffer *b)
{
  std::string s (gst_buffer_get_size (b), '\0');
  gst_buffer_extract (b, 0, s.data (), s.size ());
  return s;
}

static GstClockTime end_of (GstBuffer *b)
{
  return GST_BUFFER_PTS (b) + GST_BUFFER_DURATION (b);
}

static void expect_text_caps (GstHarness *h)
{
  GstCaps *caps = gst_pad_get_current_caps (h->sinkpad);
  GstCaps *expected = gst_caps_from_string ("text/x-raw,format=utf8");
  fail_unless (caps && gst_caps_is_equal (caps, expected), "%" GST_PTR_FORMAT, caps);
  gst_caps_unref (caps);
  gst_caps_unref (expected);
}

/* Both text pads of a Fixture's element, each in a harness of its own. */
struct TextPads {
  explicit TextPads (Fixture &f)
      : text (gst_harness_new_with_element (f.element, nullptr, "text_src")),
        words (gst_harness_new_with_element (f.element, nullptr, "transcript_src"))
  {
  }
  ~TextPads ()
  {
    gst_harness_teardown (words);
    gst_harness_teardown (text);
  }
  GstHarness *text, *words;
};

/* Every element message the fixture's element posted so far, in order
 * (those already seen, then the bus), named yandexrealtime/<name>. */
static std::vector<const GstStructure *> messages (Fixture &f, const char *name)
{
  while (GstMessage *m = gst_bus_pop (f.bus))
    f.seen.push_back (m);
  std::string full = std::string ("yandexrealtime/") + name;
  std::vector<const GstStructure *> out;
  for (GstMessage *m : f.seen) {
    const GstStructure *s = gst_message_get_structure (m);
    if (s && gst_structure_has_name (s, full.c_str ()))
      out.push_back (s);
  }
  return out;
}

static std::vector<std::string> final_answer_texts (Fixture &f)
{
  std::vector<std::string> out;
  for (const GstStructure *s : messages (f, "response-text")) {
    gboolean final = FALSE;
    if (gst_structure_get_boolean (s, "final", &final) && final)
      out.push_back (gst_structure_get_string (s, "text"));
  }
  return out;
}

static std::vector<GstClockTime> speech_times (Fixture &f, const char *name, const char *field)
{
  std::vector<GstClockTime> out;
  for (const GstStructure *s : messages (f, name)) {
    guint64 ms = 0;
    fail_unless (gst_structure_get_uint64 (s, field, &ms));
    out.push_back (ms * GST_MSECOND);  /* one session over input from 0: running time */
  }
  return out;
}

/* A file of two turns with both text pads: each answer's words span its
 * audio exactly, in the src timeline; each transcript spans its speech, in
 * the input's running time; both end with EOS after the last answer. */
GST_START_TEST (test_text_pads_in_a_file)
{
  Fixture f;
  f.start ();
  TextPads pads (f);
  GstHarness *text = pads.text, *words = pads.words;
  f.push (turn (24000));
  f.push (turn (24000));
  std::vector<GstBuffer *> audio = f.end_input ();
  fail_unless_equals_uint64 (samples_in (audio), 2 * 44100);

  std::vector<GstBuffer *> pieces = pull_all (text);
  expect_text_caps (text);
  fail_unless (pieces.size () >= 2);
  std::string all, first_answer;
  GstClockTime end = 0;
  for (GstBuffer *b : pieces) {
    fail_unless_equals_clocktime (GST_BUFFER_PTS (b), end);  /* contiguous from 0 */
    fail_unless (GST_BUFFER_DURATION (b) > 0);
    all += text_of (b);
    end = end_of (b);
    if (end <= GST_SECOND)
      first_answer = all;
  }
  fail_unless_equals_clocktime (end, 2 * GST_SECOND);  /* the end of the audio */
  std::vector<std::string> answers = final_answer_texts (f);
  fail_unless_equals_int (answers.size (), 2);
  fail_unless_equals_string (first_answer.c_str (), answers[0].c_str ());  /* ends with its audio */
  std::string both = answers[0] + answers[1];
  fail_unless_equals_string (all.c_str (), both.c_str ());

  std::vector<GstBuffer *> said = pull_all (words);
  expect_text_caps (words);
  fail_unless_equals_int (said.size (), 2);
  std::vector<GstClockTime> starts = speech_times (f, "speech-started", "audio-start-ms");
  std::vector<GstClockTime> stops = speech_times (f, "speech-stopped", "audio-end-ms");
  fail_unless (starts.size () == 2 && stops.size () == 2);
  for (int i = 0; i < 2; i++) {
    std::string expected = "turn " + std::to_string (i + 1), got = text_of (said[i]);
    fail_unless_equals_string (got.c_str (), expected.c_str ());
    fail_unless_equals_clocktime (GST_BUFFER_PTS (said[i]), starts[i]);
    fail_unless_equals_clocktime (end_of (said[i]), stops[i]);
  }
  /* The second turn's speech began 1.6 s into the input. */
  fail_unless (GST_BUFFER_PTS (said[1]) >= 1600 * GST_MSECOND - 300 * GST_MSECOND);
  unref_all (audio);
  unref_all (pieces);
  unref_all (said);
}
GST_END_TEST;


/* Buffers a pad passed, with their text and times, from any thread. */
struct Texts {
  std::mutex lock;
  std::vector<std::tuple<std::string, GstClockTime, GstClockTime>> seen;  /* text, pts, duration */

  static GstPadProbeReturn probe (GstPad *, GstPadProbeInfo *info, gpointer data)
  {
    auto *self = static_cast<Texts *> (data);
    GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER (info);
    std::lock_guard<std::mutex> guard (self->lock);
    self->seen.emplace_back (text_of (b), GST_BUFFER_PTS (b), GST_BUFFER_DURATION (b));
    return GST_PAD_PROBE_OK;
  }
  void watch (GstElement *element, const char *pad_name)
  {
    GstPad *pad = gst_element_get_static_pad (element, pad_name);
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, probe, this, nullptr);
    gst_object_unref (pad);
  }
};

/* The texts of the final response-text messages among `messages`, which
 * it frees. */
static std::vector<std::string> final_answers (std::vector<GstMessage *> &messages)
{
  std::vector<std::string> out;
  for (GstMessage *m : messages) {
    const GstStructure *s = gst_message_get_structure (m);
    gboolean final = FALSE;
    if (gst_structure_has_name (s, "yandexrealtime/response-text") &&
        gst_structure_get_boolean (s, "final", &final) && final)
      out.push_back (gst_structure_get_string (s, "text"));
    gst_message_unref (m);
  }
  messages.clear ();
  return out;
}

/* "Text answers to spoken questions": output-modalities=text with only
 * text_src linked (src left unlinked) runs to EOS with the answers. */
GST_START_TEST (test_text_answers_with_only_text_src)
{
  emu::Server server;
  fail_unless (server.start () != 0);
  {
    WavFile wav (turn (24000) + turn (24000), 24000);
    Pipeline p (server, "filesrc location=" + wav.path + " ! wavparse ! yandexrealtime name=rt "
        "output-modalities=text rt.text_src ! fakesink name=sink sync=false");
    Texts texts;
    texts.watch (p.get ("sink"), "sink");
    fail_unless (gst_element_set_state (p.pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    std::vector<GstMessage *> messages;
    GstMessage *end = wait_end (p.pipeline, 20 * GST_SECOND, &messages);
    fail_unless (end != nullptr, "no EOS");
    fail_unless_equals_int (GST_MESSAGE_TYPE (end), GST_MESSAGE_EOS);
    gst_message_unref (end);
    std::vector<std::string> answers = final_answers (messages);
    std::lock_guard<std::mutex> guard (texts.lock);
    fail_unless_equals_int (texts.seen.size (), 2);
    fail_unless_equals_int (answers.size (), 2);
    GstClockTime end_of_previous = 0;
    for (int i = 0; i < 2; i++) {
      auto &[text, pts, duration] = texts.seen[i];
      fail_unless_equals_string (text.c_str (), answers[i].c_str ());
      /* No audio to span: after its question, for a reading time. */
      fail_unless (pts >= end_of_previous && GST_CLOCK_TIME_IS_VALID (duration) &&
          duration >= GST_SECOND);
      end_of_previous = pts + duration;
    }
  }
  server.stop ();
}
GST_END_TEST;


static std::string read_file (const std::string &path)
{
  gchar *contents = nullptr;
  gsize size = 0;
  fail_unless (g_file_get_contents (path.c_str (), &contents, &size, nullptr), "no %s", path.c_str ());
  std::string s (contents, size);
  g_free (contents);
  return s;
}

/* SRT cues: start, end (ns) and text. */
struct Cue {
  GstClockTime start, end;
  std::string text;
};

static std::vector<Cue> parse_srt (const std::string &srt)
{
  std::vector<Cue> cues;
  gchar **blocks = g_regex_split_simple ("\r?\n\r?\n", srt.c_str (), (GRegexCompileFlags) 0,
      (GRegexMatchFlags) 0);
  for (gchar **b = blocks; *b; b++) {
    guint h1, m1, s1, ms1, h2, m2, s2, ms2;
    const char *times = strchr (*b, '\n');
    if (!times || sscanf (times + 1, "%u:%u:%u,%u --> %u:%u:%u,%u", &h1, &m1, &s1, &ms1,
            &h2, &m2, &s2, &ms2) != 8)
      continue;
    const char *text = strchr (times + 1, '\n');
    auto ns = [] (guint h, guint m, guint s, guint ms) {
      return ((((GstClockTime) h * 60 + m) * 60 + s) * 1000 + ms) * GST_MSECOND;
    };
    cues.push_back (Cue {ns (h1, m1, s1, ms1), ns (h2, m2, s2, ms2), text ? text + 1 : ""});
  }
  g_strfreev (blocks);
  return cues;
}

/* The README's file pipeline: answer.wav with answer.srt and question.srt
 * written by srtenc.  The answers' cues cover answer.wav from its first
 * sample to its last; the question's cues cover the speech the service
 * heard, where it is in question.wav. */
GST_START_TEST (test_srt_files_line_up)
{
  emu::Server server;
  fail_unless (server.start () != 0);
  {
    WavFile wav (silence (24000, 500) + turn (24000) + turn (24000), 24000);
    std::string dir = wav.dir;
    Pipeline p (server, "filesrc location=" + wav.path + " ! wavparse ! yandexrealtime name=rt "
        "! wavenc ! filesink location=" + dir + "/answer.wav "
        "rt.text_src ! srtenc ! filesink location=" + dir + "/answer.srt "
        "rt.transcript_src ! srtenc ! filesink location=" + dir + "/question.srt");
    fail_unless (gst_element_set_state (p.pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    GstMessage *end = wait_end (p.pipeline, 20 * GST_SECOND);
    fail_unless (end != nullptr && GST_MESSAGE_TYPE (end) == GST_MESSAGE_EOS, "no EOS");
    gst_message_unref (end);
    gst_element_set_state (p.pipeline, GST_STATE_NULL);

    std::string answer_wav = read_file (dir + "/answer.wav");
    GstClockTime answer_duration = gst_util_uint64_scale ((answer_wav.size () - 44) / 2,
        GST_SECOND, 44100);
    fail_unless_equals_clocktime (answer_duration, 2 * GST_SECOND);
    std::vector<Cue> answer = parse_srt (read_file (dir + "/answer.srt"));
    fail_unless (answer.size () >= 2);
    fail_unless_equals_clocktime (answer.front ().start, 0);
    fail_unless_equals_clocktime (answer.back ().end, answer_duration);
    for (gsize i = 1; i < answer.size (); i++)
      fail_unless_equals_clocktime (answer[i].start, answer[i - 1].end);

    std::vector<Cue> question = parse_srt (read_file (dir + "/question.srt"));
    fail_unless_equals_int (question.size (), 2);
    /* Speech at 0.5 s and 2.1 s of question.wav, as the service reports
     * it: from prefix-padding-ms (300) before it (within 20 ms). */
    GstClockTime speech[] = {200 * GST_MSECOND, 1800 * GST_MSECOND};
    for (int i = 0; i < 2; i++) {
      GstClockTime start = question[i].start;
      fail_unless (start + 20 * GST_MSECOND >= speech[i] && start <= speech[i] + 20 * GST_MSECOND,
          "question %d at %" GST_TIME_FORMAT, i, GST_TIME_ARGS (start));
      fail_unless (question[i].end > speech[i] + 1100 * GST_MSECOND);
      fail_unless (question[i].text.find ("turn") == 0, "%s", question[i].text.c_str ());
    }
    for (const char *name : {"answer.wav", "answer.srt", "question.srt"})
      g_unlink ((dir + "/" + name).c_str ());
  }
  server.stop ();
}
GST_END_TEST;


/* The README's captioned live agent: with text_src feeding textoverlay
 * over live video, the pipeline plays at once, silent as it is (GAPs on
 * every output pad), and the video flows. */
GST_START_TEST (test_live_captions_play)
{
  emu::Server server;
  fail_unless (server.start () != 0);
  {
    Pipeline p (server, "audiotestsrc is-live=true wave=silence ! yandexrealtime name=rt "
        "! fakesink sync=true videotestsrc is-live=true ! textoverlay name=overlay "
        "! fakesink name=video sync=true rt.text_src ! overlay.text_sink "
        "rt.transcript_src ! fakesink name=words sync=true");
    gint frames = 0;
    GstPad *pad = gst_element_get_static_pad (p.get ("video"), "sink");
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, count_buffer, &frames, nullptr);
    gst_object_unref (pad);
    Gaps gaps;
    gaps.watch (p.get ("words"), "sink");
    p.play_live ();
    gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
    while ((g_atomic_int_get (&frames) < 10 || gaps.covered () < 300 * GST_MSECOND) &&
        g_get_monotonic_time () < deadline)
      g_usleep (10000);
    fail_unless (g_atomic_int_get (&frames) >= 10, "%d video frames", frames);
    fail_unless (gaps.covered () >= 300 * GST_MSECOND);
  }
  server.stop ();
}
GST_END_TEST;


/* A cut mid-answer: the new session is sent the unanswered turns again and
 * reports their speech in its own milliseconds.  The transcripts still sit
 * where the speech is in the input, once each, and the captions cover the
 * answers that played, not the one cut short. */
GST_START_TEST (test_text_pads_across_a_reconnection)
{
  emu::Config config;
  config.faults.drop_mid_answer = true;
  Fixture f (config);
  f.make ("reconnect-backoff-ms=20");
  f.start ();
  TextPads pads (f);
  GstHarness *text = pads.text, *words = pads.words;
  f.push (silence (24000, 500) + turn (24000) + turn (24000));
  std::vector<GstBuffer *> audio = f.end_input ();
  fail_unless_equals_uint64 (samples_in (audio), 2 * 44100);
  fail_unless_equals_int (f.server.sessions_opened (), 2);

  std::vector<GstBuffer *> pieces = pull_all (text);
  std::string all;
  GstClockTime end = 0;
  for (GstBuffer *b : pieces) {
    fail_unless_equals_clocktime (GST_BUFFER_PTS (b), end);
    all += text_of (b);
    end = end_of (b);
  }
  fail_unless_equals_clocktime (end, 2 * GST_SECOND);
  std::vector<std::string> answers = final_answer_texts (f);
  fail_unless_equals_int (answers.size (), 2);
  std::string both = answers[0] + answers[1];
  fail_unless_equals_string (all.c_str (), both.c_str ());

  /* Speech at 0.5 s and 2.1 s of the input, reported from prefix-padding-ms
   * (300) before; the end within the silence after it. */
  std::vector<GstBuffer *> said = pull_all (words);
  fail_unless_equals_int (said.size (), 2);
  GstClockTime speech[] = {200 * GST_MSECOND, 1800 * GST_MSECOND};
  for (int i = 0; i < 2; i++) {
    GstClockTime pts = GST_BUFFER_PTS (said[i]);
    fail_unless (pts + 20 * GST_MSECOND >= speech[i] && pts <= speech[i] + 20 * GST_MSECOND,
        "turn %d at %" GST_TIME_FORMAT, i + 1, GST_TIME_ARGS (pts));
    fail_unless (end_of (said[i]) > speech[i] + 1100 * GST_MSECOND &&
        end_of (said[i]) <= speech[i] + 1600 * GST_MSECOND);
  }
  unref_all (audio);
  unref_all (pieces);
  unref_all (said);
}
GST_END_TEST;


/* Live: each answer's words are stamped as they come, against the audio
 * that came with them, on the same timeline as that audio; idle time is
 * covered by GAPs on the text pads too. */
GST_START_TEST (test_live_captions_follow_the_audio)
{
  Fixture f;
  f.start (kLiveCaps, true);
  gst_harness_use_testclock (f.h);
  GstHarness *text = gst_harness_new_with_element (f.element, nullptr, "text_src");
  gst_harness_set_time (f.h, 5 * GST_SECOND);
  f.push (turn (24000));
  GstMessage *done = f.wait_message ("response-done");
  fail_unless (done != nullptr);
  gst_message_unref (done);
  GstClockTime audio_start = GST_CLOCK_TIME_NONE, audio_end = 0;
  guint64 samples = 0;
  while (samples < 44100) {
    GstBuffer *b = pull_buffer (f.h);
    if (!GST_CLOCK_TIME_IS_VALID (audio_start))
      audio_start = GST_BUFFER_PTS (b);
    audio_end = end_of (b);
    samples += gst_buffer_get_size (b) / 2;
    gst_buffer_unref (b);
  }
  fail_unless_equals_clocktime (audio_start, 5 * GST_SECOND);
  std::vector<std::string> answers = final_answer_texts (f);
  fail_unless_equals_int (answers.size (), 1);

  std::string all;
  GstClockTime end = audio_start;
  while (all.size () < answers[0].size ()) {
    GstBuffer *b = pull_buffer (text);
    fail_unless_equals_clocktime (GST_BUFFER_PTS (b), end);  /* contiguous over the answer */
    all += text_of (b);
    end = end_of (b);
    gst_buffer_unref (b);
  }
  fail_unless_equals_string (all.c_str (), answers[0].c_str ());
  fail_unless_equals_clocktime (end, audio_end);
  /* Before the answer: a GAP from 0 on the text pad. */
  bool gap = false;
  while (GstEvent *ev = gst_harness_try_pull_event (text)) {
    GstClockTime start, duration;
    if (GST_EVENT_TYPE (ev) == GST_EVENT_GAP) {
      gst_event_parse_gap (ev, &start, &duration);
      gap = gap || start == 0;
    }
    gst_event_unref (ev);
  }
  fail_unless (gap, "no GAP on text_src before the answer");
  gst_harness_teardown (text);
}
GST_END_TEST;

static Suite *text_suite (void)
{
  Suite *s = suite_create ("yandexrealtime-text");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_text_pads_in_a_file);
  tcase_add_test (tc, test_text_answers_with_only_text_src);
  tcase_add_test (tc, test_text_pads_across_a_reconnection);
  tcase_add_test (tc, test_live_captions_follow_the_audio);
  tcase_add_test (tc, test_srt_files_line_up);
  tcase_add_test (tc, test_live_captions_play);
  return s;
}

GST_CHECK_MAIN (text);
