/* Unit tests of InputLedger: what the service has of the input and what a
 * new session must be sent again.  No network: the tests play the service's
 * reports by hand.  Rate 1000 Hz, so one sample is one millisecond. */
#include "yrt-ledger.h"

#include <gst/check/gstcheck.h>

using namespace yrt;

namespace {

constexpr guint kRate = 1000;

/* `ms` samples in 50 ms chunks (as the uplink cuts them), each sample its
 * own position (mod 32768): content tells where a stretch came from. */
void add_ms (InputLedger &l, guint ms)
{
  for (guint done = 0; done < ms; done += 50) {
    std::vector<gint16> pcm (MIN (50u, ms - done));
    for (gsize i = 0; i < pcm.size (); i++)
      pcm[i] = (gint16) ((l.end () + i) & 0x7fff);
    l.add ((const guint8 *) pcm.data (), pcm.size () * 2);
  }
}

/* What take_unsent() hands out, as [first sample, end) and commits. */
struct Given {
  guint64 first = G_MAXUINT64;
  guint64 end = 0;
  guint commits = 0;
  std::vector<guint64> commit_at;
};

Given give (InputLedger &l)
{
  Given g;
  guint64 expected = G_MAXUINT64;
  l.take_unsent ([&] (const InputLedger::Item &item) {
    if (item.commit ()) {
      g.commits++;
      g.commit_at.push_back (item.position);
      return;
    }
    fail_unless (item.samples () > 0, "an item of %zu bytes", item.pcm.size ());
    const gint16 *s = (const gint16 *) item.pcm.data ();
    fail_unless_equals_int (s[0], (gint) (item.position & 0x7fff));
    if (expected != G_MAXUINT64)
      fail_unless_equals_uint64 (item.position, expected);
    expected = item.position + item.samples ();
    g.first = MIN (g.first, item.position);
    g.end = expected;
  });
  return g;
}

/* Prefix padding `padding_ms`, detection delay 200 ms. */
InputLedger make (bool manual = false, guint max_ms = 10000, guint padding_ms = 300)
{
  InputLedger l;
  l.configure (kRate, max_ms, padding_ms, 200, manual);
  return l;
}

}  // namespace

/* Nothing is let go that the service has not answered for. */
GST_START_TEST (test_unconfirmed_audio_goes_again)
{
  InputLedger l = make ();
  for (int i = 0; i < 10; i++)
    add_ms (l, 100);
  Given g = give (l);
  fail_unless_equals_uint64 (g.first, 0);
  fail_unless_equals_uint64 (g.end, 1000);
  fail_unless_equals_uint64 (l.released (), 0);
  /* The connection is cut: all of it goes to the next session. */
  fail_unless_equals_uint64 (l.rewind (), 0);
  g = give (l);
  fail_unless_equals_uint64 (g.first, 0);
  fail_unless_equals_uint64 (g.end, 1000);
}
GST_END_TEST;

/* A barrier's answer confirms what went before it, less what a turn that is
 * just starting may still claim. */
GST_START_TEST (test_barrier_releases_silence)
{
  InputLedger l = make ();
  for (int i = 0; i < 20; i++)
    add_ms (l, 100);
  give (l);
  l.update_sent ();
  fail_unless (l.barrier_in_flight ());
  add_ms (l, 100);
  give (l);
  l.update_acked ();
  fail_unless_equals_uint64 (l.released (), 2000 - 300 - 200);
  l.rewind ();
  Given g = give (l);
  fail_unless_equals_uint64 (g.first, 1500);
  fail_unless_equals_uint64 (g.end, 2100);
}
GST_END_TEST;

/* A VAD turn is kept from before its start until a response to it is done;
 * positions reported by a later session map through where it started. */
