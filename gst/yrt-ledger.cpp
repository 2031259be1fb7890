#include "yrt-ledger.h"

#include <algorithm>

namespace yrt {

void InputLedger::configure (guint rate, guint max_ms, guint padding_ms, guint detect_ms,
    bool manual_turns)
{
  rate_ = MAX (rate, 1u);
  max_samples_ = MAX ((guint64) rate_ * max_ms / 1000, 1);
  padding_samples_ = (guint64) rate_ * padding_ms / 1000;
  detect_samples_ = (guint64) rate_ * detect_ms / 1000;
  manual_ = manual_turns;
  end_ = 0;
  clear ();
}

void InputLedger::clear ()
{
  items_.clear ();
  unsent_index_ = 0;
  released_ = sent_end_ = given_end_ = natural_ = uncommitted_from_ = end_;
  rewind ();
}

void InputLedger::add (const guint8 *pcm, gsize size)
{
  if (size < 2)
    return;
  Item item;
  item.position = end_;
  item.pcm.assign (pcm, pcm + size);
  end_ += item.samples ();
  items_.push_back (std::move (item));
}

void InputLedger::add_commit ()
{
  Item mark;
  mark.position = end_;
  items_.push_back (std::move (mark));
  uncommitted_from_ = end_;
}

void InputLedger::take_unsent (const std::function<void (const Item &)> &give)
{
  for (; unsent_index_ < items_.size (); unsent_index_++) {
    const Item &item = items_[unsent_index_];
    if (item.commit ()) {
      commits_.push_back (last_commit_);
      last_commit_ = item.position;
    }
    sent_end_ = item.position + item.samples ();
    given_end_ = MAX (given_end_, sent_end_);
    give (item);
  }
}

guint64 InputLedger::rewind ()
{
  guint64 lost = released_ > natural_ ? released_ - natural_ : 0;
  natural_ = released_;
  unsent_index_ = 0;
  sent_end_ = base_ = heard_ = last_stop_ = last_commit_ = last_barrier_ = released_;
  barriers_.clear ();
  speech_open_ = false;
  speech_ = Turn ();
  commits_.clear ();
  owed_.clear ();
  responses_.clear ();
  followup_ = -1;
  next_serial_ = 0;
  return lost;
}

guint64 InputLedger::to_position (gint64 ms) const
{
  guint64 position = base_ + (guint64) MAX (ms, 0) * rate_ / 1000;
  return MIN (position, sent_end_);
}

void InputLedger::update_sent ()
{
  barriers_.push_back (sent_end_);
  last_barrier_ = sent_end_;
}

void InputLedger::update_acked ()
{
  if (barriers_.empty ())
    return;  /* an answer to an update of an older session, or a repeat */
  heard_ = MAX (heard_, barriers_.front ());
  barriers_.pop_front ();
  update_release ();
}

void InputLedger::speech_started (gint64 audio_start_ms, const std::string &item_id)
{
  guint64 at = to_position (audio_start_ms);
  heard_ = MAX (heard_, at);
  speech_open_ = true;
  /* Its padding, but nothing of the utterance before it. */
  speech_.start = MAX (at > padding_samples_ ? at - padding_samples_ : 0, last_stop_);
  speech_.item_id = item_id;
  update_release ();
}

void InputLedger::speech_stopped (gint64 audio_end_ms)
{
  last_stop_ = MAX (last_stop_, to_position (audio_end_ms));
  heard_ = MAX (heard_, last_stop_);
  update_release ();
}

void InputLedger::committed (const std::string &item_id, bool ours)
{
  Turn turn;
  bool owed = false;
  if (ours && !commits_.empty ()) {
    turn.start = commits_.front ();
    commits_.pop_front ();
    owed = manual_;
  }
  if (speech_open_) {
    turn.start = speech_.start;
    speech_open_ = false;
    owed = true;
  }
  turn.serial = next_serial_++;
  turn.item_id = item_id;
  if (owed)
    owed_.push_back (turn);
  update_release ();
}

void InputLedger::commit_refused ()
{
  if (!commits_.empty ())
    commits_.pop_front ();
}

gsize InputLedger::commits_owed () const
{
  gsize owed = commits_.size ();
  for (gsize i = unsent_index_; i < items_.size (); i++)
    owed += items_[i].commit () ? 1 : 0;
  return owed;
}

void InputLedger::response_created (const std::string &response_id, bool for_turn)
{
  Pending pending {response_id, -1};
  if (followup_ >= 0) {
    pending.turn = followup_;
    followup_ = -1;
  } else if (for_turn) {
    for (Turn &t : owed_) {
      if (!t.claimed) {
        t.claimed = true;
        pending.turn = (gint64) t.serial;
        break;
      }
    }
  }
  responses_.push_back (pending);
}

void InputLedger::response_done (const std::string &response_id, bool has_calls)
{
  auto it = std::find_if (responses_.begin (), responses_.end (),
      [&] (const Pending &p) { return p.response_id == response_id; });
  if (it == responses_.end ())
    return;
  gint64 turn = it->turn;
  responses_.erase (it);
  if (turn < 0)
    return;
  if (has_calls) {
    followup_ = turn;
    return;
  }
  owed_.erase (std::remove_if (owed_.begin (), owed_.end (),
      [turn] (const Turn &t) { return (gint64) t.serial == turn; }), owed_.end ());
  update_release ();
}

void InputLedger::input_cleared ()
{
  /* The service forgot its uncommitted audio; a new session must not get it
   * either.  Committed turns still owed an answer keep theirs. */
  last_commit_ = sent_end_;
  uncommitted_from_ = end_;
  commits_.clear ();
  speech_open_ = false;
  heard_ = MAX (heard_, sent_end_);
  update_release ();
}

std::vector<std::string> InputLedger::unanswered_items () const
{
  std::vector<std::string> ids;
  for (const Turn &t : owed_)
    ids.push_back (t.item_id);
  if (speech_open_)
    ids.push_back (speech_.item_id);
  return ids;
}

guint64 InputLedger::natural_release () const
{
  guint64 r = sent_end_;
  if (manual_) {
    r = MIN (r, last_commit_);
    if (!commits_.empty ())
      r = MIN (r, commits_.front ());
  } else {
    /* A turn may start unreported shortly before what was heard, never
     * before the end of the last utterance. */
    guint64 keep = padding_samples_ + detect_samples_;
    guint64 unsure = heard_ > base_ + keep ? heard_ - keep : base_;
    r = MIN (r, MAX (unsure, last_stop_));
  }
  if (speech_open_)
    r = MIN (r, speech_.start);
  if (!owed_.empty ())
    r = MIN (r, owed_.front ().start);
  return r;
}

bool InputLedger::waits_for_answer () const
{
  return !owed_.empty () && owed_.front ().start <= natural_release ();
}

void InputLedger::update_release ()
{
  natural_ = MAX (natural_, natural_release ());
  release_to (natural_);
}

/* Only what this session was given.  Exact to the sample: the tail of an
 * answered utterance sent again would be a turn of its own. */
void InputLedger::release_to (guint64 position)
{
  while (unsent_index_ > 0 && !items_.empty ()) {
    Item &front = items_.front ();
    guint64 end = front.position + front.samples ();
    if (end > position) {
      if (!front.commit () && front.position < position) {
        front.pcm.erase (front.pcm.begin (), front.pcm.begin () + (position - front.position) * 2);
        front.position = position;
      }
      break;
    }
    items_.pop_front ();
    unsent_index_--;
  }
  released_ = items_.empty () ? end_ : items_.front ().position;
}

guint64 InputLedger::drop_oldest_unsent ()
{
  guint64 dropped = 0;
  while (retained () > max_samples_ && unsent_index_ == 0 && !items_.empty ()) {
    const Item &front = items_.front ();
    guint64 end = front.position + front.samples ();
    if (end > given_end_)
      dropped += end - MAX (front.position, given_end_);
    items_.pop_front ();
    released_ = items_.empty () ? end_ : items_.front ().position;
  }
  natural_ = MAX (natural_, released_);
  sent_end_ = base_ = heard_ = last_stop_ = last_commit_ = released_;
  return dropped;
}

guint64 InputLedger::force_release (bool unheard_too)
{
  guint64 before = released_;
  guint64 target = end_ > max_samples_ / 2 ? end_ - max_samples_ / 2 : 0;
  release_to (MIN (target, unheard_too ? sent_end_ : MIN (heard_, sent_end_)));
  return released_ - before;
}

}  // namespace yrt
