/* Element glue: pads, state changes and the output pads' tasks.  The
 * settings, the property table and their checks live in yrt-settings, the
 * input's way to the dialog in yrt::Input, the conversation itself in
 * yrt::Dialog, conversion in yrt::Uplink,
 * output timing in yrt::Playout (audio) and yrt-text (text).  Data flows
 * one way:
 *   sink chain → Uplink → Dialog → Connection (worker) → Dialog → Playout → src task
 *                                                        Dialog → output events → bus,
 *                                                        Captions/Transcripts → text pad tasks */
#include "gstyandexrealtime.h"

#include "yrt-debug.h"
#include "yrt-dialog.h"
#include "yrt-input.h"
#include "yrt-playout.h"
#include "yrt-settings.h"
#include "yrt-text.h"

#include <gst/audio/audio.h>
#include <gst/base/gstflowcombiner.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>

using namespace yrt;

enum {
  SIGNAL_SEND_FUNCTION_OUTPUT,
  SIGNAL_SEND_TEXT,
  SIGNAL_COMMIT,
  SIGNAL_CREATE_RESPONSE,
  SIGNAL_CANCEL_RESPONSE,
  SIGNAL_CLEAR_INPUT,
  SIGNAL_CLEAR_CONVERSATION,
  N_SIGNALS
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("audio/x-raw, format = (string) " GST_AUDIO_FORMATS_ALL ", "
        "rate = (int) [ 1, MAX ], channels = (int) [ 1, MAX ], "
        "layout = (string) interleaved"));

#define SRC_CAPS(rate) "audio/x-raw, format = (string) S16LE, channels = (int) 1, " \
    "rate = (int) " rate ", layout = (string) interleaved"
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (SRC_CAPS ("[ " G_STRINGIFY (YRT_MIN_OUTPUT_RATE) ", "
            G_STRINGIFY (YRT_MAX_OUTPUT_RATE) " ]")));

/* The text pads: request pads, so pipelines without them are unchanged. */
#define TEXT_CAPS "text/x-raw, format = (string) utf8"
static GstStaticPadTemplate text_src_template = GST_STATIC_PAD_TEMPLATE ("text_src",
    GST_PAD_SRC, GST_PAD_REQUEST, GST_STATIC_CAPS (TEXT_CAPS));
static GstStaticPadTemplate transcript_src_template = GST_STATIC_PAD_TEMPLATE (
    "transcript_src", GST_PAD_SRC, GST_PAD_REQUEST, GST_STATIC_CAPS (TEXT_CAPS));

struct GstYandexRealtimePrivate;

/* One output pad: where its items come from and what its task keeps.  src
 * always has its pad; a text pad exists once requested.  Adding an output is
 * one of these, its template and its queue. */
struct Output {
  Output (const char *pad_name, const char *stream_name) : name (pad_name), stream (stream_name) {}
  const char *name;     /* of the pad (template) */
  const char *stream;   /* of its stream-id */
  GstYandexRealtime *self = nullptr;
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

struct _GstYandexRealtime {
  GstElement parent;
  GstPad *sinkpad;
  GstPad *srcpad;
  GstYandexRealtimePrivate *priv;
};

/* The element's C++ state.  The streaming thread owns `input`; `playout`
 * and `dialog` lock for themselves. */
struct GstYandexRealtimePrivate : public DialogHost, public InputHost {
  explicit GstYandexRealtimePrivate (GstYandexRealtime *element)
      : self (element), dialog (*this, playout, GST_OBJECT (element)),
        input (*this, GST_ELEMENT (element))
  {
    src.pop = [this] (const Playout::Clock &now) { return playout.pop (now); };
    src.set_flushing = [this] (bool on) { playout.set_flushing (on); };
    src.reset = [this] { playout.reset (); };
    src.caps = [this] { return audio_caps (); };
    wire (text, answer_text);
    wire (transcript, transcript_text);
    for (Output *o : outputs ())
      o->self = element;
    flows = gst_flow_combiner_new ();
  }
  ~GstYandexRealtimePrivate () override { gst_flow_combiner_free (flows); }

  static void wire (Output &o, TextTrack &track)
  {
    o.pop = [&track] (const Playout::Clock &now) { return track.pop (now); };
    o.set_flushing = [&track] (bool on) { track.set_flushing (on); };
    o.reset = [&track] { track.reset (); };
    o.caps = [] { return gst_caps_from_string (TEXT_CAPS); };
    o.linked = [&track] { track.owe_gap (); };
  }
  std::array<Output *, 3> outputs () { return {&src, &text, &transcript}; }
  GstCaps *audio_caps ();
  /* The output pads that exist, each with a reference. */
  std::vector<std::pair<Output *, GstPad *>> active_outputs ()
  {
    std::vector<std::pair<Output *, GstPad *>> out;
    std::lock_guard<std::mutex> guard (outputs_lock);
    for (Output *o : outputs ())
      if (GstPad *pad = o->pad.load ())
        out.emplace_back (o, GST_PAD (gst_object_ref (pad)));
    return out;
  }
  void route (const output::Event &event);
  /* Input running time of a position of the audio sent (samples at
   * input-rate, as in the ledger): where transcripts go.  The one mapping
   * to swap for a better one. */
  GstClockTime input_time (guint64 position) { return input.time_of (position); }
  /* Where text without audio goes: live, now; a file, after the question. */
  GstClockTime text_without_audio_pts (const TextTrack &track);

