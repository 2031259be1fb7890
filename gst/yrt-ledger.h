/* InputLedger: the one owner of "what the service has of the user's input,
 * and what a new session must be sent again".
 *
 * Every accepted sample gets an absolute position (samples at input-rate
 * since the stream started).  The ledger keeps every sample from the
 * release point on, together with our commit marks, and hands out what the
 * current session has not been given yet.  The release point only moves
 * past audio the service has provably finished with:
 *  - it has processed it: a session.update sent after it was answered
 *    (the service answers in order, after reading everything before it), or
 *    its VAD reported a position at or beyond it;
 *  - and it is not part of a turn still owed an answer: an open utterance,
 *    a committed turn no response has finished yet, or (manual turns) audio
 *    after our last commit, which sits in the service's uncommitted buffer.
 * When a session is lost, everything from the release point on goes to the
 * next session again, in order, commits included; positions the new
 * session reports (audio_start_ms...) are relative to what it was sent, so
 * they map back through the position it started at.
 *
 * Memory is bounded by `max_ms` of input: non-live input waits at the bound
 * (the dialog asks `full()`); live input, and non-live input whose release
 * waits for more input (a turn longer than the bound), lose protection of
 * the oldest audio instead (`force_release`); a later cut then counts it as
 * lost.
 *
 * Plain data, no locking, no I/O: the dialog guards and drives it. */
#pragma once

#include <glib.h>

#include <deque>
#include <functional>
#include <string>
#include <vector>

namespace yrt {

class InputLedger {
 public:
  /* What to send: a stretch of audio, or our commit after the audio before it. */
  struct Item {
    guint64 position = 0;        /* of the first sample */
    std::vector<guint8> pcm;     /* S16LE mono; empty for a commit */
    bool commit () const { return pcm.empty (); }
    guint64 samples () const { return pcm.size () / 2; }
  };

  /* `padding_ms`: audio kept before an utterance's reported start (the
   * VAD's prefix padding), so a turn sent again is whole.  `detect_ms`: how
   * far behind what the service has heard an utterance may have started
   * without being reported yet. */
  void configure (guint rate, guint max_ms, guint padding_ms, guint detect_ms,
      bool manual_turns);
  void set_manual_turns (bool manual) { manual_ = manual; }
  bool manual_turns () const { return manual_; }
  guint rate () const { return rate_; }
  /* A flush: nothing of the old stream is owed any more. */
  void clear ();

  /* ---- input (streaming thread) ---- */
  void add (const guint8 *pcm, gsize size);
  /* Our input_audio_buffer.commit, after everything added so far. */
  void add_commit ();
  /* Hands `give` what the current session has not been given yet, in order
   * (no copy: this is the hot path); from now on it counts as given. */
  void take_unsent (const std::function<void (const Item &)> &give);
  bool has_unsent () const { return unsent_index_ < items_.size (); }

  /* Samples accepted since the stream started: 0 while no input came. */
  guint64 end () const { return end_; }
  /* Samples added since our last commit mark, input_cleared() or clear():
   * what a commit now would commit. */
  guint64 uncommitted () const { return end_ - uncommitted_from_; }
  guint64 sent_end () const { return sent_end_; }
  guint64 released () const { return released_; }
  guint64 retained () const { return end_ - released_; }
  bool full () const { return retained () >= max_samples_; }
  /* Half full, and a quarter of the bound sent since the last barrier:
   * time to ask the service where it is.  (Not after every answer: a turn
   * that holds the release point keeps the ledger half full.) */
  bool wants_barrier () const
  {
    return retained () >= max_samples_ / 2 && barriers_.empty () &&
        sent_end_ >= last_barrier_ + max_samples_ / 4;
  }
  bool barrier_in_flight () const { return !barriers_.empty (); }

  /* ---- sessions ---- */
  /* The session is lost, or a new one starts: everything retained is to be
   * sent (again), and positions count from the release point.  Returns the
   * samples lost: audio whose protection was given up at the bound before
   * the service was done with it. */
  guint64 rewind ();

