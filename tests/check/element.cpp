/* The element end to end against the emulator: file turns with EOS drain,
 * conversion, session configuration, bus messages, live timing, barge-in,
 * credentials and state cycles.
 *
 * test_state_cycles stops the element at random moments: it prints
 * ELEMENT_SEED=<n> on stderr, and ELEMENT_SEED=<n> in the environment
 * repeats those moments (the default seed is 42). */
#include "harness.h"

#include <json-glib/json-glib.h>

#include <algorithm>

using namespace yrt::test;
namespace emu = yrt::emu;

/* Non-live output: one contiguous, sample-accurate timeline from 0. */
static void assert_contiguous_from_zero (const std::vector<GstBuffer *> &buffers, guint rate)
{
  guint64 offset = 0;
  for (GstBuffer *b : buffers) {
    guint64 n = gst_buffer_get_size (b) / 2;
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET (b), offset);
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET_END (b), offset + n);
    fail_unless_equals_clocktime (GST_BUFFER_PTS (b),
        gst_util_uint64_scale (offset, GST_SECOND, rate));
    fail_unless_equals_clocktime (GST_BUFFER_PTS (b) + GST_BUFFER_DURATION (b),
        gst_util_uint64_scale (offset + n, GST_SECOND, rate));
    offset += n;
  }
}

static guint count_type (const std::vector<std::string> &types, const char *type)
{
  return (guint) std::count (types.begin (), types.end (), std::string (type));
}

GST_START_TEST (test_file_turn_drains_at_eos)
{
  Fixture f;
  f.start ();
  f.push (turn (24000));
  std::vector<GstBuffer *> out = f.end_input ();

  /* Everything the server sent, byte for byte, and nothing else. */
  std::vector<guint8> sent = f.server.sent_audio ();
  fail_unless_equals_int (sent.size (), 44100 * 2);  /* default answer: 1 s */
  fail_unless (concat (out) == sent);
  assert_contiguous_from_zero (out, 44100);

  GstCaps *caps = gst_pad_get_current_caps (f.h->sinkpad);
  GstCaps *expected = gst_caps_from_string (
      "audio/x-raw,format=S16LE,channels=1,rate=44100,layout=interleaved");
  fail_unless (gst_caps_is_equal (caps, expected));
  gst_caps_unref (caps);
  gst_caps_unref (expected);

  /* The trailing silence went up: speech + silence + silence-duration + 300 ms. */
  fail_unless_equals_int (f.server.received_audio ().size (),
      (24000 * 1600 / 1000 + 24000 * 700 / 1000) * 2);
  unref_all (out);
}
GST_END_TEST;

GST_START_TEST (test_messages)
{
  Fixture f;
  f.start ();
  GstMessage *m = f.wait_message ("connection");
  fail_unless_equals_string (gst_structure_get_string (structure (m), "state"), "connecting");
  fail_unless (g_str_has_prefix (gst_structure_get_string (structure (m), "url"),
          f.server.url ().c_str ()));
  gst_message_unref (m);
  m = f.wait_message ("connection");
  fail_unless_equals_string (gst_structure_get_string (structure (m), "state"), "connected");
  gst_message_unref (m);
  m = f.wait_message ("session");
  fail_unless_equals_string (gst_structure_get_string (structure (m), "session-id"), "sess_1");
  fail_unless (gst_structure_get_string (structure (m), "model") != nullptr);
  gst_message_unref (m);

  f.push (turn (24000, 1000, 800));
  std::vector<GstBuffer *> out = f.end_input ();

  m = f.wait_message ("speech-started");
  const GstStructure *s = structure (m);
  std::string item = gst_structure_get_string (s, "item-id");
  guint64 ms;
  fail_unless (gst_structure_get_uint64 (s, "audio-start-ms", &ms));
  fail_unless_equals_uint64 (ms, 0);  /* speech from the first sample */
  gst_message_unref (m);

  m = f.wait_message ("speech-stopped");
  fail_unless_equals_string (gst_structure_get_string (structure (m), "item-id"), item.c_str ());
  fail_unless (gst_structure_get_uint64 (structure (m), "audio-end-ms", &ms));
  fail_unless (ms >= 1000 && ms <= 1000 + 400 + 20, "speech ended at %" G_GUINT64_FORMAT, ms);
  gst_message_unref (m);

  m = f.wait_message ("transcript");
  s = structure (m);
  fail_unless_equals_string (gst_structure_get_string (s, "item-id"), item.c_str ());
  fail_unless_equals_string (gst_structure_get_string (s, "text"), "turn 1");
  gboolean final = FALSE;
  fail_unless (gst_structure_get_boolean (s, "final", &final) && final);
  gst_message_unref (m);

  /* Deltas (final=false) add up to the whole text (final=true). */
  std::string deltas, response;
  for (;;) {
    m = f.wait_message ("response-text");
    s = structure (m);
    fail_unless (gst_structure_get_boolean (s, "final", &final));
    response = gst_structure_get_string (s, "response-id");
    std::string text = gst_structure_get_string (s, "text");
    gst_message_unref (m);
    if (final) {
      fail_unless_equals_string (text.c_str (), "answer 1");
      break;
    }
    deltas += text;
  }
  fail_unless_equals_string (deltas.c_str (), "answer 1");

  m = f.wait_message ("response-done");
  s = structure (m);
  fail_unless_equals_string (gst_structure_get_string (s, "response-id"), response.c_str ());
  fail_unless_equals_string (gst_structure_get_string (s, "status"), "completed");
  guint64 duration, tokens;
  fail_unless (gst_structure_get_uint64 (s, "audio-duration", &duration));
  fail_unless_equals_clocktime (duration, GST_SECOND);
  fail_unless (gst_structure_get_uint64 (s, "total-tokens", &tokens) && tokens > 0);
  fail_unless (gst_structure_get_uint64 (s, "input-tokens", &tokens));
  fail_unless (gst_structure_get_uint64 (s, "output-tokens", &tokens));
  gst_message_unref (m);
  unref_all (out);
}
GST_END_TEST;

