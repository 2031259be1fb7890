// Energy-based voice activity detection, a stand-in for the service's VAD.
#pragma once

#include <glib.h>

#include <vector>

namespace yrt::emu {

// Works on 10 ms frames. A frame's speech probability is
//   p = clamp((dBFS + 60) / 50, 0, 1),  dBFS = 20*log10(rms / 32768)
// so -60 dBFS (and digital silence) maps to 0, -10 dBFS and louder to 1,
// and the default threshold 0.5 means "louder than -35 dBFS". A frame is
// speech when p > threshold.
// Speech starts on the first speech frame (the reported start is moved back
// by prefix_padding_ms, clamped at 0) and stops after silence_duration_ms
// of consecutive non-speech frames; the reported end is the end of the frame
// that completed the silence, so it includes the silence (as OpenAI's does).
// All times are milliseconds since the first audio of the session.
class Vad {
 public:
  struct Params {
    double threshold = 0.5;
    guint prefix_padding_ms = 300;
    guint silence_duration_ms = 400;
  };
  struct Edge {
    bool started;     // true: speech started, false: speech stopped
    gint64 at_ms;     // audio_start_ms / audio_end_ms
    gsize consumed;   // samples of the fed chunk consumed when it fired
  };

  void set_params(const Params &p) { params_ = p; }
  // A rate change drops the partial frame (it was recorded at the old rate).
  void set_rate(guint rate);
  void set_enabled(bool enabled);
  bool enabled() const { return enabled_; }
  bool in_speech() const { return in_speech_; }
  // Forgets an ongoing utterance (buffer cleared or committed by hand).
  void reset_speech();

  // Feeds samples; the clock always advances, edges only when enabled.
  std::vector<Edge> feed(const gint16 *pcm, gsize n);
  gint64 clock_ms() const { return clock_us() / 1000; }

  static double probability(const gint16 *pcm, gsize n);

 private:
  std::vector<Edge> process_frame(const gint16 *frame, gsize n, gsize consumed);
  // Exact stream time: counting samples avoids drift at rates like 22050.
  gint64 clock_us() const { return base_us_ + samples_ * G_USEC_PER_SEC / rate_; }

  Params params_;
  guint rate_ = 24000;
  bool enabled_ = true;
  bool in_speech_ = false;
  gint64 base_us_ = 0;       // stream time when the rate last changed
  gint64 samples_ = 0;       // full-frame samples since then
  gint64 silence_us_ = 0;    // consecutive non-speech time while in speech
  std::vector<gint16> carry_;  // partial frame waiting for more samples
};

}  // namespace yrt::emu
