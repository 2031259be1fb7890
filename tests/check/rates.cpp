/* The service's word on formats is final (docs/yandexrealtime.md, "Output
 * rate").  Against the emulator's three kinds of service (it serves what it
 * is asked; it serves 44100 Hz whatever is asked and says so; it takes only
 * one rate and refuses others with an error), a file of two questions goes
 * through yandexrealtime ! capsfilter, and what leaves the element is checked
 * by content: each answer's 440 Hz tone at the negotiated rate, 2 s long,
 * the answers back to back with no hole in the timestamps; the input the
 * service took, sample for sample; the warnings; no wait at EOS.  And a
 * service that refuses input-rate: the input converted to what it takes. */
#include "harness.h"

#include <cmath>
#include <cstring>

using namespace yrt::test;
namespace emu = yrt::emu;

namespace {

constexpr guint kInRate = 24000;
constexpr guint kAnswerMs = 2000;
constexpr double kToneHz = 440.0;

struct Row {
  const char *what;
  emu::RateRule rule;
  const char *properties;
  guint pad_rate;
  guint asked;    /* in the first session.update */
  guint served;   /* what the answers come at */
  const char *warning;  /* a part of the one warning, or nullptr: none */
};

std::vector<gint16> two_questions ()
{
  return turn (kInRate) + turn (kInRate, 1200);
}

guint rate_asked (const emu::Server &server, guint index)
{
  JsonNode *node = json_from_string (server.session_update_json (index).c_str (), nullptr);
  fail_unless (node != nullptr, "no session.update #%u", index);
  JsonObject *format = json_object_get_object_member (json_object_get_object_member (
          json_object_get_object_member (json_node_get_object (node), "audio"), "output"), "format");
  guint rate = (guint) json_object_get_int_member (format, "rate");
  json_node_unref (node);
  return rate;
}

guint stats_uint (GstElement *rt, const char *field)
{
  GstStructure *s = nullptr;
  g_object_get (rt, "stats", &s, nullptr);
  guint v = 0;
  fail_unless (gst_structure_get_uint (s, field, &v), "stats has no %s", field);
  gst_structure_free (s);
  return v;
}

gint peak (const std::vector<gint16> &pcm)
{
  gint p = 0;
  for (gint16 v : pcm)
    p = MAX (p, ABS ((gint) v));
  return p;
}

void check_answers (const std::vector<GstBuffer *> &out, const Row &row)
{
  const gsize answer = (gsize) row.pad_rate * kAnswerMs / 1000;
  std::vector<gint16> pcm = pcm_of (out);
  fail_unless_equals_int (pcm.size (), 2 * answer);
  for (gsize a = 0; a < 2; a++) {
    std::vector<gint16> one (pcm.begin () + a * answer, pcm.begin () + (a + 1) * answer);
    double hz = tone_frequency (one, row.pad_rate);
    fail_unless (std::fabs (hz - kToneHz) < 1.0, "%s: answer %zu at %.2f Hz", row.what, a + 1, hz);
    /* Away from its edges (the filter's ramp), no jump: nothing lost or doubled. */
    gint limit = (gint) (2 * G_PI * kToneHz * peak (one) / row.pad_rate * 1.1) + 2;
    gint step = max_step (one, 64, one.size () - 64);
    fail_unless (step <= limit, "%s: answer %zu steps by %d (> %d) inside", row.what, a + 1,
        step, limit);
  }
  GstClockTime end = 0;
  for (GstBuffer *b : out) {
    fail_unless_equals_uint64 (GST_BUFFER_PTS (b), end);
    end = GST_BUFFER_PTS (b) + GST_BUFFER_DURATION (b);
  }
  fail_unless_equals_uint64 (end, 2 * kAnswerMs * GST_MSECOND);
}

/* Every input sample reached the service, in order, in one session. */
void check_input_taken (const emu::Server &server, const std::vector<gint16> &in)
{
  fail_unless_equals_int (server.sessions_opened (), 1);
  std::vector<guint8> got = server.received_audio (0);
  fail_unless (got.size () >= in.size () * 2, "the service got %zu of %zu bytes", got.size (),
      in.size () * 2);
  fail_unless (memcmp (got.data (), in.data (), in.size () * 2) == 0,
      "the service got other audio than the input");
  fail_unless_equals_int (server.committed_turns ().size (), 2);
}

void run (const Row &row)
{
  emu::Config config;
  config.output_rate_rule = row.rule;
  config.default_turn.answer_ms = kAnswerMs;
  Fixture f (config);
  std::string caps = "audio/x-raw,rate=" + std::to_string (row.pad_rate);
  /* A drain that waited for a session.updated that never comes would time
   * out and warn. */
  f.start_with_sink_caps (caps.c_str (), std::string ("eos-timeout-ms=30000 ") + row.properties);
  std::vector<gint16> in = two_questions ();
  f.push (in);
  std::vector<GstBuffer *> out = f.end_input ();
  check_answers (out, row);
  GstCaps *pad_caps = gst_pad_get_current_caps (f.h->sinkpad);
  gint rate = 0;
  gst_structure_get_int (gst_caps_get_structure (pad_caps, 0), "rate", &rate);
  gst_caps_unref (pad_caps);
  fail_unless_equals_int (rate, row.pad_rate);
  check_input_taken (f.server, in);
  fail_unless_equals_int (rate_asked (f.server, 0), row.asked);
  fail_unless_equals_int (stats_uint (f.rt (), "output-rate-served"), row.served);
  fail_unless_equals_int (stats_uint (f.rt (), "input-rate-accepted"), kInRate);
  std::vector<std::string> warned = f.warnings ();
  if (!row.warning) {
    fail_unless (warned.empty (), "%s: warned: %s", row.what,
        warned.empty () ? "" : warned[0].c_str ());
  } else {
    fail_unless_equals_int (warned.size (), 1);
    fail_unless (warned[0].find (row.warning) != std::string::npos, "%s: warned: %s", row.what,
        warned[0].c_str ());
    fail_unless_equals_int (f.server.refused_updates (), 1);
  }
  unref_all (out);
}

}  // namespace