GST_START_TEST (test_manual_turn_commits_at_eos)
{
  Fixture f;
  f.make ("turn-detection=none");
  f.start ();
  f.push (tone (24000, 500));
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless (concat (out) == f.server.sent_audio ());
  fail_unless_equals_int (samples_in (out), 44100);

  std::vector<std::string> types = f.server.client_event_types ();
  auto commit = std::find (types.begin (), types.end (), "input_audio_buffer.commit");
  auto create = std::find (types.begin (), types.end (), "response.create");
  fail_unless (commit != types.end () && create != types.end () && commit < create);
  fail_unless_equals_int (count_type (types, "input_audio_buffer.commit"), 1);
  /* No trailing silence without server VAD. */
  fail_unless_equals_int (f.server.received_audio ().size (), 24000 / 2 * 2);
  unref_all (out);
}
GST_END_TEST;

GST_START_TEST (test_short_manual_input_is_not_committed)
{
  Fixture f;
  f.make ("turn-detection=none");
  f.start ();
  f.push (tone (24000, 60));
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless_equals_int (out.size (), 0);
  fail_unless_equals_int (count_type (f.server.client_event_types (), "input_audio_buffer.commit"), 0);
}
GST_END_TEST;

GST_START_TEST (test_create_response_false_asks_for_the_answer)
{
  Fixture f;
  f.make ("create-response=false");
  f.start ();
  f.push (turn (24000));
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless_equals_int (samples_in (out), 44100);
  std::vector<std::string> types = f.server.client_event_types ();
  fail_unless_equals_int (count_type (types, "response.create"), 1);
  fail_unless_equals_int (count_type (types, "input_audio_buffer.commit"), 0);
  unref_all (out);
}
GST_END_TEST;

GST_START_TEST (test_two_turns_back_to_back)
{
  Fixture f;
  f.start ();
  f.push (turn (24000) + turn (24000));
  std::vector<GstBuffer *> out = f.end_input ();
  std::vector<guint8> sent = f.server.sent_audio ();
  /* Non-live input is not "heard": no barge-in, both answers complete. */
  fail_unless_equals_int (sent.size (), 2 * 44100 * 2);
  fail_unless (concat (out) == sent);
  assert_contiguous_from_zero (out, 44100);
  unref_all (out);
}
GST_END_TEST;

/* Defect: a session that started before the input's CAPS was configured
 * for live input, and the update for non-live input waited until the
 * service had answered the first one, so it went after the audio and the
 * service cut the first answer short when the second turn began. */
