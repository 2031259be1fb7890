/* examples/phone/media.c: one call's audio, a GStreamer pipeline of its own:
 *
 *   udpsrc (RTP) → rtpbin (jitter buffer, RTCP) → depay → decode →
 *     yandexrealtime → [GAPs become silence] → encode → pay → rtpbin →
 *     udpsink (RTP, synced to the clock)
 *   udpsrc (RTCP) → rtpbin → udpsink (RTCP)
 *   rtpbin (telephone-event) → rtpdtmfdepay → fakesink
 *
 * The RTP and RTCP sockets are bound before the SDP answer is written (its
 * port) and shared by the sources and the sinks, so the call's RTP goes out
 * from the port it comes in on (symmetric RTP, what NATs and SBCs expect).
 *
 * While the agent is silent the element pushes GAP events; a phone line
 * needs packets all the time (a PBX hangs up on an RTP timeout, a far jitter
 * buffer resyncs after a pause), so a probe before the encoder turns each
 * GAP into silence buffers of the packet time, stamped where the GAP was:
 * the RTP timestamps run on without a jump, and the sink sends them at
 * their time.  What the bus says is media-bus.c's. */
#include "media-impl.h"

#include <gst/audio/audio.h>

#include <stdio.h>

static GSocket *
bind_udp (GInetAddress *ip, guint port, GError **error)
{
  GSocket *s = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, error);
  GSocketAddress *addr = g_inet_socket_address_new (ip, (guint16) port);
  if (s && !g_socket_bind (s, addr, FALSE, error))
    g_clear_object (&s);
  g_object_unref (addr);
  return s;
}

static guint
bound_port (GSocket *s)
{
  GSocketAddress *a = g_socket_get_local_address (s, NULL);
  guint port = a ? g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (a)) : 0;
  if (a)
    g_object_unref (a);
  return port;
}

PhoneMedia *
phone_media_new (guint call_id, const gchar *local_addr, GError **error)
{
  GInetAddress *ip = g_inet_address_new_from_string (local_addr);
  if (!ip) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "not a numeric address: %s", local_addr);
    return NULL;
  }
  /* RTP on an even port, RTCP on the next (RFC 3550): the system picks a
   * free port; an odd one, or a taken neighbour, and we ask again. */
  PhoneMedia *m = NULL;
  for (guint attempt = 0; attempt < 50 && !m; attempt++) {
    g_clear_error (error);
    GSocket *rtp = bind_udp (ip, 0, error);
    if (!rtp)
      break;
    guint port = bound_port (rtp);
    GSocket *rtcp = port % 2 == 0 ? bind_udp (ip, port + 1, error) : NULL;
    if (!rtcp) {
      g_object_unref (rtp);
      continue;
    }
    m = g_new0 (PhoneMedia, 1);
    m->id = call_id;
    m->rtp = rtp;
    m->rtcp = rtcp;
    m->port = port;
  }
  if (!m && error && !*error)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE, "no free pair of UDP ports");
  g_object_unref (ip);
  return m;
}

guint
phone_media_local_port (PhoneMedia *m)
{
  return m->port;
}

GstElement *
phone_media_agent (PhoneMedia *m)
{
  return m->rt;
}

/* ---- GAPs become silence ---- */

/* Silence for samples [first, last) at `rate`, in packet-time buffers. */
static void
push_silence (PhoneMedia *m, GstPad *pad, const GstAudioInfo *info, guint64 first, guint64 last)
{
  gint rate = GST_AUDIO_INFO_RATE (info);
  guint64 step = (guint64) rate * m->params.ptime_ms / 1000;
  m->in_silence = TRUE;
  for (guint64 s = first; s < last;) {
    guint64 n = MIN (step, last - s);
    gsize size = n * GST_AUDIO_INFO_BPF (info);
    GstBuffer *b = gst_buffer_new_allocate (NULL, size, NULL);
    gst_buffer_memset (b, 0, 0, size);  /* S16: zero is silence */
    GST_BUFFER_PTS (b) = gst_util_uint64_scale_int (s, GST_SECOND, rate);
    GST_BUFFER_DURATION (b) = gst_util_uint64_scale_int (s + n, GST_SECOND, rate) - GST_BUFFER_PTS (b);
    GST_BUFFER_OFFSET (b) = s;
    GST_BUFFER_OFFSET_END (b) = s + n;
    if (gst_pad_chain (pad, b) != GST_FLOW_OK)
      break;
    s += n;
  }
  m->in_silence = FALSE;
  m->next_sample = MAX (m->next_sample, last);
}

