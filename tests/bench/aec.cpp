/* yrt-bench-aec: CPU of the echo canceller of the hands-free pipeline
 * (docs/yandexrealtime.md, "Hands-free on speakers"; docs/performance.md,
 * "Echo cancellation").
 *
 * A conversation's worth of audio in real time, as the documented pipeline
 * carries it around the agent: the microphone (48 kHz mono S16) through
 * webrtcdsp, the answers (48 kHz) through webrtcechoprobe to a synchronised
 * sink.  The same pipeline with identity in their place is the baseline;
 * the difference of the process's CPU time is the canceller's.  Both sides
 * carry pink noise all the time, the canceller's worst case (it works on
 * every 10 ms frame whatever it holds).
 *
 *   yrt-bench-aec [seconds per run, default 60] [runs, default 3]
 */
#include <gst/gst.h>

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

double cpu_seconds ()
{
  struct rusage u;
  getrusage (RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/* Runs `desc` live for `seconds`; returns the CPU seconds it took. */
double run (const std::string &desc, guint seconds)
{
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch (desc.c_str (), &error);
  if (!pipeline) {
    g_printerr ("%s: %s\n", desc.c_str (), error ? error->message : "?");
    exit (1);
  }
  double before = cpu_seconds ();
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, seconds * GST_SECOND,
      (GstMessageType) (GST_MESSAGE_ERROR | GST_MESSAGE_EOS));
  if (msg) {
    g_printerr ("%s: stopped early (%s)\n", desc.c_str (), GST_MESSAGE_TYPE_NAME (msg));
    exit (1);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  double used = cpu_seconds () - before;
  gst_object_unref (bus);
  gst_object_unref (pipeline);
  return used;
}

double median (std::vector<double> v)
{
  std::sort (v.begin (), v.end ());
  return v[v.size () / 2];
}

}  // namespace

int main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  guint seconds = argc > 1 ? (guint) atoi (argv[1]) : 60;
  guint runs = argc > 2 ? (guint) atoi (argv[2]) : 3;
  if (seconds == 0 || runs == 0) {
    g_printerr ("usage: yrt-bench-aec [seconds per run > 0] [runs > 0]\n");
    return 2;
  }
  const std::string caps = "audio/x-raw,format=S16LE,rate=48000,channels=1";
  const std::string mic = "audiotestsrc is-live=true wave=pink-noise volume=0.1 samplesperbuffer=480 ! " + caps;
  const std::string answer = "audiotestsrc is-live=true wave=pink-noise volume=0.3 samplesperbuffer=4800 ! " + caps;
  const std::string dsp = "webrtcdsp probe=echo delay-agnostic=false echo-suppression-level=high noise-suppression=true gain-control=true";
  const std::string with = mic + " ! " + dsp + " ! fakesink  " + answer +
      " ! webrtcechoprobe name=echo ! fakesink sync=true";
  const std::string without = mic + " ! identity ! fakesink  " + answer +
      " ! identity ! fakesink sync=true";
  std::vector<double> canceller, baseline;
  for (guint i = 0; i < runs; i++) {
    baseline.push_back (run (without, seconds));
    canceller.push_back (run (with, seconds));
  }
  double base = median (baseline), aec = median (canceller);
  double per_minute = (aec - base) * 60.0 / seconds;
  printf ("| pipeline | CPU s per minute of conversation | share of one core |\n");
  printf ("|---|---|---|\n");
  printf ("| baseline (identity in their place) | %.2f | %.1f %% |\n", base * 60.0 / seconds,
      base * 100.0 / seconds);
  printf ("| webrtcdsp + webrtcechoprobe, 48 kHz | %.2f | %.1f %% |\n", aec * 60.0 / seconds,
      aec * 100.0 / seconds);
  printf ("| the echo canceller alone (difference) | %.2f | %.1f %% |\n", per_minute,
      per_minute * 100.0 / 60.0);
  printf ("\n%u runs of %u s each, medians; %u cores\n", runs, seconds, g_get_num_processors ());
  return 0;
}
