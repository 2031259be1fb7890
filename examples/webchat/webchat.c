/* yandexrealtime-webchat: a voice chat in the browser on the yandexrealtime
 * element.  One HTTP server (libsoup's SoupServer) serves the page (www/)
 * and a WebSocket, /ws, for signalling and conversation events; the audio
 * goes over WebRTC.  Every WebSocket (every browser tab) gets a pipeline of
 * its own:
 *
 *   webrtcbin → rtpopusdepay → opusdec → yandexrealtime → clocksync →
 *     audio/x-raw,rate=48000 → opusenc → rtpopuspay → webrtcbin
 *
 * and loses it the moment its WebSocket closes.  Nothing is shared between
 * tabs, so several instances behind a load balancer with sticky WebSocket
 * sessions serve more tabs than one machine holds (docs/webchat.md).
 *
 * Credentials stay here: the element reads YANDEX_CLOUD_API_KEY (or
 * YANDEX_CLOUD_IAM_TOKEN) and YANDEX_CLOUD_FOLDER_ID from the environment.
 * The page never sees them.
 *
 * The WebSocket carries JSON objects with a "type":
 *   page → server  answer {sdp}, ice {candidate, sdpMLineIndex},
 *                  mode {value: "ptt" | "hands-free"}, talk {pressed},
 *                  text {text}, clear, cancel
 *   server → page  hello {max_sessions}, offer {sdp},
 *                  ice {candidate, sdpMLineIndex},
 *                  event {name, ...fields of the element's bus message
 *                  yandexrealtime/<name>}, done {what, ok},
 *                  error {message}, warning {message}
 *
 *   yandexrealtime-webchat [--port 8080] [--address 127.0.0.1]
 *                          [--location ws://127.0.0.1:PORT/v1/realtime] ...
 *
 * The first line on stdout is the page's URL. */
#define GST_USE_UNSTABLE_API
#include <gst/gst.h>
#include <gst/audio/audio.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include <stdio.h>
#include <string.h>

#define OPUS_FRAME_MS 20  /* opusenc's frame-size */
#define RTP_OPUS_CAPS "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,encoding-params=(string)2,payload=97"

typedef struct {
  gchar *address;
  gint port;
  gchar *www;
  gchar *location;
  gchar *voice;
  gchar *instructions;
  gchar *stun_server;
  gint latency_ms;
  gint max_sessions;
} Options;

static Options opts = {
  .port = 8080,
  .latency_ms = 40,
  .max_sessions = 16,
};

/* One browser tab: its WebSocket and its pipeline.  Reference counted,
 * because webrtcbin's signals and promises arrive on its own threads and
 * hop to the main loop with a reference. */
typedef struct {
  gint refs;
  guint id;
  SoupWebsocketConnection *ws;  /* NULL once closed */
  GstElement *pipeline;         /* NULL once freed */
  GstElement *webrtc;
  GstElement *rt;               /* the yandexrealtime element */
  GstElement *depay;            /* where webrtcbin's incoming audio goes */
} Session;

static GHashTable *sessions;  /* Session* set: the open tabs */
static guint next_session_id = 1;

static Session *
session_ref (Session *s)
{
  g_atomic_int_inc (&s->refs);
  return s;
}

static void
session_unref (Session *s)
{
  if (!g_atomic_int_dec_and_test (&s->refs))
    return;
  g_assert (s->pipeline == NULL && s->ws == NULL);
  g_free (s);
}

/* ---- messages to the page ---- */

static gchar *
json_to_text (JsonBuilder *b)
{
  JsonNode *root = json_builder_get_root (b);
  gchar *text = json_to_string (root, FALSE);
  json_node_unref (root);
  g_object_unref (b);
  return text;
}

