#include "yrt-books.h"

#include <algorithm>

namespace yrt {

void ResponseBooks::reset ()
{
  *this = ResponseBooks ();
}

std::optional<ResponseBooks::Request> ResponseBooks::request (Request request, bool ready)
{
  if (!ready || !active_.empty () || !expected_.empty ()) {
    queued_.push_back (std::move (request));
    return std::nullopt;
  }
  return request;
}

bool ResponseBooks::response_created (const std::string &response_id)
{
  active_for_turn_ = !expected_.empty () && expected_.front ();
  if (!expected_.empty ())
    expected_.pop_front ();
  active_ = response_id;
  return active_for_turn_;
}

void ResponseBooks::response_refused ()
{
  if (!expected_.empty ())
    expected_.pop_front ();
}

void ResponseBooks::response_done (const std::string &response_id)
{
  if (active_ == response_id || active_.empty ())
    active_.clear ();
  else if (!expected_.empty ())
    expected_.pop_front ();  /* done without a created we saw */
  for (Batch &batch : batches_)
    if (batch.response_id == response_id)
      batch.response_done = true;
}

std::optional<ResponseBooks::Request> ResponseBooks::next (bool ready)
{
  if (!ready || queued_.empty () || !active_.empty () || !expected_.empty ())
    return std::nullopt;
  Request request = std::move (queued_.front ());
  queued_.pop_front ();
  return request;
}

std::vector<FunctionCall> ResponseBooks::add_calls (const std::string &response_id,
    const std::vector<FunctionCall> &calls)
{
  auto batch = std::find_if (batches_.begin (), batches_.end (),
      [&] (const Batch &b) { return b.response_id == response_id; });
  if (batch == batches_.end ()) {
    batches_.push_back (Batch {response_id, {}, {}, false});
    batch = batches_.end () - 1;
  }
  std::vector<FunctionCall> fresh;
  for (const FunctionCall &call : calls) {
    auto &ids = batch->call_ids;
    if (std::find (ids.begin (), ids.end (), call.call_id) == ids.end ()) {
      ids.push_back (call.call_id);
      fresh.push_back (call);
    }
  }
  return fresh;
}

ResponseBooks::OutputResult ResponseBooks::set_output (const std::string &call_id,
    const std::string &output)
{
  for (Batch &batch : batches_) {
    if (std::find (batch.call_ids.begin (), batch.call_ids.end (), call_id) ==
        batch.call_ids.end ())
      continue;
    if (batch.outputs.count (call_id))
      return OutputResult::AlreadyAnswered;
    batch.outputs[call_id] = output;
    return OutputResult::Taken;
  }
  return OutputResult::Unknown;
}

/* Once a response has ended and every call of it has its output: the
 * outputs go, in call order, then exactly one response.create. */
std::vector<ResponseBooks::Outputs> ResponseBooks::take_complete_batches ()
{
  std::vector<Outputs> ready;
  for (auto batch = batches_.begin (); batch != batches_.end ();) {
    if (!batch->response_done || batch->outputs.size () < batch->call_ids.size ()) {
      ++batch;
      continue;
    }
    Outputs outputs;
    for (const std::string &call_id : batch->call_ids)
      outputs.emplace_back (call_id, batch->outputs[call_id]);
    ready.push_back (std::move (outputs));
    batch = batches_.erase (batch);
  }
  return ready;
}

std::string ResponseBooks::session_lost (bool draining)
{
  std::string cut = active_;
  if (!cut.empty () && !active_for_turn_)
    queued_.push_front (Request {});
  active_.clear ();
  speech_open_ = false;
  batches_.clear ();
  for (bool for_turn : expected_)
    if (!for_turn)
      queued_.push_back (Request {});
  expected_.clear ();
  queued_.erase (std::remove_if (queued_.begin (), queued_.end (),
      [] (const Request &r) { return r.for_turn; }), queued_.end ());
  session_replaced ();
  if (draining && barrier_ > 0) {
    barrier_ = 0;
    barrier_owed_ = true;
  }
  return cut;
}

bool ResponseBooks::outstanding () const
{
  return speech_open_ || !expected_.empty () || !queued_.empty () || !active_.empty () ||
      !batches_.empty () || barrier_owed_ || updates_acked_ < barrier_;
}

}  // namespace yrt