GST_START_TEST (test_non_live_caps_after_the_first_update)
{
  emu::Config config;
  config.faults.stop_reading = true;  /* the first update stays unanswered */
  Fixture f (config);
  f.make ();
  f.h = harness_for (f.element, false);
  gst_object_unref (f.element);
  gst_harness_play (f.h);
  fail_unless (f.server.wait_for_server_event ("session.created", 1, 20000));
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  while (stat_of (f.element, "bytes-sent") == 0 && g_get_monotonic_time () < deadline)
    g_usleep (1000);
  fail_unless (stat_of (f.element, "bytes-sent") > 0, "no session.update sent");
  gst_harness_set_src_caps_str (f.h, "audio/x-raw,format=S16LE,rate=24000,channels=1,layout=interleaved");
  f.server.set_faults (emu::Faults ());
  f.push (turn (24000) + turn (24000));
  std::vector<GstBuffer *> out = f.end_input ();

  /* The service was told before the first audio. */
  gboolean create = TRUE, interrupt = TRUE;
  for (const emu::ClientEvent &ev : f.server.client_events ()) {
    if (ev.type == "input_audio_buffer.append")
      break;
    if (ev.type != "session.update")
      continue;
    JsonNode *root = json_from_string (ev.json.c_str (), nullptr);
    JsonObject *td = json_object_get_object_member (json_object_get_object_member (
        json_object_get_object_member (json_object_get_object_member (
        json_node_get_object (root), "session"), "audio"), "input"), "turn_detection");
    create = json_object_get_boolean_member (td, "create_response");
    interrupt = json_object_get_boolean_member (td, "interrupt_response");
    json_node_unref (root);
  }
  fail_if (create || interrupt, "the audio went before create_response and "
      "interrupt_response were false");
  std::vector<guint8> sent = f.server.sent_audio ();
  fail_unless_equals_int (sent.size (), 2 * 44100 * 2);
  fail_unless (concat (out) == sent);
  unref_all (out);
}
GST_END_TEST;

GST_START_TEST (test_odd_deltas_are_joined)
{
  emu::Config config;
  config.faults.odd_deltas = true;
  Fixture f (config);
  f.start ();
  f.push (turn (24000));
  std::vector<GstBuffer *> out = f.end_input ();
  for (GstBuffer *b : out)
    fail_unless (gst_buffer_get_size (b) % 2 == 0);
  fail_unless (concat (out) == f.server.sent_audio ());
  unref_all (out);
}
GST_END_TEST;

/* Text-only answers: the words arrive, no audio, EOS all the same. */
GST_START_TEST (test_text_only_answers)
{
  Fixture f;
  f.make ("output-modalities=text");
  f.start ();
  f.push (turn (24000));
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless_equals_int (out.size (), 0);
  for (;;) {
    GstMessage *m = f.wait_message ("response-text");
    fail_unless (m != nullptr);
    gboolean final = FALSE;
    gst_structure_get_boolean (structure (m), "final", &final);
    std::string text = gst_structure_get_string (structure (m), "text");
    gst_message_unref (m);
    if (final) {
      fail_unless_equals_string (text.c_str (), "answer 1");
      break;
    }
  }
  JsonNode *root = json_from_string (f.server.session_update_json (0).c_str (), nullptr);
  JsonArray *mods = json_object_get_array_member (json_node_get_object (root), "output_modalities");
  fail_unless_equals_int (json_array_get_length (mods), 1);
  fail_unless_equals_string (json_array_get_string_element (mods, 0), "text");
  json_node_unref (root);
}
GST_END_TEST;

static double rms (const gint16 *samples, gsize n)
{
  double sum = 0;
  for (gsize i = 0; i < n; i++)
    sum += (double) samples[i] * samples[i];
  return n ? std::sqrt (sum / n) : 0;
}

/* 48 kHz stereo F32 in: the server gets 24 kHz mono S16 of the same loudness
 * and duration. */
GST_START_TEST (test_converts_48k_stereo_f32)
{
  Fixture f;
  f.start ("audio/x-raw,format=F32LE,rate=48000,channels=2,layout=interleaved");
  std::vector<gint16> mono = turn (48000, 1000, 1000);
  std::vector<float> stereo (mono.size () * 2);
  for (gsize i = 0; i < mono.size (); i++)
    stereo[2 * i] = stereo[2 * i + 1] = mono[i] / 32768.0f;
  f.push_bytes (stereo.data (), stereo.size () * sizeof (float), 48000, 8);
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless_equals_int (samples_in (out), 44100);  /* the turn was heard */

  std::vector<guint8> raw = f.server.received_audio ();
  const gint16 *got = reinterpret_cast<const gint16 *> (raw.data ());
  gsize n = raw.size () / 2;
  gsize expected = 24000 * 2 + 24000 * 700 / 1000;
  /* The resampler's history is drained at EOS: nothing is lost (but the
   * filter's phase, a sample or two). */
  fail_unless (n + 2 >= expected && n <= expected + 2, "got %" G_GSIZE_FORMAT " samples", n);
  double speech = rms (got + 2400, 19200);  /* 0.1..0.9 s */
  fail_unless (std::fabs (speech - kSpeechAmplitude / std::sqrt (2.0)) < 0.03 * kSpeechAmplitude,
      "speech rms %f", speech);
  fail_unless (rms (got + 24000 + 2400, 19200) < 1.0);
  unref_all (out);
}
GST_END_TEST;