/* Main thread only, like every libsoup object. */
static void
send_text (Session *s, const gchar *text)
{
  if (s->ws && soup_websocket_connection_get_state (s->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_send_text (s->ws, text);
}

typedef struct {
  Session *session;
  gchar *text;
} Outgoing;

static gboolean
send_outgoing (gpointer data)
{
  Outgoing *o = data;
  send_text (o->session, o->text);
  return G_SOURCE_REMOVE;
}

static void
free_outgoing (gpointer data)
{
  Outgoing *o = data;
  session_unref (o->session);
  g_free (o->text);
  g_free (o);
}

/* From any thread: queued for the main loop, in order. Takes `text`. */
static void
post_text (Session *s, gchar *text)
{
  Outgoing *o = g_new0 (Outgoing, 1);
  o->session = session_ref (s);
  o->text = text;
  g_idle_add_full (G_PRIORITY_DEFAULT, send_outgoing, o, free_outgoing);
}

static gchar *
simple_message (const gchar *type, const gchar *key, const gchar *value)
{
  JsonBuilder *b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, type);
  if (key) {
    json_builder_set_member_name (b, key);
    json_builder_add_string_value (b, value);
  }
  json_builder_end_object (b);
  return json_to_text (b);
}

/* ---- the pipeline ---- */

/* The element `e`'s "src" pad feeds (a reference), or NULL. */
static GstElement *
downstream_of (GstElement *e)
{
  GstPad *src = gst_element_get_static_pad (e, "src");
  GstPad *peer = src ? gst_pad_get_peer (src) : NULL;
  GstElement *next = peer ? gst_pad_get_parent_element (peer) : NULL;
  if (peer)
    gst_object_unref (peer);
  if (src)
    gst_object_unref (src);
  return next;
}

static void
session_free_pipeline (Session *s)
{
  if (!s->pipeline)
    return;
  gst_bus_remove_watch (GST_ELEMENT_BUS (s->pipeline));
  /* The pipeline is a loop (webrtcbin → … → webrtcbin), so GstBin cannot
   * order the state change from the sinks up: an element that went to
   * PAUSED first (clocksync waits there for PLAYING) would hold the
   * element's streaming thread, pushing an answer into it, while the
   * element's pads are deactivated.  So the answer's path stops from its
   * end back: webrtcbin, then each element after yandexrealtime, nearest to
   * webrtcbin first.  A push into a stopped element returns FLUSHING. */
  gst_element_set_state (s->webrtc, GST_STATE_NULL);
  GPtrArray *path = g_ptr_array_new_with_free_func (gst_object_unref);
  GstElement *e = downstream_of (s->rt);
  for (; e && e != s->webrtc; e = downstream_of (e))
    g_ptr_array_add (path, e);
  if (e)
    gst_object_unref (e);
  for (guint i = path->len; i-- > 0;)
    gst_element_set_state (GST_ELEMENT (g_ptr_array_index (path, i)), GST_STATE_NULL);
  g_ptr_array_unref (path);
  gst_element_set_state (s->pipeline, GST_STATE_NULL);
  gst_clear_object (&s->pipeline);
  s->webrtc = s->rt = s->depay = NULL;  /* owned by the pipeline */
}

/* Ends a tab: its pipeline goes at once (the element closes its session
 * with the service), then its WebSocket. */
static void
session_end (Session *s, gushort code, const gchar *reason)
{
  session_ref (s);
  session_free_pipeline (s);
  if (s->ws) {
    SoupWebsocketConnection *ws = s->ws;
    s->ws = NULL;
    g_signal_handlers_disconnect_by_data (ws, s);
    if (soup_websocket_connection_get_state (ws) == SOUP_WEBSOCKET_STATE_OPEN)
      soup_websocket_connection_close (ws, code, reason);
    g_object_unref (ws);
  }
  if (g_hash_table_remove (sessions, s)) {
    g_print ("tab %u: closed, pipeline freed (%u open)\n", s->id, g_hash_table_size (sessions));
    session_unref (s);  /* the table's reference */
  }
  session_unref (s);
}

static void
on_offer_created (GstPromise *promise, gpointer user_data)
{
  Session *s = user_data;
  GstWebRTCSessionDescription *offer = NULL;
  const GstStructure *reply = gst_promise_get_reply (promise);

  if (reply)
    gst_structure_get (reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, NULL);
  gst_promise_unref (promise);
  if (!offer) {
    post_text (s, simple_message ("error", "message", "The server could not create a WebRTC offer."));
    return;
  }
  g_signal_emit_by_name (s->webrtc, "set-local-description", offer, NULL);
  gchar *sdp = gst_sdp_message_as_text (offer->sdp);
  post_text (s, simple_message ("offer", "sdp", sdp));
  g_free (sdp);
  gst_webrtc_session_description_free (offer);
}

/* webrtcbin's thread.  The promise holds a reference to the session. */
static void
on_negotiation_needed (GstElement *webrtc, gpointer user_data)
{
  Session *s = user_data;
  GstPromise *promise = gst_promise_new_with_change_func (on_offer_created,
      session_ref (s), (GDestroyNotify) session_unref);
  g_signal_emit_by_name (webrtc, "create-offer", NULL, promise);
}

static void
on_ice_candidate (GstElement *webrtc, guint mline, gchar *candidate, gpointer user_data)
{
  (void) webrtc;
  JsonBuilder *b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "ice");
  json_builder_set_member_name (b, "candidate");
  json_builder_add_string_value (b, candidate);
  json_builder_set_member_name (b, "sdpMLineIndex");
  json_builder_add_int_value (b, mline);
  json_builder_end_object (b);
  post_text (user_data, json_to_text (b));
}