  void emit (output::Event event) override;
  void post_error (DialogError kind, const std::string &text,
      const std::string &debug) override;
  void post_warning (const std::string &text, const std::string &debug) override
  {
    GST_ELEMENT_WARNING (self, RESOURCE, READ, ("%s", text.c_str ()),
        ("%s", debug.c_str ()));
  }
  GstClockTime running_time () override;
  GstClockTime played_position () override
  {
    gint64 position = -1;
    if (!gst_pad_peer_query_position (self->srcpad, GST_FORMAT_TIME, &position) ||
        position < 0)
      return GST_CLOCK_TIME_NONE;
    return (GstClockTime) position;
  }
  GstClockTime downstream_latency () override
  {
    return downstream_latency_ns.load ();
  }

  /* The settings the input reads at each buffer. */
  InputSwitches switches ()
  {
    std::lock_guard<std::mutex> guard (settings_lock);
    return InputSwitches::of (settings);
  }
  /* InputHost (and running_time, downstream_latency) */
  Dialog::SendResult send_audio (const guint8 *pcm, gsize size) override
  {
    return dialog.send_audio (pcm, size);
  }
  bool take_commit_request () override { return dialog.take_commit_request (); }
  void commit_now () override { dialog.commit_now (); }
  bool pushed_span (GstClockTime &start, GstClockTime &end) override
  {
    return playout.pushed_span (start, end);
  }

  GstYandexRealtime *self;
  std::mutex settings_lock;
  Settings settings;
  /* The src pad's rate, negotiated at READY→PAUSED (under settings_lock);
   * the service's answers are converted to it. */
  guint src_rate = YRT_DEFAULT_OUTPUT_RATE;
  Credentials credentials;

  Playout playout;
  Dialog dialog;
  Input input;

  /* The outputs.  `outputs_lock` guards which pads exist (request and
   * release against flushes); `flow_lock` the combined flow of the pads. */
  Output src {"src", "answer"};
  Output text {"text_src", "text"};
  Output transcript {"transcript_src", "transcript"};
  std::mutex outputs_lock;
  std::mutex flow_lock;
  GstFlowCombiner *flows = nullptr;
  TextTrack answer_text;
  TextTrack transcript_text;
  /* Network thread, and flushes: turning events into stamped text. */
  std::mutex text_lock;
  Captions captions {answer_text};
  Transcripts transcripts {transcript_text};
  GstClockTime last_speech_end = GST_CLOCK_TIME_NONE;  /* input running time */

  std::atomic<GstClockTime> downstream_latency_ns {0};
  /* What downstream last returned to the src task; the chain function
   * returns it upstream, so EOS or an error downstream stops the input. */
  std::atomic<GstFlowReturn> src_flow {GST_FLOW_OK};
  guint group_id = 0;  /* of the output streams, set at READY→PAUSED */

  /* Src task. */
  guint64 trace_out = 0;  /* downlink-out trace points */
};

G_DEFINE_TYPE (GstYandexRealtime, gst_yandex_realtime, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE (yandexrealtime, "yandexrealtime", GST_RANK_NONE,
    GST_TYPE_YANDEX_REALTIME);

/* ---- DialogHost ---- */

/* Every output event is a bus message; the words also go to the text pads'
 * queues. */
void GstYandexRealtimePrivate::emit (output::Event event)
{
  route (event);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), output::to_message (event)));
}

GstClockTime GstYandexRealtimePrivate::text_without_audio_pts (const TextTrack &track)
{
  if (input.live ())
    return running_time ();
  GstClockTime at = track.end ();
  return GST_CLOCK_TIME_IS_VALID (last_speech_end) ? MAX (at, last_speech_end) : at;
}

/* Text goes into a text pad's queue only while the pad exists. */
void GstYandexRealtimePrivate::route (const output::Event &event)
{
  std::lock_guard<std::mutex> guard (text_lock);
  if (text.pad.load ()) {
    if (auto *e = std::get_if<output::AnswerText> (&event)) {
      if (e->final)
        captions.whole (e->response_id, e->text);
      else
        captions.piece (e->response_id, e->text, playout.answer_span (e->response_id));
    } else if (auto *e = std::get_if<output::ResponseDone> (&event)) {
      captions.done (e->response_id, e->status, playout.answer_span (e->response_id),
          text_without_audio_pts (answer_text));
    }
  }
  if (auto *e = std::get_if<output::SpeechStopped> (&event))
    last_speech_end = input_time (e->input_position);
  if (!transcript.pad.load ())
    return;
  if (auto *e = std::get_if<output::SpeechStarted> (&event)) {
    transcripts.speech_started (e->item_id, input_time (e->input_position));
  } else if (auto *e = std::get_if<output::SpeechStopped> (&event)) {
    transcripts.speech_stopped (e->item_id, last_speech_end);
  } else if (auto *e = std::get_if<output::Transcript> (&event)) {
    if (e->final)
      transcripts.transcript (e->item_id, e->text, text_without_audio_pts (transcript_text));
  } else if (std::holds_alternative<output::ResponseDone> (event)) {
    transcripts.release ();
  }
}

void GstYandexRealtimePrivate::post_error (DialogError kind,
    const std::string &text, const std::string &debug)
{
  switch (kind) {
    case DialogError::NotAuthorized:
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_AUTHORIZED, ("%s", text.c_str ()),
          ("%s (credential used: %s)", debug.c_str (),
              credentials.source ? credentials.source : "none"));
      break;
    case DialogError::NotFound:
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("%s", text.c_str ()),
          ("%s", debug.c_str ()));
      break;
    case DialogError::OpenFailed:
      GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ_WRITE, ("%s", text.c_str ()),
          ("%s", debug.c_str ()));
      break;
    case DialogError::Closed:
      GST_ELEMENT_ERROR (self, RESOURCE, READ, ("%s", text.c_str ()),
          ("%s", debug.c_str ()));
      break;
  }
}