GST_START_TEST (test_turn_kept_until_answered)
{
  InputLedger l = make (false, 60000, 300);
  for (int i = 0; i < 50; i++)
    add_ms (l, 100);
  give (l);
  l.speech_started (1000, "item_1");
  l.speech_stopped (2000);
  l.update_sent ();
  l.update_acked ();
  fail_unless_equals_uint64 (l.released (), 700);  /* 1000 - padding */
  l.committed ("item_1", false);
  l.response_created ("resp_1", true);
  fail_unless_equals_uint64 (l.released (), 700);
  std::vector<std::string> owed = l.unanswered_items ();
  fail_unless_equals_int (owed.size (), 1);
  fail_unless_equals_string (owed[0].c_str (), "item_1");

  /* Cut before the answer: the turn goes again, and the new session's
   * positions count from 700. */
  l.rewind ();
  Given g = give (l);
  fail_unless_equals_uint64 (g.first, 700);
  l.speech_started (300, "item_9");  /* 700 + 300 = 1000 */
  l.speech_stopped (1300);
  l.committed ("item_9", false);
  l.response_created ("resp_9", true);
  l.response_done ("resp_9", false);
  /* Answered: released up to the end of the utterance (never into it, or a
   * later cut would send its tail as a turn of its own). */
  fail_unless_equals_uint64 (l.released (), 700 + 1300);
  fail_unless (l.unanswered_items ().empty ());
}
GST_END_TEST;

/* A response with function calls answers nothing yet; its follow-up does. */
GST_START_TEST (test_function_calls_keep_the_turn)
{
  InputLedger l = make (false, 60000, 0);
  add_ms (l, 3000);
  give (l);
  l.speech_started (500, "item_1");
  l.speech_stopped (1500);
  l.committed ("item_1", false);
  l.response_created ("calls", true);
  l.response_done ("calls", true);
  fail_unless_equals_uint64 (l.released (), 500);  /* the turn's start */
  l.response_created ("follow-up", false);
  l.response_done ("follow-up", false);
  fail_unless_equals_uint64 (l.released (), 1500);
}
GST_END_TEST;

/* Manual turns: everything after our last commit sits in the service's
 * buffer; a committed turn stays until answered; commits go again in order. */
GST_START_TEST (test_manual_commits_replay_in_order)
{
  InputLedger l = make (true, 60000, 0);
  add_ms (l, 1000);
  l.add_commit ();
  add_ms (l, 500);
  Given g = give (l);
  fail_unless_equals_int (g.commits, 1);
  fail_unless_equals_uint64 (g.commit_at[0], 1000);
  fail_unless_equals_int (l.commits_owed (), 1);
  fail_unless (l.commit_awaited ());
  l.update_sent ();
  l.update_acked ();
  fail_unless_equals_uint64 (l.released (), 0);
  l.committed ("item_1", true);
  fail_unless_equals_int (l.commits_owed (), 0);
  l.response_created ("r1", true);
  /* Cut while it is answered: the turn, its commit, and what came after. */
  l.rewind ();
  g = give (l);
  fail_unless_equals_uint64 (g.first, 0);
  fail_unless_equals_uint64 (g.end, 1500);
  fail_unless_equals_int (g.commits, 1);
  fail_unless_equals_uint64 (g.commit_at[0], 1000);
  l.committed ("item_2", true);
  l.response_created ("r2", true);
  l.response_done ("r2", false);
  /* Answered: the turn and its commit go; the uncommitted rest stays. */
  fail_unless_equals_uint64 (l.released (), 1000);
  l.rewind ();
  g = give (l);
  fail_unless_equals_uint64 (g.first, 1000);
  fail_unless_equals_int (g.commits, 0);
}
GST_END_TEST;

/* The bound: non-live input asks for room; a turn longer than the bound
 * gives up the protection of its oldest audio once the service has heard it,
 * and a later cut counts that as lost. */
GST_START_TEST (test_bound_and_forced_release)
{
  InputLedger l = make (false, 1000, 0);
  add_ms (l, 400);
  give (l);
  fail_if (l.wants_barrier ());
  add_ms (l, 200);
  give (l);
  fail_unless (l.wants_barrier ());
  l.speech_started (100, "long");
  add_ms (l, 500);
  give (l);
  fail_unless (l.full ());
  l.update_sent ();
  l.update_acked ();
  fail_unless_equals_uint64 (l.released (), 100);  /* the turn holds the rest */
  fail_unless (l.full ());
  fail_unless (l.all_heard ());
  fail_if (l.waits_for_answer ());  /* only more input ends this turn */
  fail_unless (l.force_release () > 0);
  fail_if (l.full ());
  fail_unless_equals_uint64 (l.released (), 600);  /* down to half the bound */
  /* 100..600 was the turn's: lost if the connection goes now. */
  fail_unless_equals_uint64 (l.rewind (), 500);
  fail_unless_equals_uint64 (l.rewind (), 0);
}
GST_END_TEST;

