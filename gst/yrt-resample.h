/* PcmResampler: S16 mono audio from one rate to another (GstAudioResampler),
 * one stretch at a time: an answer, from the rate the service serves to the
 * src pad's (Playout); the input between two commits, from input-rate to the
 * rate the service accepts (Dialog).  A stretch's filter history never leaks
 * into the next one, and the tail the filter holds back comes out when the
 * stretch ends, so N samples come out as N * out / in (rounded), none lost
 * or doubled.  No locking: the owner calls it under its own lock. */
#pragma once

#include <gst/audio/audio.h>

#include <string>
#include <vector>

namespace yrt {

class PcmResampler {
 public:
  PcmResampler () = default;
  PcmResampler (const PcmResampler &) = delete;
  PcmResampler &operator= (const PcmResampler &) = delete;
  ~PcmResampler ();

  /* Forgets any stretch in progress.  Equal rates: samples pass as they are. */
  void configure (guint in_rate, guint out_rate, guint quality);
  bool passthrough () const { return in_rate_ == out_rate_; }
  guint in_rate () const { return in_rate_; }
  guint out_rate () const { return out_rate_; }
  /* The stretch whose history the filter holds; empty when none. */
  const std::string &current () const { return current_; }

  /* Samples of stretch `stretch` in, what the filter gives out appended
   * to `out`.  Audio of another stretch first ends the one in progress: its
   * tail goes to `tail_of_previous` (to be queued with that stretch). */
  void process (const std::string &stretch, const gint16 *in, gsize n,
      std::vector<gint16> &out, std::vector<gint16> &tail_of_previous);
  /* The end of `stretch`: what the filter still holds of it (nothing if
   * it is not the stretch in progress). */
  void finish (const std::string &stretch, std::vector<gint16> &out);
  /* `stretch` was dropped (barge-in, cancel, a lost session): its history goes unheard. */
  void forget (const std::string &stretch);
  void reset ();
  /* Samples of output that `in` samples of input make, with the tail. */
  guint64 out_samples (guint64 in) const;

 private:
  void run (const gint16 *in, gsize n, std::vector<gint16> &out);

  GstAudioResampler *resampler_ = nullptr;
  guint in_rate_ = 0;
  guint out_rate_ = 0;
  guint quality_ = GST_AUDIO_RESAMPLER_QUALITY_DEFAULT;
  std::string current_;   /* the stretch whose history the filter holds */
  guint64 fed_ = 0;       /* input samples of it so far */
  guint64 given_ = 0;     /* output samples of it so far */
};

}  // namespace yrt
