/* examples/phone: what the line carries, timed.  Debian's baresip calls
 * yandexrealtime-phone on 127.0.0.1 (aufile plays a WAV as its microphone,
 * sndfile records what it heard); the phone's pipeline talks to the
 * emulator, which this program runs.
 *
 * - test_barge_in_over_the_line: the caller talks over a long answer.  The
 *   answer stops on the line (the RTP to the caller, sniffed on lo with the
 *   kernel's arrival times) within 300 ms of the moment the emulator got
 *   the caller's speech (its VAD starts speech on the first loud frame
 *   here, so that moment is its speech_started); the caller heard a part of
 *   the answer, then the answer to what it said, whole; the
 *   conversation.item.truncate the element sent says as much audio heard
 *   as the caller's recording holds of that answer, within one packet
 *   (20 ms, and the truncate's rounding to whole milliseconds).
 *
 * Run 20 times in a row under load before handing a change over, e.g.
 *   for i in $(seq 20); do meson test -C build phone-line || break; done
 * with `meson test -C build --suite phone --no-suite realtime` (or a build)
 * looping beside it. */
#include "phone-calls.h"

#include <algorithm>
#include <cmath>

using namespace yrt::test;
using namespace yrt::phone;
namespace emu = yrt::emu;

namespace {

/* The caller's input as the emulator received it: each append's arrival
 * (monotonic) and the samples it ends at, in received_audio's count. */
struct Append {
  gint64 at_us;
  gsize end_sample;
};

std::vector<Append> appends (const emu::Server &server)
{
  std::vector<Append> out;
  gsize samples = 0;
  for (auto &e : server.client_events ()) {
    if (e.type != "input_audio_buffer.append")
      continue;
    JsonParser *p = json_parser_new ();
    fail_unless (json_parser_load_from_data (p, e.json.c_str (), (gssize) e.json.size (), nullptr));
    const gchar *audio = json_object_get_string_member (json_node_get_object (json_parser_get_root (p)), "audio");
    gsize len = 0;
    g_free (g_base64_decode (audio, &len));
    g_object_unref (p);
    samples += len / 2;
    out.push_back ({e.monotonic_us, samples});
  }
  return out;
}

/* The first event of `type` the element sent, parsed (the caller unrefs). */
JsonObject *client_event (const emu::Server &server, const char *type, gint64 *at_us)
{
  for (auto &e : server.client_events ())
    if (e.type == type) {
      JsonParser *p = json_parser_new ();
      fail_unless (json_parser_load_from_data (p, e.json.c_str (), (gssize) e.json.size (), nullptr));
      JsonObject *o = json_object_ref (json_node_get_object (json_parser_get_root (p)));
      g_object_unref (p);
      *at_us = e.monotonic_us;
      return o;
    }
  return nullptr;
}

double span_ms (const std::pair<gsize, gsize> &run, guint rate)
{
  return (run.second - run.first + 1) * 1000.0 / rate;
}

}  // namespace