GST_START_TEST (test_converts_8k_mono_s16)
{
  Fixture f;
  f.start ("audio/x-raw,format=S16LE,rate=8000,channels=1,layout=interleaved");
  f.push (turn (8000, 1000, 1000), 8000);
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless_equals_int (samples_in (out), 44100);
  std::vector<guint8> raw = f.server.received_audio ();
  gsize n = raw.size () / 2;
  gsize expected = 24000 * 2 + 24000 * 700 / 1000;
  fail_unless (n + 2 >= expected && n <= expected + 2, "got %" G_GSIZE_FORMAT " samples", n);
  const gint16 *got = reinterpret_cast<const gint16 *> (raw.data ());
  double speech = rms (got + 2400, 19200);
  fail_unless (std::fabs (speech - kSpeechAmplitude / std::sqrt (2.0)) < 0.03 * kSpeechAmplitude,
      "speech rms %f", speech);
  unref_all (out);
}
GST_END_TEST;

/* Level (dB re the input) the server receives of a 10 kHz tone at 44.1 kHz:
 * near the resampler's cutoff, where its quality shows. */
static double level_at_10khz (const char *properties)
{
  Fixture f;
  f.make (properties);
  f.start ("audio/x-raw,format=S16LE,rate=44100,channels=1,layout=interleaved");
  f.push (tone (44100, 1000, kSpeechAmplitude, 10000) + silence (44100, 1000), 44100);
  std::vector<GstBuffer *> out = f.end_input ();
  unref_all (out);
  std::vector<guint8> raw = f.server.received_audio ();
  fail_unless (raw.size () >= 2 * 24000);
  double got = rms (reinterpret_cast<const gint16 *> (raw.data ()) + 2400, 19200);
  return 20 * std::log10 (got / (kSpeechAmplitude / std::sqrt (2.0)));
}

/* resample-quality reaches the converter: 0 dulls 10 kHz, 10 keeps it, and
 * the default (3) is flat there within half a dB. */
GST_START_TEST (test_resample_quality)
{
  double fastest = level_at_10khz ("resample-quality=0");
  double best = level_at_10khz ("resample-quality=10");
  double standard = level_at_10khz ("");
  fail_unless (fastest < -4.0, "quality 0: %.2f dB", fastest);
  fail_unless (std::fabs (best) < 0.2, "quality 10: %.2f dB", best);
  fail_unless (std::fabs (standard) < 0.5, "default quality: %.2f dB", standard);
}
GST_END_TEST;

/* Input already in the upstream format is sent byte for byte. */
GST_START_TEST (test_matching_input_goes_through_untouched)
{
  Fixture f;
  f.make ("turn-detection=none chunk-ms=20");
  f.start ();
  std::vector<gint16> in = tone (24000, 300) + tone (24000, 5);  /* ends mid-chunk */
  in[7] = -32768;
  in[8] = 32767;
  f.push (in);
  std::vector<GstBuffer *> out = f.end_input ();
  std::vector<guint8> raw = f.server.received_audio ();
  fail_unless_equals_int (raw.size (), in.size () * 2);
  fail_unless (memcmp (raw.data (), in.data (), raw.size ()) == 0);
  /* 20 ms chunks: 15 whole ones and the 5 ms remainder at EOS. */
  fail_unless_equals_int (count_type (f.server.client_event_types (), "input_audio_buffer.append"), 16);
  unref_all (out);
}
GST_END_TEST;

GST_START_TEST (test_caps_change_mid_stream)
{
  Fixture f;
  f.make ("turn-detection=none");
  f.start ();
  f.push (tone (24000, 400));
  gst_harness_set_src_caps_str (f.h, "audio/x-raw,format=S16LE,rate=16000,channels=1,layout=interleaved");
  f.pushed_frames = 0;
  f.push (tone (16000, 400), 16000);
  std::vector<GstBuffer *> out = f.end_input ();
  gsize n = f.server.received_audio ().size () / 2;
  fail_unless (n + 2 >= 2 * 9600 && n <= 2 * 9600 + 2, "got %" G_GSIZE_FORMAT " samples", n);
  fail_unless_equals_int (samples_in (out), 44100);
  unref_all (out);
}
GST_END_TEST;

