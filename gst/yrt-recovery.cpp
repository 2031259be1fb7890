#include "yrt-recovery.h"

#include <algorithm>

namespace yrt {

void History::add (Role role, const std::string &text, const std::string &item_id)
{
  if (text.empty ())
    return;
  entries_.push_back (Entry {role, text, item_id});
  chars_ += text.size ();
  while (entries_.size () > kMaxEntries || (chars_ > kMaxChars && entries_.size () > 1)) {
    chars_ -= entries_.front ().text.size ();
    entries_.pop_front ();
  }
}

void History::forget (const std::vector<std::string> &item_ids)
{
  for (auto it = entries_.begin (); it != entries_.end ();) {
    if (!it->item_id.empty () &&
        std::find (item_ids.begin (), item_ids.end (), it->item_id) != item_ids.end ()) {
      chars_ -= it->text.size ();
      it = entries_.erase (it);
    } else {
      ++it;
    }
  }
}

std::string History::as_text () const
{
  if (entries_.empty ())
    return {};
  std::string text = "The conversation so far (carried over from an earlier session):";
  for (const Entry &e : entries_)
    text += std::string ("\n") + (e.role == Role::User ? "User: " : "Assistant: ") + e.text;
  return text;
}

}  // namespace yrt
