// The emulator's "voice": a deterministic tone, or espeak-ng when built with it.
#pragma once

#include <glib.h>

#include <string>
#include <vector>

namespace yrt::emu {

constexpr double kToneHz = 440.0;
constexpr double kToneAmplitude = 8000.0;

// `samples` of a 440 Hz sine at amplitude 8000, mono PCM16 at `rate`.
std::vector<gint16> make_tone(gsize samples, guint rate);

// True when the emulator was built with libespeak-ng.
bool speech_available();

// Speaks `text` with espeak-ng, resampled to `rate`. Empty when espeak-ng is
// unavailable or fails, so callers fall back to the tone.
std::vector<gint16> speak(const std::string &text, guint rate);

}  // namespace yrt::emu
