/* Lose nothing on a cut (docs/reliability.md).  A file of several questions
 * goes to an emulator that reads like a real service (lazily, its VAD at a
 * fixed multiple of real time, so most of the file waits in socket buffers)
 * and drops the connection at a random byte or moment.  Checked by content:
 * the samples every session received, the turns it committed, the answers
 * the output holds (each answer's audio is a constant that names it).
 * Runs with G_DEBUG=fatal-criticals (tests/check/meson.build).
 *
 * YRT_CUT_SEED=<n> repeats a run's random cuts; YRT_CUT_RUNS=<n> sets how
 * many (default 50). */
#include "harness.h"

#include <algorithm>
#include <cstring>

using namespace yrt::test;
namespace emu = yrt::emu;

namespace {

constexpr guint kRate = 24000;
constexpr guint kOutRate = 44100;
constexpr guint kAnswerMs = 1000;
/* What the element sends after the input at EOS: silence-duration-ms
 * (default 400) + 300 ms of silence, so the VAD closes the last turn. */
constexpr guint kTrailMs = 700;

struct Question {
  gsize start, end;  /* samples: first and last speech of it */
};

struct Input {
  std::vector<gint16> pcm;
  std::vector<Question> questions;
};

/* Seeded noise, loud for speech and faint (far below the VAD) for pauses:
 * every stretch is unique, so its content tells where it came from. */
void append_noise (Input &in, GRand *rand, guint ms, gint amplitude)
{
  for (gsize i = 0; i < (gsize) kRate * ms / 1000; i++)
    in.pcm.push_back ((gint16) g_rand_int_range (rand, -amplitude, amplitude + 1));
}

/* Questions of varied length; inside them pauses shorter than
 * silence-duration-ms (the same turn), between them longer ones. */
Input make_input (guint32 seed)
{
  struct Part {
    guint speech_ms, pause_ms;
  };
  const std::vector<std::vector<Part>> questions = {
    {{1200, 250}, {600, 0}},
    {{2000, 0}},
    {{500, 200}, {800, 0}},
    {{3000, 0}},
  };
  const guint gaps_ms[] = {1000, 1500, 700, 600};
  GRand *rand = g_rand_new_with_seed (seed);
  Input in;
  append_noise (in, rand, 500, 20);
  for (gsize q = 0; q < questions.size (); q++) {
    Question question {in.pcm.size (), 0};
    for (const Part &p : questions[q]) {
      append_noise (in, rand, p.speech_ms, 12000);
      question.end = in.pcm.size ();
      append_noise (in, rand, p.pause_ms, 20);
    }
    in.questions.push_back (question);
    append_noise (in, rand, gaps_ms[q], 20);
  }
  g_rand_free (rand);
  return in;
}

bool contains (const std::vector<gint16> &hay, const gint16 *needle, gsize n)
{
  return std::search (hay.begin (), hay.end (), needle, needle + n) != hay.end ();
}

/* A session cut before its first append received nothing: no copy then
 * (memcpy from an empty vector's data (), null, is undefined). */
std::vector<gint16> samples_of (const std::vector<guint8> &bytes)
{
  std::vector<gint16> out (bytes.size () / 2);
  if (!out.empty ())
    memcpy (out.data (), bytes.data (), out.size () * 2);
  return out;
}

/* Every input sample reached some session, in order: each session got one
 * contiguous stretch of the input (plus the trailing silence), and the
 * stretches leave no gap.  Returns the samples no session got. */
guint64 check_sessions_got_everything (const emu::Server &server, const Input &in)
{
  std::vector<gint16> expected = in.pcm;
  expected.resize (in.pcm.size () + (gsize) kRate * kTrailMs / 1000, 0);
  gsize covered = 0;
  guint64 missing = 0;
  for (guint s = 0; s < server.sessions_opened (); s++) {
    std::vector<gint16> got = samples_of (server.received_audio (s));
    if (got.empty ())
      continue;
    /* Where it starts: its first samples are unique in the input. */
    gsize probe = MIN ((gsize) 64, got.size ());
    auto at = std::search (expected.begin (), expected.end (), got.begin (), got.begin () + probe);
    bool only_trail = std::all_of (got.begin (), got.end (), [] (gint16 v) { return v == 0; });
    if (only_trail)
      continue;
    fail_unless (at != expected.end (), "session %u got audio that is not the input's", s);
    gsize start = at - expected.begin ();
    fail_unless (start + got.size () <= expected.size () &&
        std::equal (got.begin (), got.end (), expected.begin () + start),
        "session %u: its audio is not one stretch of the input", s);
    if (start > covered)
      missing += start - covered;
    covered = MAX (covered, start + got.size ());
  }
  if (covered < in.pcm.size ())
    missing += in.pcm.size () - covered;
  return missing;
}

/* The question a committed turn holds whole, or -1. */
gint question_in (const emu::CommittedTurn &turn, const Input &in)
{
  std::vector<gint16> pcm = samples_of (turn.pcm);
  for (gsize q = 0; q < in.questions.size (); q++) {
    const Question &question = in.questions[q];
    if (contains (pcm, in.pcm.data () + question.start, question.end - question.start))
      return (gint) q;
  }
  return -1;
}

/* The turn each response answers.  With file input the element asks for one
 * response per committed turn, in order, each after the previous ended; so in
 * each session the n-th response answers the n-th committed turn.  (The
 * latest user item when a response starts may be a later turn.) */
const emu::CommittedTurn *turn_answered (const std::vector<emu::CommittedTurn> &turns,
    const std::vector<emu::AnswerRecord> &answers, const emu::AnswerRecord &answer)
{
  gsize n = 0;
  for (const emu::AnswerRecord &a : answers) {
    if (&a == &answer)
      break;
    n += a.session == answer.session;
  }
  for (const emu::CommittedTurn &t : turns)
    if (t.session == answer.session && n-- == 0)
      return &t;
  return nullptr;
}

/* What the emulator saw, for failure messages. */
std::string describe (const emu::Server &server, const Input &in)
{
  std::string text;
  for (const emu::CommittedTurn &t : server.committed_turns ())
    text += "\n  s" + std::to_string (t.session) + " turn " + t.item_id + ": " +
        std::to_string (t.pcm.size () / 2 * 1000 / kRate) + " ms, question " +
        std::to_string (question_in (t, in));
  for (const emu::AnswerRecord &a : server.answers ())
    text += "\n  s" + std::to_string (a.session) + " answer " + std::to_string (a.signature) +
        " " + a.status;
  return text;
}

/* The output holds exactly one whole answer per question, in order, each
 * answering a turn that held its question whole. */
void check_one_answer_per_question (const emu::Server &server, const Input &in,
    const std::vector<guint8> &output)
{
  std::vector<emu::CommittedTurn> turns = server.committed_turns ();
  std::vector<emu::AnswerRecord> answers = server.answers ();
  std::vector<gint16> out = samples_of (output);
  std::vector<gint> asked;
  for (gsize pos = 0; pos < out.size ();) {
    gsize end = pos;
    while (end < out.size () && out[end] == out[pos])
      end++;
    guint k = (guint) (out[pos] - 1000);
    fail_unless_equals_int (end - pos, (gsize) kOutRate * kAnswerMs / 1000);
    auto answer = std::find_if (answers.begin (), answers.end (),
        [k] (const emu::AnswerRecord &a) { return a.signature == k; });
    fail_unless (answer != answers.end (), "output holds audio of no answer (%d)", out[pos]);
    fail_unless_equals_string (answer->status.c_str (), "completed");
    const emu::CommittedTurn *turn = turn_answered (turns, answers, *answer);
    fail_unless (turn != nullptr, "answer %u answers no committed turn", k);
    gint q = question_in (*turn, in);
    fail_unless (q >= 0, "answer %u answers a turn that holds no whole question:%s", k,
        describe (server, in).c_str ());
    asked.push_back (q);
    pos = end;
  }
  std::vector<gint> each;
  for (gsize q = 0; q < in.questions.size (); q++)
    each.push_back ((gint) q);
  std::string seen;
  for (gint q : asked)
    seen += std::to_string (q) + " ";
  fail_unless (asked == each, "answers in the output are to questions %s:%s", seen.c_str (),
      describe (server, in).c_str ());
}

guint64 dropped_input (GstElement *element)
{
  return stat_of (element, "dropped-input");
}

/* Whether the element has posted connection state=reconnecting so far. */
bool reconnecting (Fixture &f)
{
  f.warnings ();  /* moves the bus into f.seen */
  for (GstMessage *m : f.seen) {
    const GstStructure *s = gst_message_get_structure (m);
    if (s && gst_structure_has_name (s, "yandexrealtime/connection") &&
        g_strcmp0 (gst_structure_get_string (s, "state"), "reconnecting") == 0)
      return true;
  }
  return false;
}

/* One file through a connection cut as `cut` says; everything checked. */
void run_file (const Input &in, const emu::Faults &cut, const std::string &what)
{
  emu::Config config;
  config.answer_signature = true;
  config.default_turn.answer_ms = kAnswerMs;
  config.faults = cut;
  Fixture f (config);
  f.make ("reconnect-backoff-ms=10");
  f.start ();
  f.push (in.pcm);
  std::vector<GstBuffer *> out = f.end_input ();
  g_printerr ("cuts: %s: %u sessions\n", what.c_str (), f.server.sessions_opened ());
  fail_unless_equals_uint64 (check_sessions_got_everything (f.server, in), 0);
  check_one_answer_per_question (f.server, in, concat (out));
  fail_unless_equals_uint64 (dropped_input (f.element), 0);
  std::vector<std::string> warned = f.warnings ();
  fail_unless (warned.empty (), "%s: warned: %s", what.c_str (),
      warned.empty () ? "" : warned[0].c_str ());
  unref_all (out);
}

guint32 seed ()
{
  const char *env = g_getenv ("YRT_CUT_SEED");
  guint32 s = env ? (guint32) g_ascii_strtoull (env, nullptr, 10) : g_random_int ();
  g_printerr ("cuts: YRT_CUT_SEED=%u\n", s);
  return s;
}

guint runs ()
{
  const char *env = g_getenv ("YRT_CUT_RUNS");
  return env ? (guint) g_ascii_strtoull (env, nullptr, 10) : 50;
}

}  // namespace

