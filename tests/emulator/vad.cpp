#include "vad.h"

#include <algorithm>
#include <cmath>

namespace yrt::emu {

void Vad::set_rate(guint rate) {
  if (rate == rate_ || rate == 0)
    return;
  base_us_ = clock_us();
  samples_ = 0;
  carry_.clear();
  rate_ = rate;
}

void Vad::set_enabled(bool enabled) {
  if (!enabled)
    reset_speech();
  enabled_ = enabled;
}

// The level keeps following the signal: a reset forgets the utterance, not
// what the audio sounds like.
void Vad::reset_speech() {
  state_ = State::Idle;
  silence_us_ = 0;
  quiet_from_us_ = -1;
}

gint64 Vad::pending_ms() const {
  if (state_ != State::Idle || rise_us_ < 0 || clock_us() - last_loud_end_us_ > gap_us())
    return 0;
  return std::min(clock_us() - rise_us_, lookback_us()) / 1000 + 10;
}

double Vad::probability(const gint16 *pcm, gsize n) {
  if (n == 0)
    return 0.0;
  double sum = 0.0;
  for (gsize i = 0; i < n; i++)
    sum += static_cast<double>(pcm[i]) * pcm[i];
  double rms = std::sqrt(sum / static_cast<double>(n));
  if (rms <= 0.0)
    return 0.0;
  double dbfs = 20.0 * std::log10(rms / 32768.0);
  return std::clamp((dbfs + 60.0) / 50.0, 0.0, 1.0);
}

std::vector<Vad::Edge> Vad::feed(const gint16 *pcm, gsize n) {
  std::vector<Edge> edges;
  const gsize frame = std::max<guint>(1, rate_ / 100);
  gsize pos = 0;
  // Complete a partial frame left over from the previous chunk first.
  if (!carry_.empty()) {
    gsize need = std::min(frame - carry_.size(), n);
    carry_.insert(carry_.end(), pcm, pcm + need);
    pos = need;
    if (carry_.size() < frame)
      return edges;
    std::vector<gint16> full;
    full.swap(carry_);
    auto e = process_frame(full.data(), full.size(), pos);
    edges.insert(edges.end(), e.begin(), e.end());
  }
  for (; pos + frame <= n; pos += frame) {
    auto e = process_frame(pcm + pos, frame, pos + frame);
    edges.insert(edges.end(), e.begin(), e.end());
  }
  carry_.assign(pcm + pos, pcm + n);
  return edges;
}

std::vector<Vad::Edge> Vad::process_frame(const gint16 *frame, gsize n, gsize consumed) {
  const gint64 start_us = clock_us();
  samples_ += static_cast<gint64>(n);
  const gint64 end_us = clock_us();
  const double p = probability(frame, n);
  const bool loud = p > params_.threshold;
  if (loud != loud_) {
    loud_ = loud;
    run_start_us_ = start_us;
  }
  if (loud) {  // loud frames less than onset_gap_ms apart make one sound
    if (rise_us_ < 0 || start_us - last_loud_end_us_ > gap_us())
      rise_us_ = start_us;
    last_loud_end_us_ = end_us;
  }
  // The level follows the signal whether or not detection is enabled.
  const double tau_us = std::max<guint>(1, params_.smoothing_ms) * 1000.0;
  level_ += (1.0 - std::exp(-static_cast<double>(end_us - start_us) / tau_us)) * (p - level_);
  voiced_ = voiced_ ? level_ >= params_.threshold - params_.hysteresis
                    : level_ > params_.threshold;
  if (!enabled_)
    return {};
  if (params_.model == VadModel::Energy)
    return energy(loud, start_us, end_us, consumed);
  return realistic(start_us, end_us, consumed);
}

std::vector<Vad::Edge> Vad::energy(bool loud, gint64 start_us, gint64 end_us, gsize consumed) {
  if (state_ == State::Idle) {
    if (!loud)
      return {};
    state_ = State::Speech;
    silence_us_ = 0;
    gint64 at = start_us / 1000 - static_cast<gint64>(params_.prefix_padding_ms);
    return {Edge{true, std::max<gint64>(0, at), consumed, end_us}};
  }
  if (loud) {
    silence_us_ = 0;
    return {};
  }
  silence_us_ += end_us - start_us;
  if (silence_us_ < static_cast<gint64>(params_.silence_duration_ms) * 1000)
    return {};
  reset_speech();
  return {Edge{false, end_us / 1000, consumed, end_us}};
}

std::vector<Vad::Edge> Vad::realistic(gint64 start_us, gint64 end_us, gsize consumed) {
  switch (state_) {
    case State::Idle:
      if (!voiced_)
        return {};
      // The level rose past the threshold on a loud frame: the speech began
      // with the sound this frame belongs to, looking back at most
      // min_speech_ms.
      state_ = State::Onset;
      onset_us_ = std::max(rise_us_, start_us - lookback_us());
      quiet_from_us_ = -1;
      [[fallthrough]];
    case State::Onset: {
      // Speech has gaps (a stop consonant's closure, syllables an echo
      // canceller let through): the candidate lives on while its level is
      // voiced or its loud frames come less than onset_gap_ms apart; after a
      // longer gap it was a blip, not a turn.
      const bool sounding = voiced_ || loud_;
      if (!sounding && end_us - last_loud_end_us_ > gap_us()) {
        reset_speech();
        return {};
      }
      if (!sounding || end_us - onset_us_ < static_cast<gint64>(params_.min_speech_ms) * 1000)
        return {};
      state_ = State::Speech;
      quiet_from_us_ = -1;
      const gint64 at = onset_us_ / 1000 - static_cast<gint64>(params_.prefix_padding_ms);
      return {Edge{true, std::max<gint64>(0, at), consumed, end_us}};
    }
    case State::Speech:
      if (voiced_) {
        quiet_from_us_ = -1;
        return {};
      }
      // The level fell below the exit threshold on a quiet frame: the
      // silence began with the run of quiet frames this one belongs to.
      if (quiet_from_us_ < 0)
        quiet_from_us_ = loud_ ? start_us : run_start_us_;
      if (end_us - quiet_from_us_ < static_cast<gint64>(params_.silence_duration_ms) * 1000)
        return {};
      reset_speech();
      return {Edge{false, end_us / 1000, consumed, end_us}};
  }
  return {};
}

}  // namespace yrt::emu
