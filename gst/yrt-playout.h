/* Playout: the answer audio between the network thread and the src pad task.
 * Reassembles samples split across deltas, forgets audio of interrupted or
 * cancelled answers, and stamps what leaves the src pad:
 *  - non-live: one contiguous timeline from 0, answers back to back;
 *  - live: an answer starts at the running time its first delta arrived (never
 *    before the end of earlier output) and stays contiguous; GAPs cover idle
 *    time so sinks and mixers never wait on us. */
#pragma once

#include "yrt-resample.h"

#include <gst/gst.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace yrt {

struct PlayoutItem {
  /* Flush: push flush-stop after a barge-in's flush-start (Outputs::flush_src),
   * so downstream takes data again. */
  enum class Kind { Buffer, Gap, Flush, Eos, Flushing } kind = Kind::Flushing;
  GstBuffer *buffer = nullptr;  /* owned by the receiver */
  GstClockTime gap_start = GST_CLOCK_TIME_NONE;
  GstClockTime gap_duration = GST_CLOCK_TIME_NONE;
};

/* Live idle time: the GAP from `end` (the end of the output so far) to
 * `now`, when `owed` (a sink waits to preroll) or at least kMinGap long, but
 * never past `limit`.  Advances `end` and clears `owed` when it returns true. */
bool idle_gap (GstClockTime &end, bool &owed, GstClockTime now, PlayoutItem &gap,
    GstClockTime limit = GST_CLOCK_TIME_NONE);
/* How often an idle live task looks at the clock for a GAP while an answer
 * plays (its audio may resume: the lateness bound), and once the GAP after
 * it went out (the next answer gets a GAP up to its start when it comes). */
constexpr guint kIdlePollMs = 50;
constexpr guint kIdleHeartbeatMs = 200;

/* Where an answer's audio lies on the src timeline. */
struct Span {
  GstClockTime start = GST_CLOCK_TIME_NONE;  /* NONE: no audio yet */
  GstClockTime end = GST_CLOCK_TIME_NONE;    /* of the audio received so far */
};

/* What barge-in took away. */
struct Interruption {
  std::string response_id;
  std::string item_id;
  GstClockTime first_pts = GST_CLOCK_TIME_NONE;  /* of that answer's first sample */
  guint64 pushed_samples = 0;   /* of that item, already downstream */
  guint64 received_samples = 0; /* of that item, received from the server */
  guint64 dropped_samples = 0;  /* queued audio thrown away */
};

class Playout {
 public:
  using Clock = std::function<GstClockTime ()>;  /* running time, or NONE */

  ~Playout ();

  /* `rate`: the src pad's.  Audio arrives at `source_rate` (0: the same)
   * and is converted at resampler `quality` (0-10). */
  void configure (guint rate, bool live);
  void set_source_rate (guint source_rate, guint quality = GST_AUDIO_RESAMPLER_QUALITY_DEFAULT);
  /* Live: how much later than its timestamp the src task may push audio (a
   * delta of a playing answer that comes just before a GAP would be due is
   * stamped on after the previous one).  Part of the element's LATENCY
   * answer, so that sinks, and echo probes going by the timestamps, play it
   * when it says. */
  static GstClockTime max_lateness ();
  guint rate () const { return rate_; }

