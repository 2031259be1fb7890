/* Element glue: the GObject, its pads, state changes, and the wiring
 * between the parts, each in its own file:
 *   the settings, the property table and their checks   yrt-settings
 *   the sink pad's audio on its way to the dialog       yrt-input (and Uplink)
 *   the conversation                                    yrt-dialog
 *   the output pads and their tasks                     yrt-srcpads (Playout, yrt-text)
 * Data flows one way:
 *   sink chain → Input → Uplink → Dialog → Connection (worker) → Dialog → Playout
 *     → src task;  Dialog → output events → bus, and Captions/Transcripts → text
 *     pad tasks */
#include "gstyandexrealtime.h"

#include "yrt-debug.h"
#include "yrt-dialog.h"
#include "yrt-input.h"
#include "yrt-playout.h"
#include "yrt-settings.h"
#include "yrt-srcpads.h"

#include <gst/audio/audio.h>

#include <mutex>
#include <string>

using namespace yrt;

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
static GstStaticPadTemplate text_src_template = GST_STATIC_PAD_TEMPLATE ("text_src",
    GST_PAD_SRC, GST_PAD_REQUEST, GST_STATIC_CAPS (YRT_TEXT_CAPS));
static GstStaticPadTemplate transcript_src_template = GST_STATIC_PAD_TEMPLATE (
    "transcript_src", GST_PAD_SRC, GST_PAD_REQUEST, GST_STATIC_CAPS (YRT_TEXT_CAPS));

struct GstYandexRealtimePrivate;

struct _GstYandexRealtime {
  GstElement parent;
  GstPad *sinkpad;
  GstPad *srcpad;
  GstYandexRealtimePrivate *priv;
};

/* The element's C++ state: the parts, and what each needs of the others.
 * The streaming thread owns `input`; the others lock for themselves. */
struct GstYandexRealtimePrivate : public DialogHost, public InputHost, public OutputsHost {
  explicit GstYandexRealtimePrivate (GstYandexRealtime *element)
      : self (element), dialog (*this, playout, GST_OBJECT (element)),
        input (*this, GST_ELEMENT (element)), outputs (*this, playout, GST_ELEMENT (element))
  {
  }

  /* The settings the input reads at each buffer. */
  InputSwitches switches ()
  {
    std::lock_guard<std::mutex> guard (settings_lock);
    return InputSwitches::of (settings);
  }

  /* DialogHost */
  void emit (output::Event event) override
  {
    /* Every output event is a bus message; the words also go to the text
     * pads' queues. */
    outputs.route (event);
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_element (GST_OBJECT (self), output::to_message (event)));
  }
  void post_error (DialogError kind, const std::string &text,
      const std::string &debug) override;
  void post_warning (const std::string &text, const std::string &debug) override
  {
    GST_ELEMENT_WARNING (self, RESOURCE, READ, ("%s", text.c_str ()),
        ("%s", debug.c_str ()));
  }
  /* DialogHost, InputHost and OutputsHost */
  GstClockTime running_time () override;
  GstClockTime played_position () override
  {
    gint64 position = -1;
    if (!gst_pad_peer_query_position (self->srcpad, GST_FORMAT_TIME, &position) ||
        position < 0)
      return GST_CLOCK_TIME_NONE;
    return (GstClockTime) position;
  }
  GstClockTime downstream_latency () override { return outputs.downstream_latency (); }

  /* InputHost */
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

  /* OutputsHost */
  bool input_live () override { return input.live (); }
  GstClockTime input_time (guint64 position) override { return input.time_of (position); }

  GstYandexRealtime *self;
  std::mutex settings_lock;
  Settings settings;
  Credentials credentials;

  Playout playout;
  Dialog dialog;
  Input input;
  Outputs outputs;
};