static gboolean
pad_audio_info (GstPad *pad, GstAudioInfo *info)
{
  GstCaps *caps = gst_pad_get_current_caps (pad);
  gboolean ok = caps && gst_audio_info_from_caps (info, caps);
  if (caps)
    gst_caps_unref (caps);
  return ok;
}

/* The element's timeline has holes: a GAP is pushed when the idle check
 * runs, and an answer starts at the time its first audio arrived, after
 * the last GAP's end.  Silence fills them too, so the RTP timestamps never
 * jump. */
static void
fill_up_to (PhoneMedia *m, GstPad *pad, const GstAudioInfo *info, guint64 sample)
{
  if (m->timeline_started && sample > m->next_sample)
    push_silence (m, pad, info, m->next_sample, sample);
  m->timeline_started = TRUE;
}

/* Where a line that starts now can start: the RTP sink sends running time
 * t at t + latency, so silence for anything older (less a packet for the
 * way to the sink) would go out at once, in a burst.  The element's first
 * GAP covers all its wait for the caller's first audio (the jitter buffer
 * and more), which on a busy machine outlasts the latency. */
static guint64
first_sample_on_time (PhoneMedia *m, gint rate)
{
  GstClockTime now = phone_media_running_time (m), slack = m->params.ptime_ms * GST_MSECOND;
  if (!GST_CLOCK_TIME_IS_VALID (now) || now + slack <= m->latency)
    return 0;
  return gst_util_uint64_scale_int_ceil (now + slack - m->latency, rate, GST_SECOND);
}

static GstPadProbeReturn
gap_to_silence (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  PhoneMedia *m = user_data;
  GstAudioInfo ainfo;
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER (info);
    if (m->in_silence || !GST_BUFFER_PTS_IS_VALID (b) || !pad_audio_info (pad, &ainfo))
      return GST_PAD_PROBE_OK;
    gint rate = GST_AUDIO_INFO_RATE (&ainfo);
    guint64 first = gst_util_uint64_scale_round (GST_BUFFER_PTS (b), rate, GST_SECOND);
    gboolean started = m->timeline_started;
    fill_up_to (m, pad, &ainfo, first);
    if (started && first == m->next_sample && GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_DISCONT)) {
      /* Continuous now: the encoder and payloader must not resync (the
       * payloader sends what it holds as a short packet, then jumps). */
      b = gst_buffer_make_writable (b);
      GST_BUFFER_FLAG_UNSET (b, GST_BUFFER_FLAG_DISCONT);
      GST_PAD_PROBE_INFO_DATA (info) = b;
    }
    guint64 end = first + gst_buffer_get_size (b) / GST_AUDIO_INFO_BPF (&ainfo);
    m->next_sample = MAX (m->next_sample, end);
    __atomic_store_n (&m->audio_end, (gint64) gst_util_uint64_scale_int (end, GST_SECOND, rate), __ATOMIC_RELEASE);
    __atomic_add_fetch (&m->audio_pushed, (gint64) gst_util_uint64_scale_int (end - first, GST_SECOND, rate),
        __ATOMIC_RELEASE);
    return GST_PAD_PROBE_OK;
  }
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);
  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP)  /* barge-in: the timeline goes on */
    return GST_PAD_PROBE_OK;
  if (GST_EVENT_TYPE (event) != GST_EVENT_GAP)
    return GST_PAD_PROBE_OK;
  GstClockTime start, duration;
  gst_event_parse_gap (event, &start, &duration);
  if (!GST_CLOCK_TIME_IS_VALID (start) || !GST_CLOCK_TIME_IS_VALID (duration) || duration == 0 ||
      !pad_audio_info (pad, &ainfo))
    return GST_PAD_PROBE_OK;  /* nothing to fill: let it pass */
  gint rate = GST_AUDIO_INFO_RATE (&ainfo);
  guint64 first = gst_util_uint64_scale_round (start, rate, GST_SECOND);
  guint64 last = gst_util_uint64_scale_round (start + duration, rate, GST_SECOND);
  if (!m->timeline_started) {
    first = MAX (first, first_sample_on_time (m, rate));
    if (first >= last)
      return GST_PAD_PROBE_DROP;  /* all past: the line starts with what follows */
  }
  fill_up_to (m, pad, &ainfo, first);
  if (last > m->next_sample)
    push_silence (m, pad, &ainfo, MAX (first, m->next_sample), last);
  return GST_PAD_PROBE_DROP;
}