  /* Network thread. */
  /* `data` at the source rate.  Returns the number of samples queued at the
   * src pad's rate (0 if the response is ignored). */
  gsize push_audio (const std::string &response_id, const std::string &item_id,
      const guint8 *data, gsize size, GstClockTime arrival);
  /* Audio of `response_id` still to come is ignored from now on; with
   * `drop_queued`, so is what is queued of it. */
  void ignore_response (const std::string &response_id, bool drop_queued = true);
  bool is_ignored (const std::string &response_id) const;
  /* Barge-in: drops queued audio and ignores the rest of every answer that
   * had audio queued or playing.  False when nothing was playing: nothing
   * queued, and the last audio pushed ended (plus downstream `latency`)
   * before running time `now` (when known). */
  bool interrupt (Interruption &out, GstClockTime now, GstClockTime latency);
  /* The last audio of `response_id` has arrived (output_audio.done): what
   * the resampler holds of it goes out too. */
  void end_audio (const std::string &response_id);
  /* Non-live output is a file being written: an answer goes out only once
   * the service finished it, so one cut short by a lost connection (and
   * asked for again) never leaves half of itself in the output. */
  void complete_response (const std::string &response_id);
  /* A new session: response IDs may repeat, so forget every answer that has
   * nothing queued, and the ignored ones. */
  void new_session ();
  /* Has the src task push FLUSH_STOP before anything else (FLUSH_START went
   * down already). */
  void flush_downstream ();
  /* EOS goes out after everything queued so far. */
  void finish ();
  guint64 received_samples (const std::string &response_id) const;
  /* Half-duplex: the stretch of the timeline the audio pushed last covers,
   * from the first sample pushed after the output was idle to the end of the
   * last one.  False before any audio since the last reset. */
  bool pushed_span (GstClockTime &start, GstClockTime &end) const;
  /* The audio of `response_id` received so far, where it goes (or went) on
   * the src timeline; the captions of text_src are stamped with it. */
  Span answer_span (const std::string &response_id) const;
  /* End of the src timeline as planned: pushed and queued audio. */
  GstClockTime planned_end () const;

  /* Src pad task: blocks until there is something to do. */
  PlayoutItem pop (const Clock &now);
  void set_flushing (bool flushing);
  /* Back to an empty queue and a timeline at 0 (flush-stop, restart). */
  void reset ();

 private:
  struct Chunk {
    std::string response_id;
    std::string item_id;
    GstBuffer *buffer;
    GstClockTime arrival;
  };
  struct Answer {
    std::string response_id;
    std::string item_id;
    guint64 received = 0;
    guint64 pushed = 0;
    GstClockTime first_pts = GST_CLOCK_TIME_NONE;
    GstClockTime planned_start = GST_CLOCK_TIME_NONE;  /* of its first sample */
    bool has_odd_byte = false;
    guint8 odd_byte = 0;
    bool complete = false;     /* non-live: may go out */
  };

  Answer *find_answer (const std::string &response_id);
  const Answer *find_answer (const std::string &response_id) const;
  PlayoutItem stamp (Chunk chunk);
  bool gap_before (const Chunk &chunk, PlayoutItem &gap);
  bool starts_answer (const Chunk &chunk) const;
  GstClockTime planned_end_locked () const;
  bool may_go_out (const Chunk &chunk) const;
  Answer &remember (const std::string &response_id, const std::string &item_id);
  gsize convert_locked (const std::string &response_id, const guint8 *data, gsize size,
      GstClockTime arrival);
  void enqueue_locked (const std::string &response_id, const gint16 *pcm, gsize n,
      GstClockTime arrival);
  void end_audio_locked (const std::string &response_id);
  void reconfigure_resampler_locked ();
  void clear_queue ();

  mutable std::mutex lock_;
  std::condition_variable wake_;
  guint rate_ = 44100;
  guint source_rate_ = 0;   /* 0: rate_ */
  guint quality_ = GST_AUDIO_RESAMPLER_QUALITY_DEFAULT;
  PcmResampler resampler_;
  bool live_ = false;
  bool flushing_ = false;
  bool eos_ = false;
  bool flush_ = false;
  bool gap_owed_ = false;  /* live: a GAP goes out before waiting for audio */
  std::deque<Chunk> queue_;
  std::deque<Answer> answers_;             /* recent answers, newest last */
  std::deque<std::string> ignored_;        /* recent ignored response ids */
  std::string playing_;                    /* response whose audio went out last */
  guint64 offset_ = 0;                     /* samples pushed since the timeline start */
  GstClockTime next_ts_ = 0;               /* end of the output so far */
  GstClockTime audio_end_ = 0;             /* end of the last audio pushed */
  GstClockTime span_start_ = GST_CLOCK_TIME_NONE;  /* first pts of audio pushed since idle */
  GstClockTime answer_start_ = GST_CLOCK_TIME_NONE;  /* live: first pts of the answer */
  guint64 answer_offset_ = 0;              /* live: samples pushed of the answer */
};

}  // namespace yrt
