/* examples/phone/call.c: one call's life between SIP and its pipeline:
 * what the pipeline tells (the session is up, a digit, a function call, an
 * answer done, a failure) and what the call does about it: answer the
 * INVITE, tell the model the digits, hang up or transfer once the goodbye
 * has been played. */
#include "call.h"

#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tag.h>

#define ANSWER_TIMEOUT_S 15      /* the service must be up by then, or 503 */
#define HANGUP_TIMEOUT_S 20      /* end_call/transfer: the goodbye must have played by then */
#define DTMF_GATHER_MS 800       /* digits pressed closer than this go to the model together */
#define FAR_JITTER_MS 300        /* after the goodbye's last packet: the far end's jitter buffer plays it */

static guint next_call_id = 1;

/* ---- calls ---- */

Call *
call_new (nua_handle_t *nh, const gchar *peer, gboolean outbound)
{
  Call *c = g_new0 (Call, 1);
  c->id = next_call_id++;
  c->nh = nh;
  c->outbound = outbound;
  c->peer = g_strdup (peer);
  c->digits = g_string_new (NULL);
  c->sdp_session = (guint64) g_get_real_time ();
  nua_handle_bind (nh, (nua_hmagic_t *) c);
  g_hash_table_add (calls, c);
  return c;
}

void
call_free (Call *c)
{
  g_print ("call %u: ended (%u open)\n", c->id, g_hash_table_size (calls) - 1);
  g_hash_table_remove (calls, c);
  phone_media_free (c->media);
  g_clear_handle_id (&c->answer_timeout, g_source_remove);
  g_clear_handle_id (&c->after_poll, g_source_remove);
  g_clear_handle_id (&c->after_timeout, g_source_remove);
  g_clear_handle_id (&c->digits_timeout, g_source_remove);
  if (c->nh) {
    nua_handle_bind (c->nh, NULL);
    nua_handle_destroy (c->nh);
  }
  phone_media_params_clear (&c->params);
  g_string_free (c->digits, TRUE);
  g_free (c->peer);
  g_free (c->local_sdp);
  g_free (c->after_response);
  g_free (c);
}

void
call_stop_media (Call *c)
{
  g_clear_pointer (&c->media, phone_media_free);
}

void
call_hang_up (Call *c, const gchar *why)
{
  if (c->state == CALL_ENDING)
    return;
  g_print ("call %u: hanging up (%s)\n", c->id, why);
  if (c->state == CALL_RINGING && c->outbound)
    nua_cancel (c->nh, TAG_END ());
  else if (c->state == CALL_RINGING)
    nua_respond (c->nh, SIP_503_SERVICE_UNAVAILABLE, TAG_END ());
  else
    nua_bye (c->nh, TAG_END ());
  c->state = CALL_ENDING;
  call_stop_media (c);
}

/* ---- what the pipeline tells ---- */

static gboolean
answer_timed_out (gpointer data)
{
  Call *c = data;
  c->answer_timeout = 0;
  call_hang_up (c, "the service did not answer in time");
  return G_SOURCE_REMOVE;
}

static void
on_media_ready (gpointer user)
{
  Call *c = user;
  if (c->state != CALL_RINGING || c->outbound)
    return;
  g_clear_handle_id (&c->answer_timeout, g_source_remove);
  nua_respond (c->nh, SIP_200_OK, SIPTAG_CONTENT_TYPE_STR ("application/sdp"), SIPTAG_PAYLOAD_STR (c->local_sdp),
      TAG_END ());
  c->state = CALL_ACTIVE;
  g_print ("call %u: answered (%s, RTP %s:%u)\n", c->id, c->params.codec->name, c->params.remote_addr,
      c->params.remote_port);
}

static gboolean
send_digits (gpointer data)
{
  Call *c = data;
  c->digits_timeout = 0;
  GString *text = g_string_new ("The caller pressed ");
  for (gsize i = 0; i < c->digits->len; i++)
    g_string_append_printf (text, "%s%c", i ? ", " : "", c->digits->str[i]);
  g_string_append_c (text, '.');
  gboolean ok = FALSE;
  if (c->media)
    g_signal_emit_by_name (phone_media_agent (c->media), "send-text", text->str, &ok);
  g_print ("call %u: told the agent: %s%s\n", c->id, text->str, ok ? "" : " (failed: no session)");
  g_string_free (text, TRUE);
  g_string_truncate (c->digits, 0);
  return G_SOURCE_REMOVE;
}

void
call_dtmf (Call *c, gchar digit)
{
  g_print ("call %u: DTMF %c\n", c->id, digit);
  g_string_append_c (c->digits, digit);
  g_clear_handle_id (&c->digits_timeout, g_source_remove);
  c->digits_timeout = g_timeout_add (DTMF_GATHER_MS, send_digits, c);
}

static void
do_after_answer (Call *c)
{
  g_clear_handle_id (&c->after_poll, g_source_remove);
  g_clear_handle_id (&c->after_timeout, g_source_remove);
  AfterAnswer what = c->after;
  c->after = AFTER_NOTHING;
  if (what == AFTER_HANGUP) {
    call_hang_up (c, "the agent ended the call");
  } else if (what == AFTER_TRANSFER) {
    g_print ("call %u: transferring to %s\n", c->id, opts.operator_uri);
    nua_refer (c->nh, SIPTAG_REFER_TO_STR (opts.operator_uri), TAG_END ());
  }
}

