/* What a new session needs to carry on where the old one stopped: the audio
 * of the user's turn that the server has not committed yet, and the
 * conversation so far as text.  Plain data, no locking: the dialog guards it. */
#pragma once

#include <glib.h>

#include <deque>
#include <string>
#include <vector>

namespace yrt {

class TurnAudio {
 public:
  void configure (guint rate, guint max_ms);

  /* Audio handed to the current session. */
  void add_sent (const guint8 *pcm, gsize size);
  /* Audio that arrived with no session to take it. */
  void add_unsent (const guint8 *pcm, gsize size);
  /* The server committed the turn: what it was sent is its business now. */
  void committed ();
  void clear ();

  guint64 unsent_samples () const { return unsent_samples_; }
  bool unsent_full () const { return unsent_samples_ >= max_samples_; }
  /* Live input during an outage: forget the oldest unsent audio beyond the
   * bound; returns how many samples went. */
  guint64 drop_oldest_unsent ();
  /* For a new session: everything of the turn, sent before or not, in order;
   * from then on it all counts as sent. */
  std::vector<std::vector<guint8>> take_for_new_session ();

 private:
  using Chunk = std::vector<guint8>;
  void trim_sent ();

  guint64 max_samples_ = 240000;
  std::deque<Chunk> sent_;
  guint64 sent_samples_ = 0;
  std::deque<Chunk> unsent_;
  guint64 unsent_samples_ = 0;
};

/* The conversation as text, most recent last, bounded. */
class History {
 public:
  enum class Role { User, Assistant };
  struct Entry {
    Role role;
    std::string text;
  };
  void add (Role role, const std::string &text);
  void clear () { entries_.clear (); chars_ = 0; }
  const std::deque<Entry> &entries () const { return entries_; }

 private:
  static constexpr gsize kMaxEntries = 40;
  static constexpr gsize kMaxChars = 16000;
  std::deque<Entry> entries_;
  gsize chars_ = 0;
};

}  // namespace yrt