/* Without a cut the run is what the others are compared with. */
GST_START_TEST (test_uncut_file_answers_each_question_once)
{
  emu::Faults lazy;
  lazy.read_speed = 10;
  run_file (make_input (1), lazy, "uncut");
}
GST_END_TEST;

/* 50 cuts at random bytes and random moments of the upload, while the
 * service reads at 10x real time and the file arrives far faster. */
GST_START_TEST (test_file_survives_random_cuts)
{
  GRand *rand = g_rand_new_with_seed (seed ());
  Input in = make_input (2);
  /* The upload: base64 of the input plus the JSON around each 40 ms chunk. */
  const guint64 upload = in.pcm.size () * 2 * 4 / 3 + in.pcm.size () / 960 * 60;
  const guint duration_ms = (guint) (in.pcm.size () * 1000 / kRate / 10);
  for (guint i = 0; i < runs (); i++) {
    emu::Faults cut;
    cut.read_speed = 10;
    cut.sessions = 1;
    std::string what;
    if (i % 2 == 0) {
      cut.drop_after_bytes = g_rand_int_range (rand, 1, (gint32) upload);
      what = "cut at byte " + std::to_string (cut.drop_after_bytes);
    } else {
      cut.drop_after_ms = g_rand_int_range (rand, 1, (gint32) duration_ms);
      what = "cut at " + std::to_string (cut.drop_after_ms) + " ms";
    }
    run_file (in, cut, what);
  }
  g_rand_free (rand);
}
GST_END_TEST;

