#include "yrt-recovery.h"

namespace yrt {

void TurnAudio::configure (guint rate, guint max_ms)
{
  max_samples_ = MAX ((guint64) rate * max_ms / 1000, 1);
  clear ();
}

void TurnAudio::add_sent (const guint8 *pcm, gsize size)
{
  sent_.emplace_back (pcm, pcm + size);
  sent_samples_ += size / 2;
  trim_sent ();
}

void TurnAudio::add_unsent (const guint8 *pcm, gsize size)
{
  unsent_.emplace_back (pcm, pcm + size);
  unsent_samples_ += size / 2;
}

/* A turn longer than the bound loses its start on a reconnect, not the
 * memory bound. */
void TurnAudio::trim_sent ()
{
  while (sent_samples_ > max_samples_ && !sent_.empty ()) {
    sent_samples_ -= sent_.front ().size () / 2;
    sent_.pop_front ();
  }
}

void TurnAudio::committed ()
{
  sent_.clear ();
  sent_samples_ = 0;
}

void TurnAudio::clear ()
{
  committed ();
  unsent_.clear ();
  unsent_samples_ = 0;
}

guint64 TurnAudio::drop_oldest_unsent ()
{
  guint64 dropped = 0;
  while (unsent_samples_ > max_samples_ && !unsent_.empty ()) {
    guint64 n = unsent_.front ().size () / 2;
    unsent_samples_ -= n;
    dropped += n;
    unsent_.pop_front ();
  }
  return dropped;
}

std::vector<std::vector<guint8>> TurnAudio::take_for_new_session ()
{
  std::vector<Chunk> all (sent_.begin (), sent_.end ());
  for (Chunk &c : unsent_)
    all.push_back (c);
  for (Chunk &c : unsent_)
    sent_.push_back (std::move (c));
  sent_samples_ += unsent_samples_;
  unsent_.clear ();
  unsent_samples_ = 0;
  trim_sent ();
  return all;
}

void History::add (Role role, const std::string &text)
{
  if (text.empty ())
    return;
  entries_.push_back (Entry {role, text});
  chars_ += text.size ();
  while (entries_.size () > kMaxEntries || (chars_ > kMaxChars && entries_.size () > 1)) {
    chars_ -= entries_.front ().text.size ();
    entries_.pop_front ();
  }
}

}  // namespace yrt