G_DEFINE_TYPE (GstYandexRealtime, gst_yandex_realtime, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE (yandexrealtime, "yandexrealtime", GST_RANK_NONE,
    GST_TYPE_YANDEX_REALTIME);

/* ---- DialogHost ---- */

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

/* None until PLAYING: a pipeline gives its elements the clock before their
 * base time, and a task reading both in between would take the clock's
 * absolute time for a running time. */
GstClockTime GstYandexRealtimePrivate::running_time ()
{
  GstElement *element = GST_ELEMENT (self);
  GST_OBJECT_LOCK (element);
  GstClock *clock = GST_STATE (element) == GST_STATE_PLAYING && element->clock ?
      GST_CLOCK (gst_object_ref (element->clock)) : nullptr;
  GstClockTime base = element->base_time;
  GST_OBJECT_UNLOCK (element);
  if (!clock)
    return GST_CLOCK_TIME_NONE;
  GstClockTime now = gst_clock_get_time (clock);
  gst_object_unref (clock);
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
 * NULL NULL→READY fails too (see check_refused() in yrt-settings). */
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

static void gst_yandex_realtime_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec)
{
  auto *self = GST_YANDEX_REALTIME (object);
  std::lock_guard<std::mutex> guard (self->priv->settings_lock);
  if (prop_id == PROP_STATS)
    g_value_take_boxed (value, stats_structure (self->priv->dialog.stats (),
        self->priv->settings.session.input_rate));
  else if (!get_property (self->priv->settings, prop_id, value))
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

/* ---- sink pad ---- */

/* Live input gets live output timing and barge-in (see Playout): told
 * to the outputs, the playout and the dialog once it is known. */
static void apply_live (GstYandexRealtime *self)
{
  GstYandexRealtimePrivate *priv = self->priv;
  bool live = priv->input.live ();
  priv->outputs.set_live (live);
  std::lock_guard<std::mutex> guard (priv->settings_lock);
  priv->playout.configure (priv->outputs.rate (), live);
  priv->dialog.set_live (live);
}

/* Upstream is asked once it streams, at the first caps (a live source
 * that said so earlier was taken at its word then). */
static void check_live (GstYandexRealtime *self)
{
  if (self->priv->input.check_live (self->sinkpad))
    apply_live (self);
}

static GstFlowReturn gst_yandex_realtime_chain (GstPad *, GstObject *parent,
    GstBuffer *buffer)
{
  GstYandexRealtimePrivate *priv = GST_YANDEX_REALTIME (parent)->priv;
  return priv->input.chain (buffer, priv->outputs.flow (), priv->switches ());
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
  Outputs::Held outputs = priv->outputs.stop_tasks ();
  priv->dialog.close ();
  start_dialog (self);
  if (priv->input.live_known ())
    priv->dialog.set_live (priv->input.live ());
  priv->input.flush ();
  priv->outputs.forget ();
  priv->dialog.set_flushing (false);
  return priv->outputs.restart (outputs, event);
}

static gboolean gst_yandex_realtime_sink_event (GstPad *, GstObject *parent,
    GstEvent *event)
{
  auto *self = GST_YANDEX_REALTIME (parent);
  GstYandexRealtimePrivate *priv = self->priv;
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS: {
      GstCaps *caps;
      gst_event_parse_caps (event, &caps);
      gboolean ok = priv->input.set_caps (caps);
      if (ok)
        check_live (self);
      gst_event_unref (event);
      return ok;
    }
    case GST_EVENT_EOS:
      /* The dialog waits for the answers; EOS leaves the src pad when the
       * playout has pushed them all. */
      priv->input.drain (priv->switches ());
      priv->dialog.drain ();
      gst_event_unref (event);
      return TRUE;
    case GST_EVENT_FLUSH_START:
      priv->dialog.set_flushing (true);
      return priv->outputs.flush_start (event);
    case GST_EVENT_FLUSH_STOP:
      return flush_stop (self, event);
    case GST_EVENT_SEGMENT:
      /* Kept for the input's running time (transcripts, half-duplex), not
       * forwarded. */
      priv->input.set_segment (event);
      gst_event_unref (event);
      return TRUE;
    default:
      /* Stream-start, tags and gaps describe the input; the output pads
       * have their own. */
      gst_event_unref (event);
      return TRUE;
  }
}

static gboolean gst_yandex_realtime_sink_query (GstPad *pad, GstObject *parent,
    GstQuery *query)
{
  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_CAPS:
      return Outputs::answer_caps_query (query, gst_pad_get_pad_template_caps (pad));
    case GST_QUERY_ALLOCATION:
      return FALSE;  /* we consume the buffers; downstream's pool is not upstream's */
    default:
      return gst_pad_query_default (pad, parent, query);
  }
}

