/* examples/phone/media-bus.c: what a call's pipeline says on its bus, and
 * what the call makes of it: the element's session up (the call can be
 * answered; --greeting), the transcripts and answers, function calls, DTMF
 * from rtpdtmfdepay, errors; and the sync handler that puts the streaming
 * threads under SCHED_RR (--rt-priority). */
#include "media-impl.h"

#include <pthread.h>
#include <sched.h>

/* --greeting: the agent speaks first, once its session is up and the
 * caller's audio flows.  Before the caller's first packet the element does
 * not yet know its input is live, and an answer arriving then would be
 * stamped as a file's (from 0), then restarted at its arrival time when
 * the input turns out to be live: a break in the greeting. */
static void
maybe_greet (PhoneMedia *m)
{
  gboolean ok = FALSE;
  if (!m->agent.greeting || !m->session_seen || !m->input_live || m->greeted)
    return;
  m->greeted = TRUE;
  g_signal_emit_by_name (m->rt, "create-response", m->agent.greeting, &ok);
}

/* The element's sink pad, once: the caller's first audio. */
GstPadProbeReturn
phone_media_on_first_input (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  (void) pad, (void) info;
  PhoneMedia *m = user_data;
  gst_element_post_message (m->rt, gst_message_new_application (GST_OBJECT (m->rt),
      gst_structure_new_empty ("phone/input-live")));
  return GST_PAD_PROBE_REMOVE;
}

/* A final text of the caller's turn or the agent's answer: the call's log
 * and its record. */
static void
say (PhoneMedia *m, const GstStructure *st, const gchar *who)
{
  gboolean final = FALSE;
  gst_structure_get_boolean (st, "final", &final);
  if (!final)
    return;
  const gchar *text = gst_structure_get_string (st, "text");
  g_print ("call %u: %s: %s\n", m->id, who, text);
  phone_record_event (m->record, gst_structure_new ("transcript", "who", G_TYPE_STRING, who, "text", G_TYPE_STRING,
      text, NULL));
}

static void
on_agent_message (PhoneMedia *m, const GstStructure *st)
{
  const gchar *name = gst_structure_get_name (st);
  if (g_str_equal (name, "yandexrealtime/session") && !m->session_seen) {
    m->session_seen = TRUE;
    m->cb.ready (m->user);  /* may answer the call: the caller's audio follows */
    maybe_greet (m);
  } else if (g_str_equal (name, "yandexrealtime/transcript")) {
    say (m, st, "caller");
  } else if (g_str_equal (name, "yandexrealtime/response-text")) {
    say (m, st, "agent");
  } else if (g_str_equal (name, "yandexrealtime/interrupted")) {
    guint64 played = 0;
    gst_structure_get_uint64 (st, "played-ms", &played);
    g_print ("call %u: the caller talked over the answer (%" G_GUINT64_FORMAT " ms of it heard)\n", m->id, played);
    phone_record_event (m->record, gst_structure_new ("barge_in", "heard_ms", G_TYPE_UINT64, played, NULL));
  } else if (g_str_equal (name, "yandexrealtime/function-call")) {
    m->cb.function_call (m->user, gst_structure_get_string (st, "call-id"), gst_structure_get_string (st, "name"),
        gst_structure_get_string (st, "arguments"), gst_structure_get_string (st, "response-id"));
  } else if (g_str_equal (name, "yandexrealtime/response-done")) {
    guint64 duration = 0;
    if (g_strcmp0 (gst_structure_get_string (st, "status"), "completed") == 0 &&
        gst_structure_get_uint64 (st, "audio-duration", &duration))
      m->audio_expected += (gint64) duration;
    m->cb.response_done (m->user, gst_structure_get_string (st, "response-id"));
  }
}

/* rtpdtmfdepay's "dtmf-event" (one per key press, at its start): type 1
 * (RFC 4733), number 0-15. */
static void
on_dtmf_message (PhoneMedia *m, const GstStructure *st)
{
  gint type = 0, number = -1;
  gboolean start = TRUE;
  gst_structure_get_boolean (st, "start", &start);  /* dtmfsrc's form has it */
  if (!gst_structure_get_int (st, "type", &type) || type != 1 || !gst_structure_get_int (st, "number", &number) ||
      !start || number < 0 || number > 15)
    return;
  m->cb.dtmf (m->user, "0123456789*#ABCD"[number]);
}