GstClockTime GstYandexRealtimePrivate::running_time ()
{
  GstClock *clock = gst_element_get_clock (GST_ELEMENT (self));
  if (!clock)
    return GST_CLOCK_TIME_NONE;
  GstClockTime now = gst_clock_get_time (clock);
  gst_object_unref (clock);
  GstClockTime base = gst_element_get_base_time (GST_ELEMENT (self));
  return now >= base ? now - base : 0;
}

/* ---- properties ---- */

/* A settings check that failed, posted as the error it names. */
static gboolean post_verdict (GstYandexRealtime *self, const Verdict &v)
{
  if (v.ok ())
    return TRUE;
  if (v.code == GST_RESOURCE_ERROR_NOT_AUTHORIZED)
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_AUTHORIZED, ("%s", v.message.c_str ()),
        ("%s", v.debug.c_str ()));
  else
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", v.message.c_str ()),
        ("%s", v.debug.c_str ()));
  return FALSE;
}

/* A value that cannot be used: a warning, the previous value stays, and in
 * NULL NULL→READY fails too (see check_refused()). */
static void refuse_setting (GstYandexRealtime *self, const char *property,
    const std::string &why)
{
  GST_ELEMENT_WARNING (self, LIBRARY, SETTINGS, ("Ignoring the %s property", property),
      ("%s is %s; keeping the previous value", property, why.c_str ()));
  GST_OBJECT_LOCK (self);
  bool in_null = GST_STATE (self) == GST_STATE_NULL;
  GST_OBJECT_UNLOCK (self);
  if (!in_null)
    return;
  std::lock_guard<std::mutex> guard (self->priv->settings_lock);
  self->priv->settings.refused[property] = why;
}

static void gst_yandex_realtime_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  auto *self = GST_YANDEX_REALTIME (object);
  std::string refused;
  bool known;
  {
    std::lock_guard<std::mutex> guard (self->priv->settings_lock);
    known = set_property (self->priv->settings, prop_id, value, refused, GST_OBJECT (self));
  }
  if (!known) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  } else if (!refused.empty ()) {
    refuse_setting (self, pspec->name, refused);
  } else if (prop_id == PROP_TOOLS || prop_id == PROP_SESSION_EXTRA) {
    /* Notified only when taken: a refused value sends no session.update. */
    g_object_notify_by_pspec (object, pspec);
  } else if (prop_id == PROP_BARGE_IN) {
    self->priv->dialog.set_barge_in (g_value_get_boolean (value));
  }
}

static GstStructure *stats_structure (GstYandexRealtime *self)
{
  DialogStats st = self->priv->dialog.stats ();
  guint in_rate = self->priv->settings.session.input_rate;
  return gst_structure_new ("application/x-yandexrealtime-stats",
      "bytes-sent", G_TYPE_UINT64, st.bytes_sent,
      "bytes-received", G_TYPE_UINT64, st.bytes_received,
      "queued-bytes", G_TYPE_UINT64, st.bytes_queued,
      "audio-sent", G_TYPE_UINT64, gst_util_uint64_scale (st.audio_samples_sent, GST_SECOND, in_rate),
      "audio-received", G_TYPE_UINT64, st.audio_received,
      "answers", G_TYPE_UINT, st.answers,
      "reconnects", G_TYPE_UINT, st.reconnects,
      "dropped-input", G_TYPE_UINT64,
      gst_util_uint64_scale (st.dropped_input_samples, GST_SECOND, in_rate),
      "bad-events", G_TYPE_UINT, st.bad_events,
      "last-error", G_TYPE_STRING, st.last_error.c_str (),
      "output-rate-served", G_TYPE_UINT, st.output_rate_served,
      "input-rate-accepted", G_TYPE_UINT, st.input_rate_accepted, nullptr);
}