/* ---- output pads ---- */

/* The output-rate the user set, 0 when unset. */
static guint user_output_rate (GstYandexRealtime *self)
{
  std::lock_guard<std::mutex> guard (self->priv->settings_lock);
  const Settings &s = self->priv->settings;
  return s.output_rate_set ? s.session.output_rate : 0;
}

static gboolean gst_yandex_realtime_src_activate_mode (GstPad *pad, GstObject *parent,
    GstPadMode mode, gboolean active)
{
  return GST_YANDEX_REALTIME (parent)->priv->outputs.activate (pad, mode, active);
}

static gboolean gst_yandex_realtime_src_event (GstPad *pad, GstObject *parent,
    GstEvent *event)
{
  auto *self = GST_YANDEX_REALTIME (parent);
  if (GST_EVENT_TYPE (event) == GST_EVENT_LATENCY && pad == self->srcpad) {
    GstClockTime latency;
    gst_event_parse_latency (event, &latency);
    /* Barge-in's estimate of what is still unheard when the sink cannot tell. */
    self->priv->outputs.set_downstream_latency (latency);
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
      return Outputs::answer_caps_query (query,
          self->priv->outputs.src_caps (user_output_rate (self)));
    }
    case GST_QUERY_POSITION:
    case GST_QUERY_DURATION:
    case GST_QUERY_SEEKING:
      return FALSE;  /* upstream's timeline is not ours */
    default:
      return gst_pad_query_default (pad, parent, query);
  }
}

static GstPadLinkReturn gst_yandex_realtime_src_link (GstPad *pad, GstObject *parent,
    GstPad *)
{
  GST_YANDEX_REALTIME (parent)->priv->outputs.linked (pad);
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
  GstPad *pad = GST_YANDEX_REALTIME (element)->priv->outputs.request (templ, setup_output_pad);
  if (pad)
    gst_element_add_pad (element, pad);
  return pad;
}

static void gst_yandex_realtime_release_pad (GstElement *element, GstPad *pad)
{
  if (GST_YANDEX_REALTIME (element)->priv->outputs.release (pad))
    gst_element_remove_pad (element, pad);
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
    priv->playout.configure (priv->outputs.rate (), false);
  }
  priv->input.configure (input_rate, chunk_ms, quality);
  priv->outputs.start ();
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

/* READY→PAUSED: the rate of src, which the playout converts the answers to. */
static gboolean negotiate_output_rate (GstYandexRealtime *self)
{
  guint asked;
  {
    std::lock_guard<std::mutex> guard (self->priv->settings_lock);
    asked = self->priv->settings.session.output_rate;
  }
  return self->priv->outputs.negotiate_rate (user_output_rate (self), asked);
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
      /* Before the pads stream, so no caps race it. */
      if (priv->input.check_live_early (self->sinkpad))
        apply_live (self);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      /* Wake a chain function waiting for the session before the pads
       * deactivate (they take the stream lock it holds). */
      priv->dialog.set_flushing (true);
      priv->outputs.set_flushing (true);
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
      priv->outputs.reset ();
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

static gboolean commit (GstYandexRealtime *self) { return self->priv->dialog.commit (); }

static gboolean create_response (GstYandexRealtime *self, const gchar *instructions)
{
  return self->priv->dialog.create_response (instructions);
}

static gboolean cancel_response (GstYandexRealtime *self)
{
  return self->priv->dialog.cancel_response ();
}

static gboolean clear_input (GstYandexRealtime *self) { return self->priv->dialog.clear_input (); }

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
  self->priv->outputs.set_src (self->srcpad);
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
