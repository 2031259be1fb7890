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

void Vad::reset_speech() {
  in_speech_ = false;
  silence_us_ = 0;
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
  if (!enabled_)
    return {};
  const bool speech = probability(frame, n) > params_.threshold;
  if (!in_speech_) {
    if (!speech)
      return {};
    in_speech_ = true;
    silence_us_ = 0;
    gint64 at = start_us / 1000 - static_cast<gint64>(params_.prefix_padding_ms);
    return {Edge{true, std::max<gint64>(0, at), consumed}};
  }
  if (speech) {
    silence_us_ = 0;
    return {};
  }
  silence_us_ += end_us - start_us;
  if (silence_us_ < static_cast<gint64>(params_.silence_duration_ms) * 1000)
    return {};
  reset_speech();
  return {Edge{false, end_us / 1000, consumed}};
}

}  // namespace yrt::emu