static void gst_yandex_realtime_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec)
{
  auto *self = GST_YANDEX_REALTIME (object);
  std::lock_guard<std::mutex> guard (self->priv->settings_lock);
  if (prop_id == PROP_STATS)
    g_value_take_boxed (value, stats_structure (self));
  else if (!get_property (self->priv->settings, prop_id, value))
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

/* ---- sink pad ---- */

/* Live input gets live output timing and barge-in (see Playout); asked
 * once upstream is streaming, at the first caps. */
static void check_live (GstYandexRealtime *self)
{
  GstYandexRealtimePrivate *priv = self->priv;
  if (!priv->input.check_live (self->sinkpad))
    return;
  bool live = priv->input.live ();
  {
    std::lock_guard<std::mutex> guard (priv->text_lock);
    priv->captions.configure (live);
  }
  priv->answer_text.configure (live);
  priv->transcript_text.configure (live);
  std::lock_guard<std::mutex> guard (priv->settings_lock);
  priv->playout.configure (priv->src_rate, live);
  priv->dialog.set_live (live);
}

static GstFlowReturn gst_yandex_realtime_chain (GstPad *, GstObject *parent,
    GstBuffer *buffer)
{
  GstYandexRealtimePrivate *priv = GST_YANDEX_REALTIME (parent)->priv;
  return priv->input.chain (buffer, priv->src_flow.load (), priv->switches ());
}

static void output_loop (gpointer data);

/* FLUSH_START from upstream: every output pad flushes too. */
static gboolean flush_start (GstYandexRealtime *self, GstEvent *event)
{
  GstYandexRealtimePrivate *priv = self->priv;
  priv->dialog.set_flushing (true);
  gboolean ok = TRUE;
  for (auto &[o, pad] : priv->active_outputs ()) {
    o->set_flushing (true);
    ok &= gst_pad_push_event (pad, gst_event_ref (event));
    gst_object_unref (pad);
  }
  gst_event_unref (event);
  return ok;
}

static void start_dialog (GstYandexRealtime *self);

/* FLUSH_STOP: a fresh session, so nothing owed to the flushed stream (its
 * answers, its uncommitted input) comes back; closing the old one tells
 * the service.  The outputs start again from 0, each with a new segment.
 * The streaming thread is out of the chain function here, so the dialog
 * may close (at most the close handshake's 500 ms). */
static gboolean flush_stop (GstYandexRealtime *self, GstEvent *event)
{
  GstYandexRealtimePrivate *priv = self->priv;
  auto outputs = priv->active_outputs ();
  for (auto &[o, pad] : outputs)
    gst_pad_stop_task (pad);
  priv->dialog.close ();
  start_dialog (self);
  if (priv->input.live_known ())
    priv->dialog.set_live (priv->input.live ());
  priv->input.flush ();
  for (Output *o : priv->outputs ()) {
    o->reset ();
    o->need_segment = true;
  }
  {
    std::lock_guard<std::mutex> guard (priv->text_lock);
    priv->captions.reset ();
    priv->transcripts.reset ();
    priv->last_speech_end = GST_CLOCK_TIME_NONE;
  }
  {
    std::lock_guard<std::mutex> guard (priv->flow_lock);
    gst_flow_combiner_reset (priv->flows);
  }
  priv->src_flow = GST_FLOW_OK;
  priv->dialog.set_flushing (false);
  gboolean ok = TRUE;
  for (auto &[o, pad] : outputs) {
    o->set_flushing (false);
    ok &= gst_pad_push_event (pad, gst_event_ref (event));
    gst_pad_start_task (pad, output_loop, o, nullptr);
    gst_object_unref (pad);
  }
  gst_event_unref (event);
  return ok;
}

static gboolean gst_yandex_realtime_sink_event (GstPad *, GstObject *parent,
    GstEvent *event)
{
  auto *self = GST_YANDEX_REALTIME (parent);
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS: {
      GstCaps *caps;
      gst_event_parse_caps (event, &caps);
      gboolean ok = self->priv->input.set_caps (caps);
      if (ok)
        check_live (self);
      gst_event_unref (event);
      return ok;
    }
    case GST_EVENT_EOS:
      /* The dialog waits for the answers; EOS leaves the src pad when the
       * playout has pushed them all. */
      self->priv->input.drain (self->priv->switches ());
      self->priv->dialog.drain ();
      gst_event_unref (event);
      return TRUE;
    case GST_EVENT_FLUSH_START:
      return flush_start (self, event);
    case GST_EVENT_FLUSH_STOP:
      return flush_stop (self, event);
    case GST_EVENT_SEGMENT:
      /* Kept for the input's running time (transcripts, half-duplex), not
       * forwarded. */
      self->priv->input.set_segment (event);
      gst_event_unref (event);
      return TRUE;
    default:
      /* Stream-start, tags and gaps describe the input; the output pads
       * have their own. */
      gst_event_unref (event);
      return TRUE;
  }
}

/* A CAPS query's answer: `caps` (taken) within the query's filter. */
static gboolean answer_caps_query (GstQuery *query, GstCaps *caps)
{
  GstCaps *filter;
  gst_query_parse_caps (query, &filter);
  if (filter) {
    GstCaps *both = gst_caps_intersect_full (filter, caps, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (caps);
    caps = both;
  }
  gst_query_set_caps_result (query, caps);
  gst_caps_unref (caps);
  return TRUE;
}

static gboolean gst_yandex_realtime_sink_query (GstPad *pad, GstObject *parent,
    GstQuery *query)
{
  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_CAPS: {
      return answer_caps_query (query, gst_pad_get_pad_template_caps (pad));
    }
    case GST_QUERY_ALLOCATION:
      return FALSE;  /* we consume the buffers; downstream's pool is not upstream's */
    default:
      return gst_pad_query_default (pad, parent, query);
  }
}

/* ---- src pad ---- */

static GstCaps *caps_at_rate (guint rate)
{
  return gst_caps_new_simple ("audio/x-raw", "format", G_TYPE_STRING, "S16LE",
      "channels", G_TYPE_INT, 1, "rate", G_TYPE_INT, (gint) rate,
      "layout", G_TYPE_STRING, "interleaved", nullptr);
}

/* What src can produce: the caps in use, else only output-rate when the user
 * set it, else every rate we may ask the service for. */
static GstCaps *src_caps (GstYandexRealtime *self)
{
  if (GstCaps *current = gst_pad_get_current_caps (self->srcpad))
    return current;
  std::lock_guard<std::mutex> guard (self->priv->settings_lock);
  const Settings &s = self->priv->settings;
  if (s.output_rate_set)
    return caps_at_rate (s.session.output_rate);
  return gst_pad_get_pad_template_caps (self->srcpad);
}

/* READY→PAUSED: the rate the service is asked for.  The user's output-rate
 * must suit downstream; otherwise downstream's preferred rate among ours,
 * YRT_DEFAULT_OUTPUT_RATE when it takes that. */
