/* yandexrealtime-phone: a voice agent on the phone.  A small SIP user agent
 * (sofia-sip's nua, driven from the GLib main loop through su_glib) answers
 * calls and gives each one a pipeline of its own (media.c) in which the
 * yandexrealtime element holds the conversation:
 *
 *   RTP → rtpbin → depay → decode → yandexrealtime → encode → pay → rtpbin → RTP
 *
 * A call: INVITE → 100 Trying, 180 Ringing; the pipeline starts and the
 * element connects; when its session is up, 200 OK with our SDP answer
 * (503 if the service cannot be reached).  BYE from either side, or CANCEL
 * before the answer, frees the pipeline at once.  Beyond --max-calls: 486.
 * The model may call end_call (hang up once its goodbye has been played)
 * and, with --operator, transfer_to_operator (SIP REFER, blind transfer).
 * DTMF (RFC 4733) reaches the model as text: "The caller pressed 5."
 *
 * Credentials stay in the environment, read by the element itself:
 * YANDEX_CLOUD_API_KEY (or YANDEX_CLOUD_IAM_TOKEN), YANDEX_CLOUD_FOLDER_ID.
 *
 *   yandexrealtime-phone [--listen 127.0.0.1:5060] [--location URL] [--voice NAME]
 *                        [--instructions TEXT] [--greeting TEXT] [--max-calls N]
 *                        [--codecs PCMU,PCMA,G722,opus] [--operator sip:…]
 *
 * It prints "listening on sip:ADDRESS:PORT" once it takes calls, then a line
 * per event of each call ("call N: …").  docs/phone.md tells the rest. */
#include "phone.h"

#include <glib-unix.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_glib.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/su_tag_io.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_TIMEOUT_S 15      /* the service must be up by then, or 503 */
#define HANGUP_TIMEOUT_S 20      /* end_call/transfer: the goodbye must have played by then */
#define DTMF_GATHER_MS 800       /* digits pressed closer than this go to the model together */
#define FAR_JITTER_MS 300        /* after the goodbye's last packet: the far end's jitter buffer plays it */

typedef struct {
  gchar *listen;
  gchar *location;
  gchar *voice;
  gchar *instructions;
  gchar *greeting;
  gchar *codecs;
  gchar *operator_uri;
  gint max_calls;
  gint latency_ms;
  gint rt_priority;
} Options;

static Options opts = {
  .max_calls = 8,
  .latency_ms = 60,
};

static gchar *listen_addr;       /* numeric IP of --listen: our SDP's address */
static gchar **codec_prefs;      /* --codecs, split */
static nua_t *nua;
static GMainLoop *loop;
static GHashTable *calls;        /* Call* set */
static guint next_call_id = 1;
static gboolean shutting_down;

typedef enum { CALL_RINGING, CALL_ACTIVE, CALL_ENDING } CallState;
typedef enum { AFTER_NOTHING, AFTER_HANGUP, AFTER_TRANSFER } AfterAnswer;

typedef struct {
  guint id;
  nua_handle_t *nh;
  gchar *caller;                 /* the From user (the caller's number) */
  CallState state;
  PhoneMediaParams params;
  PhoneMedia *media;
  gchar *local_sdp;
  guint64 sdp_session;
  guint sdp_version;
  guint answer_timeout;          /* source: 503 if the service is not up */
  /* end_call / transfer_to_operator: what to do once the answer after the
   * function call (the goodbye) has been played out. */
  AfterAnswer after;
  gchar *after_response;         /* the response that called the function */
  gboolean follow_up_done;
  guint after_poll, after_timeout;
  GString *digits;               /* DTMF gathered for the model */
  guint digits_timeout;
} Call;

/* ---- calls ---- */

static void
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
  g_free (c->caller);
  g_free (c->local_sdp);
  g_free (c->after_response);
  g_free (c);
}

/* Stops the audio at once; the SIP side goes on to its end. */
static void
call_stop_media (Call *c)
{
  g_clear_pointer (&c->media, phone_media_free);
}