  /* ---- what the service reports (worker thread) ---- */
  /* A session.update went out after everything sent so far / its answer. */
  void update_sent ();
  void update_acked ();
  /* Session-relative milliseconds, as in the events. */
  void speech_started (gint64 audio_start_ms, const std::string &item_id);
  void speech_stopped (gint64 audio_end_ms);
  /* `ours`: the answer to our input_audio_buffer.commit. */
  void committed (const std::string &item_id, bool ours);
  /* Our commit was refused (nothing to commit). */
  void commit_refused ();
  /* One of our commits was sent and not yet answered. */
  bool commit_awaited () const { return !commits_.empty (); }
  /* Our commits not yet answered, sent or not. */
  gsize commits_owed () const;
  /* A response started.  One asked for a turn (by us, or by the server's
   * VAD) answers the oldest committed turn no other response answers; the
   * first one after a response that called functions is that turn's
   * follow-up. */
  void response_created (const std::string &response_id, bool for_turn);
  /* A response ended on the service: its turn is answered, unless it called
   * functions (then its follow-up answers it). */
  void response_done (const std::string &response_id, bool has_calls);
  /* input_audio_buffer.clear: what the service held uncommitted is gone. */
  void input_cleared ();

  /* The absolute position of a session-relative millisecond, as in the
   * events (never past what the session was sent). */
  guint64 to_position (gint64 ms) const;

  /* Item IDs of user turns still owed an answer (their audio goes again). */
  std::vector<std::string> unanswered_items () const;

  /* ---- the bound ---- */
  /* Live input during an outage: drop the oldest unsent audio beyond the
   * bound; returns the samples dropped that no session was ever given
   * (what an earlier session was given reached it, short of what was on
   * the wire at the cut). */
  guint64 drop_oldest_unsent ();
  /* Past the bound: give up protecting the oldest audio the service has
   * already processed (never unsent audio), down to half the bound; returns
   * the samples released.  `unheard_too`: live input, which never waits, so
   * memory stays bounded even while the service confirms nothing (a peer
   * that stopped reading). */
  guint64 force_release (bool unheard_too = false);
  /* Everything sent has been processed (a barrier's answer covers it). */
  bool all_heard () const { return heard_ >= sent_end_; }
  /* The release point waits for an answer to a committed turn: that comes
   * without more input, so a writer may wait for it. */
  bool waits_for_answer () const;

 private:
  struct Turn {
    guint64 start = 0;          /* first sample to keep for it */
    guint64 serial = 0;         /* commit order in the session */
    std::string item_id;
    bool claimed = false;       /* a response answers it */
  };

  void release_to (guint64 position);
  void update_release ();
  guint64 natural_release () const;

  guint rate_ = 24000;
  guint64 max_samples_ = 240000;
  guint64 padding_samples_ = 0;
  guint64 detect_samples_ = 0;
  bool manual_ = false;

  std::deque<Item> items_;       /* from released_ on, in order */
  gsize unsent_index_ = 0;       /* first item not given to this session */
  guint64 released_ = 0;
  guint64 sent_end_ = 0;
  guint64 end_ = 0;
  guint64 given_end_ = 0;        /* the most any session was given */
  guint64 natural_ = 0;          /* where the release point would be unforced */
  guint64 uncommitted_from_ = 0; /* end_ at our last commit mark, clear or flush */

  /* The current session. */
  guint64 base_ = 0;             /* position of its first sample */
  guint64 heard_ = 0;            /* it has processed everything before */
  guint64 last_stop_ = 0;        /* end of its last utterance: no turn starts before */
  std::deque<guint64> barriers_; /* sent_end_ of each session.update not answered */
  guint64 last_barrier_ = 0;     /* sent_end_ at the last one */
  bool speech_open_ = false;     /* an utterance started, not yet committed */
  Turn speech_;                  /* that utterance */
  guint64 last_commit_ = 0;      /* position of our last commit given out */
  std::deque<guint64> commits_;  /* start of each of our commits not yet acknowledged */
  guint64 next_serial_ = 0;
  std::deque<Turn> owed_;        /* committed turns no response finished yet */
  struct Pending {
    std::string response_id;
    gint64 turn = -1;            /* serial of the turn it answers, or -1 */
  };
  std::deque<Pending> responses_;
  gint64 followup_ = -1;         /* turn whose response called functions */
};

}  // namespace yrt
