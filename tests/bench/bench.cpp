/* yrt-bench: the measuring programs behind tests/bench/run.sh.
 *
 *   yrt-bench gen-wav FILE MINUTES
 *   yrt-bench latency --url U --api-key K [--seconds S]
 *   yrt-bench ttfa    --url U --api-key K [--turns N] [--silence-ms MS]
 *   yrt-bench memory  --url U --api-key K [--minutes M] [--emulator-pid P]
 *   yrt-bench scale   --url U --api-key K --sessions N [--seconds S] [--emulator-pid P]
 *                     [--sessions-per-thread M] [--bare]
 *   yrt-bench micro   [--seconds S | --iterations N]    (micro.cpp: no emulator)
 *   yrt-bench verify                                    (micro.cpp: no emulator)
 *
 * Every mode talks to an emulator that runs in another process (run.sh
 * starts it) and ends with one line
 *   RESULT <mode> key=value ...
 * that run.sh collects.  Human-readable detail goes before it.  Exit status
 * 77 means "skipped" (e.g. the element has no trace points yet).
 *
 * This file: main(), which dispatches to the modes.  The modes are in
 * bench-signal.cpp (gen-wav), bench-latency.cpp (latency, ttfa),
 * bench-memory.cpp, bench-scale.cpp and micro.cpp; what they share in
 * bench-common.{h,cpp}. */
#include <gst/gst.h>

#include "bench-common.h"
#include "micro.h"

#include <cstdio>
#include <string>

int main (int argc, char **argv)
{
  if (argc < 2) {
    fprintf (stderr, "usage: yrt-bench gen-wav|latency|ttfa|memory|scale [options]\n");
    return 2;
  }
  std::string mode = argv[1];
  Options o = parse_options (argc, argv);
  if (mode == "gen-wav")
    return cmd_gen_wav (o);
  gst_init (nullptr, nullptr);
  setvbuf (stdout, nullptr, _IOLBF, 0);
  if (mode == "micro")
    return cmd_micro (o.seconds > 0 ? o.seconds : 0.5, (guint64) o.iterations);
  if (mode == "verify")
    return cmd_verify ();
  if (mode == "resampler")
    return cmd_resampler (o.seconds > 0 ? o.seconds : 0.5);
  if (mode == "latency")
    return cmd_latency (o);
  if (mode == "ttfa")
    return cmd_ttfa (o);
  if (mode == "memory")
    return cmd_memory (o);
  if (mode == "scale")
    return cmd_scale (o);
  die ("unknown mode %s", mode.c_str ());
}
