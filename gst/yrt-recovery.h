/* What a new session needs to carry on where the old one stopped, besides
 * the input (InputLedger): the conversation so far as text.  Plain data, no
 * locking: the dialog guards it. */
#pragma once

#include <glib.h>

#include <deque>
#include <string>
#include <vector>

namespace yrt {

/* The conversation as text, most recent last, bounded. */
class History {
 public:
  enum class Role { User, Assistant };
  struct Entry {
    Role role;
    std::string text;
    std::string item_id;  /* of a user turn's audio, if any */
  };
  void add (Role role, const std::string &text, const std::string &item_id = {});
  /* Drops the transcripts of these items: their audio goes again. */
  void forget (const std::vector<std::string> &item_ids);
  void clear () { entries_.clear (); chars_ = 0; }
  /* "User: …\nAssistant: …", for instructions when items are refused. */
  std::string as_text () const;
  const std::deque<Entry> &entries () const { return entries_; }

 private:
  static constexpr gsize kMaxEntries = 40;
  static constexpr gsize kMaxChars = 16000;
  std::deque<Entry> entries_;
  gsize chars_ = 0;
};

}  // namespace yrt