/* ---- --record: what the line carries ---- */

static GstClockTime
running_time_of (GstPad *pad, GstClockTime pts)
{
  GstEvent *ev = gst_pad_get_sticky_event (pad, GST_EVENT_SEGMENT, 0);
  const GstSegment *segment = NULL;
  GstClockTime rt = GST_CLOCK_TIME_NONE;
  if (ev) {
    gst_event_parse_segment (ev, &segment);
    rt = gst_segment_to_running_time (segment, GST_FORMAT_TIME, pts);
    gst_event_unref (ev);
  }
  return rt;
}

static void
record_buffer (PhoneRecord *r, guint channel, GstPad *pad, GstBuffer *b, GstClockTime offset)
{
  GstMapInfo map;
  GstClockTime rt = GST_BUFFER_PTS_IS_VALID (b) ? running_time_of (pad, GST_BUFFER_PTS (b)) : GST_CLOCK_TIME_NONE;
  if (!GST_CLOCK_TIME_IS_VALID (rt) || !gst_buffer_map (b, &map, GST_MAP_READ))
    return;
  phone_record_audio (r, channel, rt + offset, (const gint16 *) map.data, map.size / 2);
  gst_buffer_unmap (b, &map);
}

/* The caller, at the element's sink pad: S16 mono at the line's rate (the
 * capsfilter after the decoder), stamped by the jitter buffer with the
 * time it came in on the line. */
static GstPadProbeReturn
record_caller (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  PhoneMedia *m = user_data;
  PhoneRecord *r = g_atomic_pointer_get (&m->record);
  if (r)
    record_buffer (r, PHONE_RECORD_CALLER, pad, GST_PAD_PROBE_INFO_BUFFER (info), 0);
  return GST_PAD_PROBE_OK;
}

/* The agent, at the encoder (its answers and our silence): on the line one
 * pipeline latency later, when the RTP sink sends it.  A barge-in's flush
 * drops what the sink still held: from the running time the line is at
 * then, the agent's channel holds nothing more of it.  On hold nothing goes
 * out. */
static GstPadProbeReturn
record_agent (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  PhoneMedia *m = user_data;
  PhoneRecord *r = g_atomic_pointer_get (&m->record);
  if (!r)
    return GST_PAD_PROBE_OK;
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    if (!g_atomic_int_get (&m->on_hold))
      record_buffer (r, PHONE_RECORD_AGENT, pad, GST_PAD_PROBE_INFO_BUFFER (info), m->latency);
  } else if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) == GST_EVENT_FLUSH_START) {
    phone_record_cut (r, PHONE_RECORD_AGENT, phone_media_running_time (m));
  }
  return GST_PAD_PROBE_OK;
}

GstClockTime
phone_media_running_time (PhoneMedia *m)
{
  if (!m->pipeline || GST_STATE (m->pipeline) != GST_STATE_PLAYING)  /* no base time yet */
    return GST_CLOCK_TIME_NONE;
  GstClock *clock = gst_pipeline_get_clock (GST_PIPELINE (m->pipeline));
  if (!clock)
    return GST_CLOCK_TIME_NONE;
  GstClockTime now = gst_clock_get_time (clock), base = gst_element_get_base_time (m->pipeline);
  gst_object_unref (clock);
  return now > base ? now - base : 0;
}

void
phone_media_record (PhoneMedia *m, PhoneRecord *r)
{
  g_atomic_pointer_set (&m->record, phone_record_ref (r));
}

