/* Input: the sink pad's audio on its way to the dialog, on the streaming
 * thread.  Timing of live and non-live input (the input's segment and
 * running time, the InputClock that ties the audio sent to it), mute
 * (push-to-talk) and the silence that closes a turn, half-duplex's echo
 * gate, and `commit` asked for between buffers.  Conversion and chunking
 * are the Uplink's. */
#pragma once

#include "yrt-dialog.h"
#include "yrt-settings.h"
#include "yrt-text.h"
#include "yrt-uplink.h"

#include <gst/audio/audio.h>

#include <atomic>

namespace yrt {

/* What the input path needs of the rest of the element. */
class InputHost {
 public:
  virtual ~InputHost () = default;
  /* The dialog's side. */
  virtual Dialog::SendResult send_audio (const guint8 *pcm, gsize size) = 0;
  virtual bool take_commit_request () = 0;
  virtual void commit_now () = 0;
  /* The answer audio pushed on src last: [start, end) in running time;
   * false when none. */
  virtual bool pushed_span (GstClockTime &start, GstClockTime &end) = 0;
  virtual GstClockTime running_time () = 0;
  /* Latency configured downstream of src, 0 when unknown. */
  virtual GstClockTime downstream_latency () = 0;
};

/* The settings the input path reads at each buffer and at EOS. */
struct InputSwitches {
  bool mute = false;
  bool half_duplex = false;
  /* Sent after the last audio of a turn (EOS, mute) so that server VAD
   * closes it; 0 for manual turns. */
  guint trailing_silence_ms = 0;

  static InputSwitches of (const Settings &s);
};

/* Half-duplex, on the streaming thread: the input stretches (running time)
 * that carry the echo of the answer audio, from the first sample of an
 * answer pushed on src until its end has been played (+ downstream latency
 * + kTail).  Unmuting during an answer (push-to-talk) lets the user talk
 * over the rest of it. */
class EchoGate {
 public:
  /* How long after the answer's last sample was played its echo may still
   * reach the microphone: the sound's way through the room (up to ~150 ms
   * with a device's unreported output buffering), and its reverberation. */
  static constexpr GstClockTime kTail = 250 * GST_MSECOND;

  struct Stretch {
    GstClockTime from = 0, to = 0;  /* [from, to); empty when from >= to */
  };
  struct Windows {
    Stretch answer;     /* of the answer pushed last */
    Stretch previous;   /* of the one before, whose echo may linger */
    bool released = false;  /* the user unmuted during the answer just now */
  };

  /* For input captured from running time `t0`: the answer audio pushed
   * last spans [start, end) of running time and is heard `latency` later;
   * `unmuted` when the user unmuted at this buffer.  Returns the stretches
   * to silence. */
  Windows update (GstClockTime start, GstClockTime end, GstClockTime latency,
      GstClockTime t0, bool unmuted);

 private:
  GstClockTime start_ = GST_CLOCK_TIME_NONE;  /* the span pushed last: first sample */
  GstClockTime until_ = 0;                    /* its end + latency + kTail */
  GstClockTime prev_start_ = 0, prev_until_ = 0;  /* the span before */
  GstClockTime released_ = GST_CLOCK_TIME_NONE;   /* span start the user unmuted during */
};

/* Replaces the samples of `buffer` (of format `info`, captured from running
 * time `t0`) that fall in [from, to) with silence. */
GstBuffer *silence_between (const GstAudioInfo &info, GstBuffer *buffer, GstClockTime t0,
    GstClockTime from, GstClockTime to);

class Input {
 public:
  /* `element` names the log lines and carries the errors. */
  Input (InputHost &host, GstElement *element) : host_ (host), element_ (element)
  {
    gst_segment_init (&segment_, GST_FORMAT_TIME);
  }

  /* READY→PAUSED: audio to the service at `rate` in `chunk_ms` chunks;
   * liveness unknown until the first caps. */
  void configure (guint rate, guint chunk_ms, guint quality);
  /* CAPS: false (error posted) when they cannot be used. */
  bool set_caps (GstCaps *caps);
  /* Asks upstream once, at the first caps, whether it is live; true when
   * it just did (live() is known from then on). */
  bool check_live (GstPad *sinkpad);
  /* READY→PAUSED, before the pads stream: a live upstream (a live source
   * answers before it starts) is known live at once, so an answer asked
   * for before any input is timed as live; true when it is.  Anything else
   * waits for the first caps. */
  bool check_live_early (GstPad *sinkpad);
  /* Whether upstream is live; any thread. */
  bool live () const { return live_.load (); }
  bool live_known () const { return live_checked_; }
  void set_segment (GstEvent *event) { gst_event_copy_segment (event, &segment_); }

  /* A buffer (taken): converted and sent, unless `downstream` (what src
   * returned last) stops the input. */
  GstFlowReturn chain (GstBuffer *buffer, GstFlowReturn downstream, const InputSwitches &now);
  /* EOS: what is asked and held goes, and the turn closes. */
  void drain (const InputSwitches &now);
  /* FLUSH_STOP: the held audio, the echo gate and the clock start over. */
  void flush ();
  /* PAUSED→READY. */
  void stop () { uplink_.reset (); }

  /* Input running time of a position of the audio sent (samples at
   * input-rate, as in the ledger): where transcripts go.  Any thread. */
  GstClockTime time_of (guint64 position) const { return clock_.time_of (position); }

 private:
  struct ToDialog;
  void close_turn (ToDialog &send, guint silence_ms);
  void commit_if_asked (ToDialog &send);
  bool update_mute (ToDialog &send, const InputSwitches &now);
  GstClockTime running_time_of (GstBuffer *buffer);
  GstBuffer *gate_echo (GstBuffer *buffer, bool unmuted, const InputSwitches &now);
  void anchor (GstBuffer *buffer);

  InputHost &host_;
  GstElement *element_;
  Uplink uplink_;
  InputClock clock_;
  std::atomic<bool> live_ {false};
  /* Streaming thread. */
  GstSegment segment_ {};  /* of the input, for its running time */
  bool live_checked_ = false;
  bool muted_ = false;  /* mute as last seen by the chain function */
  GstAudioInfo info_ {};
  EchoGate echo_gate_;
  guint64 trace_in_ = 0;   /* uplink-in trace points */
};

}  // namespace yrt
