/* Unit tests of ResponseBooks: which response may go when, function-call
 * batches, the drain's barrier, and a lost session.  No network. */
#include "yrt-books.h"

#include <gst/check/gstcheck.h>

using namespace yrt;

namespace {

ResponseBooks::Request for_turn ()
{
  ResponseBooks::Request r;
  r.for_turn = true;
  return r;
}

ResponseBooks::Request with (const char *instructions)
{
  ResponseBooks::Request r;
  r.instructions = instructions;
  return r;
}

FunctionCall call (const char *id)
{
  return FunctionCall {id, "get_weather", "{}", ""};
}

}  // namespace

/* One response at a time: a request while one is expected or active waits,
 * and the next goes when the active one is done. */
GST_START_TEST (test_one_response_at_a_time)
{
  ResponseBooks b;
  auto now = b.request (for_turn (), true);
  fail_unless (now.has_value ());
  b.sent (*now);
  fail_unless (b.outstanding ());
  fail_if (b.request (with ("later"), true).has_value ());
  fail_unless (b.response_created ("r1"));  /* it answers a turn */
  fail_unless_equals_string (b.active ().c_str (), "r1");
  fail_if (b.next (true).has_value ());
  b.response_done ("r1");
  auto next = b.next (true);
  fail_unless (next.has_value () && *next->instructions == "later");
  b.sent (*next);
  fail_if (b.response_created ("r2"));
  b.response_done ("r2");
  fail_if (b.outstanding ());
}
GST_END_TEST;

/* Nothing goes to a session that is not ready: it waits in the queue. */
GST_START_TEST (test_no_session_queues)
{
  ResponseBooks b;
  fail_if (b.request (with ("x"), false).has_value ());
  fail_if (b.next (false).has_value ());
  fail_unless (b.next (true).has_value ());
}
GST_END_TEST;

/* The server's own response after a VAD commit counts as expected; a refusal
 * (conversation_already_has_active_response) takes one back. */
GST_START_TEST (test_server_responses_and_refusals)
{
  ResponseBooks b;
  b.expect_server_response ();
  fail_if (b.request (with ("x"), true).has_value ());
  b.response_refused ();
  fail_unless (b.next (true).has_value ());
}
GST_END_TEST;

/* Calls of one response are answered together, once the response is done
 * and every call has its output; a call is posted once, an output once. */
GST_START_TEST (test_function_call_batches)
{
  ResponseBooks b;
  std::vector<FunctionCall> posted = b.add_calls ("r1", {call ("a")});
  fail_unless_equals_int (posted.size (), 1);
  std::vector<FunctionCall> again = b.add_calls ("r1", {call ("a"), call ("b")});
  fail_unless_equals_int (again.size (), 1);
  fail_unless_equals_string (again[0].call_id.c_str (), "b");
  fail_unless (b.set_output ("b", "B") == ResponseBooks::OutputResult::Taken);
  fail_unless (b.set_output ("b", "B2") == ResponseBooks::OutputResult::AlreadyAnswered);
  fail_unless (b.set_output ("zz", "?") == ResponseBooks::OutputResult::Unknown);
  fail_unless (b.set_output ("a", "A") == ResponseBooks::OutputResult::Taken);
  fail_unless (b.take_complete_batches ().empty ());  /* the response goes on */
  b.response_done ("r1");
  std::vector<ResponseBooks::Outputs> ready = b.take_complete_batches ();
  fail_unless_equals_int (ready.size (), 1);
  fail_unless_equals_int (ready[0].size (), 2);
  fail_unless_equals_string (ready[0][0].first.c_str (), "a");  /* call order */
  fail_unless_equals_string (ready[0][1].second.c_str (), "B");
  fail_unless (b.take_complete_batches ().empty ());
  fail_unless (b.set_output ("a", "late") == ResponseBooks::OutputResult::Unknown);
}
GST_END_TEST;

/* The drain's barrier: owed while no session takes it, then waited for
 * among all updates sent (replies to earlier ones do not count). */
GST_START_TEST (test_drain_barrier_counts_updates)
{
  ResponseBooks b;
  b.owe_barrier ();
  fail_unless (b.outstanding ());
  b.update_sent ();      /* #2 */
  b.barrier_sent ();
  fail_unless (b.outstanding ());
  b.update_acked ();     /* the initial update's reply */
  fail_unless (b.outstanding ());
  b.update_acked ();
  fail_if (b.outstanding ());
}
GST_END_TEST;

/* A lost session: the cut response and expected ones are forgotten when
 * they answered turns (the audio goes again), queued again otherwise; calls
 * go; an awaited barrier is owed again while draining. */
GST_START_TEST (test_session_lost)
{
  ResponseBooks b;
  b.sent (with ("typed"));
  fail_if (b.response_created ("r1"));
  b.expect_server_response ();
  fail_if (b.request (for_turn (), true).has_value ());
  fail_if (b.request (with ("later"), true).has_value ());
  b.add_calls ("r1", {call ("a")});
  b.update_sent ();
  b.barrier_sent ();
  std::string cut = b.session_lost (true);
  fail_unless_equals_string (cut.c_str (), "r1");
  fail_unless (b.barrier_owed ());
  fail_unless (b.set_output ("a", "A") == ResponseBooks::OutputResult::Unknown);
  /* r1 again (it answered no turn), then "later"; not the turn's. */
  auto replayed = b.next (true);
  fail_unless (replayed.has_value () && !replayed->instructions && !replayed->for_turn);
  b.sent (*replayed);
  b.response_created ("r2");
  b.response_done ("r2");
  auto second = b.next (true);
  fail_unless (second.has_value () && *second->instructions == "later");
  b.sent (*second);
  b.response_created ("r3");
  b.response_done ("r3");
  fail_if (b.next (true).has_value ());
}
GST_END_TEST;

static Suite *books_suite (void)
{
  Suite *s = suite_create ("books");
  TCase *tc = tcase_create ("general");
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_one_response_at_a_time);
  tcase_add_test (tc, test_no_session_queues);
  tcase_add_test (tc, test_server_responses_and_refusals);
  tcase_add_test (tc, test_function_call_batches);
  tcase_add_test (tc, test_drain_barrier_counts_updates);
  tcase_add_test (tc, test_session_lost);
  return s;
}

GST_CHECK_MAIN (books);
