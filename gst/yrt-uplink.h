/* Uplink: turns whatever raw audio arrives on the sink pad into S16LE mono at
 * the upstream rate, cut into chunk-sized pieces ready for
 * input_audio_buffer.append.  Runs on the streaming thread only. */
#pragma once

#include <gst/audio/audio.h>

#include <functional>
#include <string>
#include <vector>

namespace yrt {

class Uplink {
 public:
  using Emit = std::function<void (const guint8 *pcm, gsize size)>;

  Uplink () = default;
  ~Uplink ();
  Uplink (const Uplink &) = delete;
  Uplink &operator= (const Uplink &) = delete;

  void set_output (guint rate, guint chunk_ms);
  /* Kaiser resampler quality, 0..10, for converters built from now on. */
  void set_quality (guint quality) { quality_ = quality; }
  /* New input caps; audio already chunked stays.  False (with the reason)
   * when no converter can be built for them. */
  bool set_input (const GstAudioInfo &info, std::string &why);
  bool has_input () const { return have_input_; }
  bool passthrough () const { return have_input_ && !converter_; }

  /* Converts `buffer` and emits every chunk it completes. */
  bool push (GstBuffer *buffer, const Emit &emit);
  void push_silence (guint ms, const Emit &emit);
  /* Emits everything still held: the resampler's history and the last
   * partial chunk (EOS). */
  void flush (const Emit &emit);
  /* Pushes the resampler's history out (before new caps, and at EOS). */
  void drain_converter (const Emit &emit);
  /* Drops the partial chunk and the converter's history (flush, restart). */
  void reset ();

  guint rate () const { return rate_; }
  /* Output samples emitted so far. */
  guint64 samples_emitted () const { return emitted_; }
  /* Output samples of the partial chunk, not yet emitted. */
  guint64 samples_held () const { return chunk_.size (); }

 private:
  void append (const gint16 *samples, gsize count, const Emit &emit);
  void emit_chunk (const gint16 *samples, gsize count, const Emit &emit);
  gpointer average_channels (gconstpointer data, gsize frames);

  guint rate_ = 24000;
  gsize chunk_samples_ = 960;
  guint quality_ = GST_AUDIO_RESAMPLER_QUALITY_DEFAULT;
  GstAudioInfo in_info_ {};
  bool have_input_ = false;
  GstAudioConverter *converter_ = nullptr;
  bool converter_fed_ = false;  /* holds history worth draining */
  std::vector<gint16> converted_;
  std::vector<guint8> unpacked_;  /* unpositioned input, unpacked and averaged */
  std::vector<gint16> chunk_;
  guint64 emitted_ = 0;
};

}  // namespace yrt
