#include "yrt-resample.h"

namespace yrt {

PcmResampler::~PcmResampler ()
{
  if (resampler_)
    gst_audio_resampler_free (resampler_);
}

void PcmResampler::configure (guint in_rate, guint out_rate, guint quality)
{
  in_rate_ = in_rate;
  out_rate_ = out_rate;
  quality_ = quality;
  reset ();
}

guint64 PcmResampler::out_samples (guint64 in) const
{
  return passthrough () ? in : gst_util_uint64_scale_round (in, out_rate_, in_rate_);
}

/* `in` null: zeros, which push the held-back tail out. */
void PcmResampler::run (const gint16 *in, gsize n, std::vector<gint16> &out)
{
  gsize frames = gst_audio_resampler_get_out_frames (resampler_, n);
  gsize at = out.size ();
  out.resize (at + frames);
  gpointer ins[1] = {(gpointer) in};
  gpointer outs[1] = {out.data () + at};
  gst_audio_resampler_resample (resampler_, in ? ins : nullptr, n, outs, frames);
}

void PcmResampler::process (const std::string &stretch, const gint16 *in, gsize n,
    std::vector<gint16> &out, std::vector<gint16> &tail_of_previous)
{
  if (passthrough ()) {
    out.insert (out.end (), in, in + n);
    return;
  }
  if (stretch != current_) {
    finish (current_, tail_of_previous);
    current_ = stretch;
  }
  gsize before = out.size ();
  run (in, n, out);
  fed_ += n;
  given_ += out.size () - before;
}

/* The filter lags by up to its latency: zeros of that length bring out the
 * rest, of which only what the stretch's length calls for is kept. */
void PcmResampler::finish (const std::string &stretch, std::vector<gint16> &out)
{
  if (passthrough () || current_.empty () || stretch != current_)
    return;
  guint64 owed = out_samples (fed_) - MIN (given_, out_samples (fed_));
  std::vector<gint16> tail;
  /* Twice the latency: the last output sample needs input beyond it. */
  run (nullptr, 2 * gst_audio_resampler_get_max_latency (resampler_) + 1, tail);
  tail.resize (MIN ((guint64) tail.size (), owed));
  out.insert (out.end (), tail.begin (), tail.end ());
  reset ();
}

void PcmResampler::forget (const std::string &stretch)
{
  if (stretch == current_)
    reset ();
}

/* A new filter rather than gst_audio_resampler_reset(), which keeps the
 * phase of the last input (GStreamer 1.22): a stretch must come out the
 * same whatever came before it. */
void PcmResampler::reset ()
{
  if (resampler_)
    gst_audio_resampler_free (resampler_);
  resampler_ = nullptr;
  current_.clear ();
  fed_ = given_ = 0;
  if (passthrough ())
    return;
  GstStructure *options = gst_structure_new_empty ("yrt-resampler");
  gst_audio_resampler_options_set_quality (GST_AUDIO_RESAMPLER_METHOD_KAISER, quality_,
      in_rate_, out_rate_, options);
  resampler_ = gst_audio_resampler_new (GST_AUDIO_RESAMPLER_METHOD_KAISER,
      GST_AUDIO_RESAMPLER_FLAG_NONE, GST_AUDIO_FORMAT_S16, 1, in_rate_, out_rate_, options);
  gst_structure_free (options);
}

}  // namespace yrt