/* The browser's audio: webrtcbin's src pad appears once RTP flows. */
static void
on_pad_added (GstElement *webrtc, GstPad *pad, gpointer user_data)
{
  (void) webrtc;
  Session *s = user_data;
  if (GST_PAD_DIRECTION (pad) != GST_PAD_SRC)
    return;
  GstPad *sink = gst_element_get_static_pad (s->depay, "sink");
  if (!gst_pad_is_linked (sink) && gst_pad_link (pad, sink) != GST_PAD_LINK_OK)
    post_text (s, simple_message ("error", "message", "The server could not take the browser's audio."));
  gst_object_unref (sink);
}

/* Bus message fields the page gets: strings, booleans and numbers. */
static gboolean
add_field (GQuark field, const GValue *value, gpointer user_data)
{
  JsonBuilder *b = user_data;
  const gchar *name = g_quark_to_string (field);

  if (g_str_equal (name, "url"))  /* carries the folder ID: not the page's business */
    return TRUE;
  switch (G_VALUE_TYPE (value)) {
    case G_TYPE_STRING:
      json_builder_set_member_name (b, name);
      json_builder_add_string_value (b, g_value_get_string (value));
      break;
    case G_TYPE_BOOLEAN:
      json_builder_set_member_name (b, name);
      json_builder_add_boolean_value (b, g_value_get_boolean (value));
      break;
    case G_TYPE_UINT:
      json_builder_set_member_name (b, name);
      json_builder_add_int_value (b, g_value_get_uint (value));
      break;
    case G_TYPE_UINT64:
      json_builder_set_member_name (b, name);
      json_builder_add_int_value (b, (gint64) g_value_get_uint64 (value));
      break;
    default:
      break;
  }
  return TRUE;
}

static gchar *
event_message (const GstStructure *st)
{
  JsonBuilder *b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "event");
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, gst_structure_get_name (st) + strlen ("yandexrealtime/"));
  gst_structure_foreach (st, add_field, b);
  json_builder_end_object (b);
  return json_to_text (b);
}

static gboolean
on_bus_message (GstBus *bus, GstMessage *msg, gpointer user_data)
{
  (void) bus;
  Session *s = user_data;
  GError *err = NULL;
  gchar *debug = NULL;

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ELEMENT: {
      const GstStructure *st = gst_message_get_structure (msg);
      if (GST_MESSAGE_SRC (msg) == GST_OBJECT (s->rt) && st &&
          g_str_has_prefix (gst_structure_get_name (st), "yandexrealtime/")) {
        gchar *text = event_message (st);
        send_text (s, text);
        g_free (text);
      }
      break;
    }
    case GST_MESSAGE_WARNING:
      gst_message_parse_warning (msg, &err, &debug);
      g_printerr ("tab %u: warning: %s (%s)\n", s->id, err->message, debug ? debug : "");
      if (GST_MESSAGE_SRC (msg) == GST_OBJECT (s->rt)) {
        gchar *text = simple_message ("warning", "message", err->message);
        send_text (s, text);
        g_free (text);
      }
      break;
    case GST_MESSAGE_ERROR: {
      gst_message_parse_error (msg, &err, &debug);
      g_printerr ("tab %u: error from %s: %s (%s)\n", s->id, GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)),
          err->message, debug ? debug : "");
      gchar *text = simple_message ("error", "message", err->message);
      send_text (s, text);
      g_free (text);
      g_clear_error (&err);
      g_free (debug);
      /* The conversation cannot go on: free the pipeline now; the page
       * shows the error and offers to reconnect. */
      session_end (s, SOUP_WEBSOCKET_CLOSE_SERVER_ERROR, "pipeline error");
      return G_SOURCE_REMOVE;
    }
    default:
      break;
  }
  g_clear_error (&err);
  g_free (debug);
  return G_SOURCE_CONTINUE;
}