static gboolean negotiate_output_rate (GstYandexRealtime *self)
{
  GstYandexRealtimePrivate *priv = self->priv;
  GstCaps *ours = src_caps (self);
  GstCaps *allowed = gst_pad_peer_query_caps (self->srcpad, ours);
  bool linked = gst_pad_is_linked (self->srcpad);
  std::lock_guard<std::mutex> guard (priv->settings_lock);
  Settings &s = priv->settings;
  gboolean ok = TRUE;
  if (linked && gst_caps_is_empty (allowed)) {
    if (s.output_rate_set)
      GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
          ("Downstream does not take the output-rate of %u Hz", s.session.output_rate),
          ("set output-rate to a rate downstream accepts, leave it unset to "
           "negotiate, or put audioresample after the element; downstream "
           "rejected %" GST_PTR_FORMAT, ours));
    else
      GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
          ("Downstream takes no rate the element can produce"),
          ("the src pad produces %" GST_PTR_FORMAT "; put audioresample after "
           "the element", ours));
    ok = FALSE;
  } else if (!s.output_rate_set) {
    GstCaps *preferred = caps_at_rate (YRT_DEFAULT_OUTPUT_RATE);
    guint rate = YRT_DEFAULT_OUTPUT_RATE;
    if (linked && !gst_caps_can_intersect (allowed, preferred)) {
      allowed = gst_caps_make_writable (allowed);
      allowed = gst_caps_truncate (allowed);
      GstStructure *st = gst_caps_get_structure (allowed, 0);
      gst_structure_fixate_field_nearest_int (st, "rate", YRT_DEFAULT_OUTPUT_RATE);
      gint r = YRT_DEFAULT_OUTPUT_RATE;
      gst_structure_get_int (st, "rate", &r);
      rate = (guint) r;
    }
    gst_caps_unref (preferred);
    priv->src_rate = rate;
  }
  if (s.output_rate_set)
    priv->src_rate = s.session.output_rate;
  GST_INFO_OBJECT (self, "src at %u Hz (%s), the service asked for %u Hz", priv->src_rate,
      s.output_rate_set ? "output-rate" : "negotiated", s.session.output_rate);
  gst_caps_unref (allowed);
  gst_caps_unref (ours);
  return ok;
}

GstCaps *GstYandexRealtimePrivate::audio_caps ()
{
  return caps_at_rate (playout.rate ());
}

static void push_sticky_events (Output &o, GstPad *pad)
{
  if (o.need_stream_start) {
    gchar *id = gst_pad_create_stream_id (pad, GST_ELEMENT (o.self), o.stream);
    GstEvent *start = gst_event_new_stream_start (id);
    gst_event_set_group_id (start, o.self->priv->group_id);  /* one group: the outputs */
    g_free (id);
    gst_pad_push_event (pad, start);
    GstCaps *caps = o.caps ();
    gst_pad_push_event (pad, gst_event_new_caps (caps));
    gst_caps_unref (caps);
    o.need_stream_start = false;
  }
  if (o.need_segment) {
    GstSegment segment;
    gst_segment_init (&segment, GST_FORMAT_TIME);
    gst_pad_push_event (pad, gst_event_new_segment (&segment));
    o.need_segment = false;
  }
}

/* What a pad's push returned, combined over the output pads: the chain
 * function returns that upstream.  An unlinked pad goes on (its output is
 * dropped) while another takes data; anything else stops it as a source
 * would: EOS pushed, after an error message for anything but EOS. */
static void handle_flow (Output &o, GstPad *pad, GstFlowReturn ret)
{
  GstYandexRealtimePrivate *priv = o.self->priv;
  GstFlowReturn combined;
  {
    std::lock_guard<std::mutex> guard (priv->flow_lock);
    combined = gst_flow_combiner_update_pad_flow (priv->flows, pad, ret);
  }
  priv->src_flow = combined;
  if (ret == GST_FLOW_OK || (ret == GST_FLOW_NOT_LINKED && combined != GST_FLOW_NOT_LINKED))
    return;
  GST_DEBUG_OBJECT (pad, "pausing task: %s", gst_flow_get_name (ret));
  if (ret == GST_FLOW_NOT_LINKED || ret < GST_FLOW_EOS)
    GST_ELEMENT_FLOW_ERROR (o.self, ret);
  gst_pad_push_event (pad, gst_event_new_eos ());
  gst_pad_pause_task (pad);
}

/* The end of the answers is the end of their text too. */
static void on_eos (Output &o)
{
  GstYandexRealtimePrivate *priv = o.self->priv;
  if (&o != &priv->src)
    return;
  GST_INFO_OBJECT (o.self, "all answers pushed, EOS");
  priv->answer_text.finish ();
  priv->transcript_text.finish ();
}

/* The task of every output pad. */
static void output_loop (gpointer data)
{
  Output &o = *static_cast<Output *> (data);
  GstYandexRealtimePrivate *priv = o.self->priv;
  GstPad *pad = o.pad.load ();
  PlayoutItem item = o.pop ([priv] { return priv->running_time (); });
  if (item.kind != PlayoutItem::Kind::Flushing)
    push_sticky_events (o, pad);

  switch (item.kind) {
    case PlayoutItem::Kind::Buffer:
      if (&o == &priv->src)
        YRT_TRACE ("downlink-out", priv->trace_out++, g_get_monotonic_time ());
      handle_flow (o, pad, gst_pad_push (pad, item.buffer));
      break;
    case PlayoutItem::Kind::Flush:
      /* Barge-in: downstream drops what it still holds of the answer. */
      gst_pad_push_event (pad, gst_event_new_flush_start ());
      gst_pad_push_event (pad, gst_event_new_flush_stop (FALSE));
      o.need_segment = true;
      break;
    case PlayoutItem::Kind::Gap:
      gst_pad_push_event (pad, gst_event_new_gap (item.gap_start, item.gap_duration));
      break;
    case PlayoutItem::Kind::Eos:
      on_eos (o);
      gst_pad_push_event (pad, gst_event_new_eos ());
      gst_pad_pause_task (pad);
      break;
    case PlayoutItem::Kind::Flushing:
      gst_pad_pause_task (pad);
      break;
  }
}

