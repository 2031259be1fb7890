/* Measuring a test tone: the checks by content of the suites (the answers'
 * 440 Hz tone at the rate a sink saw).  Header only, no GStreamer. */
#pragma once

#include <glib.h>

#include <vector>

namespace yrt::test {

/* The frequency of a tone, from its rising zero crossings (first to last);
 * 0 when it has fewer than two. */
inline double tone_frequency (const std::vector<gint16> &pcm, guint rate)
{
  double first = -1, last = -1;
  guint cycles = 0;
  for (gsize i = 1; i < pcm.size (); i++) {
    if (pcm[i - 1] < 0 && pcm[i] >= 0) {
      double at = (double) (i - 1) + (double) -pcm[i - 1] / (pcm[i] - pcm[i - 1]);
      cycles += first >= 0;
      if (first < 0)
        first = at;
      last = at;
    }
  }
  return cycles ? cycles * (double) rate / (last - first) : 0.0;
}

/* The largest step between neighbours inside [from, to): a sine of
 * amplitude A at f Hz never steps more than 2 pi f A / rate; a hole or a
 * doubled stretch does. */
inline gint max_step (const std::vector<gint16> &pcm, gsize from = 0, gsize to = G_MAXSIZE)
{
  gint step = 0;
  for (gsize i = from + 1; i < MIN (to, pcm.size ()); i++)
    step = MAX (step, ABS (pcm[i] - pcm[i - 1]));
  return step;
}

}  // namespace yrt::test
