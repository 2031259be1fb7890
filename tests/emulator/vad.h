// Voice activity detection, a stand-in for the service's server VAD.
#pragma once

#include <glib.h>

#include <vector>

namespace yrt::emu {

// Config::vad_model.
enum class VadModel {
  // Like real server VADs (Silero/WebRTC-style, OpenAI's server_vad): a
  // smoothed level with hysteresis and a minimum speech duration. Default.
  Realistic,
  // The old, twitchy model: each 10 ms frame decides on its own, the first
  // loud frame starts speech. Only for a test that needs exactly that.
  Energy,
};

// Works on 10 ms frames. A frame's speech probability is
//   p = clamp((dBFS + 60) / 50, 0, 1),  dBFS = 20*log10(rms / 32768)
// so -60 dBFS (and digital silence) maps to 0, -10 dBFS and louder to 1,
// and the default threshold 0.5 means "louder than -35 dBFS". A frame is
// loud when p > threshold.
//
// VadModel::Realistic
// - Level: an exponential moving average of p with a time constant of
//   smoothing_ms (30 ms), so one loud frame does not make speech (a tone at
//   -13 dBFS takes 3 frames to cross 0.5).
// - Hysteresis: the level is "voiced" once it exceeds threshold and stays so
//   until it falls below threshold - hysteresis (0.15; 0.35 by default).
// - Minimum speech: once the level is voiced, the sound becomes speech when
//   it spans min_speech_ms (250 ms). Gaps count as part of it while the level
//   stays voiced or loud frames come less than onset_gap_ms (200 ms) apart,
//   as speech has them (a stop consonant's closure, syllables an echo
//   canceller let through; this energy measure makes them longer than a
//   neural VAD would); a longer gap ends the candidate, so a shorter blip is
//   no turn. speech_started is reported then, on a voiced or loud frame (so
//   it comes about min_speech_ms after the speech began).
// - Speech start: the first loud frame of the sound that made the level
//   voiced (loud frames less than onset_gap_ms apart make one sound), looking
//   back at most min_speech_ms; the moving average only decides, the edges
//   are the frames' own. The reported audio_start_ms is that minus
//   prefix_padding_ms, clamped at 0; the caller keeps the audio from there on
//   (the committed turn includes the padding).
// - Speech end: silence_duration_ms after the first quiet frame of the run
//   that made the level unvoiced, if it stays unvoiced that long; a shorter
//   dip does not end the turn. The reported audio_end_ms is the end of the
//   frame that completed the silence, so it includes the silence (as
//   OpenAI's does).
// For clean speech and silence (a tone, then digital silence) the reported
// times are those of VadModel::Energy; only the blips and dips differ.
//
// VadModel::Energy
// Speech starts on the first loud frame (reported start moved back by
// prefix_padding_ms, clamped at 0) and stops after silence_duration_ms of
// consecutive quiet frames, reported as above.
//
// All times are milliseconds since the first audio of the session.
class Vad {
 public:
  struct Params {
    VadModel model = VadModel::Realistic;
    double threshold = 0.5;
    guint prefix_padding_ms = 300;
    guint silence_duration_ms = 400;
    // VadModel::Realistic only.
    guint min_speech_ms = 250;
    guint onset_gap_ms = 200;
    guint smoothing_ms = 30;
    double hysteresis = 0.15;
  };
  struct Edge {
    bool started;     // true: speech started, false: speech stopped
    gint64 at_ms;     // audio_start_ms / audio_end_ms
    gsize consumed;   // samples of the fed chunk consumed when it fired
    gint64 clock_us;  // stream time at the end of the frame that fired
  };

  void set_params(const Params &p) { params_ = p; }
  // A rate change drops the partial frame (it was recorded at the old rate).
  void set_rate(guint rate);
  void set_enabled(bool enabled);
  bool enabled() const { return enabled_; }
  // Speech was reported (started, not yet stopped).
  bool in_speech() const { return state_ == State::Speech; }
  // Speech, or voiced audio not yet long enough to be speech: the caller must
  // keep the audio since its start (and the prefix padding before it).
  bool active() const { return state_ != State::Idle; }
  // How far back a speech start may yet be dated, before prefix padding: the
  // loud sound the level may still take for speech (Realistic).
  gint64 pending_ms() const;
  // Forgets an ongoing utterance (buffer cleared or committed by hand).
  void reset_speech();

  // Feeds samples; the clock always advances, edges only when enabled.
  std::vector<Edge> feed(const gint16 *pcm, gsize n);
  gint64 clock_ms() const { return clock_us() / 1000; }

  static double probability(const gint16 *pcm, gsize n);

 private:
  enum class State { Idle, Onset, Speech };

  std::vector<Edge> process_frame(const gint16 *frame, gsize n, gsize consumed);
  std::vector<Edge> energy(bool loud, gint64 start_us, gint64 end_us, gsize consumed);
  std::vector<Edge> realistic(gint64 start_us, gint64 end_us, gsize consumed);
  // Exact stream time: counting samples avoids drift at rates like 22050.
  gint64 clock_us() const { return base_us_ + samples_ * G_USEC_PER_SEC / rate_; }
  gint64 gap_us() const { return static_cast<gint64>(params_.onset_gap_ms) * 1000; }
  gint64 lookback_us() const { return static_cast<gint64>(params_.min_speech_ms) * 1000; }

  Params params_;
  guint rate_ = 24000;
  bool enabled_ = true;
  State state_ = State::Idle;
  gint64 base_us_ = 0;       // stream time when the rate last changed
  gint64 samples_ = 0;       // full-frame samples since then
  std::vector<gint16> carry_;  // partial frame waiting for more samples
  // Energy: consecutive quiet time while in speech.
  gint64 silence_us_ = 0;
  // Realistic.
  double level_ = 0;           // moving average of p
  bool voiced_ = false;        // the level, with hysteresis
  bool loud_ = false;          // the latest frame's own decision
  gint64 run_start_us_ = 0;    // start of the current run of loud (or quiet) frames
  gint64 rise_us_ = -1;        // first loud frame of the latest sound (loud frames less
                               // than onset_gap_ms apart); -1 before any
  gint64 last_loud_end_us_ = 0;
  gint64 onset_us_ = 0;        // Onset/Speech: where the speech began
  gint64 quiet_from_us_ = -1;  // Speech: start of the unvoiced stretch, -1 while voiced
};

}  // namespace yrt::emu
