/* What yrt-bench's modes share: the constants of the live input, the
 * utilities (CPU, memory, time, statistics), the options, the synthetic input
 * (bench-signal.cpp) and the appsrc ! yandexrealtime ! sink session
 * (bench-common.cpp); and each mode's entry point, which bench.cpp's main()
 * dispatches to. */
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

constexpr int kSkip = 77;
constexpr guint kInRate = 24000;    /* what the live benches send: the element passes it through */
constexpr guint kChunkMs = 40;      /* the element's default chunk-ms */
constexpr guint kChunkSamples = kInRate * kChunkMs / 1000;

/* ---------------------------------------------------------------- utils -- */

[[noreturn]] void die (const char *fmt, ...) G_GNUC_PRINTF (1, 2);
gint64 now_us ();
void sleep_until_us (gint64 deadline);
double process_cpu_s ();
double thread_cpu_s ();
long status_kb (const std::string &pid, const char *field);
double other_cpu_s (const std::string &pid);

struct Stats {
  double p50 = 0, p90 = 0, p99 = 0, max = 0, min = 0;
  size_t n = 0;
};

Stats stats (std::vector<double> v);

/* --------------------------------------------------------------- options -- */

struct Options {
  std::string url;
  std::string api_key;
  std::string emulator_pid;
  double seconds = 0;
  double minutes = 0;
  int turns = 0;
  int sessions = 0;
  int sessions_per_thread = 0;  /* 0: the element's default */
  bool bare = false;             /* scale: the harness alone, no element */
  int silence_ms = 400;
  long iterations = 0;
  std::vector<std::string> positional;
};

Options parse_options (int argc, char **argv);
void need_endpoint (const Options &o);

/* ---------------------------------------------------------------- signal -- */

std::vector<gint16> talk_pattern (guint voiced_ms, guint silence_ms);
GstBuffer *wrap (const std::vector<gint16> &pcm, gsize first_sample, gsize samples);

/* ----------------------------------------------------------- live session -- */

/* appsrc (S16LE mono 24 kHz) ! yandexrealtime ! sink, with bus book-keeping. */
struct Session {
  GstElement *pipeline = nullptr;
  GstElement *src = nullptr;
  GstElement *element = nullptr;
  GstElement *sink = nullptr;
  std::atomic<bool> session_created {false};
  std::atomic<guint> responses_done {0};
  std::atomic<guint> interrupted {0};
  std::atomic<guint> errors {0};
  std::atomic<guint> warnings {0};
  std::atomic<gint64> session_created_us {0};

  ~Session ()
  {
    if (pipeline) {
      gst_element_set_state (pipeline, GST_STATE_NULL);
      gst_object_unref (pipeline);
    }
  }
};

GstBusSyncReply on_bus (GstBus *, GstMessage *msg, gpointer data);

enum class SinkKind { AppSink, FakeSinkSync, FakeSinkNoSync };

std::unique_ptr<Session> make_session (const Options &o, bool live, SinkKind sink_kind,
    const char *name = "bench");
bool wait_for (const std::function<bool ()> &cond, double timeout_s);
void start (Session &s);
void push_live (Session &s, const std::vector<gint16> &pcm, double seconds,
    const std::function<void (guint64, gint64)> &on_pushed);

/* ------------------------------------------------------------------ modes -- */

int cmd_gen_wav (const Options &o);   /* bench-signal.cpp */
int cmd_latency (const Options &o);   /* bench-latency.cpp */
int cmd_ttfa (const Options &o);      /* bench-latency.cpp */
int cmd_memory (const Options &o);    /* bench-memory.cpp */
int cmd_scale (const Options &o);     /* bench-scale.cpp */
