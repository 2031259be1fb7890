#include "yrt-uplink.h"

#include <algorithm>

namespace yrt {

namespace {

/* Stereo S16, what most decoders and capture devices give, is mixed down
 * here: a plain average costs a small fraction of GstAudioChannelMixer's
 * general matrix, which was the largest single cost of a file turn
 * (docs/performance.md), and it gives the same samples.  The converter is
 * left the resampling. */
bool mixes_down (const GstAudioInfo &info)
{
  return GST_AUDIO_INFO_FORMAT (&info) == GST_AUDIO_FORMAT_S16 &&
      GST_AUDIO_INFO_CHANNELS (&info) == 2 &&
      GST_AUDIO_INFO_LAYOUT (&info) == GST_AUDIO_LAYOUT_INTERLEAVED &&
      info.position[0] == GST_AUDIO_CHANNEL_POSITION_FRONT_LEFT &&
      info.position[1] == GST_AUDIO_CHANNEL_POSITION_FRONT_RIGHT;
}

void mix_down (const gint16 *stereo, gsize frames, gint16 *mono)
{
  for (gsize i = 0; i < frames; i++)
    mono[i] = (gint16) ((stereo[2 * i] + stereo[2 * i + 1] + 1) >> 1);
}

/* Channels without positions (channel-mask=0: multichannel recorders,
 * microphone arrays) have no mix to mono in GstAudioChannelMixer, which
 * also takes at most 63 channels: they are averaged here, in the format's
 * unpack format (S32 or F64), and the converter does the rest. */
bool averages (const GstAudioInfo &info)
{
  return GST_AUDIO_INFO_IS_UNPOSITIONED (&info) && GST_AUDIO_INFO_CHANNELS (&info) > 1;
}

template <typename T, typename Acc>
void average (const T *in, gsize frames, guint channels, T *mono)
{
  for (gsize i = 0; i < frames; i++, in += channels) {
    Acc sum = 0;
    for (guint c = 0; c < channels; c++)
      sum += in[c];
    mono[i] = (T) (sum / (Acc) channels);
  }
}

}  // namespace

Uplink::~Uplink ()
{
  if (converter_)
    gst_audio_converter_free (converter_);
}

void Uplink::set_output (guint rate, guint chunk_ms)
{
  rate_ = rate;
  chunk_samples_ = std::max<gsize> (1, (gsize) rate * chunk_ms / 1000);
  chunk_.reserve (chunk_samples_);
}

bool Uplink::set_input (const GstAudioInfo &info, std::string &why)
{
  GstAudioInfo out;
  gst_audio_info_set_format (&out, GST_AUDIO_FORMAT_S16LE, rate_, 1, nullptr);

  GstAudioConverter *converter = nullptr;
  bool same = GST_AUDIO_INFO_FORMAT (&info) == GST_AUDIO_FORMAT_S16LE &&
      GST_AUDIO_INFO_CHANNELS (&info) == 1 && GST_AUDIO_INFO_RATE (&info) == (gint) rate_;
  GstAudioInfo mono;
  const GstAudioInfo *from = &info;
  if (mixes_down (info) || averages (info)) {
    GstAudioFormat format = mixes_down (info) ? GST_AUDIO_FORMAT_S16 :
        info.finfo->unpack_format;
    gst_audio_info_set_format (&mono, format, GST_AUDIO_INFO_RATE (&info), 1, nullptr);
    from = &mono;
  }
  if (!same) {
    /* Kaiser, as audioresample; the quality trades alias rejection for
     * CPU (docs/performance.md measures each level). */
    GstStructure *config = gst_structure_new ("config",
        GST_AUDIO_CONVERTER_OPT_RESAMPLER_METHOD, GST_TYPE_AUDIO_RESAMPLER_METHOD,
        GST_AUDIO_RESAMPLER_METHOD_KAISER, nullptr);
    gst_audio_resampler_options_set_quality (GST_AUDIO_RESAMPLER_METHOD_KAISER, quality_,
        GST_AUDIO_INFO_RATE (from), rate_, config);
    converter = gst_audio_converter_new (GST_AUDIO_CONVERTER_FLAG_NONE,
        const_cast<GstAudioInfo *> (from), &out, config);
    if (!converter) {
      why = "cannot convert this input format to S16LE mono";
      return false;
    }
  }
  if (converter_)
    gst_audio_converter_free (converter_);
  converter_ = converter;
  converter_fed_ = false;
  in_info_ = info;
  have_input_ = true;
  return true;
}

bool Uplink::push (GstBuffer *buffer, const Emit &emit)
{
  GstMapInfo map;
  if (!gst_buffer_map (buffer, &map, GST_MAP_READ))
    return false;
  gsize frames = map.size / GST_AUDIO_INFO_BPF (&in_info_);
  if (!converter_) {
    append (reinterpret_cast<const gint16 *> (map.data), frames, emit);
    gst_buffer_unmap (buffer, &map);
    return true;
  }
  gsize out_frames = gst_audio_converter_get_out_frames (converter_, frames);
  gpointer in[] = {map.data};
  if (mixes_down (in_info_)) {
    /* The mono input goes after the output, in the same vector. */
    converted_.resize (out_frames + frames);
    gint16 *mono = converted_.data () + out_frames;
    mix_down (reinterpret_cast<const gint16 *> (map.data), frames, mono);
    in[0] = mono;
  } else if (averages (in_info_)) {
    converted_.resize (out_frames);
    in[0] = average_channels (map.data, frames);
  } else {
    converted_.resize (out_frames);
  }
  gpointer out[] = {converted_.data ()};
  converter_fed_ = true;
  gboolean ok = gst_audio_converter_samples (converter_,
      GST_AUDIO_CONVERTER_FLAG_NONE, in, frames, out, out_frames);
  gst_buffer_unmap (buffer, &map);
  if (ok)
    append (converted_.data (), out_frames, emit);
  return ok;
}

/* Unpacks interleaved unpositioned input and averages it into mono in the
 * unpack format; returns where the mono samples are. */
gpointer Uplink::average_channels (gconstpointer data, gsize frames)
{
  const GstAudioFormatInfo *finfo = in_info_.finfo;
  guint channels = GST_AUDIO_INFO_CHANNELS (&in_info_);
  bool is_float = finfo->unpack_format == GST_AUDIO_FORMAT_F64;
  gsize width = is_float ? sizeof (gdouble) : sizeof (gint32);
  unpacked_.resize ((frames * channels + frames) * width);
  guint8 *all = unpacked_.data ();
  guint8 *mono = all + frames * channels * width;
  finfo->unpack_func (finfo, GST_AUDIO_PACK_FLAG_NONE, all, data, (gint) (frames * channels));
  if (is_float)
    average<gdouble, gdouble> ((const gdouble *) all, frames, channels, (gdouble *) mono);
  else
    average<gint32, gint64> ((const gint32 *) all, frames, channels, (gint32 *) mono);
  return mono;
}

void Uplink::push_silence (guint ms, const Emit &emit)
{
  std::vector<gint16> silence ((gsize) rate_ * ms / 1000, 0);
  append (silence.data (), silence.size (), emit);
}

/* Whole chunks go out straight from `samples` when nothing is pending, so the
 * passthrough path copies only into the base64 text. */
void Uplink::append (const gint16 *samples, gsize count, const Emit &emit)
{
  while (count > 0) {
    if (chunk_.empty () && count >= chunk_samples_) {
      emit_chunk (samples, chunk_samples_, emit);
      samples += chunk_samples_;
      count -= chunk_samples_;
      continue;
    }
    gsize take = std::min (count, chunk_samples_ - chunk_.size ());
    chunk_.insert (chunk_.end (), samples, samples + take);
    samples += take;
    count -= take;
    if (chunk_.size () == chunk_samples_) {
      emit_chunk (chunk_.data (), chunk_.size (), emit);
      chunk_.clear ();
    }
  }
}

void Uplink::emit_chunk (const gint16 *samples, gsize count, const Emit &emit)
{
  emitted_ += count;
  emit (reinterpret_cast<const guint8 *> (samples), count * sizeof (gint16));
}

void Uplink::flush (const Emit &emit)
{
  drain_converter (emit);
  if (chunk_.empty ())
    return;
  emit_chunk (chunk_.data (), chunk_.size (), emit);
  chunk_.clear ();
}

/* The resampler holds back a few ms of history; push silence through it so
 * the end of the input comes out too. */
void Uplink::drain_converter (const Emit &emit)
{
  /* A converter that never saw input has nothing to give (and some crash
   * when asked to). */
  if (!converter_ || !converter_fed_)
    return;
  converter_fed_ = false;
  gsize latency = gst_audio_converter_get_max_latency (converter_);
  if (latency == 0)
    return;
  gsize out_frames = gst_audio_converter_get_out_frames (converter_, latency);
  converted_.resize (out_frames);
  gpointer out[] = {converted_.data ()};
  if (gst_audio_converter_samples (converter_, GST_AUDIO_CONVERTER_FLAG_NONE,
          nullptr, latency, out, out_frames))
    append (converted_.data (), out_frames, emit);
  gst_audio_converter_reset (converter_);
}

void Uplink::reset ()
{
  chunk_.clear ();
  converter_fed_ = false;
  if (converter_)
    gst_audio_converter_reset (converter_);
}

}  // namespace yrt