static JsonObject *member (JsonObject *o, const char *name)
{
  fail_unless (json_object_has_member (o, name), "no %s", name);
  return json_object_get_object_member (o, name);
}

GST_START_TEST (test_session_update_matches_properties)
{
  Fixture f;
  f.make ("voice=dasha instructions=\"Be brief\" vad-threshold=0.3 silence-duration-ms=600 "
      "prefix-padding-ms=200 create-response=false interrupt-response=false "
      "output-modalities=audio input-rate=16000 output-rate=22050 folder-id=b1gfolder "
      "model=speech-realtime-260528");
  f.start ();
  fail_unless (f.server.wait_for_server_event ("session.updated", 1, 20000));
  std::string json = f.server.session_update_json (0);
  JsonNode *root = json_from_string (json.c_str (), nullptr);
  fail_unless (root != nullptr);
  JsonObject *s = json_node_get_object (root);
  fail_unless_equals_string (json_object_get_string_member (s, "type"), "realtime");
  fail_unless_equals_string (json_object_get_string_member (s, "instructions"), "Be brief");
  JsonArray *mods = json_object_get_array_member (s, "output_modalities");
  fail_unless_equals_int (json_array_get_length (mods), 1);
  fail_unless_equals_string (json_array_get_string_element (mods, 0), "audio");
  JsonObject *in = member (member (s, "audio"), "input");
  JsonObject *out = member (member (s, "audio"), "output");
  fail_unless_equals_int (json_object_get_int_member (member (in, "format"), "rate"), 16000);
  fail_unless_equals_string (json_object_get_string_member (member (in, "format"), "type"), "audio/pcm");
  fail_unless_equals_int (json_object_get_int_member (member (out, "format"), "rate"), 22050);
  fail_unless_equals_string (json_object_get_string_member (out, "voice"), "dasha");
  JsonObject *td = member (in, "turn_detection");
  fail_unless_equals_string (json_object_get_string_member (td, "type"), "server_vad");
  fail_unless_equals_float (json_object_get_double_member (td, "threshold"), 0.3);
  fail_unless_equals_int (json_object_get_int_member (td, "silence_duration_ms"), 600);
  fail_unless_equals_int (json_object_get_int_member (td, "prefix_padding_ms"), 200);
  fail_if (json_object_get_boolean_member (td, "create_response"));
  fail_if (json_object_get_boolean_member (td, "interrupt_response"));
  json_node_unref (root);

  std::string query = f.server.last_request_path_and_query ();
  fail_unless (query.find ("/v1/realtime?model=gpt://b1gfolder/speech-realtime-260528") == 0,
      "%s", query.c_str ());

  /* The src pad produces the requested rate. */
  f.push (turn (16000), 16000);
  std::vector<GstBuffer *> answer = f.end_input ();
  fail_unless_equals_int (samples_in (answer), 22050);
  GstCaps *caps = gst_pad_get_current_caps (f.h->sinkpad);
  gint rate = 0;
  gst_structure_get_int (gst_caps_get_structure (caps, 0), "rate", &rate);
  fail_unless_equals_int (rate, 22050);
  gst_caps_unref (caps);
  unref_all (answer);
}
GST_END_TEST;

GST_START_TEST (test_manual_turns_send_null_turn_detection)
{
  Fixture f;
  f.make ("turn-detection=none");
  f.start ();
  fail_unless (f.server.wait_for_server_event ("session.updated", 1, 20000));
  JsonNode *root = json_from_string (f.server.session_update_json (0).c_str (), nullptr);
  JsonObject *in = member (member (json_node_get_object (root), "audio"), "input");
  fail_unless (json_object_has_member (in, "turn_detection"));
  fail_unless (json_object_get_null_member (in, "turn_detection"));
  json_node_unref (root);
}
GST_END_TEST;

/* Live: an answer starts at the running time it arrived, stays contiguous;
 * GAPs cover idle time; later answers never overlap earlier output. */