/* Played out: every completed answer's audio has come out of the element
 * (response-done may come before its last audio has been pushed), and the
 * RTP sink has sent past its end. */
gboolean
phone_media_played_out (PhoneMedia *m)
{
  gint64 pushed = __atomic_load_n (&m->audio_pushed, __ATOMIC_ACQUIRE);
  if (pushed < m->audio_expected - 5 * (gint64) GST_MSECOND)
    return FALSE;
  gint64 end = __atomic_load_n (&m->audio_end, __ATOMIC_ACQUIRE);
  if (end == 0 || !m->rtp_sink)
    return TRUE;
  GstSample *last = NULL;
  g_object_get (m->rtp_sink, "last-sample", &last, NULL);
  GstBuffer *b = last ? gst_sample_get_buffer (last) : NULL;
  gboolean done = b && GST_BUFFER_PTS_IS_VALID (b) && (gint64) GST_BUFFER_PTS (b) >= end;
  if (last)
    gst_sample_unref (last);
  return done;
}

/* ---- the pipeline ---- */

static GstElement *
make (PhoneMedia *m, const gchar *factory, const gchar *name)
{
  GstElement *e = gst_element_factory_make (factory, name);
  if (e)
    gst_bin_add (GST_BIN (m->pipeline), e);
  else
    g_printerr ("call %u: missing GStreamer element %s\n", m->id, factory);
  return e;
}

static GstCaps *
rtp_caps (const PhoneMediaParams *p, guint pt)
{
  if (pt == p->dtmf_pt)
    return gst_caps_new_simple ("application/x-rtp", "media", G_TYPE_STRING, "audio", "payload", G_TYPE_INT,
        (gint) pt, "clock-rate", G_TYPE_INT, (gint) p->codec->clock_rate, "encoding-name", G_TYPE_STRING,
        "TELEPHONE-EVENT", NULL);
  if (pt != p->pt)
    return NULL;
  GstCaps *caps = gst_caps_new_simple ("application/x-rtp", "media", G_TYPE_STRING, "audio", "payload",
      G_TYPE_INT, (gint) pt, "clock-rate", G_TYPE_INT, (gint) p->codec->clock_rate, "encoding-name",
      G_TYPE_STRING, p->codec->name, NULL);
  if (p->codec->params)
    gst_caps_set_simple (caps, "encoding-params", G_TYPE_STRING, p->codec->params, NULL);
  if (g_ascii_strcasecmp (p->codec->name, "opus") == 0)  /* rtpopusdepay wants OPUS */
    gst_caps_set_simple (caps, "encoding-name", G_TYPE_STRING, "OPUS", NULL);
  return caps;
}

/* rtpbin asks what a payload type is (the telephone-event packets). */
static GstCaps *
on_request_pt_map (GstElement *rtpbin, guint session, guint pt, gpointer user_data)
{
  (void) rtpbin, (void) session;
  PhoneMedia *m = user_data;
  return rtp_caps (&m->params, pt);
}

static void
link_or_replace (GstPad *pad, GstElement *to)
{
  GstPad *sink = gst_element_get_static_pad (to, "sink");
  GstPad *old = gst_pad_get_peer (sink);
  if (old) {  /* a new SSRC (the far end restarted its stream) takes over */
    gst_pad_unlink (old, sink);
    gst_object_unref (old);
  }
  gst_pad_link (pad, sink);
  gst_object_unref (sink);
}

/* rtpbin's streaming thread: a new SSRC/payload type came in. */
static void
on_pad_added (GstElement *rtpbin, GstPad *pad, gpointer user_data)
{
  (void) rtpbin;
  PhoneMedia *m = user_data;
  guint session, ssrc, pt;
  if (sscanf (GST_PAD_NAME (pad), "recv_rtp_src_%u_%u_%u", &session, &ssrc, &pt) != 3)
    return;
  if (pt == m->params.pt) {
    link_or_replace (pad, m->depay);
  } else if (m->params.dtmf_pt && pt == m->params.dtmf_pt) {
    link_or_replace (pad, m->dtmf_depay);
  } else {  /* a payload type we did not agree on: dropped */
    GstElement *sink = gst_element_factory_make ("fakesink", NULL);
    g_object_set (sink, "async", FALSE, "sync", FALSE, NULL);
    gst_bin_add (GST_BIN (m->pipeline), sink);
    gst_element_sync_state_with_parent (sink);
    link_or_replace (pad, sink);
  }
}