static gboolean
far_end_played (gpointer data)
{
  Call *c = data;
  c->after_poll = 0;
  do_after_answer (c);
  return G_SOURCE_REMOVE;
}

static gboolean
poll_played_out (gpointer data)
{
  Call *c = data;
  if (c->media && !phone_media_played_out (c->media))
    return G_SOURCE_CONTINUE;
  /* Sent; now let the far end play it. */
  c->after_poll = g_timeout_add (FAR_JITTER_MS, far_end_played, c);
  return G_SOURCE_REMOVE;
}

static gboolean
after_timed_out (gpointer data)
{
  Call *c = data;
  c->after_timeout = 0;
  g_print ("call %u: no goodbye from the agent in %d s\n", c->id, HANGUP_TIMEOUT_S);
  do_after_answer (c);
  return G_SOURCE_REMOVE;
}

static void
on_media_response_done (gpointer user, const gchar *response_id)
{
  Call *c = user;
  /* The answer after the function call's own response: once it has been
   * heard, hang up or transfer. */
  if (c->after == AFTER_NOTHING || g_strcmp0 (response_id, c->after_response) == 0 || c->after_poll)
    return;
  c->after_poll = g_timeout_add (20, poll_played_out, c);
}

static const gchar *
call_function (Call *c, const gchar *name, const gchar *response_id)
{
  if (g_str_equal (name, "end_call") || (g_str_equal (name, "transfer_to_operator") && opts.operator_uri)) {
    c->after = g_str_equal (name, "end_call") ? AFTER_HANGUP : AFTER_TRANSFER;
    g_free (c->after_response);
    c->after_response = g_strdup (response_id);
    g_clear_handle_id (&c->after_timeout, g_source_remove);
    c->after_timeout = g_timeout_add_seconds (HANGUP_TIMEOUT_S, after_timed_out, c);
    return c->after == AFTER_HANGUP ? "{\"ok\": true, \"note\": \"The call ends after your next words.\"}"
                                    : "{\"ok\": true, \"note\": \"The caller is transferred after your next words.\"}";
  }
  if (g_str_equal (name, "transfer_to_operator"))
    return "{\"error\": \"no operator is available\"}";
  return "{\"error\": \"unknown function\"}";
}

static void
on_media_function_call (gpointer user, const gchar *call_id, const gchar *name, const gchar *arguments,
    const gchar *response_id)
{
  Call *c = user;
  (void) arguments;
  g_print ("call %u: the agent calls %s\n", c->id, name);
  const gchar *output = call_function (c, name, response_id);
  gboolean ok = FALSE;
  g_signal_emit_by_name (phone_media_agent (c->media), "send-function-output", call_id, output, &ok);
}

static void
on_media_failed (gpointer user, const gchar *message)
{
  Call *c = user;
  (void) message;
  call_hang_up (c, "the conversation failed");
}

static void
on_media_dtmf (gpointer user, gchar digit)
{
  call_dtmf (user, digit);
}

static const PhoneMediaCallbacks media_callbacks = {
  .ready = on_media_ready,
  .dtmf = on_media_dtmf,
  .function_call = on_media_function_call,
  .response_done = on_media_response_done,
  .failed = on_media_failed,
};

/* ---- the agent ---- */

static const gchar tools_json[] =
    "[{\"type\": \"function\", \"name\": \"end_call\", \"description\": \"Hang up the phone call. Say goodbye "
    "first: the call ends once your next words have been played.\", \"parameters\": {\"type\": \"object\", "
    "\"properties\": {}}}%s]";
static const gchar transfer_json[] =
    ", {\"type\": \"function\", \"name\": \"transfer_to_operator\", \"description\": \"Transfer the caller to "
    "a human operator, when they ask for one or you cannot help.\", \"parameters\": {\"type\": \"object\", "
    "\"properties\": {}}}";

/* The call's instructions: --instructions and who is on the line. */
static gchar *
call_instructions (Call *c)
{
  return g_strdup_printf ("%s%sYou are on a phone call. %s %s.", opts.instructions ? opts.instructions : "",
      opts.instructions ? "\n\n" : "", c->outbound ? "You called the number" : "The caller's number is", c->peer);
}

gboolean
call_bind_media (Call *c, gchar **why)
{
  GError *error = NULL;
  c->media = phone_media_new (c->id, listen_addr, &error);
  if (!c->media) {
    *why = g_strdup (error->message);
    g_error_free (error);
  }
  return c->media != NULL;
}

gboolean
call_start_media (Call *c, gchar **why)
{
  gchar *instructions = call_instructions (c);
  gchar *tools = g_strdup_printf (tools_json, opts.operator_uri ? transfer_json : "");
  PhoneAgentConfig agent = {
    .location = opts.location,
    .voice = opts.voice,
    .instructions = instructions,
    .tools = tools,
    .greeting = opts.greeting,
    .latency_ms = (guint) opts.latency_ms,
    .rt_priority = (guint) opts.rt_priority,
  };
  gboolean ok = phone_media_start (c->media, &c->params, &agent, &media_callbacks, c);
  g_free (instructions);
  g_free (tools);
  if (!ok)
    *why = g_strdup ("the pipeline did not start (missing GStreamer plugins? see the log)");
  if (ok && !c->outbound)
    c->answer_timeout = g_timeout_add_seconds (ANSWER_TIMEOUT_S, answer_timed_out, c);
  return ok;
}