gboolean
phone_media_on_bus_message (GstBus *bus, GstMessage *msg, gpointer user_data)
{
  (void) bus;
  PhoneMedia *m = user_data;
  GError *err = NULL;
  gchar *debug = NULL;
  const GstStructure *st = gst_message_get_structure (msg);

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_APPLICATION:
      if (GST_MESSAGE_SRC (msg) == GST_OBJECT (m->rt) && st && gst_structure_has_name (st, "phone/input-live")) {
        m->input_live = TRUE;
        maybe_greet (m);
      }
      break;
    case GST_MESSAGE_ELEMENT:
      if (GST_MESSAGE_SRC (msg) == GST_OBJECT (m->rt) && st)
        on_agent_message (m, st);
      else if (GST_MESSAGE_SRC (msg) == GST_OBJECT (m->dtmf_depay) && st &&
          gst_structure_has_name (st, "dtmf-event"))
        on_dtmf_message (m, st);
      break;
    case GST_MESSAGE_LATENCY:  /* a stream came (the jitter buffer's latency) */
      gst_bin_recalculate_latency (GST_BIN (m->pipeline));
      break;
    case GST_MESSAGE_WARNING:
      gst_message_parse_warning (msg, &err, &debug);
      g_printerr ("call %u: warning from %s: %s\n", m->id, GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)), err->message);
      break;
    case GST_MESSAGE_ERROR:
      gst_message_parse_error (msg, &err, &debug);
      g_printerr ("call %u: error from %s: %s (%s)\n", m->id, GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)),
          err->message, debug ? debug : "");
      m->bus_watch = 0;
      m->cb.failed (m->user, err->message);  /* may free m */
      g_clear_error (&err);
      g_free (debug);
      return G_SOURCE_REMOVE;
    default:
      break;
  }
  g_clear_error (&err);
  g_free (debug);
  return G_SOURCE_CONTINUE;
}

/* The calling thread under SCHED_RR at `priority`: NULL, or why not. */
static gchar *
run_round_robin (gint priority)
{
  struct sched_param param = {.sched_priority = priority};
  int err = pthread_setschedparam (pthread_self (), SCHED_RR, &param);
  return err ? g_strdup_printf ("--rt-priority: %s (needs CAP_SYS_NICE or an rtprio limit)", g_strerror (err)) : NULL;
}

/* --rt-priority: each streaming thread of the call (the element's output,
 * the encoder, payloader and the RTP sink's clock waits; the caller's audio
 * in) runs under SCHED_RR, so that a busy machine does not hold the line's
 * packets back.  Needs CAP_SYS_NICE (or an rtprio limit); without it the
 * threads keep their priority and the call says so once. */
GstBusSyncReply
phone_media_on_sync_message (GstBus *bus, GstMessage *msg, gpointer user_data)
{
  (void) bus;
  PhoneMedia *m = user_data;
  GstStreamStatusType type;
  GstElement *owner = NULL;
  if (GST_MESSAGE_TYPE (msg) != GST_MESSAGE_STREAM_STATUS)
    return GST_BUS_PASS;
  gst_message_parse_stream_status (msg, &type, &owner);
  if (type == GST_STREAM_STATUS_TYPE_ENTER) {
    gchar *why = run_round_robin ((gint) m->agent.rt_priority);
    if (why && !g_atomic_int_exchange (&m->rt_priority_warned, TRUE))
      g_printerr ("call %u: %s\n", m->id, why);
    g_free (why);
  }
  return GST_BUS_PASS;
}

/* The other threads of the phone (the element's network threads, rtpbin's
 * RTCP threads, the teardowns, the SIP loop) share locks with the streaming
 * threads: the element's playout, the RTP session.  Left ordinary, one of
 * them preempted while holding such a lock on a busy machine holds a
 * real-time streaming thread until the scheduler comes back to it (priority
 * inversion).  One step under the streaming threads they still run before
 * any ordinary process; threads inherit their creator's policy, so this is
 * set before any call.  Measured with 20 calls at a load of 16-19 on 2
 * cores with a compiler beside: the longest pause of a line 58 -> 42 ms. */
gboolean
phone_media_set_process_priority (guint priority, gchar **why)
{
  *why = run_round_robin ((gint) MAX (priority, 2) - 1);
  return *why == NULL;
}