/* On hold the far end takes no audio: the RTP is dropped before the sink
 * (the timeline goes on, so the timestamps jump by the hold when it ends,
 * as after any pause in a stream). */
static GstPadProbeReturn
drop_on_hold (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  (void) pad, (void) info;
  PhoneMedia *m = user_data;
  return g_atomic_int_get (&m->on_hold) ? GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK;
}

/* ---- building ---- */

static void
configure_agent (PhoneMedia *m, GstElement *rt)
{
  const PhoneAgentConfig *a = &m->agent;
  if (a->location)
    g_object_set (rt, "location", a->location, NULL);
  if (a->voice)
    g_object_set (rt, "voice", a->voice, NULL);
  if (a->instructions)
    g_object_set (rt, "instructions", a->instructions, NULL);
  if (a->tools)
    g_object_set (rt, "tools", a->tools, NULL);
  /* The answers at the line's rate: the element converts from what the
   * service serves. */
  g_object_set (rt, "output-rate", m->params.codec->audio_rate, NULL);
}

static void
configure_encoder (PhoneMedia *m, GstElement *enc, GstElement *pay)
{
  guint64 ptime = (guint64) m->params.ptime_ms * GST_MSECOND;
  if (g_object_class_find_property (G_OBJECT_GET_CLASS (enc), "frame-size"))  /* opusenc */
    gst_util_set_object_arg (G_OBJECT (enc), "frame-size", "20");
  g_object_set (pay, "pt", m->params.pt, NULL);
  if (g_object_class_find_property (G_OBJECT_GET_CLASS (pay), "min-ptime"))  /* the audio payloaders */
    g_object_set (pay, "min-ptime", (gint64) ptime, NULL);
  g_object_set (pay, "max-ptime", (gint64) ptime, NULL);
}

static GstElement *
udp_sink (PhoneMedia *m, GSocket *socket, guint port, gboolean sync)
{
  GstElement *sink = make (m, "udpsink", NULL);
  if (sink)
    g_object_set (sink, "socket", socket, "close-socket", FALSE, "host", m->params.remote_addr, "port",
        (gint) port, "sync", sync, "async", FALSE, NULL);
  return sink;
}

static GstElement *
udp_src (PhoneMedia *m, GSocket *socket, GstCaps *caps)
{
  GstElement *src = make (m, "udpsrc", NULL);
  if (src)
    g_object_set (src, "socket", socket, "close-socket", FALSE, "caps", caps, NULL);
  if (caps)
    gst_caps_unref (caps);
  return src;
}

