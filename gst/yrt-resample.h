/* Answer resampler: an answer's audio from the rate the service serves to the
 * rate the src pad negotiated (GstAudioResampler, S16 mono).  One answer at a
 * time: its filter history never leaks into the next answer, and the tail the
 * filter holds back comes out when the answer ends, so an answer of N samples
 * comes out as N * out / in samples (rounded), none lost or doubled.  No
 * locking: Playout calls it under its own lock. */
#pragma once

#include <gst/audio/audio.h>

#include <string>
#include <vector>

namespace yrt {

class AnswerResampler {
 public:
  AnswerResampler () = default;
  AnswerResampler (const AnswerResampler &) = delete;
  AnswerResampler &operator= (const AnswerResampler &) = delete;
  ~AnswerResampler ();

  /* Forgets any answer in progress.  Equal rates: samples pass as they are. */
  void configure (guint in_rate, guint out_rate, guint quality);
  bool passthrough () const { return in_rate_ == out_rate_; }
  guint in_rate () const { return in_rate_; }
  guint out_rate () const { return out_rate_; }
  /* The answer whose history the filter holds; empty when none. */
  const std::string &current () const { return current_; }

  /* Samples of `response_id` in, what the filter gives out appended to
   * `out`.  Audio of another answer first ends the one in progress: its tail
   * goes to `tail_of_previous` (to be queued with that answer). */
  void process (const std::string &response_id, const gint16 *in, gsize n,
      std::vector<gint16> &out, std::vector<gint16> &tail_of_previous);
  /* The end of `response_id`: what the filter still holds of it (nothing if
   * it is not the answer in progress). */
  void finish (const std::string &response_id, std::vector<gint16> &out);
  /* `response_id` was dropped (barge-in, cancel): its history goes unheard. */
  void forget (const std::string &response_id);
  void reset ();
  /* Samples of output that `in` samples of input make, with the tail. */
  guint64 out_samples (guint64 in) const;

 private:
  void run (const gint16 *in, gsize n, std::vector<gint16> &out);

  GstAudioResampler *resampler_ = nullptr;
  guint in_rate_ = 0;
  guint out_rate_ = 0;
  guint quality_ = GST_AUDIO_RESAMPLER_QUALITY_DEFAULT;
  std::string current_;   /* the answer whose history the filter holds */
  guint64 fed_ = 0;       /* input samples of it so far */
  guint64 given_ = 0;     /* output samples of it so far */
};

}  // namespace yrt