GST_START_TEST (test_live_timestamps)
{
  Fixture f;
  f.make ();
  f.start ("audio/x-raw,format=S16LE,rate=24000,channels=1,layout=interleaved", true);
  gst_harness_use_testclock (f.h);
  gst_harness_set_time (f.h, 5 * GST_SECOND);
  gst_harness_set_upstream_latency (f.h, 10 * GST_MSECOND);
  /* upstream 10 ms + chunk-ms 40 + the playout's lateness bound 70 */
  fail_unless_equals_clocktime (gst_harness_query_latency (f.h), 120 * GST_MSECOND);

  f.push (turn (24000));
  GstMessage *done = f.wait_message ("response-done");
  fail_unless (done != nullptr);
  gst_message_unref (done);
  GstClockTime t = 5 * GST_SECOND;
  guint64 total = 0;
  while (total < 44100) {
    GstBuffer *b = pull_buffer (f.h);
    fail_unless_equals_clocktime (GST_BUFFER_PTS (b),
        5 * GST_SECOND + gst_util_uint64_scale (total, GST_SECOND, 44100));
    total += gst_buffer_get_size (b) / 2;
    t = GST_BUFFER_PTS (b) + GST_BUFFER_DURATION (b);
    gst_buffer_unref (b);
  }
  fail_unless_equals_clocktime (t, 6 * GST_SECOND);

  /* Idle until 20 s: GAPs cover it, none covers the answer. */
  gst_harness_set_time (f.h, 20 * GST_SECOND);
  GstClockTime gap_end = 0;
  while (gap_end < 20 * GST_SECOND) {
    GstEvent *ev = gst_harness_pull_event (f.h);
    fail_unless (ev != nullptr);
    if (GST_EVENT_TYPE (ev) == GST_EVENT_GAP) {
      GstClockTime start, duration;
      gst_event_parse_gap (ev, &start, &duration);
      /* Either idle time before the answer (from 0, if the task saw it
       * before the answer came), or after it: from its end on. */
      if (start < 5 * GST_SECOND)
        fail_unless (start == gap_end && start + duration <= 5 * GST_SECOND);
      else
        fail_unless_equals_clocktime (start, MAX (gap_end, t));
      gap_end = start + duration;
    }
    gst_event_unref (ev);
  }
  fail_unless_equals_clocktime (gap_end, 20 * GST_SECOND);

  /* The next answer starts when it arrives: at 20 s. */
  f.push (turn (24000));
  GstBuffer *b = pull_buffer (f.h);
  fail_unless_equals_clocktime (GST_BUFFER_PTS (b), 20 * GST_SECOND);
  gst_buffer_unref (b);
}
GST_END_TEST;

/* Live barge-in: speech over a playing answer drops what was not yet pushed
 * and whatever of it still arrives. */
GST_START_TEST (test_barge_in_drops_the_answer)
{
  emu::TurnScript long_answer;
  long_answer.answer_ms = 5000;
  Fixture f;
  f.server.push_turn (long_answer);
  /* The server keeps sending: dropping is up to the element. */
  f.make ("interrupt-response=false");
  f.start ("audio/x-raw,format=S16LE,rate=24000,channels=1,layout=interleaved", true);
  /* Downstream takes a buffer only when the test pulls one, like a sink
   * playing in real time; the rest waits in the element. */
  gst_harness_set_blocking_push_mode (f.h);
  f.push (turn (24000));
  GstMessage *m = f.wait_message ("response-done");
  std::string victim = gst_structure_get_string (structure (m), "response-id");
  gst_message_unref (m);
  GstBuffer *first = pull_buffer (f.h);
  guint64 heard = gst_buffer_get_size (first) / 2;
  gst_buffer_unref (first);

  f.push (tone (24000, 600));  /* the user talks over it */
  m = f.wait_message ("interrupted");
  const GstStructure *s = structure (m);
  fail_unless_equals_string (gst_structure_get_string (s, "response-id"), victim.c_str ());
  guint64 played_ms;
  fail_unless (gst_structure_get_uint64 (s, "played-ms", &played_ms));
  fail_unless (played_ms == 100 || played_ms == 200, "played %" G_GUINT64_FORMAT, played_ms);
  gst_message_unref (m);

  f.push (silence (24000, 800));  /* ends turn 2; its answer is 1 s */
  fail_unless (gst_harness_push_event (f.h, gst_event_new_eos ()));
  /* What was pushed of answer 1 (played-ms), then answer 2 whole, then EOS. */
  guint64 expected = played_ms * 441 / 10 + 44100;
  std::vector<GstBuffer *> rest;
  while (heard < expected) {
    rest.push_back (pull_buffer (f.h));
    heard += gst_buffer_get_size (rest.back ()) / 2;
  }
  fail_unless_equals_uint64 (heard, expected);
  f.wait_for_eos_event ();
  fail_unless_equals_int (gst_harness_buffers_in_queue (f.h), 0);
  std::vector<guint8> sent = f.server.sent_audio ();
  fail_unless_equals_int (sent.size (), (5 + 1) * 44100 * 2);
  std::vector<guint8> all = concat (rest);
  fail_unless (memcmp (all.data () + all.size () - 44100 * 2,
          sent.data () + sent.size () - 44100 * 2, 44100 * 2) == 0);
  unref_all (rest);
}
GST_END_TEST;

