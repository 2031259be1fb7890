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

/* The line time (monotonic us) of the first loud sample of a PCMU stream:
 * the RTP clock mapped onto the arrival times by the packet that came
 * soonest after its time.  A sender late under load sends some packets
 * late; the jitter buffer, like this, goes by their timestamps. */
gint64 first_loud_on_line (const std::vector<RtpPacket> &packets)
{
  gint64 base = G_MAXINT64, onset = -1;
  guint32 ts0 = 0;
  bool any = false;
  for (auto &p : packets) {
    if (p.pt != 0)
      continue;
    if (!any)
      ts0 = p.ts, any = true;
    gint64 due = (gint64) (guint32) (p.ts - ts0) * 1000000 / kLineRate;
    base = std::min (base, p.arrival_us - due);
    if (onset < 0 && p.first_loud >= 0)
      onset = (gint64) (guint32) (p.ts - ts0) + p.first_loud;
  }
  return onset < 0 ? 0 : base + onset * 1000000 / kLineRate;
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

/* --record: the caller's tone on the left, the agent's answers on the
 * right, each where the line carried it (checked against the RTP sniffed
 * in both directions: the answer's start after the question's, to within
 * a packet); the JSON lines: the call's start, both sides' words, the
 * digit, who hung up, the end, with times that match the WAV. */
GST_START_TEST (test_record)
{
  const guint kToneMs = 1200;
  std::string dir = test_dir ("record");
  std::string records = dir + "/records";
  fail_unless (g_mkdir_with_parents (records.c_str (), 0700) == 0);
  std::string wav = dir + "/caller.wav";
  write_wav (wav, silence (kLineRate, kQuestionStartMs) + tone (kLineRate, kToneMs, 12000, 700.0) +
      silence (kLineRate, 5000), kLineRate);
  Call call (config ());
  /* A short first answer: the second (after the digit) comes some 300 ms
   * after its end, a stretch of its own. */
  emu::TurnScript question;
  question.answer_ms = 500;
  call.server.push_turn (question);
  /* A jitter buffer of 200 ms: baresip may still send late under load,
   * and what the phone's jitter buffer drops as too late is not on its
   * line, nor in the record; this test is about the record. */
  call.phone.start (YRT_PHONE, dir, call.server.url (), {"--record", records, "--latency", "200"});
  RtpSniffer sniffer;
  bool sniffing = sniffer.start ();
  if (!sniffing)
    g_print ("phone: the record's alignment not checked against the line: %s\n", sniffer.why_not.c_str ());

  if (!call.caller.real_time ())
    g_print ("phone: baresip not real-time (no CAP_SYS_NICE): under load it may send late\n");
  call.caller.start (dir + "/caller", wav, {"g711"});
  call.caller.command ("dial", "sip:agent@127.0.0.1:" + std::to_string (call.phone.port));
  call.caller.wait_event ("CALL_ESTABLISHED", 20000);
  fail_unless (call.phone.wait_for ("call 1: agent: answer 1", 15000), "%s", call.phone.text ().c_str ());
  call.caller.command ("sndcode", "5");
  std::string why = call.caller.wait_event ("CALL_CLOSED", 30000);
  fail_unless (why == "end of file", "the call ended otherwise than by the caller: %s", why.c_str ());
  fail_unless (call.phone.wait_for ("call 1: ended (0 open)", 5000), "%s", call.phone.text ().c_str ());
  sniffer.stop ();
  fail_unless (call.phone.stop () == 0, "the phone did not stop cleanly:\n%s", call.phone.text ().c_str ());

  std::string log = call.phone.text ();
  gsize at = log.find ("call 1: recording to ");
  fail_unless (at != std::string::npos, "the phone did not say where it records:\n%s", log.c_str ());
  std::string path = log.substr (at + 21, log.find ('\n', at) - at - 21);
  fail_unless (g_str_has_prefix (path.c_str (), records.c_str ()) && g_str_has_suffix (path.c_str (), ".wav"), "%s",
      path.c_str ());

  /* The WAV: 8 kHz, the caller's tone left, the answers right, nothing of
   * either on the other side. */
  guint rate = 0;
  std::vector<gint16> left = read_wav (path, &rate, 0), right = read_wav (path, &rate, 1);
  fail_unless (rate == kLineRate, "the record is at %u Hz, not the line's 8000", rate);
  auto said = loud_runs (left, rate), answers = loud_runs (right, rate);
  fail_unless (said.size () == 1, "the left channel holds %zu loud stretches, not the caller's tone", said.size ());
  fail_unless (answers.size () == 2, "the right channel holds %zu loud stretches, not the two answers",
      answers.size ());
  std::vector<gint16> tone_part (left.begin () + (gssize) said[0].first, left.begin () + (gssize) said[0].second + 1);
  std::vector<gint16> answer_part (right.begin () + (gssize) answers[0].first,
      right.begin () + (gssize) answers[0].second + 1);
  double tone_hz = tone_frequency (tone_part, rate), answer_hz = tone_frequency (answer_part, rate);
  double tone_ms = span_ms (said[0], rate), answer_ms = span_ms (answers[0], rate);
  double gap_ms = ((double) answers[0].first - (double) said[0].second) * 1000 / rate;
  g_print ("phone: the record: the caller's %.1f Hz for %.0f ms at %.0f ms, the agent's %.1f Hz for %.0f ms at "
      "%.0f ms (%.0f ms after the tone's end), %.1f s in all\n", tone_hz, tone_ms, said[0].first * 1000.0 / rate,
      answer_hz, answer_ms, answers[0].first * 1000.0 / rate, gap_ms, left.size () / (double) rate);
  /* Sample for sample: a dropped or doubled sample here and there would
   * shorten or stretch them, and move the tone off its frequency. */
  double caller_gap_ms = 0;  /* baresip's longest pause in sending, should it have been late beyond the buffer */
  std::vector<RtpPacket> from_caller = sniffer.from_port (caller_rtp_port (call.phone));
  for (gsize i = 1; i < from_caller.size (); i++)
    caller_gap_ms = std::max (caller_gap_ms, (from_caller[i].arrival_us - from_caller[i - 1].arrival_us) / 1e3);
  fail_unless (std::fabs (tone_hz - 700) < 1 && std::fabs (tone_ms - kToneMs) < 5, "left: %.1f Hz for %.0f ms "
      "(baresip's longest pause in sending: %.0f ms)", tone_hz, tone_ms, caller_gap_ms);
  fail_unless (std::fabs (answer_hz - 440) < 1 && std::fabs (answer_ms - 500) < 5, "right: %.1f Hz for %.0f ms",
      answer_hz, answer_ms);
  auto peak = [] (const std::vector<gint16> &v, std::pair<gsize, gsize> span) {
    gint p = 0;
    for (gsize i = span.first; i <= span.second && i < v.size (); i++)
      p = MAX (p, std::abs (v[i]));
    return p;
  };
  fail_unless (peak (right, said[0]) == 0 && peak (left, answers[0]) == 0 && peak (left, answers[1]) == 0,
      "a channel holds sound while the other speaks (right %d during the tone, left %d during the answers)",
      peak (right, said[0]), MAX (peak (left, answers[0]), peak (left, answers[1])));

  /* The JSON lines. */
  std::string jsonl = path.substr (0, path.size () - 4) + ".jsonl";
  std::vector<JsonObject *> lines = record_lines (jsonl);
  std::string events;
  gint64 last_t = -1, caller_words_t = -1, hangup_t = -1;
  for (JsonObject *o : lines) {
    fail_unless (json_object_has_member (o, "t_ms") && json_object_has_member (o, "event"), "a line without "
        "t_ms or event");
    gint64 t = json_object_get_int_member (o, "t_ms");
    fail_unless (t >= last_t, "t_ms goes back: %" G_GINT64_FORMAT " after %" G_GINT64_FORMAT, t, last_t);
    last_t = t;
    std::string e = member (o, "event");
    if (e == "start") {
      gchar *base = g_path_get_basename (path.c_str ());
      fail_unless (t == 0 && json_object_get_int_member (o, "call") == 1 && member (o, "direction") == "inbound" &&
          member (o, "peer") == "caller" && member (o, "codec") == "PCMU" &&
          json_object_get_int_member (o, "rate") == 8000 && member (o, "wav") == base, "the start line is wrong");
      g_free (base);
    } else if (e == "transcript") {
      e += "(" + member (o, "who") + ": " + member (o, "text") + ")";
      if (member (o, "who") == "caller" && caller_words_t < 0)
        caller_words_t = t;
    } else if (e == "dtmf") {
      e += "(" + member (o, "digit") + ")";
    } else if (e == "hangup") {
      e += "(" + member (o, "by") + ")";
      hangup_t = t;
    }
    events += e + " ";
    json_object_unref (o);
  }
  g_print ("phone: the record's events: %s\n", events.c_str ());
  fail_unless (events == "start transcript(caller: turn 1) transcript(agent: answer 1) dtmf(5) "
      "transcript(agent: answer 2) hangup(caller) end ", "the events: %s", events.c_str ());
  /* Their times are the WAV's: the transcript after the tone's end on the
   * left; the caller's BYE at the end of the WAV (the record ends with the
   * call, not when the pipeline has stopped: that took 6.5 s once under
   * load, and the WAV went on with the silence pushed meanwhile).  The
   * hang-up line is written just before the pipeline is told the call is
   * over: 1 ms apart on a quiet machine, up to 34 ms under load. */
  double tone_end_ms = said[0].second * 1000.0 / rate, wav_ms = left.size () * 1000.0 / rate;
  g_print ("phone: the caller's words at %" G_GINT64_FORMAT " ms (the tone ended at %.0f ms), the hang-up at %"
      G_GINT64_FORMAT " ms (the WAV ends at %.0f ms)\n", caller_words_t, tone_end_ms, hangup_t, wav_ms);
  fail_unless (caller_words_t > tone_end_ms, "the transcript came before the words ended");
  fail_unless (std::fabs (hangup_t - wav_ms) < 100, "the hang-up at %" G_GINT64_FORMAT " ms, the WAV ends at %.0f ms",
      hangup_t, wav_ms);

  /* Aligned as the line carried them: from the tone's first sample to the
   * answer's, on the line (both directions sniffed) and in the record. */
  if (!sniffing)
    return;
  fail_unless (sniffer.dropped == 0, "the sniffer missed %u packets", sniffer.dropped);
  guint16 port = caller_rtp_port (call.phone);
  gint64 tone_on = first_loud_on_line (sniffer.from_port (port)), answer_on = first_loud_on_line (sniffer.to_port (port));
  fail_unless (tone_on && answer_on, "no loud packets on the line");
  double line_ms = (answer_on - tone_on) / 1e3, record_ms = ((double) answers[0].first - (double) said[0].first) *
      1000 / rate;
  g_print ("phone: from the caller's tone to the answer: %.1f ms on the line, %.1f ms in the record\n", line_ms,
      record_ms);
  fail_unless (std::fabs (line_ms - record_ms) < 20, "the record puts the answer %.1f ms after the tone, the line "
      "carried it %.1f ms after", record_ms, line_ms);
}
GST_END_TEST;

static Suite *phone_line_suite ()
{
  Suite *s = suite_create ("phone-line");
  TCase *tc = tcase_create ("baresip");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_barge_in_over_the_line);
  tcase_add_test (tc, test_record);
  return s;
}

int main (int argc, char **argv)
{
  return run_phone_suite (&argc, &argv, phone_line_suite, "phone-line", __FILE__);
}