static Output *output_of (GstYandexRealtime *self, GstPad *pad)
{
  for (Output *o : self->priv->outputs ())
    if (o->pad.load () == pad)
      return o;
  return nullptr;
}

static gboolean gst_yandex_realtime_src_activate_mode (GstPad *pad, GstObject *parent,
    GstPadMode mode, gboolean active)
{
  auto *self = GST_YANDEX_REALTIME (parent);
  Output *o = output_of (self, pad);
  if (mode != GST_PAD_MODE_PUSH || !o)
    return FALSE;
  if (active) {
    {
      std::lock_guard<std::mutex> guard (self->priv->flow_lock);
      gst_flow_combiner_reset (self->priv->flows);
    }
    self->priv->src_flow = GST_FLOW_OK;
    o->set_flushing (false);
    return gst_pad_start_task (pad, output_loop, o, nullptr);
  }
  o->set_flushing (true);
  return gst_pad_stop_task (pad);
}

static gboolean gst_yandex_realtime_src_event (GstPad *pad, GstObject *parent,
    GstEvent *event)
{
  if (GST_EVENT_TYPE (event) == GST_EVENT_LATENCY &&
      pad == GST_YANDEX_REALTIME (parent)->srcpad) {
    GstClockTime latency;
    gst_event_parse_latency (event, &latency);
    /* Barge-in's estimate of what is still unheard when the sink cannot tell. */
    GST_YANDEX_REALTIME (parent)->priv->downstream_latency_ns = latency;
  }
  return gst_pad_event_default (pad, parent, event);
}

static gboolean gst_yandex_realtime_src_query (GstPad *pad, GstObject *parent,
    GstQuery *query)
{
  auto *self = GST_YANDEX_REALTIME (parent);
  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_LATENCY: {
      /* Our output is stamped when it arrives; we add the uplink's chunk
       * accumulation, and how late the playout may push what it stamped
       * (an echo canceller's probe lines far and near end up by it). */
      if (!gst_pad_peer_query (self->sinkpad, query))
        return FALSE;
      gboolean live;
      GstClockTime min, max;
      gst_query_parse_latency (query, &live, &min, &max);
      GstClockTime ours;
      {
        std::lock_guard<std::mutex> guard (self->priv->settings_lock);
        ours = self->priv->settings.chunk_ms * GST_MSECOND;
      }
      ours += Playout::max_lateness ();
      min += ours;
      if (GST_CLOCK_TIME_IS_VALID (max))
        max += ours;
      gst_query_set_latency (query, live, min, max);
      return TRUE;
    }
    case GST_QUERY_CAPS: {
      if (pad != self->srcpad)
        return gst_pad_query_default (pad, parent, query);  /* fixed text caps */
      return answer_caps_query (query, src_caps (self));
    }
    case GST_QUERY_POSITION:
    case GST_QUERY_DURATION:
    case GST_QUERY_SEEKING:
      return FALSE;  /* upstream's timeline is not ours */
    default:
      return gst_pad_query_default (pad, parent, query);
  }
}

/* ---- state ---- */

/* Connects a new session with the settings as they are now. */
static void start_dialog (GstYandexRealtime *self)
{
  GstYandexRealtimePrivate *priv = self->priv;
  Endpoint endpoint;
  SessionConfig config;
  DialogOptions options;
  {
    std::lock_guard<std::mutex> guard (priv->settings_lock);
    const Settings &s = priv->settings;
    endpoint.url = endpoint_url (s.location, priv->credentials.folder_id, s.model);
    endpoint.authorization = priv->credentials.authorization;
    endpoint.connection = s.connection;
    config = s.session;
    options = s.dialog;
    options.resample_quality = s.resample_quality;
  }
  log_extra_overrides (GST_OBJECT (self), config);
  if (!endpoint.connection.strict && is_secure (endpoint.url)) {
    GST_WARNING_OBJECT (self, "ssl-strict=false: the server's certificate is NOT checked");
    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
        ("TLS certificates are not checked (ssl-strict=false)"),
        ("any server can pose as %s, and anyone on the way can read the credentials and the "
         "conversation; trust a private CA with ssl-ca-file or tls-database instead",
            endpoint.url.c_str ()));
  }
  GST_INFO_OBJECT (self, "connecting to %s", endpoint.url.c_str ());
  priv->dialog.open (endpoint, config, options);
}

static void open_dialog (GstYandexRealtime *self)
{
  GstYandexRealtimePrivate *priv = self->priv;
  guint input_rate, chunk_ms, quality;
  {
    std::lock_guard<std::mutex> guard (priv->settings_lock);
    const Settings &s = priv->settings;
    input_rate = s.session.input_rate;
    chunk_ms = s.chunk_ms;
    quality = s.resample_quality;
    priv->playout.configure (priv->src_rate, false);
  }
  priv->input.configure (input_rate, chunk_ms, quality);
  priv->answer_text.configure (false);
  priv->transcript_text.configure (false);
  for (Output *o : priv->outputs ()) {
    o->reset ();
    o->need_stream_start = o->need_segment = true;
  }
  {
    std::lock_guard<std::mutex> guard (priv->text_lock);
    priv->captions.configure (false);
    priv->captions.reset ();
    priv->transcripts.reset ();
    priv->last_speech_end = GST_CLOCK_TIME_NONE;
  }
  priv->group_id = gst_util_group_id_next ();
  start_dialog (self);
}

