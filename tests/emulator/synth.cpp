#include "synth.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

#ifdef HAVE_ESPEAK
#include <espeak-ng/speak_lib.h>
#endif

namespace yrt::emu {

// Every answer of a scale run is the same tone: made once per length and
// rate (a sine per sample was 6 % of the emulator's CPU at 400 sessions).
std::vector<gint16> make_tone(gsize samples, guint rate) {
  static std::mutex lock;
  static std::map<std::pair<gsize, guint>, std::vector<gint16>> made;
  std::lock_guard<std::mutex> guard(lock);
  auto it = made.find({samples, rate});
  if (it != made.end())
    return it->second;
  std::vector<gint16> pcm(samples);
  const double step = 2.0 * G_PI * kToneHz / rate;
  for (gsize i = 0; i < samples; i++)
    pcm[i] = static_cast<gint16>(std::lround(kToneAmplitude * std::sin(step * static_cast<double>(i))));
  if (made.size() >= 16)  // a few lengths in any run; bounded all the same
    made.clear();
  made.emplace(std::make_pair(samples, rate), pcm);
  return pcm;
}

#ifdef HAVE_ESPEAK

namespace {

// espeak-ng keeps global state: one synthesis at a time, process-wide.
std::mutex espeak_mutex;
int espeak_rate = 0;  // 0: not initialised yet, <0: initialisation failed

int collect_samples(short *wav, int numsamples, espeak_EVENT *events) {
  auto *out = static_cast<std::vector<gint16> *>(events->user_data);
  if (wav && numsamples > 0)
    out->insert(out->end(), wav, wav + numsamples);
  return 0;  // continue synthesis
}

// Linear interpolation is plenty for a test voice.
std::vector<gint16> resample(const std::vector<gint16> &in, guint from, guint to) {
  if (in.empty() || from == to)
    return in;
  const gsize n = static_cast<gsize>(std::llround(static_cast<double>(in.size()) * to / from));
  std::vector<gint16> out(n);
  for (gsize i = 0; i < n; i++) {
    double src = static_cast<double>(i) * from / to;
    gsize k = static_cast<gsize>(src);
    double frac = src - static_cast<double>(k);
    double a = in[std::min(k, in.size() - 1)];
    double b = in[std::min(k + 1, in.size() - 1)];
    out[i] = static_cast<gint16>(std::lround(a + (b - a) * frac));
  }
  return out;
}

}  // namespace

bool speech_available() {
  return true;
}

std::vector<gint16> speak(const std::string &text, guint rate) {
  std::lock_guard<std::mutex> lock(espeak_mutex);
  if (espeak_rate == 0) {
    espeak_rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, nullptr, 0);
    if (espeak_rate > 0) {
      espeak_SetSynthCallback(collect_samples);
      if (espeak_SetVoiceByName("ru") != EE_OK)
        espeak_SetVoiceByName("en");
    } else {
      espeak_rate = -1;
    }
  }
  std::vector<gint16> raw;
  if (espeak_rate < 0 || text.empty())
    return raw;
  if (espeak_Synth(text.c_str(), text.size() + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, nullptr,
                   &raw) != EE_OK)
    return {};
  return resample(raw, static_cast<guint>(espeak_rate), rate);
}

#else  // !HAVE_ESPEAK

bool speech_available() {
  return false;
}

std::vector<gint16> speak(const std::string &, guint) {
  return {};
}

#endif

}  // namespace yrt::emu