/* Each answer ends in packets of its own.  Between answers the element
 * pushes GAP events, and opusenc (a GstAudioEncoder) does not drain on a
 * GAP: it kept the end of an answer (the part of its last 20 ms frame that
 * was not full, and Opus's 6.5 ms lookahead) until the next answer came,
 * then sent it in one packet with the next answer's first samples, stamped
 * at the previous answer's time.  The RTP timestamps jumped by the pause
 * after that packet, and the browser concealed there: a break or a hole in
 * the first 100 ms of every answer but the first (docs/webchat.md).  So at
 * the first GAP after audio, a probe on opusenc's sink pad gives it one
 * frame of silence (right after the answer: it pushes the answer's last
 * samples through the lookahead) and its segment again: GstAudioEncoder
 * drains on a new segment (the end of the answer goes out at once, the last
 * frame padded) and stamps what comes next from its own first sample. */
static void
drain_encoder (GstPad *pad, GstClockTime end)
{
  GstCaps *caps = gst_pad_get_current_caps (pad);
  GstAudioInfo info;
  if (caps && gst_audio_info_from_caps (&info, caps) && GST_CLOCK_TIME_IS_VALID (end)) {
    gint frames = GST_AUDIO_INFO_RATE (&info) * OPUS_FRAME_MS / 1000;
    gsize size = (gsize) frames * GST_AUDIO_INFO_BPF (&info);
    GstBuffer *silence = gst_buffer_new_allocate (NULL, size, NULL);
    GstMapInfo map;
    gst_buffer_map (silence, &map, GST_MAP_WRITE);
    gst_audio_format_info_fill_silence (info.finfo, map.data, size);
    gst_buffer_unmap (silence, &map);
    GST_BUFFER_PTS (silence) = end;
    GST_BUFFER_DURATION (silence) = OPUS_FRAME_MS * GST_MSECOND;
    gst_pad_chain (pad, silence);
  }
  if (caps)
    gst_caps_unref (caps);
  GstEvent *sticky = gst_pad_get_sticky_event (pad, GST_EVENT_SEGMENT, 0);
  if (sticky) {
    const GstSegment *segment;
    gst_event_parse_segment (sticky, &segment);
    gst_pad_send_event (pad, gst_event_new_segment (segment));
    gst_event_unref (sticky);
  }
}

static GstPadProbeReturn
drain_encoder_on_gap (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  gboolean *holds_audio = user_data;  /* audio went in since the last drain */
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    *holds_audio = TRUE;
    return GST_PAD_PROBE_OK;
  }
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);
  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP) {
    *holds_audio = FALSE;  /* dropped (barge-in) */
  } else if (GST_EVENT_TYPE (event) == GST_EVENT_GAP && *holds_audio) {
    GstClockTime start;
    gst_event_parse_gap (event, &start, NULL);
    drain_encoder (pad, start);
    *holds_audio = FALSE;
  }
  return GST_PAD_PROBE_OK;
}

static GstElement *
make (GstElement *pipeline, const gchar *factory, const gchar *name)
{
  GstElement *e = gst_element_factory_make (factory, name);
  if (e)
    gst_bin_add (GST_BIN (pipeline), e);
  else
    g_printerr ("missing GStreamer element %s\n", factory);
  return e;
}