GST_START_TEST (test_barge_in_over_the_line)
{
  const guint kAnswerMs = 5000, kBargeInAtMs = 4500, kBargeInMs = 1000;
  std::string dir = test_dir ("barge-in");
  /* The question, then the caller talks again some 2 s into the answer
   * (which starts on the line about 2.4 s into the file), then listens. */
  std::string wav = dir + "/caller.wav";
  guint question_end = kQuestionStartMs + kQuestionMs;
  write_wav (wav, silence (kLineRate, kQuestionStartMs) + chirp (kLineRate, kQuestionMs) +
      silence (kLineRate, kBargeInAtMs - question_end) + tone (kLineRate, kBargeInMs, 12000, 700.0) +
      silence (kLineRate, 4000), kLineRate);
  emu::Config cfg = config ();
  cfg.vad_model = emu::VadModel::Energy;  /* speech_started on the first loud frame */
  Call call (cfg);
  emu::TurnScript question, barge_in;
  question.answer_ms = kAnswerMs;
  call.server.push_turn (question);
  call.server.push_turn (barge_in);
  call.phone.start (YRT_PHONE, dir, call.server.url ());
  RtpSniffer sniffer;
  bool sniffing = sniffer.start ();
  if (!sniffing)
    g_print ("phone: the answer's end on the line not timed: %s\n", sniffer.why_not.c_str ());

  if (!call.caller.real_time ())
    g_print ("phone: baresip not real-time (no CAP_SYS_NICE): under load it may send late\n");
  call.caller.start (dir + "/caller", wav, {"g711"});
  call.caller.command ("dial", "sip:agent@127.0.0.1:" + std::to_string (call.phone.port));
  call.caller.wait_event ("CALL_ESTABLISHED", 20000);
  std::string why = call.caller.wait_event ("CALL_CLOSED", 30000);
  fail_unless (why == "end of file", "the call ended otherwise than by the caller: %s", why.c_str ());
  fail_unless (call.phone.wait_for ("call 1: ended (0 open)", 5000), "%s", call.phone.text ().c_str ());
  sniffer.stop ();
  fail_unless (call.phone.stop () == 0, "the phone did not stop cleanly:\n%s", call.phone.text ().c_str ());

  /* What the caller heard: part of the 440 Hz answer, then (after its own
   * words) the second answer, whole. */
  guint rate = 0;
  std::vector<gint16> heard = read_wav (call.caller.dump ("dec"), &rate);
  fail_unless (rate == kLineRate);
  auto runs = loud_runs (heard, rate);
  fail_unless (runs.size () == 2, "the caller heard %zu answers, not the interrupted one and the next", runs.size ());
  std::vector<gint16> first (heard.begin () + (gssize) runs[0].first, heard.begin () + (gssize) runs[0].second + 1);
  double hz = tone_frequency (first, rate), heard_ms = span_ms (runs[0], rate), next_ms = span_ms (runs[1], rate);
  g_print ("phone: the caller heard %.0f ms of the %u ms answer (%.1f Hz), then %.0f ms of the next\n", heard_ms,
      kAnswerMs, hz, next_ms);
  fail_unless (std::fabs (hz - 440) < 3, "the caller heard %.1f Hz, not the answer's 440 Hz", hz);
  /* Cut by the words (about 2.2 s in; the answer's start on the line moves
   * with the load, the words are where the file has them). */
  fail_unless (heard_ms > 200 && heard_ms < kAnswerMs - 1000, "the caller heard %.0f ms of the answer: it was "
      "not cut by the caller's words", heard_ms);
  fail_unless (std::fabs (next_ms - 1000) < 30, "the caller heard %.0f ms of the 1000 ms second answer", next_ms);

  /* The truncate says what the caller heard, within a packet. */
  gint64 truncated_us = 0;
  JsonObject *truncate = client_event (call.server, "conversation.item.truncate", &truncated_us);
  fail_unless (truncate != nullptr, "the element sent no conversation.item.truncate");
  gint64 end_ms = json_object_get_int_member (truncate, "audio_end_ms");
  json_object_unref (truncate);
  g_print ("phone: the truncate said %" G_GINT64_FORMAT " ms heard; the recording holds %.0f ms\n", end_ms,
      heard_ms);
  /* Within a packet: the line sends whole ones, and the one playing when
   * the element asked for the position went out whole (up to 20 ms more
   * than the position said); audio_end_ms is whole milliseconds, rounded
   * down. */
  fail_unless (std::fabs ((double) end_ms - heard_ms) <= 21, "the truncate said %" G_GINT64_FORMAT " ms heard, "
      "the caller heard %.0f ms", end_ms, heard_ms);
  std::vector<std::string> types = call.server.server_event_types ();
  fail_unless (std::count (types.begin (), types.end (), "input_audio_buffer.speech_started") == 2,
      "the emulator did not take both of the caller's turns for speech");
  fail_unless (std::count (types.begin (), types.end (), "error") == 0, "the emulator refused an event (the "
      "truncate?)");

  /* The caller's words as the emulator got them: the append that carried
   * their first loud sample (24 kHz).  The answer's last loud packet to the
   * caller came less than 300 ms after. */
  std::vector<gint16> received;
  {
    std::vector<guint8> bytes = call.server.received_audio (0);
    received.resize (bytes.size () / 2);
    memcpy (received.data (), bytes.data (), received.size () * 2);
  }
  auto said = loud_runs (received, 24000);
  fail_unless (said.size () == 2, "the emulator received %zu utterances, not the question and the barge-in",
      said.size ());
  gint64 seen_us = 0;
  for (auto &a : appends (call.server))
    if (a.end_sample > said[1].first) {
      seen_us = a.at_us;
      break;
    }
  fail_unless (seen_us > 0);
  g_print ("phone: the element sent the truncate %.0f ms after the emulator got the caller's words\n",
      (truncated_us - seen_us) / 1e3);
  if (!sniffing)
    return;
  fail_unless (sniffer.dropped == 0, "the sniffer missed %u packets", sniffer.dropped);
  std::vector<RtpPacket> to_caller = sniffer.to_port (caller_rtp_port (call.phone));
  gint64 answer_stop = 0, next_start = 0;
  for (auto &p : to_caller) {
    if (p.peak <= 2000)
      continue;
    if (!answer_stop || p.arrival_us - answer_stop < 100000)
      answer_stop = p.arrival_us;
    else if (!next_start)
      next_start = p.arrival_us;
  }
  fail_unless (answer_stop && next_start, "no interrupted answer and next answer on the line");
  double stop_ms = (answer_stop - seen_us) / 1e3;
  g_print ("phone: the answer's last loud packet reached the caller %.0f ms after the emulator got the caller's "
      "words\n", stop_ms);
  /* Its last packet may have left just before the words came (a packet
   * every 20 ms), never long before: the words stopped it. */
  fail_unless (stop_ms > -40 && stop_ms < 300, "the answer stopped on the line %.0f ms after the caller's words "
      "reached the service", stop_ms);
}
GST_END_TEST;

static Suite *phone_line_suite ()
{
  Suite *s = suite_create ("phone-line");
  TCase *tc = tcase_create ("baresip");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_barge_in_over_the_line);
  return s;
}

int main (int argc, char **argv)
{
  return run_phone_suite (&argc, &argv, phone_line_suite, "phone-line", __FILE__);
}
