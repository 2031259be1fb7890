/* Outputs: the element's output pads, src (the answers' audio, from
 * Playout) and the text pads (text_src, transcript_src, once requested, from
 * their TextTracks).  Each pad is an Output with its task and its sticky
 * events; their flows are combined into what the chain function returns
 * upstream.  Also src's caps (queries, and the rate negotiated at
 * READY→PAUSED), and the answer text and transcripts routed to the text
 * pads' queues. */
#pragma once

#include "yrt-output.h"
#include "yrt-playout.h"
#include "yrt-text.h"

#include <gst/base/gstflowcombiner.h>

#include <array>
#include <atomic>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#define YRT_TEXT_CAPS "text/x-raw, format = (string) utf8"

namespace yrt {

/* What the outputs need of the rest of the element. */
class OutputsHost {
 public:
  virtual ~OutputsHost () = default;
  virtual GstClockTime running_time () = 0;
  /* Whether the input is live (known from its first caps). */
  virtual bool input_live () = 0;
  /* Input running time of a position of the audio sent (samples at
   * input-rate, as in the ledger): where transcripts go. */
  virtual GstClockTime input_time (guint64 position) = 0;
};

class Outputs;

/* One output pad: where its items come from and what its task keeps.  src
 * always has its pad; a text pad exists once requested.  Adding an output is
 * one of these, its template and its queue. */
struct Output {
  Output (const char *pad_name, const char *stream_name) : name (pad_name), stream (stream_name) {}
  const char *name;     /* of the pad (template) */
  const char *stream;   /* of its stream-id */
  Outputs *outputs = nullptr;
  std::atomic<GstPad *> pad {nullptr};
  std::function<PlayoutItem (const Playout::Clock &)> pop;
  std::function<void (bool)> set_flushing;
  std::function<void ()> reset;
  std::function<GstCaps *()> caps;
  std::function<void ()> linked;  /* a new peer (text pads: owe it a GAP) */
  /* Its task only (and flush-stop, with the task stopped). */
  bool need_stream_start = true;
  bool need_segment = true;
};

class Outputs {
 public:
  /* The output pads that exist, each with a reference. */
  using Held = std::vector<std::pair<Output *, GstPad *>>;

  /* `element` names the log lines and carries the errors. */
  Outputs (OutputsHost &host, Playout &playout, GstElement *element);
  ~Outputs ();
  Outputs (const Outputs &) = delete;
  Outputs &operator= (const Outputs &) = delete;

  /* ---- pads ---- */
  /* At init: the always pad. */
  void set_src (GstPad *pad);
  /* A text pad of `templ`, with `setup` done on it, or nullptr when that
   * one exists already; the caller adds it to the element. */
  GstPad *request (GstPadTemplate *templ, void (*setup) (GstPad *));
  /* Deactivates a text pad and forgets it; false when `pad` is not one. */
  bool release (GstPad *pad);
  /* Starts (or stops) the pad's task. */
  gboolean activate (GstPad *pad, GstPadMode mode, gboolean active);
  void linked (GstPad *pad);

  /* ---- src's caps ---- */
  /* What src can produce: the caps in use, else `user_rate` (output-rate
   * when the user set it; 0 when not), else every rate we may ask for. */
  GstCaps *src_caps (guint user_rate);
  /* READY→PAUSED: the rate of src.  The user's must suit downstream;
   * otherwise downstream's preferred rate among ours, 44100 when it takes
   * that.  False (error posted) when downstream takes none. */
  bool negotiate_rate (guint user_rate, guint asked_rate);
  guint rate () const { return rate_.load (); }
  /* A CAPS query's answer: `caps` (taken) within the query's filter. */
  static gboolean answer_caps_query (GstQuery *query, GstCaps *caps);

  /* ---- state ---- */
  /* READY→PAUSED: new streams (stream-start, caps, segment), not live. */
  void start ();
  void set_live (bool live);
  /* PAUSED→READY, before and after the pads deactivate. */
  void set_flushing (bool flushing);
  void reset ();
  /* Barge-in (network thread): FLUSH_START down src at once, so that a
   * sink waiting for the clock drops what it holds now, not after the src
   * task's push in progress (a whole chunk of the answer) has played out;
   * the task sends FLUSH_STOP when it pops the playout's Flush. */
  void flush_src ();
  /* FLUSH_START from upstream: every output pad flushes too. */
  gboolean flush_start (GstEvent *event);
  /* FLUSH_STOP: stop the tasks, then (once the rest of the element started
   * over) forget what was queued, then push it on and restart them. */
  Held stop_tasks ();
  void forget ();
  gboolean restart (Held &held, GstEvent *event);

  /* ---- flow ---- */
  /* What downstream last returned, combined over the output pads. */
  GstFlowReturn flow () const { return flow_.load (); }
  void set_downstream_latency (GstClockTime latency) { downstream_latency_ = latency; }
  GstClockTime downstream_latency () const { return downstream_latency_.load (); }

  /* Network thread: answer text and transcripts into the text pads' queues
   * (while the pads exist). */
  void route (const output::Event &event);

 private:
  static void loop (gpointer data);
  std::array<Output *, 3> all () { return {&src_, &text_, &transcript_}; }
  Held held ();
  Output *output_of (GstPad *pad);
  GstCaps *audio_caps ();
  void push_sticky_events (Output &o, GstPad *pad);
  void handle_flow (GstPad *pad, GstFlowReturn ret);
  void on_eos (Output &o);
  GstClockTime text_without_audio_pts (const TextTrack &track);
  void wire (Output &o, TextTrack &track);

  OutputsHost &host_;
  Playout &playout_;
  GstElement *element_;
  /* The src pad's rate, negotiated at READY→PAUSED; the service's answers
   * are converted to it. */
  std::atomic<guint> rate_;

  /* `lock_` guards which pads exist (request and release against flushes);
   * `flow_lock_` the combined flow of the pads. */
  Output src_ {"src", "answer"};
  Output text_ {"text_src", "text"};
  Output transcript_ {"transcript_src", "transcript"};
  std::mutex lock_;
  std::mutex flow_lock_;
  GstFlowCombiner *flows_ = nullptr;
  TextTrack answer_text_;
  TextTrack transcript_text_;
  /* Network thread, and flushes: turning events into stamped text. */
  std::mutex text_lock_;
  Captions captions_ {answer_text_};
  Transcripts transcripts_ {transcript_text_};
  GstClockTime last_speech_end_ = GST_CLOCK_TIME_NONE;  /* input running time */

  std::atomic<GstClockTime> downstream_latency_ {0};
  /* flush_src sent FLUSH_START, the src task not yet FLUSH_STOP: a push
   * refused as FLUSHING meanwhile is the barge-in's, not a stop. */
  std::atomic<bool> src_flushing_ {false};
  /* What downstream last returned to the output tasks; the chain function
   * returns it upstream, so EOS or an error downstream stops the input. */
  std::atomic<GstFlowReturn> flow_ {GST_FLOW_OK};
  guint group_id_ = 0;  /* of the output streams, set at READY→PAUSED */
  guint64 trace_out_ = 0;  /* downlink-out trace points (src task) */
};

}  // namespace yrt