/* Live input during an outage: the oldest beyond the bound goes, counted. */
GST_START_TEST (test_outage_drops_oldest_unsent)
{
  InputLedger l = make (false, 1000, 0);
  add_ms (l, 500);
  give (l);
  l.rewind ();  /* cut */
  for (int i = 0; i < 15; i++)
    add_ms (l, 100);
  /* 1000 go; the first 500 of them had reached the lost session. */
  fail_unless_equals_uint64 (l.drop_oldest_unsent (), 500);
  Given g = give (l);
  fail_unless_equals_uint64 (g.first, 1000);
  fail_unless_equals_uint64 (g.end, 2000);
}
GST_END_TEST;

/* A flush forgets the stream: nothing of it goes again. */
GST_START_TEST (test_clear_forgets)
{
  InputLedger l = make ();
  add_ms (l, 500);
  l.add_commit ();
  give (l);
  l.clear ();
  fail_unless_equals_uint64 (l.retained (), 0);
  fail_unless_equals_int (l.commits_owed (), 0);
  fail_if (l.has_unsent ());
  l.rewind ();
  fail_if (l.has_unsent ());
}
GST_END_TEST;

/* One response per turn: a response that starts when two turns are
 * committed answers the older one only; a response asked for no turn (a
 * typed message) answers none. */
GST_START_TEST (test_each_response_answers_one_turn)
{
  InputLedger l = make (false, 60000, 0);
  add_ms (l, 6000);
  give (l);
  l.speech_started (1000, "q1");
  l.speech_stopped (1500);
  l.committed ("q1", false);
  l.speech_started (3000, "q2");
  l.speech_stopped (3500);
  l.committed ("q2", false);
  l.response_created ("text", false);
  l.response_done ("text", false);
  fail_unless_equals_int (l.unanswered_items ().size (), 2);
  l.response_created ("a1", true);
  l.response_done ("a1", false);
  std::vector<std::string> owed = l.unanswered_items ();
  fail_unless_equals_int (owed.size (), 1);
  fail_unless_equals_string (owed[0].c_str (), "q2");
  fail_unless_equals_uint64 (l.released (), 3000);
  l.response_created ("a2", true);
  l.response_done ("a2", false);
  fail_unless (l.unanswered_items ().empty ());
  fail_unless_equals_uint64 (l.released (), 3500);
}
GST_END_TEST;

/* A turn keeps its padding, but never the end of the utterance before it:
 * sent again, that would be a turn of its own. */
GST_START_TEST (test_padding_stops_at_the_last_utterance)
{
  InputLedger l = make (false, 60000, 300);
  add_ms (l, 4000);
  give (l);
  l.speech_started (500, "q1");
  l.speech_stopped (1500);
  l.committed ("q1", false);
  l.response_created ("a1", true);
  l.response_done ("a1", false);
  l.speech_started (1650, "q2");  /* 150 ms after q1: padding reaches into it */
  fail_unless_equals_uint64 (l.released (), 1500);
  l.rewind ();
  fail_unless_equals_uint64 (give (l).first, 1500);
}
GST_END_TEST;

/* Released to the sample, whatever the chunks: what goes again starts
 * exactly where the service's last utterance ended. */
GST_START_TEST (test_release_is_sample_exact)
{
  InputLedger l = make (false, 60000, 0);
  add_ms (l, 3000);
  give (l);
  l.speech_started (1010, "q");
  l.speech_stopped (1987);
  l.committed ("q", false);
  fail_unless_equals_uint64 (l.released (), 1010);
  l.response_created ("a", true);
  l.response_done ("a", false);
  fail_unless_equals_uint64 (l.released (), 1987);
  l.rewind ();
  Given g = give (l);
  fail_unless_equals_uint64 (g.first, 1987);
  fail_unless_equals_uint64 (g.end, 3000);
}
GST_END_TEST;