/* NULL→READY: the settings are usable, and the credentials are found. */
static gboolean check_settings (GstYandexRealtime *self)
{
  GstYandexRealtimePrivate *priv = self->priv;
  Settings settings;
  {
    std::lock_guard<std::mutex> guard (priv->settings_lock);
    settings = priv->settings;
  }
  Credentials credentials;
  Verdict verdict = check_for_ready (settings, credentials);
  {
    std::lock_guard<std::mutex> guard (priv->settings_lock);
    priv->credentials = credentials;
  }
  return post_verdict (self, verdict);
}

static GstStateChangeReturn gst_yandex_realtime_change_state (GstElement *element,
    GstStateChange transition)
{
  auto *self = GST_YANDEX_REALTIME (element);
  GstYandexRealtimePrivate *priv = self->priv;
  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (!check_settings (self))
        return GST_STATE_CHANGE_FAILURE;
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      if (!negotiate_output_rate (self))
        return GST_STATE_CHANGE_FAILURE;
      open_dialog (self);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      /* Wake a chain function waiting for the session before the pads
       * deactivate (they take the stream lock it holds). */
      priv->dialog.set_flushing (true);
      for (Output *o : priv->outputs ())
        o->set_flushing (true);
      break;
    default:
      break;
  }
  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS (gst_yandex_realtime_parent_class)->change_state (element, transition);
  switch (transition) {
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      priv->dialog.close ();
      priv->input.stop ();
      for (Output *o : priv->outputs ())
        o->reset ();
      break;
    default:
      break;
  }
  return ret;
}

/* ---- conversation control ---- */

/* GObject batches the notifications of one g_object_set() call, so several
 * settings changed together make one session.update. */
static void gst_yandex_realtime_dispatch_properties_changed (GObject *object,
    guint n_pspecs, GParamSpec **pspecs)
{
  auto *self = GST_YANDEX_REALTIME (object);
  for (guint i = 0; i < n_pspecs; i++) {
    if (pspecs[i]->owner_type == GST_TYPE_YANDEX_REALTIME &&
        is_session_property (pspecs[i]->param_id)) {
      SessionConfig config;
      {
        std::lock_guard<std::mutex> guard (self->priv->settings_lock);
        config = self->priv->settings.session;
      }
      self->priv->dialog.update_session (config);
      break;
    }
  }
  G_OBJECT_CLASS (gst_yandex_realtime_parent_class)->dispatch_properties_changed (object,
      n_pspecs, pspecs);
}

static gboolean send_function_output (GstYandexRealtime *self, const gchar *call_id,
    const gchar *output)
{
  if (!call_id || !output) {
    GST_WARNING_OBJECT (self, "send-function-output needs a call-id and an output");
    return FALSE;
  }
  return self->priv->dialog.send_function_output (call_id, output);
}

static gboolean send_text (GstYandexRealtime *self, const gchar *text)
{
  if (!text || !*text) {
    GST_WARNING_OBJECT (self, "send-text needs a text");
    return FALSE;
  }
  return self->priv->dialog.send_text (text);
}

static gboolean commit (GstYandexRealtime *self)
{
  return self->priv->dialog.commit ();
}

static gboolean create_response (GstYandexRealtime *self, const gchar *instructions)
{
  return self->priv->dialog.create_response (instructions);
}

static gboolean cancel_response (GstYandexRealtime *self)
{
  return self->priv->dialog.cancel_response ();
}

static gboolean clear_input (GstYandexRealtime *self)
{
  return self->priv->dialog.clear_input ();
}

static gboolean clear_conversation (GstYandexRealtime *self)
{
  return self->priv->dialog.clear_conversation ();
}

static void install_signals (GObjectClass *klass)
{
  const auto flags = (GSignalFlags) (G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION);
  const GType type = G_TYPE_FROM_CLASS (klass);
  g_signal_new_class_handler ("send-function-output", type, flags,
      G_CALLBACK (send_function_output), nullptr, nullptr, nullptr,
      G_TYPE_BOOLEAN, 2, G_TYPE_STRING, G_TYPE_STRING);
  g_signal_new_class_handler ("send-text", type, flags, G_CALLBACK (send_text),
      nullptr, nullptr, nullptr, G_TYPE_BOOLEAN, 1, G_TYPE_STRING);
  g_signal_new_class_handler ("commit", type, flags, G_CALLBACK (commit),
      nullptr, nullptr, nullptr, G_TYPE_BOOLEAN, 0);
  g_signal_new_class_handler ("create-response", type, flags,
      G_CALLBACK (create_response), nullptr, nullptr, nullptr,
      G_TYPE_BOOLEAN, 1, G_TYPE_STRING);
  g_signal_new_class_handler ("cancel-response", type, flags,
      G_CALLBACK (cancel_response), nullptr, nullptr, nullptr, G_TYPE_BOOLEAN, 0);
  g_signal_new_class_handler ("clear-input", type, flags, G_CALLBACK (clear_input),
      nullptr, nullptr, nullptr, G_TYPE_BOOLEAN, 0);
  g_signal_new_class_handler ("clear-conversation", type, flags,
      G_CALLBACK (clear_conversation), nullptr, nullptr, nullptr, G_TYPE_BOOLEAN, 0);
}