static gboolean
session_build (Session *s)
{
  GstElement *p = s->pipeline = gst_pipeline_new (NULL);
  GstElement *webrtc = make (p, "webrtcbin", "webrtc");
  GstElement *depay = make (p, "rtpopusdepay", NULL);
  GstElement *dec = make (p, "opusdec", NULL);
  GstElement *rt = make (p, "yandexrealtime", "rt");
  /* The element pushes an answer as fast as it arrives; webrtcbin's
   * network sink does not wait for the clock, so clocksync paces it. */
  GstElement *sync = make (p, "clocksync", NULL);
  /* 48 kHz, Opus's own rate, straight from the element: it negotiates the
   * rate downstream takes and asks the service for it.  Nothing converts:
   * opusenc takes the element's S16LE mono as it is (a resampler here also
   * kept history through the pause between answers, and pushed it out when
   * the next one began, stamped at the end of the previous one). */
  GstElement *rate = make (p, "capsfilter", NULL);
  GstElement *enc = make (p, "opusenc", NULL);
  GstElement *pay = make (p, "rtpopuspay", NULL);
  GstElement *caps = make (p, "capsfilter", NULL);

  if (!webrtc || !depay || !dec || !rt || !sync || !rate || !enc || !pay || !caps)
    return FALSE;
  s->webrtc = webrtc;
  s->rt = rt;
  s->depay = depay;

  g_object_set (webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE,
      "latency", (guint) opts.latency_ms, NULL);
  if (opts.stun_server)
    g_object_set (webrtc, "stun-server", opts.stun_server, NULL);
  if (g_strcmp0 (opts.address, "127.0.0.1") == 0) {
    /* A server on loopback talks ICE on loopback only. */
    GObject *ice = NULL;
    gboolean ok = FALSE;
    g_object_get (webrtc, "ice-agent", &ice, NULL);
    g_signal_emit_by_name (ice, "add-local-ip-address", "127.0.0.1", &ok);
    g_object_set (ice, "ice-tcp", FALSE, NULL);
    g_object_unref (ice);
  }
  /* Push-to-talk until the page says otherwise: no audio goes to the
   * service before the user presses. */
  g_object_set (rt, "mute", TRUE, NULL);
  if (opts.location)
    g_object_set (rt, "location", opts.location, NULL);
  if (opts.voice)
    g_object_set (rt, "voice", opts.voice, NULL);
  if (opts.instructions)
    g_object_set (rt, "instructions", opts.instructions, NULL);
  GstCaps *raw_caps = gst_caps_from_string ("audio/x-raw,rate=48000");
  g_object_set (rate, "caps", raw_caps, NULL);
  gst_caps_unref (raw_caps);
  g_object_set (enc, "frame-size", OPUS_FRAME_MS, NULL);
  GstPad *enc_sink = gst_element_get_static_pad (enc, "sink");
  gst_pad_add_probe (enc_sink, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM |
      GST_PAD_PROBE_TYPE_EVENT_FLUSH, drain_encoder_on_gap, g_new0 (gboolean, 1), g_free);
  gst_object_unref (enc_sink);
  g_object_set (pay, "pt", 97, NULL);
  GstCaps *rtp_caps = gst_caps_from_string (RTP_OPUS_CAPS);
  g_object_set (caps, "caps", rtp_caps, NULL);
  gst_caps_unref (rtp_caps);

  if (!gst_element_link_many (depay, dec, rt, sync, rate, enc, pay, caps, NULL) ||
      !gst_element_link_pads (caps, "src", webrtc, "sink_%u"))
    return FALSE;

  /* The element's transceiver sends and receives: the browser answers
   * with its microphone on it.  Its codec is given up front: the offer
   * cannot wait for caps from the element, which has none before its
   * first answer. */
  GArray *transceivers = NULL;
  rtp_caps = gst_caps_from_string (RTP_OPUS_CAPS);
  g_signal_emit_by_name (webrtc, "get-transceivers", &transceivers);
  for (guint i = 0; transceivers && i < transceivers->len; i++)
    g_object_set (g_array_index (transceivers, GstWebRTCRTPTransceiver *, i),
        "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDRECV, "codec-preferences", rtp_caps, NULL);
  if (transceivers)
    g_array_unref (transceivers);
  gst_caps_unref (rtp_caps);

  /* The callbacks each hold a reference, dropped with the pipeline. */
  g_signal_connect_data (webrtc, "on-negotiation-needed", G_CALLBACK (on_negotiation_needed),
      session_ref (s), (GClosureNotify) (void (*) (void)) session_unref, 0);
  g_signal_connect_data (webrtc, "on-ice-candidate", G_CALLBACK (on_ice_candidate),
      session_ref (s), (GClosureNotify) (void (*) (void)) session_unref, 0);
  g_signal_connect_data (webrtc, "pad-added", G_CALLBACK (on_pad_added),
      session_ref (s), (GClosureNotify) (void (*) (void)) session_unref, 0);
  gst_bus_add_watch_full (GST_ELEMENT_BUS (p), G_PRIORITY_DEFAULT, on_bus_message,
      session_ref (s), (GDestroyNotify) session_unref);
  return gst_element_set_state (p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE;
}

/* ---- messages from the page ---- */

static void
on_answer (Session *s, const gchar *text)
{
  GstSDPMessage *sdp = NULL;
  if (!text || gst_sdp_message_new_from_text (text, &sdp) != GST_SDP_OK) {
    gst_sdp_message_free (sdp);
    send_text (s, "{\"type\":\"error\",\"message\":\"The browser's WebRTC answer is not valid SDP.\"}");
    return;
  }
  GstWebRTCSessionDescription *answer = gst_webrtc_session_description_new (GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
  g_signal_emit_by_name (s->webrtc, "set-remote-description", answer, NULL);
  gst_webrtc_session_description_free (answer);
}

static void
reply_done (Session *s, const gchar *what, gboolean ok)
{
  gchar *text = g_strdup_printf ("{\"type\":\"done\",\"what\":\"%s\",\"ok\":%s}", what, ok ? "true" : "false");
  send_text (s, text);
  g_free (text);
}

static void
on_ws_message (SoupWebsocketConnection *ws, gint kind, GBytes *message, gpointer user_data)
{
  (void) ws;
  Session *s = user_data;
  gsize size = 0;
  const gchar *data = g_bytes_get_data (message, &size);
  JsonParser *parser = json_parser_new ();
  JsonObject *o = NULL;

  if (kind == SOUP_WEBSOCKET_DATA_TEXT && json_parser_load_from_data (parser, data, (gssize) size, NULL) &&
      JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    o = json_node_get_object (json_parser_get_root (parser));
  const gchar *type = o ? json_object_get_string_member_with_default (o, "type", "") : "";
  gboolean ok = FALSE;

  if (!s->pipeline) {
    /* ended already */
  } else if (g_str_equal (type, "answer")) {
    on_answer (s, json_object_get_string_member_with_default (o, "sdp", NULL));
  } else if (g_str_equal (type, "ice")) {
    const gchar *candidate = json_object_get_string_member_with_default (o, "candidate", "");
    gint64 mline = json_object_get_int_member_with_default (o, "sdpMLineIndex", 0);
    if (*candidate)  /* "" marks the end of the browser's candidates */
      g_signal_emit_by_name (s->webrtc, "add-ice-candidate", (guint) mline, candidate);
  } else if (g_str_equal (type, "mode")) {
    /* Push-to-talk: muted until pressed.  Hands-free: always listening,
     * the service's VAD ends the turns and the user can interrupt. */
    gboolean ptt = !g_str_equal (json_object_get_string_member_with_default (o, "value", ""), "hands-free");
    g_object_set (s->rt, "mute", ptt, NULL);
  } else if (g_str_equal (type, "talk")) {
    g_object_set (s->rt, "mute", !json_object_get_boolean_member_with_default (o, "pressed", FALSE), NULL);
  } else if (g_str_equal (type, "text")) {
    g_signal_emit_by_name (s->rt, "send-text", json_object_get_string_member_with_default (o, "text", ""), &ok);
    reply_done (s, "text", ok);
  } else if (g_str_equal (type, "clear")) {
    g_signal_emit_by_name (s->rt, "clear-conversation", &ok);
    reply_done (s, "clear", ok);
  } else if (g_str_equal (type, "cancel")) {
    g_signal_emit_by_name (s->rt, "cancel-response", &ok);
    reply_done (s, "cancel", ok);
  } else {
    g_printerr ("tab %u: unknown message from the page\n", s->id);
  }
  g_object_unref (parser);
}

static void
on_ws_closed (SoupWebsocketConnection *ws, gpointer user_data)
{
  (void) ws;
  session_end (user_data, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
}

/* Only pages this server served may open a conversation: another site's
 * page in the user's browser must not spend the server's credentials. */
static gboolean
same_origin (SoupServerMessage *msg)
{
  SoupMessageHeaders *h = soup_server_message_get_request_headers (msg);
  const gchar *origin = soup_message_headers_get_one (h, "Origin");
  const gchar *host = soup_message_headers_get_one (h, "Host");
  if (!origin || !host)
    return origin == NULL;  /* not a browser */
  const gchar *sep = strstr (origin, "://");
  return sep && g_ascii_strcasecmp (sep + 3, host) == 0;
}

static void
on_websocket (SoupServer *server, SoupServerMessage *msg, const char *path,
    SoupWebsocketConnection *ws, gpointer user_data)
{
  (void) server, (void) path, (void) user_data;
  if (!same_origin (msg)) {
    soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, "wrong origin");
    return;
  }
  if ((gint) g_hash_table_size (sessions) >= opts.max_sessions) {
    gchar *text = g_strdup_printf ("{\"type\":\"error\",\"message\":\"This server is busy: "
        "it already holds %d conversations. Try again later.\"}", opts.max_sessions);
    soup_websocket_connection_send_text (ws, text);
    g_free (text);
    soup_websocket_connection_close (ws, 1013 /* try again later */, "busy");
    return;
  }
  Session *s = g_new0 (Session, 1);
  s->refs = 1;  /* the table's */
  s->id = next_session_id++;
  s->ws = g_object_ref (ws);
  g_hash_table_add (sessions, s);
  soup_websocket_connection_set_keepalive_interval (ws, 15);
  g_signal_connect (ws, "message", G_CALLBACK (on_ws_message), s);
  g_signal_connect (ws, "closed", G_CALLBACK (on_ws_closed), s);
  gchar *hello = g_strdup_printf ("{\"type\":\"hello\",\"max_sessions\":%d}", opts.max_sessions);
  send_text (s, hello);
  g_free (hello);
  g_print ("tab %u: opened (%u open)\n", s->id, g_hash_table_size (sessions));
  if (!session_build (s)) {
    send_text (s, "{\"type\":\"error\",\"message\":\"The server could not start a conversation "
        "(missing GStreamer plugins? see its log).\"}");
    session_end (s, SOUP_WEBSOCKET_CLOSE_SERVER_ERROR, "no pipeline");
  }
}

/* ---- the page's files ---- */

static void
on_http (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  (void) server, (void) query, (void) user_data;
  static const struct { const char *path, *file, *type; } files[] = {
    {"/", "index.html", "text/html; charset=utf-8"},
    {"/index.html", "index.html", "text/html; charset=utf-8"},
    {"/app.js", "app.js", "text/javascript; charset=utf-8"},
    {"/style.css", "style.css", "text/css; charset=utf-8"},
  };

  if (g_str_equal (path, "/favicon.ico")) {  /* none: say so without an error */
    soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
    return;
  }
  if (g_str_equal (path, "/healthz")) {  /* for load balancers */
    gchar *body = g_strdup_printf ("{\"sessions\":%u,\"max_sessions\":%d}\n",
        g_hash_table_size (sessions), opts.max_sessions);
    soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
    soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, body, strlen (body));
    return;
  }
  const char *method = soup_server_message_get_method (msg);
  if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD) {
    soup_server_message_set_status (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
    return;
  }
  for (guint i = 0; i < G_N_ELEMENTS (files); i++) {
    if (!g_str_equal (path, files[i].path))
      continue;
    gchar *file = g_build_filename (opts.www, files[i].file, NULL);
    gchar *body = NULL;
    gsize size = 0;
    if (g_file_get_contents (file, &body, &size, NULL)) {
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_message_headers_append (soup_server_message_get_response_headers (msg), "Cache-Control", "no-cache");
      soup_server_message_set_response (msg, files[i].type, SOUP_MEMORY_TAKE, body, size);
    } else {
      soup_server_message_set_status (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, NULL);
    }
    g_free (file);
    return;
  }
  soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
}

/* ---- main ---- */

static gboolean
quit_loop (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

static gboolean
parse_options (int *argc, char ***argv)
{
  const GOptionEntry entries[] = {
    {"port", 'p', 0, G_OPTION_ARG_INT, &opts.port, "HTTP port (0 = any free port; default 8080)", "N"},
    {"address", 'a', 0, G_OPTION_ARG_STRING, &opts.address,
        "Address to listen on (default 127.0.0.1; 0.0.0.0 for other machines, behind TLS)", "IP"},
    {"www", 0, 0, G_OPTION_ARG_FILENAME, &opts.www, "Directory of the page's files", "DIR"},
    {"location", 'l', 0, G_OPTION_ARG_STRING, &opts.location,
        "Realtime API endpoint (the element's location; default: Yandex Cloud)", "URL"},
    {"voice", 0, 0, G_OPTION_ARG_STRING, &opts.voice, "Voice of the answers", "NAME"},
    {"instructions", 0, 0, G_OPTION_ARG_STRING, &opts.instructions, "System instructions", "TEXT"},
    {"stun-server", 0, 0, G_OPTION_ARG_STRING, &opts.stun_server,
        "STUN server for browsers on other networks (stun://host:port)", "URL"},
    {"latency", 0, 0, G_OPTION_ARG_INT, &opts.latency_ms, "Jitter buffer of the incoming audio, ms (default 40)", "MS"},
    {"max-sessions", 0, 0, G_OPTION_ARG_INT, &opts.max_sessions,
        "Conversations held at once; more are refused as busy (default 16)", "N"},
    {NULL, 0, 0, G_OPTION_ARG_NONE, NULL, NULL, NULL},
  };
  GOptionContext *ctx = g_option_context_new ("- voice chat in the browser on yandexrealtime");
  GError *error = NULL;
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  gboolean ok = g_option_context_parse (ctx, argc, argv, &error);
  g_option_context_free (ctx);
  if (!ok) {
    g_printerr ("%s\n", error->message);
    g_error_free (error);
  } else if (opts.port < 0 || opts.port > 65535 || opts.latency_ms < 0 || opts.max_sessions < 1) {
    g_printerr ("invalid --port, --latency or --max-sessions\n");
    ok = FALSE;
  }
  return ok;
}

int
main (int argc, char **argv)
{
  if (!parse_options (&argc, &argv))
    return 2;
  gst_init (NULL, NULL);
  if (!opts.address)
    opts.address = g_strdup ("127.0.0.1");
  if (!opts.www)
    opts.www = g_strdup (WEBCHAT_WWW);

  static const char *needed[] = {"webrtcbin", "nicesrc", "rtpopusdepay", "opusdec", "yandexrealtime",
      "clocksync", "opusenc", "rtpopuspay"};
  for (guint i = 0; i < G_N_ELEMENTS (needed); i++) {
    GstElementFactory *f = gst_element_factory_find (needed[i]);
    if (!f) {
      g_printerr ("the GStreamer element %s is missing (Debian: gstreamer1.0-plugins-bad, "
          "gstreamer1.0-nice, gstreamer1.0-plugins-good; yandexrealtime: GST_PLUGIN_PATH)\n", needed[i]);
      return 1;
    }
    gst_object_unref (f);
  }

  sessions = g_hash_table_new (NULL, NULL);
  GMainLoop *loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGINT, quit_loop, loop);
  g_unix_signal_add (SIGTERM, quit_loop, loop);

  SoupServer *server = soup_server_new ("server-header", "yandexrealtime-webchat", NULL);
  soup_server_add_websocket_handler (server, "/ws", NULL, NULL, on_websocket, NULL, NULL);
  soup_server_add_handler (server, NULL, on_http, NULL, NULL);
  GError *error = NULL;
  GInetAddress *ip = g_inet_address_new_from_string (opts.address);
  GSocketAddress *addr = ip ? g_inet_socket_address_new (ip, (guint16) opts.port) : NULL;
  if (!addr || !soup_server_listen (server, addr, 0, &error)) {
    g_printerr ("cannot listen on %s port %d: %s\n", opts.address, opts.port,
        error ? error->message : "not an IP address");
    return 1;
  }
  g_object_unref (addr);
  g_object_unref (ip);

  GSList *uris = soup_server_get_uris (server);
  gchar *uri = g_uri_to_string (uris->data);
  printf ("%s\n", uri);
  fflush (stdout);
  g_free (uri);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  g_main_loop_run (loop);

  GList *open = g_hash_table_get_keys (sessions);
  for (GList *l = open; l; l = l->next)
    session_end (l->data, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "server stopping");
  g_list_free (open);
  /* Tell the pages before going: let the close frames out. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_object_unref (server);
  g_hash_table_unref (sessions);
  g_main_loop_unref (loop);
  gst_deinit ();  /* GST_TRACERS=leaks reports what a tab left behind */
  return 0;
}