static void
call_hang_up (Call *c, const gchar *why)
{
  if (c->state == CALL_ENDING)
    return;
  g_print ("call %u: hanging up (%s)\n", c->id, why);
  if (c->state == CALL_RINGING)
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
  if (c->state != CALL_RINGING)
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

static void
on_media_dtmf (gpointer user, gchar digit)
{
  Call *c = user;
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

static const PhoneMediaCallbacks media_callbacks = {
  .ready = on_media_ready,
  .dtmf = on_media_dtmf,
  .function_call = on_media_function_call,
  .response_done = on_media_response_done,
  .failed = on_media_failed,
};

/* ---- SIP ---- */

static const gchar tools_json[] =
    "[{\"type\": \"function\", \"name\": \"end_call\", \"description\": \"Hang up the phone call. Say goodbye "
    "first: the call ends once your next words have been played.\", \"parameters\": {\"type\": \"object\", "
    "\"properties\": {}}}%s]";
static const gchar transfer_json[] =
    ", {\"type\": \"function\", \"name\": \"transfer_to_operator\", \"description\": \"Transfer the caller to "
    "a human operator, when they ask for one or you cannot help.\", \"parameters\": {\"type\": \"object\", "
    "\"properties\": {}}}";

/* The call's instructions: --instructions and who is calling. */
static gchar *
call_instructions (Call *c)
{
  return g_strdup_printf ("%s%sYou are on a phone call. The caller's number is %s.",
      opts.instructions ? opts.instructions : "", opts.instructions ? "\n\n" : "", c->caller);
}

static gboolean
call_start_media (Call *c, gchar **why)
{
  GError *error = NULL;
  c->media = phone_media_new (c->id, listen_addr, &error);
  if (!c->media) {
    *why = g_strdup (error->message);
    g_error_free (error);
    return FALSE;
  }
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
  return ok;
}

static gchar *
sip_caller (sip_t const *sip)
{
  const url_t *u = sip && sip->sip_from ? sip->sip_from->a_url : NULL;
  return g_strdup (u && u->url_user ? u->url_user : "unknown");
}

static void
on_new_invite (nua_handle_t *nh, sip_t const *sip)
{
  if (shutting_down || (gint) g_hash_table_size (calls) >= opts.max_calls) {
    g_print ("busy: refusing a call from %s (%u open)\n", sip && sip->sip_from && sip->sip_from->a_url->url_user ?
        sip->sip_from->a_url->url_user : "?", g_hash_table_size (calls));
    nua_respond (nh, SIP_486_BUSY_HERE, TAG_END ());
    return;  /* the handle goes when nua says the call is terminated */
  }
  Call *c = g_new0 (Call, 1);
  c->id = next_call_id++;
  c->nh = nh;
  c->caller = sip_caller (sip);
  c->digits = g_string_new (NULL);
  c->sdp_session = (guint64) g_get_real_time ();
  nua_handle_bind (nh, (nua_hmagic_t *) c);
  g_hash_table_add (calls, c);
  g_print ("call %u: from %s (%u open)\n", c->id, c->caller, g_hash_table_size (calls));

  gchar *why = NULL;
  const sip_payload_t *pl = sip ? sip->sip_payload : NULL;
  if (!pl || !phone_sdp_read_offer (pl->pl_data, pl->pl_len, codec_prefs, &c->params, &why)) {
    g_print ("call %u: refused: %s\n", c->id, why ? why : "an INVITE without an SDP offer");
    nua_respond (nh, SIP_488_NOT_ACCEPTABLE, TAG_END ());
    c->state = CALL_ENDING;
    g_free (why);
    return;
  }
  nua_respond (nh, SIP_180_RINGING, TAG_END ());
  if (!call_start_media (c, &why)) {
    g_print ("call %u: refused: %s\n", c->id, why);
    g_free (why);
    call_hang_up (c, "no pipeline");
    return;
  }
  c->local_sdp = phone_sdp_write (&c->params, codec_prefs, listen_addr, phone_media_local_port (c->media),
      c->sdp_session, c->sdp_version);
  c->answer_timeout = g_timeout_add_seconds (ANSWER_TIMEOUT_S, answer_timed_out, c);
}

/* A re-INVITE: hold, unhold, or a new address, on the same codec; another
 * codec is refused (488), and the call goes on as it was. */
static void
on_reinvite (Call *c, sip_t const *sip)
{
  const sip_payload_t *pl = sip ? sip->sip_payload : NULL;
  PhoneMediaParams p = {0};
  gchar *why = NULL;
  gchar *one[] = {(gchar *) c->params.codec->name, NULL};
  if (pl && !phone_sdp_read_offer (pl->pl_data, pl->pl_len, one, &p, &why)) {
    g_print ("call %u: re-INVITE refused: %s\n", c->id, why);
    nua_respond (c->nh, SIP_488_NOT_ACCEPTABLE, TAG_END ());
    g_free (why);
    phone_media_params_clear (&p);
    return;
  }
  if (pl) {  /* without an offer, our answer stands as our offer */
    g_print ("call %u: re-INVITE: %s, RTP to %s:%u\n", c->id, p.on_hold ? "on hold" : "talking", p.remote_addr,
        p.remote_port);
    if (c->media)
      phone_media_retarget (c->media, &p);
    c->params.on_hold = p.on_hold;
    c->params.remote_sends = p.remote_sends;
    g_free (c->local_sdp);
    c->local_sdp = phone_sdp_write (&c->params, codec_prefs, listen_addr,
        c->media ? phone_media_local_port (c->media) : 9, c->sdp_session, ++c->sdp_version);
  }
  nua_respond (c->nh, SIP_200_OK, SIPTAG_CONTENT_TYPE_STR ("application/sdp"), SIPTAG_PAYLOAD_STR (c->local_sdp),
      TAG_END ());
  phone_media_params_clear (&p);
}

/* SIP INFO with application/dtmf-relay ("Signal=5"), what some PBXs send
 * instead of RFC 4733. */
static void
on_info (Call *c, sip_t const *sip)
{
  const sip_payload_t *pl = sip ? sip->sip_payload : NULL;
  const gchar *type = sip && sip->sip_content_type ? sip->sip_content_type->c_type : NULL;
  gchar *body = pl ? g_strndup (pl->pl_data, pl->pl_len) : NULL;
  const gchar *signal = body ? strstr (body, "Signal=") : NULL;
  gchar digit = signal ? signal[7] == ' ' ? signal[8] : signal[7] : 0;
  if (c && g_strcmp0 (type, "application/dtmf-relay") == 0 && digit && strchr ("0123456789*#ABCD", digit))
    on_media_dtmf (c, digit);
  g_free (body);
}

static void
on_state (nua_handle_t *nh, Call *c, tagi_t tags[])
{
  int state = nua_callstate_init;
  tl_gets (tags, NUTAG_CALLSTATE_REF (state), TAG_END ());
  if (state != nua_callstate_terminated)
    return;
  if (c)
    call_free (c);  /* destroys the handle */
  else
    nua_handle_destroy (nh);
}

static void
on_nua_event (nua_event_t event, int status, char const *phrase, nua_t *n, nua_magic_t *magic,
    nua_handle_t *nh, nua_hmagic_t *hmagic, sip_t const *sip, tagi_t tags[])
{
  (void) n, (void) magic;
  Call *c = (Call *) hmagic;
  switch (event) {
    case nua_i_invite:
      if (c)
        on_reinvite (c, sip);
      else
        on_new_invite (nh, sip);
      break;
    case nua_i_state:
      on_state (nh, c, tags);
      break;
    case nua_i_cancel:
      if (c) {
        g_print ("call %u: the caller gave up before the answer (CANCEL)\n", c->id);
        c->state = CALL_ENDING;
        call_stop_media (c);
      }
      break;
    case nua_i_bye:
      if (c) {
        g_print ("call %u: the caller hung up\n", c->id);
        c->state = CALL_ENDING;
        call_stop_media (c);
      }
      break;
    case nua_i_info:
      on_info (c, sip);
      break;
    case nua_r_refer:
      if (c && status >= 200) {
        g_print ("call %u: transfer %s (%d %s)\n", c->id, status < 300 ? "accepted" : "refused", status, phrase);
        call_hang_up (c, status < 300 ? "transferred" : "the transfer failed");
      }
      break;
    case nua_r_shutdown:
      if (status >= 200)
        g_main_loop_quit (loop);
      break;
    case nua_i_error:
      g_printerr ("SIP error: %d %s\n", status, phrase);
      break;
    default:
      break;
  }
}

/* ---- main ---- */

static gboolean
on_signal (gpointer data)
{
  (void) data;
  if (shutting_down) {
    g_main_loop_quit (loop);  /* twice: at once */
    return G_SOURCE_REMOVE;
  }
  shutting_down = TRUE;
  GList *open = g_hash_table_get_keys (calls);
  for (GList *l = open; l; l = l->next)
    call_hang_up (l->data, "the phone is stopping");
  g_list_free (open);
  nua_shutdown (nua);  /* nua_r_shutdown quits the loop */
  return G_SOURCE_CONTINUE;
}

static gboolean
parse_options (int *argc, char ***argv)
{
  const GOptionEntry entries[] = {
    {"listen", 0, 0, G_OPTION_ARG_STRING, &opts.listen,
        "SIP address and port, UDP and TCP (default 127.0.0.1:5060; a numeric IPv4 address)", "IP:PORT"},
    {"location", 'l', 0, G_OPTION_ARG_STRING, &opts.location,
        "Realtime API endpoint (the element's location; default: Yandex Cloud)", "URL"},
    {"voice", 0, 0, G_OPTION_ARG_STRING, &opts.voice, "Voice of the answers", "NAME"},
    {"instructions", 0, 0, G_OPTION_ARG_STRING, &opts.instructions, "System instructions", "TEXT"},
    {"greeting", 0, 0, G_OPTION_ARG_STRING, &opts.greeting,
        "The agent speaks first when the call connects, with these instructions", "TEXT"},
    {"codecs", 0, 0, G_OPTION_ARG_STRING, &opts.codecs,
        "Codecs in order of preference (default PCMU,PCMA,G722,opus)", "LIST"},
    {"operator", 0, 0, G_OPTION_ARG_STRING, &opts.operator_uri,
        "Where transfer_to_operator sends the caller (SIP REFER); without it the agent cannot transfer",
        "sip:URI"},
    {"max-calls", 0, 0, G_OPTION_ARG_INT, &opts.max_calls, "Calls at once; more get 486 Busy (default 8)", "N"},
    {"latency", 0, 0, G_OPTION_ARG_INT, &opts.latency_ms, "Jitter buffer of the caller's audio, ms (default 60)",
        "MS"},
    {"rt-priority", 0, 0, G_OPTION_ARG_INT, &opts.rt_priority,
        "Run each call's streaming threads under SCHED_RR at this priority (1-99; needs CAP_SYS_NICE), so a "
        "busy machine does not delay the line's packets (default 0: off)", "N"},
    {NULL, 0, 0, G_OPTION_ARG_NONE, NULL, NULL, NULL},
  };
  GOptionContext *ctx = g_option_context_new ("- a voice agent that answers SIP calls, on yandexrealtime");
  GError *error = NULL;
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  gboolean ok = g_option_context_parse (ctx, argc, argv, &error);
  g_option_context_free (ctx);
  if (!ok) {
    g_printerr ("%s\n", error->message);
    g_error_free (error);
    return FALSE;
  }
  if (opts.max_calls < 1 || opts.latency_ms < 0 || opts.rt_priority < 0 || opts.rt_priority > 99) {
    g_printerr ("invalid --max-calls, --latency or --rt-priority\n");
    return FALSE;
  }
  codec_prefs = g_strsplit (opts.codecs ? opts.codecs : "PCMU,PCMA,G722,opus", ",", -1);
  for (guint i = 0; codec_prefs[i]; i++)
    if (!phone_codec_find (g_strstrip (codec_prefs[i]))) {
      g_printerr ("unknown codec %s in --codecs (PCMU, PCMA, G722, opus)\n", codec_prefs[i]);
      return FALSE;
    }
  return TRUE;
}

/* --listen IP:PORT: the IP (numeric: no DNS) and the port. */
static gboolean
parse_listen (guint *port)
{
  const gchar *l = opts.listen ? opts.listen : "127.0.0.1:5060";
  const gchar *colon = strrchr (l, ':');
  listen_addr = colon ? g_strndup (l, (gsize) (colon - l)) : g_strdup (l);
  *port = colon ? (guint) atoi (colon + 1) : 5060;
  GInetAddress *ip = g_inet_address_new_from_string (listen_addr);
  gboolean ok = ip && g_inet_address_get_family (ip) == G_SOCKET_FAMILY_IPV4 && *port < 65536;
  if (ip)
    g_object_unref (ip);
  if (!ok)
    g_printerr ("--listen wants a numeric IPv4 address and a port: %s\n", l);
  return ok;
}

static gboolean
elements_present (void)
{
  static const char *needed[] = {"yandexrealtime", "rtpbin", "udpsrc", "udpsink", "rtpdtmfdepay", "fakesink"};
  for (guint i = 0; i < G_N_ELEMENTS (needed); i++) {
    GstElementFactory *f = gst_element_factory_find (needed[i]);
    if (!f) {
      g_printerr ("the GStreamer element %s is missing (Debian: gstreamer1.0-plugins-good; yandexrealtime: "
          "GST_PLUGIN_PATH)\n", needed[i]);
      return FALSE;
    }
    gst_object_unref (f);
  }
  return TRUE;
}

int
main (int argc, char **argv)
{
  guint port = 0;
  if (!parse_options (&argc, &argv) || !parse_listen (&port))
    return 2;
  gst_init (NULL, NULL);
  if (!elements_present ())
    return 1;

  su_init ();
  su_log_set_level (NULL, 0);  /* sofia-sip's own debug lines (SOFIA_DEBUG=N brings them back) */
  if (g_getenv ("SOFIA_DEBUG"))
    su_log_set_level (NULL, (unsigned) atoi (g_getenv ("SOFIA_DEBUG")));
  su_root_t *root = su_glib_root_create (NULL);
  g_source_attach (su_glib_root_gsource (root), NULL);
  loop = g_main_loop_new (NULL, FALSE);
  calls = g_hash_table_new (NULL, NULL);
  gchar *url = g_strdup_printf ("sip:%s:%u", listen_addr, port);
  nua = nua_create (root, on_nua_event, NULL, NUTAG_URL (url), NUTAG_MEDIA_ENABLE (0),
      NUTAG_ALLOW ("INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REFER, NOTIFY"),
      NUTAG_APPL_METHOD ("INVITE, INFO"), SIPTAG_USER_AGENT_STR ("yandexrealtime-phone"), TAG_NULL ());
  if (!nua) {
    g_printerr ("cannot listen on %s (UDP and TCP)\n", url);
    return 1;
  }
  g_print ("listening on %s\n", url);
  g_free (url);
  g_unix_signal_add (SIGINT, on_signal, NULL);
  g_unix_signal_add (SIGTERM, on_signal, NULL);

  g_main_loop_run (loop);

  GList *open = g_hash_table_get_keys (calls);
  for (GList *l = open; l; l = l->next)
    call_free (l->data);
  g_list_free (open);
  phone_media_shutdown ();
  nua_destroy (nua);
  su_root_destroy (root);
  su_deinit ();
  g_hash_table_unref (calls);
  g_main_loop_unref (loop);
  g_strfreev (codec_prefs);
  g_free (listen_addr);
  gst_deinit ();
  return 0;
}