/* ---- GObject ---- */

static void gst_yandex_realtime_finalize (GObject *object)
{
  auto *self = GST_YANDEX_REALTIME (object);
  delete self->priv;
  G_OBJECT_CLASS (gst_yandex_realtime_parent_class)->finalize (object);
}

/* A text pad requested while running may have pushed its first GAP before
 * it was linked: its new peer gets one too. */
static GstPadLinkReturn gst_yandex_realtime_src_link (GstPad *pad, GstObject *parent,
    GstPad *)
{
  Output *o = output_of (GST_YANDEX_REALTIME (parent), pad);
  if (o && o->linked)
    o->linked ();
  return GST_PAD_LINK_OK;
}

static void setup_output_pad (GstPad *pad)
{
  gst_pad_set_link_function (pad, gst_yandex_realtime_src_link);
  gst_pad_set_activatemode_function (pad, gst_yandex_realtime_src_activate_mode);
  gst_pad_set_query_function (pad, gst_yandex_realtime_src_query);
  gst_pad_set_event_function (pad, gst_yandex_realtime_src_event);
  gst_pad_use_fixed_caps (pad);
}

/* text_src and transcript_src: one of each.  A pad requested while the
 * element runs is activated by gst_element_add_pad, which starts its task. */
static GstPad *gst_yandex_realtime_request_new_pad (GstElement *element,
    GstPadTemplate *templ, const gchar *, const GstCaps *)
{
  auto *self = GST_YANDEX_REALTIME (element);
  GstYandexRealtimePrivate *priv = self->priv;
  GstPad *pad = nullptr;
  {
    std::lock_guard<std::mutex> guard (priv->outputs_lock);
    for (Output *o : priv->outputs ()) {
      if (g_strcmp0 (o->name, GST_PAD_TEMPLATE_NAME_TEMPLATE (templ)) != 0 || o->pad.load ())
        continue;
      pad = gst_pad_new_from_template (templ, o->name);
      setup_output_pad (pad);
      o->need_stream_start = o->need_segment = true;
      o->pad = pad;
    }
  }
  if (!pad) {
    GST_WARNING_OBJECT (self, "%s is already requested", GST_PAD_TEMPLATE_NAME_TEMPLATE (templ));
    return nullptr;
  }
  {
    std::lock_guard<std::mutex> guard (priv->flow_lock);
    gst_flow_combiner_add_pad (priv->flows, pad);
  }
  gst_element_add_pad (element, pad);
  return pad;
}

static void gst_yandex_realtime_release_pad (GstElement *element, GstPad *pad)
{
  auto *self = GST_YANDEX_REALTIME (element);
  GstYandexRealtimePrivate *priv = self->priv;
  Output *o = output_of (self, pad);
  if (!o || pad == self->srcpad)
    return;
  gst_pad_set_active (pad, FALSE);
  {
    std::lock_guard<std::mutex> guard (priv->outputs_lock);
    o->pad = nullptr;
  }
  {
    std::lock_guard<std::mutex> guard (priv->flow_lock);
    gst_flow_combiner_remove_pad (priv->flows, pad);
  }
  o->reset ();
  gst_element_remove_pad (element, pad);
}

static void gst_yandex_realtime_init (GstYandexRealtime *self)
{
  self->priv = new GstYandexRealtimePrivate (self);

  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, gst_yandex_realtime_chain);
  gst_pad_set_event_function (self->sinkpad, gst_yandex_realtime_sink_event);
  gst_pad_set_query_function (self->sinkpad, gst_yandex_realtime_sink_query);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  setup_output_pad (self->srcpad);
  self->priv->src.pad = self->srcpad;
  {
    std::lock_guard<std::mutex> guard (self->priv->flow_lock);
    gst_flow_combiner_add_pad (self->priv->flows, self->srcpad);
  }
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
}

static void gst_yandex_realtime_class_init (GstYandexRealtimeClass *klass)
{
  auto *gobject_class = G_OBJECT_CLASS (klass);
  auto *element_class = GST_ELEMENT_CLASS (klass);
  debug_init ();

  gobject_class->set_property = gst_yandex_realtime_set_property;
  gobject_class->get_property = gst_yandex_realtime_get_property;
  gobject_class->finalize = gst_yandex_realtime_finalize;
  gobject_class->dispatch_properties_changed = gst_yandex_realtime_dispatch_properties_changed;
  install_properties (gobject_class);
  install_signals (gobject_class);

  element_class->change_state = gst_yandex_realtime_change_state;
  element_class->request_new_pad = gst_yandex_realtime_request_new_pad;
  element_class->release_pad = gst_yandex_realtime_release_pad;
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_add_static_pad_template (element_class, &text_src_template);
  gst_element_class_add_static_pad_template (element_class, &transcript_src_template);
  gst_element_class_set_static_metadata (element_class,
      "Yandex Cloud Realtime voice agent", "Filter/Audio/Network",
      "Holds a spoken conversation with the Yandex Cloud Realtime API: user "
      "speech in, synthesized answers out",
      "gst-yandexrealtime developers <" PACKAGE_ORIGIN "/issues>");

  gst_type_mark_as_plugin_api (GST_TYPE_YANDEX_REALTIME_TURN_DETECTION, (GstPluginAPIFlags) 0);
  gst_type_mark_as_plugin_api (GST_TYPE_YANDEX_REALTIME_MODALITIES, (GstPluginAPIFlags) 0);
}