/* Two cuts in one run: the second session is cut too. */
GST_START_TEST (test_file_survives_two_cuts)
{
  GRand *rand = g_rand_new_with_seed (seed ());
  Input in = make_input (3);
  for (guint i = 0; i < 4; i++) {
    emu::Faults cut;
    cut.read_speed = 10;
    cut.sessions = 2;
    cut.drop_after_ms = g_rand_int_range (rand, 100, 900);
    run_file (in, cut, "two cuts at " + std::to_string (cut.drop_after_ms) + " ms");
  }
  g_rand_free (rand);
}
GST_END_TEST;

/* The service at 1x real time, as Yandex's VAD: megabytes wait in buffers
 * when the connection goes. */
GST_START_TEST (test_file_survives_a_cut_at_real_time)
{
  emu::Faults cut;
  cut.read_speed = 1;
  cut.sessions = 1;
  cut.drop_after_ms = 6000;  /* in the third question's turn */
  run_file (make_input (4), cut, "cut at real time");
}
GST_END_TEST;

/* Live input: what was in flight goes again; what falls beyond
 * max-buffer-ms during the outage is lost, and exactly that is counted in
 * dropped-input and announced. */
GST_START_TEST (test_live_loses_only_beyond_the_bound)
{
  emu::Config config;
  config.answer_signature = true;
  config.faults.drop_after_ms = 1500;
  config.faults.sessions = 1;
  Fixture f (config);
  f.make ("max-buffer-ms=2000");
  f.start (kLiveCaps, true);
  fail_unless (f.server.wait_for_server_event ("session.created", 1, 20000));
  /* The delays are random (full jitter): the outage's length, beyond the
   * bound, comes from the service, whose refusal of the first attempt says
   * "not for 3 s" (lifted once it was said).  The first session keeps its
   * cut (sessions = 1: for sessions yet to start). */
  emu::Faults busy;
  busy.refuse_status = 503;
  busy.retry_after = "3";
  busy.sessions = 1;
  f.server.set_faults (busy);
  Input in = make_input (5);
  in.pcm.resize ((gsize) kRate * 7);
  /* A live source: 20 ms buffers at real time.  Once the loss is posted,
   * what the lost session was given is final (nothing is sent during the
   * outage). */
  gint64 t0 = g_get_monotonic_time ();
  const gsize step = kRate / 50;
  bool lifted = false;
  guint64 given_to_lost = 0;
  bool lost = false;
  for (gsize pos = 0; pos < in.pcm.size (); pos += step) {
    if (!lifted && f.server.handshakes ().size () >= 2) {
      lifted = true;
      f.server.set_faults (emu::Faults {});
    }
    gint64 due = t0 + (gint64) (pos * G_USEC_PER_SEC / kRate);
    gint64 now = g_get_monotonic_time ();
    if (due > now)
      g_usleep (due - now);
    std::vector<gint16> chunk (in.pcm.begin () + pos, in.pcm.begin () + pos + step);
    f.push (chunk);
    if (!lost && (lost = reconnecting (f)))
      given_to_lost = gst_util_uint64_scale_round (stat_of (f.element, "audio-sent"), kRate,
          GST_SECOND);
  }
  fail_unless (lost, "the session was not lost while the input played");
  if (!f.server.wait_for_server_event ("session.created", 2, 20000)) {
    std::string seen;
    for (const emu::Handshake &hs : f.server.handshakes ())
      seen += " " + std::to_string (hs.status);
    for (const std::string &w : f.warnings ())
      seen += "; " + w;
    fail ("no second session; handshakes:%s", seen.c_str ());
  }
  std::vector<GstBuffer *> out = f.end_input ();
  guint64 missing = check_sessions_got_everything (f.server, in);
  guint64 dropped = dropped_input (f.element);
  /* What no session got is what was dropped, give or take what was on its
   * way to the lost session when the connection died: sent, not read (a
   * client cannot know how much of that the service read; a prompt reader
   * leaves a chunk at most, a loaded machine more).  The element counts it
   * as received, so it never counts more than was lost. */
  guint64 dropped_samples = gst_util_uint64_scale_round (dropped, kRate, GST_SECOND);
  guint64 read_by_lost = f.server.received_audio (0).size () / 2;
  guint64 unread = given_to_lost > read_by_lost ? given_to_lost - read_by_lost : 0;
  fail_unless (dropped_samples > 0, "the outage was longer than the bound: something must go");
  fail_unless (missing >= dropped_samples && missing <= dropped_samples + unread + kRate / 25,
      "%" G_GUINT64_FORMAT " samples reached no session, %" G_GUINT64_FORMAT " counted, %"
      G_GUINT64_FORMAT " sent to the lost session and not read by it", missing, dropped_samples,
      unread);
  /* Announced: what was dropped, in one warning per outage (also before
   * the first session, if it came later than max-buffer-ms).  A lost
   * session that lagged more than a second behind had its oldest input
   * unprotected; that is announced as part of a turn not sent again. */
  std::vector<std::string> warned = f.warnings ();
  std::string all;
  guint64 announced_ms = 0;
  guint outage_warnings = 0;
  for (const std::string &w : warned) {
    all += "\n  " + w;
    guint64 ms = 0;
    if (sscanf (w.c_str (), "Live input was lost while reconnecting: %*[^\n]\ndropped %"
            G_GUINT64_FORMAT " ms", &ms) == 1) {
      announced_ms += ms;
      outage_warnings++;
    } else {
      fail_unless (g_str_has_prefix (w.c_str (), "Part of a turn could not be sent again") &&
          unread > 0, "unexpected warning:%s", all.c_str ());
    }
  }
  guint64 dropped_ms = dropped_samples * 1000 / kRate;
  fail_unless (outage_warnings >= 1 && announced_ms <= dropped_ms &&
      announced_ms + outage_warnings > dropped_ms, "%" G_GUINT64_FORMAT " ms dropped, warned:%s",
      dropped_ms, all.c_str ());
  unref_all (out);
}
GST_END_TEST;

