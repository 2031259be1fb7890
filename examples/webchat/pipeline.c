/* A browser tab's GStreamer pipeline in yandexrealtime-webchat: built when
 * the tab's WebSocket opens, freed when it ends (session.c).
 *
 *   webrtcbin → rtpopusdepay → opusdec → yandexrealtime → clocksync →
 *     audio/x-raw,rate=48000 → opusenc → rtpopuspay → webrtcbin
 *
 * Also where the answer latency of GET /metrics is measured: from the
 * element's speech-stopped message to the first answer buffer on its src
 * pad after it. */
#define GST_USE_UNSTABLE_API
#include "session.h"

#include <gst/audio/audio.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>

#include <string.h>

#define OPUS_FRAME_MS 20  /* opusenc's frame-size */
#define RTP_OPUS_CAPS "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,encoding-params=(string)2,payload=97"

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


/* What the tab's element counted, for the totals of GET /metrics: read
 * before the pipeline leaves PLAYING (its counters restart at READY). */
static void
count_stats (Session *s)
{
  GstStructure *stats = NULL;
  guint answers = 0, reconnects = 0;
  g_object_get (s->rt, "stats", &stats, NULL);
  if (stats) {
    gst_structure_get_uint (stats, "answers", &answers);
    gst_structure_get_uint (stats, "reconnects", &reconnects);
    gst_structure_free (stats);
  }
  metrics_conversation_closed (answers, reconnects);
}

void
session_free_pipeline (Session *s)
{
  if (!s->pipeline)
    return;
  gst_bus_remove_watch (GST_ELEMENT_BUS (s->pipeline));
  gst_bus_set_sync_handler (GST_ELEMENT_BUS (s->pipeline), NULL, NULL, NULL);
  count_stats (s);
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


/* ---- the answer latency, for GET /metrics ----
 *
 * From the end of the user's speech (the element posts speech-stopped:
 * the service's VAD heard it end; with push-to-talk that is after the
 * element's closing silence) to the first answer audio (the first buffer
 * the element pushes on its src pad after it).  A speech-started in
 * between cancels the mark: the user went on speaking.  The element pushes
 * buffers only for answers (GAP events between them), so the first buffer
 * after the mark is the answer's first audio. */

/* The element's thread, as it posts: the time the message leaves it, not
 * when the main loop gets round to it. */
static GstBusSyncReply
mark_speech_end (GstBus *bus, GstMessage *msg, gpointer user_data)
{
  (void) bus;
  Session *s = user_data;
  const GstStructure *st = gst_message_get_structure (msg);
  if (GST_MESSAGE_TYPE (msg) != GST_MESSAGE_ELEMENT || !st)
    return GST_BUS_PASS;
  gboolean stopped = gst_structure_has_name (st, "yandexrealtime/speech-stopped");
  if (stopped || gst_structure_has_name (st, "yandexrealtime/speech-started")) {
    g_mutex_lock (&s->speech_lock);
    s->speech_end_us = stopped ? g_get_monotonic_time () : 0;
    g_mutex_unlock (&s->speech_lock);
  }
  return GST_BUS_PASS;
}

/* The element's streaming thread. */
static GstPadProbeReturn
observe_first_answer_audio (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  (void) pad, (void) info;
  Session *s = user_data;
  g_mutex_lock (&s->speech_lock);
  gint64 end = s->speech_end_us;
  s->speech_end_us = 0;
  g_mutex_unlock (&s->speech_lock);
  if (end)
    metrics_observe_answer_latency (g_get_monotonic_time () - end);
  return GST_PAD_PROBE_OK;
}

gboolean
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
  gst_bus_add_watch_full (GST_ELEMENT_BUS (p), G_PRIORITY_DEFAULT, session_on_bus_message,
      session_ref (s), (GDestroyNotify) session_unref);
  gst_bus_set_sync_handler (GST_ELEMENT_BUS (p), mark_speech_end, session_ref (s),
      (GDestroyNotify) session_unref);
  GstPad *rt_src = gst_element_get_static_pad (rt, "src");
  gst_pad_add_probe (rt_src, GST_PAD_PROBE_TYPE_BUFFER, observe_first_answer_audio,
      session_ref (s), (GDestroyNotify) session_unref);
  gst_object_unref (rt_src);
  return gst_element_set_state (p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE;
}