static GstMessage *pop_error (GstBus *bus)
{
  return gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
}

GST_START_TEST (test_missing_credentials)
{
  GstElement *e = gst_element_factory_make ("yandexrealtime", nullptr);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (e, bus);

  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY), GST_STATE_CHANGE_FAILURE);
  GstMessage *msg = pop_error (bus);
  std::string debug = expect_gerror (msg, GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_NOT_AUTHORIZED, "api-key");
  fail_unless (debug.find ("YANDEX_CLOUD_API_KEY") != std::string::npos);
  gst_message_unref (msg);

  /* A key but no folder: the folder is named. */
  g_object_set (e, "api-key", "AQVN-secret-key", nullptr);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY), GST_STATE_CHANGE_FAILURE);
  msg = pop_error (bus);
  debug = expect_gerror (msg, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED, "folder-id");
  fail_unless (debug.find ("YANDEX_CLOUD_FOLDER_ID") != std::string::npos);
  fail_unless (debug.find ("AQVN-secret-key") == std::string::npos);
  gst_message_unref (msg);

  /* The environment counts as well. */
  g_setenv ("YANDEX_CLOUD_FOLDER_ID", "b1gfolder", TRUE);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  g_setenv ("YANDEX_CLOUD_FOLDER_ID", "", TRUE);

  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_set_bus (e, nullptr);
  gst_object_unref (bus);
  gst_object_unref (e);
}
GST_END_TEST;

GST_START_TEST (test_secrets_are_write_only)
{
  GstElement *e = gst_element_factory_make ("yandexrealtime", nullptr);
  for (const char *name : {"api-key", "iam-token"}) {
    GParamSpec *spec = g_object_class_find_property (G_OBJECT_GET_CLASS (e), name);
    fail_unless (spec != nullptr);
    fail_unless (spec->flags & G_PARAM_WRITABLE);
    fail_if (spec->flags & G_PARAM_READABLE, "%s is readable", name);
  }
  gst_object_unref (e);
}
GST_END_TEST;

GST_START_TEST (test_sends_the_credential)
{
  emu::Config config;
  config.api_key = "test-key";
  Fixture f (config);
  f.make ("api-key=test-key");
  f.start ();
  fail_unless (f.server.wait_for_server_event ("session.updated", 1, 20000));
  std::string scheme = f.server.last_authorization_scheme ();
  fail_unless_equals_string (scheme.c_str (), "Api-Key");
}
GST_END_TEST;

GST_START_TEST (test_refused_handshake_is_an_error)
{
  emu::Config config;
  config.api_key = "right-key";
  Fixture f (config);
  f.make ("api-key=wrong-key");
  f.start ();
  GstMessage *msg = nullptr;
  while (!msg)
    msg = gst_bus_timed_pop_filtered (f.bus, 20 * GST_SECOND, GST_MESSAGE_ERROR);
  std::string debug = expect_gerror (msg, GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_NOT_AUTHORIZED, "api-key");
  fail_unless (debug.find ("401") != std::string::npos);
  fail_unless (debug.find ("wrong-key") == std::string::npos);
  gst_message_unref (msg);
}
GST_END_TEST;

GST_START_TEST (test_eos_without_input)
{
  Fixture f;
  f.make ("eos-timeout-ms=600000");
  f.start ();
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless_equals_int (out.size (), 0);
  /* Ended by itself, not by the (ten minute) timeout. */
  fail_unless (gst_bus_pop_filtered (f.bus, GST_MESSAGE_WARNING) == nullptr);
}
GST_END_TEST;