/* Serves the rate asked for: asked 44100 (output-rate unset), converted to
 * the 48000 downstream negotiated. */
GST_START_TEST (test_service_serves_what_is_asked)
{
  run ({"accept 44100", {emu::RatePolicy::Accept, 0}, "", 44100, 44100, 44100, nullptr});
  run ({"accept", {emu::RatePolicy::Accept, 0}, "", 48000, 44100, 44100, nullptr});
  run ({"accept, output-rate=16000", {emu::RatePolicy::Accept, 0}, "output-rate=16000", 16000,
      16000, 16000, nullptr});
}
GST_END_TEST;

/* Serves 44100 whatever is asked, and says so in session.updated. */
GST_START_TEST (test_service_serves_its_own_rate)
{
  run ({"serve 44100, output-rate=48000", {emu::RatePolicy::Serve, 44100}, "output-rate=48000",
      48000, 48000, 44100, nullptr});
  run ({"serve 24000", {emu::RatePolicy::Serve, 24000}, "", 44100, 44100, 24000, nullptr});
}
GST_END_TEST;

/* Accepts only 44100 and refuses other rates with an error naming the
 * param: unset, the element asks for 44100 and is not refused; set, it
 * falls back to 44100 with one warning naming both rates, and the session
 * loses nothing. */
GST_START_TEST (test_service_refuses_other_rates)
{
  run ({"refuse, unset", {emu::RatePolicy::Refuse, 44100}, "", 48000, 44100, 44100, nullptr});
  run ({"refuse, output-rate=48000", {emu::RatePolicy::Refuse, 44100}, "output-rate=48000",
      48000, 48000, 44100, "refused the output rate of 48000 Hz: answers are asked for at 44100 Hz "
      "and converted to 48000 Hz"});
  run ({"refuse, output-rate=16000", {emu::RatePolicy::Refuse, 44100}, "output-rate=16000",
      16000, 16000, 44100, "refused the output rate of 16000 Hz: answers are asked for at 44100 Hz "
      "and converted to 16000 Hz"});
}
GST_END_TEST;

/* Takes input only at 24000 Hz and refuses input-rate=16000: the element
 * sends the input at 24000 Hz, converted, with one warning, and the
 * conversation goes on whole: two turns of the 300 Hz question, each
 * answered. */
GST_START_TEST (test_refused_input_rate_falls_back)
{
  emu::Config config;
  config.input_rate_rule = {emu::RatePolicy::Refuse, kInRate};
  config.default_turn.answer_ms = kAnswerMs;
  Fixture f (config);
  f.make ("input-rate=16000 eos-timeout-ms=30000");
  f.start ();
  std::vector<gint16> in = two_questions ();
  f.push (in);
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless_equals_int (samples_in (out), 2 * 44100 * kAnswerMs / 1000);
  fail_unless_equals_int (f.server.committed_turns ().size (), 2);
  fail_unless_equals_int (f.server.input_rate (0), kInRate);
  fail_unless_equals_int (stats_uint (f.element, "input-rate-accepted"), kInRate);
  /* What the service heard: the input's 300 Hz question at 24 kHz, as long
   * as it was (and the trailing silence), give or take the filter's edge. */
  std::vector<guint8> bytes = f.server.received_audio (0);
  std::vector<gint16> heard (bytes.size () / 2);
  if (!heard.empty ())
    memcpy (heard.data (), bytes.data (), heard.size () * 2);
  fail_unless (heard.size () >= in.size () && heard.size () <= in.size () + kInRate,
      "the service heard %zu samples of %zu", heard.size (), in.size ());
  std::vector<gint16> question (heard.begin () + 100, heard.begin () + kInRate * 700 / 1000);
  double hz = tone_frequency (question, kInRate);
  fail_unless (std::fabs (hz - 300.0) < 1.0, "the service heard the question at %.2f Hz", hz);
  std::vector<std::string> warned = f.warnings ();
  fail_unless_equals_int (warned.size (), 1);
  fail_unless (warned[0].find ("refused the input rate of 16000 Hz: the input is converted to "
      "24000 Hz") != std::string::npos, "warned: %s", warned[0].c_str ());
  unref_all (out);
}
GST_END_TEST;

static Suite *rates_suite (void)
{
  Suite *s = suite_create ("yandexrealtime-rates");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_service_serves_what_is_asked);
  tcase_add_test (tc, test_service_serves_its_own_rate);
  tcase_add_test (tc, test_service_refuses_other_rates);
  tcase_add_test (tc, test_refused_input_rate_falls_back);
  return s;
}

GST_CHECK_MAIN (rates);
