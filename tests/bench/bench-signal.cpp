/* yrt-bench's synthetic speech: the live modes' input pattern (voice, then
 * digital silence) and gen-wav's file for the file turn. */
#include "bench-common.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

/* ---------------------------------------------------------------- signal -- */

namespace {

/* A speech-like voice: a harmonic complex (10 partials, 1/k) whose
 * fundamental glides around 140 Hz, under a syllable-rate envelope that never
 * falls below -8 dB of its peak, so that every 10 ms frame of a voiced
 * stretch is well above the VAD threshold (-35 dBFS) and every frame of a
 * pause (digital silence) well below it.  Peak about -10 dBFS. */
class Voice {
 public:
  explicit Voice (guint rate) : rate_ (rate) {}
  double next ()
  {
    double t = (double) n_++ / rate_;
    double f0 = 140.0 + 30.0 * std::sin (2 * G_PI * 0.7 * t) + 12.0 * std::sin (2 * G_PI * 3.1 * t);
    phase_ += 2 * G_PI * f0 / rate_;
    if (phase_ > 2 * G_PI)
      phase_ -= 2 * G_PI;
    double s = 0;
    for (int k = 1; k <= 10; k++)
      s += std::sin (k * phase_) / k;
    double env = 0.4 + 0.6 * std::fabs (std::sin (2 * G_PI * 2.2 * t));
    return 0.3 * env * s / 1.85;
  }

 private:
  guint rate_;
  guint64 n_ = 0;
  double phase_ = 0;
};

gint16 to_s16 (double v)
{
  return (gint16) std::lround (std::clamp (v, -1.0, 1.0) * 32767.0);
}

}  // namespace

/* `voiced_ms` of voice then `silence_ms` of digital silence, mono S16 at
 * kInRate: one period of the live benches' input. */
std::vector<gint16> talk_pattern (guint voiced_ms, guint silence_ms)
{
  Voice voice (kInRate);
  std::vector<gint16> pcm ((gsize) kInRate * (voiced_ms + silence_ms) / 1000, 0);
  gsize voiced = (gsize) kInRate * voiced_ms / 1000;
  for (gsize i = 0; i < voiced; i++)
    pcm[i] = to_s16 (voice.next ());
  return pcm;
}

/* A buffer that points into `pcm` (which outlives the pipeline): no copy. */
GstBuffer *wrap (const std::vector<gint16> &pcm, gsize first_sample, gsize samples)
{
  auto *data = const_cast<gint16 *> (pcm.data () + first_sample);
  return gst_buffer_new_wrapped_full (GST_MEMORY_FLAG_READONLY, data,
      samples * 2, 0, samples * 2, nullptr, nullptr);
}

/* ---------------------------------------------------------------- gen-wav -- */

namespace {

void put_le (std::FILE *f, guint32 v, int bytes)
{
  for (int i = 0; i < bytes; i++)
    fputc ((v >> (8 * i)) & 0xff, f);
}

}  // namespace

/* 44.1 kHz stereo S16LE: voiced stretches of 1.5-4.5 s and pauses of
 * 0.3-1.5 s (deterministic), a -66 dBFS noise floor throughout, the right
 * channel a little quieter than the left. */
int cmd_gen_wav (const Options &o)
{
  if (o.positional.size () != 2)
    die ("usage: yrt-bench gen-wav FILE MINUTES");
  const std::string path = o.positional[0];
  const double minutes = atof (o.positional[1].c_str ());
  const guint rate = 44100, channels = 2;
  const guint64 frames = (guint64) std::llround (minutes * 60 * rate);
  std::FILE *f = fopen (path.c_str (), "wb");
  if (!f)
    die ("cannot write %s", path.c_str ());
  const guint32 data_bytes = (guint32) (frames * channels * 2);
  fwrite ("RIFF", 1, 4, f);
  put_le (f, 36 + data_bytes, 4);
  fwrite ("WAVEfmt ", 1, 8, f);
  put_le (f, 16, 4);
  put_le (f, 1, 2);  /* PCM */
  put_le (f, channels, 2);
  put_le (f, rate, 4);
  put_le (f, rate * channels * 2, 4);
  put_le (f, channels * 2, 2);
  put_le (f, 16, 2);
  fwrite ("data", 1, 4, f);
  put_le (f, data_bytes, 4);

  Voice voice (rate);
  guint32 rng = 12345;
  auto rand01 = [&rng] {
    rng = rng * 1664525u + 1013904223u;
    return (rng >> 8) / 16777216.0;
  };
  std::vector<gint16> block;
  block.reserve (8192 * channels);
  bool voiced = true;
  guint64 left = (guint64) ((1.5 + 3.0 * rand01 ()) * rate);
  for (guint64 i = 0; i < frames; i++) {
    if (left == 0) {
      voiced = !voiced;
      left = (guint64) ((voiced ? 1.5 + 3.0 * rand01 () : 0.3 + 1.2 * rand01 ()) * rate);
    }
    left--;
    double v = voiced ? voice.next () : 0.0;
    double noise = (rand01 () - 0.5) * 0.001;
    block.push_back (to_s16 (v + noise));
    block.push_back (to_s16 (0.9 * v + noise));
    if (block.size () >= 8192 * channels) {
      fwrite (block.data (), 2, block.size (), f);
      block.clear ();
    }
  }
  fwrite (block.data (), 2, block.size (), f);
  if (fclose (f) != 0)
    die ("cannot write %s", path.c_str ());
  printf ("wrote %s: %.1f min, %u Hz, %u channels\n", path.c_str (), minutes, rate, channels);
  return 0;
}