static gboolean
build (PhoneMedia *m)
{
  const PhoneCodec *c = m->params.codec;
  m->pipeline = gst_pipeline_new (NULL);
  GstElement *rtp_src = m->rtp_src = udp_src (m, m->rtp, rtp_caps (&m->params, m->params.pt));
  GstElement *rtcp_src = m->rtcp_src = udp_src (m, m->rtcp, gst_caps_new_empty_simple ("application/x-rtcp"));
  m->rtpbin = make (m, "rtpbin", NULL);
  m->depay = make (m, c->depay, NULL);
  GstElement *dec = make (m, c->dec, NULL);
  /* The caller's audio as the line carries it, whatever the decoder could
   * also give (opusdec: stereo, other rates): what --record writes. */
  GstElement *line_caps = make (m, "capsfilter", NULL);
  m->rt = make (m, "yandexrealtime", NULL);
  GstElement *enc = make (m, c->enc, NULL);
  GstElement *pay = make (m, c->pay, NULL);
  m->dtmf_depay = make (m, "rtpdtmfdepay", NULL);
  GstElement *dtmf_sink = make (m, "fakesink", NULL);
  /* RTP goes out at its time: the element pushes answers as they arrive,
   * and the silence ahead of them. */
  m->rtp_sink = udp_sink (m, m->rtp, m->params.remote_port, TRUE);
  m->rtcp_sink = udp_sink (m, m->rtcp, m->params.remote_rtcp_port, FALSE);
  if (!rtp_src || !rtcp_src || !m->rtpbin || !m->depay || !dec || !line_caps || !m->rt || !enc || !pay || !m->dtmf_depay ||
      !dtmf_sink || !m->rtp_sink || !m->rtcp_sink)
    return FALSE;

  GstCaps *caps = gst_caps_new_simple ("audio/x-raw", "format", G_TYPE_STRING, "S16LE", "channels", G_TYPE_INT, 1,
      "rate", G_TYPE_INT, (gint) c->audio_rate, NULL);
  g_object_set (line_caps, "caps", caps, NULL);
  gst_caps_unref (caps);
  g_object_set (m->rtpbin, "latency", m->agent.latency_ms, NULL);
  /* A fixed latency: the jitter buffer, the element's (chunk-ms plus its
   * 70 ms bound) and a packet.  Recomputed when the caller's stream came
   * in, it grew, and the RTP sink held the packets back for that long. */
  guint chunk_ms = 40;
  g_object_get (m->rt, "chunk-ms", &chunk_ms, NULL);
  m->latency = (GstClockTime) (m->agent.latency_ms + chunk_ms + 70 + m->params.ptime_ms) * GST_MSECOND;
  gst_pipeline_set_latency (GST_PIPELINE (m->pipeline), m->latency);
  g_object_set (dtmf_sink, "sync", FALSE, "async", FALSE, NULL);
  configure_agent (m, m->rt);
  configure_encoder (m, enc, pay);
  GstPad *rt_sink = gst_element_get_static_pad (m->rt, "sink");
  gst_pad_add_probe (rt_sink, GST_PAD_PROBE_TYPE_BUFFER, phone_media_on_first_input, m, NULL);
  gst_pad_add_probe (rt_sink, GST_PAD_PROBE_TYPE_BUFFER, record_caller, m, NULL);
  gst_object_unref (rt_sink);
  GstPad *enc_sink = gst_element_get_static_pad (enc, "sink");
  gst_pad_add_probe (enc_sink, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, gap_to_silence,
      m, NULL);
  gst_pad_add_probe (enc_sink, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_FLUSH, record_agent, m, NULL);
  gst_object_unref (enc_sink);
  GstPad *rtp_in = gst_element_get_static_pad (m->rtp_sink, "sink");
  gst_pad_add_probe (rtp_in, GST_PAD_PROBE_TYPE_BUFFER, drop_on_hold, m, NULL);
  gst_object_unref (rtp_in);
  g_signal_connect (m->rtpbin, "request-pt-map", G_CALLBACK (on_request_pt_map), m);
  g_signal_connect (m->rtpbin, "pad-added", G_CALLBACK (on_pad_added), m);

  return gst_element_link_pads (rtp_src, "src", m->rtpbin, "recv_rtp_sink_0") &&
      gst_element_link_pads (rtcp_src, "src", m->rtpbin, "recv_rtcp_sink_0") &&
      gst_element_link_many (m->depay, dec, line_caps, m->rt, enc, pay, NULL) &&
      gst_element_link_pads (pay, "src", m->rtpbin, "send_rtp_sink_0") &&
      gst_element_link_pads (m->rtpbin, "send_rtp_src_0", m->rtp_sink, "sink") &&
      gst_element_link_pads (m->rtpbin, "send_rtcp_src_0", m->rtcp_sink, "sink") &&
      gst_element_link (m->dtmf_depay, dtmf_sink);
}

static void
copy_agent (PhoneAgentConfig *to, const PhoneAgentConfig *from)
{
  to->location = g_strdup (from->location);
  to->voice = g_strdup (from->voice);
  to->instructions = g_strdup (from->instructions);
  to->tools = g_strdup (from->tools);
  to->greeting = g_strdup (from->greeting);
  to->latency_ms = from->latency_ms;
  to->rt_priority = from->rt_priority;
}