/* A service that refuses the replayed assistant items (as Yandex reportedly
 * does) still knows the conversation: it goes into the instructions, and
 * the next session gets it there at once. */
GST_START_TEST (test_refused_replay_travels_in_instructions)
{
  emu::Config config;
  config.faults.refuse_assistant_items = true;
  Fixture f (config);
  f.make ("reconnect-backoff-ms=10 instructions=Be\\ brief.");
  f.start ();
  f.push (turn (kRate));
  GstMessage *m = f.wait_message ("response-done");
  fail_unless (m != nullptr);
  gst_message_unref (m);
  for (guint cut = 1; cut <= 2; cut++) {
    f.server.drop_connections ();
    fail_unless (f.server.wait_for_server_event ("session.created", cut + 1, 20000));
    fail_unless (f.server.wait_for_client_event ("session.update", cut + 2, 20000));
  }
  f.push (turn (kRate));
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless_equals_int (samples_in (out), 2 * kOutRate);

  /* First resumed session: items, one refused, then an update that carries
   * the conversation; the second gets it in its first update and no items. */
  std::vector<JsonNode *> updates = events_of (f.server, "session.update");
  auto instructions = [&] (gsize i) {
    JsonObject *s = json_object_get_object_member (json_node_get_object (updates[i]), "session");
    return std::string (json_object_get_string_member (s, "instructions"));
  };
  std::string first_instructions = instructions (0);
  fail_unless_equals_string (first_instructions.c_str (), "Be brief.");
  std::string carried = instructions (2);
  fail_unless (carried.find ("Be brief.") == 0);
  fail_unless (carried.find ("User: turn 1") != std::string::npos, "%s", carried.c_str ());
  fail_unless (carried.find ("Assistant: answer 1") != std::string::npos, "%s", carried.c_str ());
  fail_unless (instructions (3).find ("Assistant: answer 1") != std::string::npos);
  guint assistant_items = 0;
  for (const emu::ClientEvent &ev : f.server.client_events ())
    assistant_items += ev.type == "conversation.item.create" &&
        ev.json.find ("\"assistant\"") != std::string::npos;
  fail_unless_equals_int (assistant_items, 1);
  fail_unless (f.warnings ().empty ());
  free_nodes (updates);
  unref_all (out);
}
GST_END_TEST;

static Suite *cuts_suite (void)
{
  Suite *s = suite_create ("yandexrealtime-cuts");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 600);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_uncut_file_answers_each_question_once);
  tcase_add_test (tc, test_file_survives_random_cuts);
  tcase_add_test (tc, test_file_survives_two_cuts);
  tcase_add_test (tc, test_file_survives_a_cut_at_real_time);
  tcase_add_test (tc, test_live_loses_only_beyond_the_bound);
  tcase_add_test (tc, test_refused_replay_travels_in_instructions);
  return s;
}

GST_CHECK_MAIN (cuts);