/* Barriers: half the bound unconfirmed, and a quarter of it sent since the
 * last one (a turn that holds the release point keeps the ledger half full:
 * not a barrier per round trip). */
GST_START_TEST (test_barriers_are_spaced)
{
  InputLedger l = make (true, 1000, 0);  /* manual: only commits release */
  add_ms (l, 600);
  give (l);
  fail_unless (l.wants_barrier ());
  l.update_sent ();
  fail_if (l.wants_barrier ());  /* one in flight */
  l.update_acked ();
  add_ms (l, 200);
  give (l);
  fail_if (l.wants_barrier ());  /* 200 < 250 since the last */
  add_ms (l, 50);
  give (l);
  fail_unless (l.wants_barrier ());
}
GST_END_TEST;

/* Live input never waits: past the bound its oldest audio goes even when
 * the service confirmed nothing (memory stays bounded); file input keeps
 * what the service has not heard. */
GST_START_TEST (test_live_bound_holds_without_confirmation)
{
  InputLedger l = make (false, 1000, 0);
  add_ms (l, 1500);
  give (l);
  fail_unless (l.full ());
  fail_unless_equals_uint64 (l.force_release (), 0);  /* nothing heard */
  fail_unless (l.force_release (true) > 0);
  fail_unless_equals_uint64 (l.retained (), 500);
  fail_unless_equals_uint64 (l.rewind (), 1000);  /* lost if cut now */
}
GST_END_TEST;

/* What a commit now would commit: the input since our last commit mark,
 * input_cleared or a flush, whether sent, released or dropped at the bound
 * since (the EOS drain decides by it whether a manual turn is left). */
GST_START_TEST (test_uncommitted_counts_since_the_last_mark)
{
  InputLedger l = make (true, 1000);
  fail_unless_equals_uint64 (l.end (), 0);
  fail_unless_equals_uint64 (l.uncommitted (), 0);
  fail_unless (l.manual_turns ());
  fail_unless_equals_int (l.rate (), kRate);
  add_ms (l, 300);
  fail_unless_equals_uint64 (l.uncommitted (), 300);
  l.add_commit ();
  fail_unless_equals_uint64 (l.uncommitted (), 0);
  add_ms (l, 200);
  give (l);
  fail_unless_equals_uint64 (l.uncommitted (), 200);
  /* A cut sends it again, but it is no more than it was. */
  l.rewind ();
  give (l);
  fail_unless_equals_uint64 (l.uncommitted (), 200);
  l.input_cleared ();
  fail_unless_equals_uint64 (l.uncommitted (), 0);
  /* Past the bound, during an outage: the oldest goes, the count stays. */
  l.rewind ();
  add_ms (l, 1500);
  fail_unless (l.drop_oldest_unsent () > 0);
  fail_unless_equals_uint64 (l.uncommitted (), 1500);
  l.clear ();
  fail_unless_equals_uint64 (l.uncommitted (), 0);
  fail_unless_equals_uint64 (l.end (), 2000);  /* positions go on */
  l.set_manual_turns (false);
  fail_if (l.manual_turns ());
}
GST_END_TEST;

static Suite *ledger_suite (void)
{
  Suite *s = suite_create ("ledger");
  TCase *tc = tcase_create ("general");
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_unconfirmed_audio_goes_again);
  tcase_add_test (tc, test_barrier_releases_silence);
  tcase_add_test (tc, test_turn_kept_until_answered);
  tcase_add_test (tc, test_function_calls_keep_the_turn);
  tcase_add_test (tc, test_each_response_answers_one_turn);
  tcase_add_test (tc, test_release_is_sample_exact);
  tcase_add_test (tc, test_barriers_are_spaced);
  tcase_add_test (tc, test_live_bound_holds_without_confirmation);
  tcase_add_test (tc, test_padding_stops_at_the_last_utterance);
  tcase_add_test (tc, test_manual_commits_replay_in_order);
  tcase_add_test (tc, test_bound_and_forced_release);
  tcase_add_test (tc, test_outage_drops_oldest_unsent);
  tcase_add_test (tc, test_clear_forgets);
  tcase_add_test (tc, test_uncommitted_counts_since_the_last_mark);
  return s;
}

GST_CHECK_MAIN (ledger);