gboolean
phone_media_start (PhoneMedia *m, const PhoneMediaParams *p, const PhoneAgentConfig *agent,
    const PhoneMediaCallbacks *cb, gpointer user)
{
  m->params = *p;
  m->params.remote_addr = g_strdup (p->remote_addr);
  if (!m->params.ptime_ms)
    m->params.ptime_ms = 20;
  copy_agent (&m->agent, agent);
  m->cb = *cb;
  m->user = user;
  if (!build (m)) {
    g_printerr ("call %u: could not build the %s pipeline\n", m->id, p->codec->name);
    return FALSE;
  }
  m->bus_watch = gst_bus_add_watch (GST_ELEMENT_BUS (m->pipeline), phone_media_on_bus_message, m);
  if (m->agent.rt_priority)
    gst_bus_set_sync_handler (GST_ELEMENT_BUS (m->pipeline), phone_media_on_sync_message, m, NULL);
  return gst_element_set_state (m->pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE;
}

void
phone_media_retarget (PhoneMedia *m, const PhoneMediaParams *p)
{
  if (!m->rtp_sink)
    return;
  g_atomic_int_set (&m->on_hold, p->on_hold);
  g_free (m->params.remote_addr);
  m->params.remote_addr = g_strdup (p->remote_addr);
  m->params.remote_port = p->remote_port;
  m->params.remote_rtcp_port = p->remote_rtcp_port;
  g_object_set (m->rtp_sink, "host", p->remote_addr, "port", (gint) p->remote_port, NULL);
  g_object_set (m->rtcp_sink, "host", p->remote_addr, "port", (gint) p->remote_rtcp_port, NULL);
}

static void
unlink_sink (GstElement *e)
{
  GstPad *sink = gst_element_get_static_pad (e, "sink");
  GstPad *peer = gst_pad_get_peer (sink);
  if (peer) {
    gst_pad_unlink (peer, sink);
    gst_object_unref (peer);
  }
  gst_object_unref (sink);
}

static GThreadPool *teardowns;  /* stopping pipelines, off the main loop */

/* A pool thread: the state change to NULL waits for the element to close
 * its WebSocket (up to 500 ms for the service's reply), and the main loop
 * must go on with every other call's SIP meanwhile. */
static void
teardown (gpointer data, gpointer user_data)
{
  (void) user_data;
  PhoneMedia *m = data;
  if (m->pipeline) {
    /* The graph is a loop through rtpbin, so the bin cannot order the
     * stop from the sinks up: the RTP sink (which may hold the element's
     * thread waiting for the clock) goes first, then the sources; then the
     * loop is cut (the caller's audio from rtpbin) and the rest stops in
     * order. */
    gst_element_set_state (m->rtp_sink, GST_STATE_NULL);
    gst_element_set_state (m->rtp_src, GST_STATE_NULL);
    gst_element_set_state (m->rtcp_src, GST_STATE_NULL);
    unlink_sink (m->depay);
    unlink_sink (m->dtmf_depay);
    gst_element_set_state (m->pipeline, GST_STATE_NULL);
    gst_object_unref (m->pipeline);
  }
  phone_record_unref (m->record);  /* the WAV's end: the taps are gone */
  g_clear_object (&m->rtp);
  g_clear_object (&m->rtcp);
  g_free (m->params.remote_addr);
  g_free ((gchar *) m->agent.location);
  g_free ((gchar *) m->agent.voice);
  g_free ((gchar *) m->agent.instructions);
  g_free ((gchar *) m->agent.tools);
  g_free ((gchar *) m->agent.greeting);
  g_free (m);
}

void
phone_media_free (PhoneMedia *m)
{
  if (!m)
    return;
  PhoneRecord *r = g_atomic_pointer_get (&m->record);
  if (r)  /* the record ends with the call, not with the pipeline's stop */
    phone_record_end (r, phone_media_running_time (m));
  if (m->bus_watch)  /* no callback comes after this */
    gst_bus_remove_watch (GST_ELEMENT_BUS (m->pipeline));
  m->bus_watch = 0;
  if (!teardowns)
    teardowns = g_thread_pool_new (teardown, NULL, 4, FALSE, NULL);
  g_thread_pool_push (teardowns, m, NULL);
}

void
phone_media_shutdown (void)
{
  if (teardowns)
    g_thread_pool_free (teardowns, FALSE, TRUE);  /* waits for them all */
  teardowns = NULL;
}
