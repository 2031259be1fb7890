/* The text outputs: what goes out of text_src (the answers' words, on the
 * src timeline) and transcript_src (the user's words, on the input's
 * running time).
 *  - TextTrack: the queue of one text pad, popped by its task like Playout
 *    (stamped buffers, GAPs while a live pipeline is idle, EOS, flushing).
 *  - Captions and Transcripts: turn output events into stamped text, on the
 *    network thread.
 *  - InputClock: where an input position (samples sent to the service)
 *    was in the input's running time. */
#pragma once

#include "yrt-playout.h"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace yrt {

class TextTrack {
 public:
  ~TextTrack ();

  /* Live: GAPs cover idle time, the first at once (a sink prerolls on it). */
  void configure (bool live);
  /* Any thread.  A buffer never starts before the end of what went out
   * (it is moved up and shortened instead). */
  void push (const std::string &text, GstClockTime pts, GstClockTime duration);
  /* GAPs stop at `limit` (NONE: no limit): text for that time may still
   * come (a transcript of speech in progress). */
  void hold_gaps (GstClockTime limit);
  /* A new peer: live, a GAP goes out at once so it prerolls. */
  void owe_gap ();
  /* EOS after what is queued. */
  void finish ();
  /* End of what was pushed or covered by GAPs. */
  GstClockTime end () const;

  /* The pad's task. */
  PlayoutItem pop (const Playout::Clock &now);
  void set_flushing (bool flushing);
  /* Empty, timeline back at 0 (flush-stop, restart). */
  void reset ();

 private:
  mutable std::mutex lock_;
  std::condition_variable wake_;
  std::deque<GstBuffer *> queue_;
  bool live_ = false;
  bool flushing_ = false;
  bool eos_ = false;
  bool gap_owed_ = false;
  GstClockTime end_ = 0;       /* of the output so far (buffers and GAPs) */
  GstClockTime queued_end_ = 0; /* of what was pushed into the queue */
  GstClockTime limit_ = GST_CLOCK_TIME_NONE;
};

/* Text without audio to span (output-modalities=text, or a turn without
 * speech events) lasts this long plus a little per character. */
GstClockTime reading_time (const std::string &text);

/* text_src: each answer's words span its audio.  A piece waits for the
 * audio that comes with it: when the next piece arrives it goes out from
 * the end of the previous piece to the end of the audio received by then
 * (it waits on while no new audio came), and the last one spans the rest
 * of the answer at response.done.  Network thread only. */
class Captions {
 public:
  explicit Captions (TextTrack &track) : track_ (track) {}
  /* Live text goes out piece by piece; a file's waits for response.done,
   * like its audio, and goes only if the answer completed. */
  void configure (bool live) { live_ = live; }
  void piece (const std::string &response_id, const std::string &text, const Span &audio);
  /* The whole text: used when no piece came before it. */
  void whole (const std::string &response_id, const std::string &text);
  /* The response ended: what waits goes out over the rest of its audio, or,
   * with no audio, at `no_audio_pts` for its reading time. */
  void done (const std::string &response_id, const std::string &status, const Span &audio,
      GstClockTime no_audio_pts);
  void reset ();

 private:
  struct Piece {
    std::string text;
    GstClockTime pts;
    GstClockTime duration;
  };
  void start (const std::string &response_id);
  void stamp (GstClockTime pts, GstClockTime duration);
  TextTrack &track_;
  bool live_ = false;
  std::string response_id_;
  std::string waiting_;
  std::vector<Piece> stamped_;  /* not live: held until response.done */
  bool any_piece_ = false;
  GstClockTime end_ = GST_CLOCK_TIME_NONE;  /* of the last piece stamped */
};

/* transcript_src: the user's final transcript spans the speech, from the
 * service's speech start to its end, mapped to input running time.  GAPs
 * stop at the earliest speech still waiting for its transcript (until an
 * answer ends: a transcript that never comes holds nothing for ever), so
 * it is not behind a GAP.  Speech sent again to a new session after a cut
 * is transcribed again; it goes out once. */
class Transcripts {
 public:
  explicit Transcripts (TextTrack &track) : track_ (track) {}
  void speech_started (const std::string &item_id, GstClockTime at);
  void speech_stopped (const std::string &item_id, GstClockTime at);
  /* The final transcript; without speech times it goes out at `fallback_pts`. */
  void transcript (const std::string &item_id, const std::string &text,
      GstClockTime fallback_pts);
  /* An answer ended: speech that ended before stops holding GAPs. */
  void release ();
  void reset ();

 private:
  struct Speech {
    GstClockTime start;
    GstClockTime end;
    bool settled;  /* transcribed, or no longer waited for */
  };
  void hold ();
  TextTrack &track_;
  std::map<std::string, Speech> speech_;  /* by item ID, recent ones */
  std::deque<std::string> order_;
  GstClockTime transcribed_end_ = GST_CLOCK_TIME_NONE;
};

/* The input's running time at a position of the audio sent to the service
 * (samples at input-rate since the input started, as in the ledger).
 * Anchors are taken by the streaming thread at the first buffer and after
 * every discontinuity (a gap, mute); read from the network thread. */
class InputClock {
 public:
  void configure (guint rate);
  /* The input buffer starting at running time `at` begins at `position`. */
  void anchor (guint64 position, GstClockTime at);
  GstClockTime time_of (guint64 position) const;
  void reset ();

 private:
  struct Anchor {
    guint64 position;
    GstClockTime at;
  };
  mutable std::mutex lock_;
  guint rate_ = 24000;
  std::deque<Anchor> anchors_;
};

}  // namespace yrt