/* Audio pushed before the session exists is held, not lost. */
GST_START_TEST (test_audio_before_session_is_kept)
{
  emu::Config config;
  Fixture f (config);
  f.make ("turn-detection=none");
  f.start ();
  /* Pushed at once, almost surely before session.created; either way the
   * server must receive it all, after the session.update. */
  std::vector<gint16> in = tone (24000, 1000);
  f.push (in);
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless_equals_int (f.server.received_audio ().size (), in.size () * 2);
  std::vector<std::string> types = f.server.client_event_types ();
  fail_unless_equals_string (types.at (0).c_str (), "session.update");
  unref_all (out);
}
GST_END_TEST;

GST_START_TEST (test_flush_restarts_output)
{
  Fixture f;
  f.start ();
  f.push (tone (24000, 200));
  fail_unless (gst_harness_push_event (f.h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (f.h, gst_event_new_flush_stop (TRUE)));
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (f.h, gst_event_new_segment (&segment)));
  f.push (turn (24000));
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless_equals_int (samples_in (out), 44100);
  assert_contiguous_from_zero (out, 44100);
  unref_all (out);
}
GST_END_TEST;

/* Stopping is prompt and clean whatever the element was doing: 50 stops at
 * random moments of the connection (ELEMENT_SEED=<n> draws them from
 * another seed; 42 by default). */
GST_START_TEST (test_state_cycles)
{
  Fixture f;
  const char *env = g_getenv ("ELEMENT_SEED");
  guint32 seed = env ? (guint32) g_ascii_strtoull (env, nullptr, 10) : 42;
  g_printerr ("element: ELEMENT_SEED=%u\n", seed);
  GRand *rand = g_rand_new_with_seed (seed);
  for (int i = 0; i < 50; i++) {
    GstElement *e = gst_element_factory_make ("yandexrealtime", nullptr);
    g_object_set (e, "location", f.server.url ().c_str (), "api-key", "test-key", nullptr);
    GstBus *bus = gst_bus_new ();
    gst_element_set_bus (e, bus);
    fail_unless (gst_element_set_state (e, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    g_usleep (g_rand_int_range (rand, 0, 20000));  /* stop while connecting or connected */
    fail_unless_equals_int (gst_element_set_state (e, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
    GstMessage *error = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    if (error) {
      GError *err;
      gchar *debug;
      gst_message_parse_error (error, &err, &debug);
      fail ("cycle %d: %s (%s)", i, err->message, debug);
    }
    gst_element_set_bus (e, nullptr);
    gst_object_unref (bus);
    gst_object_unref (e);
  }
  g_rand_free (rand);
  /* Every socket was closed. */
  for (int i = 0; i < 200 && f.server.sessions_active () > 0; i++)
    g_usleep (10000);
  fail_unless_equals_int (f.server.sessions_active (), 0);
}
GST_END_TEST;

static Suite *element_suite (void)
{
  Suite *s = suite_create ("yandexrealtime");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_file_turn_drains_at_eos);
  tcase_add_test (tc, test_messages);
  tcase_add_test (tc, test_manual_turn_commits_at_eos);
  tcase_add_test (tc, test_short_manual_input_is_not_committed);
  tcase_add_test (tc, test_create_response_false_asks_for_the_answer);
  tcase_add_test (tc, test_two_turns_back_to_back);
  tcase_add_test (tc, test_non_live_caps_after_the_first_update);
  tcase_add_test (tc, test_odd_deltas_are_joined);
  tcase_add_test (tc, test_text_only_answers);
  tcase_add_test (tc, test_converts_48k_stereo_f32);
  tcase_add_test (tc, test_converts_8k_mono_s16);
  tcase_add_test (tc, test_resample_quality);
  tcase_add_test (tc, test_matching_input_goes_through_untouched);
  tcase_add_test (tc, test_caps_change_mid_stream);
  tcase_add_test (tc, test_session_update_matches_properties);
  tcase_add_test (tc, test_manual_turns_send_null_turn_detection);
  tcase_add_test (tc, test_live_timestamps);
  tcase_add_test (tc, test_barge_in_drops_the_answer);
  tcase_add_test (tc, test_missing_credentials);
  tcase_add_test (tc, test_secrets_are_write_only);
  tcase_add_test (tc, test_sends_the_credential);
  tcase_add_test (tc, test_refused_handshake_is_an_error);
  tcase_add_test (tc, test_eos_without_input);
  tcase_add_test (tc, test_audio_before_session_is_kept);
  tcase_add_test (tc, test_flush_restarts_output);
  tcase_add_test (tc, test_state_cycles);
  return s;
}

GST_CHECK_MAIN (element);
