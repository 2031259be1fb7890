/* yandexrealtime-phone: a voice agent on the phone (this file: SIP and main).  A small SIP user agent
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
 *                        [--call sip:USER@IP:PORT [--ring-timeout S]] [--record DIR]
 *                        [--register sip:IP[:PORT]]
 *
 * With --call it places one call instead (a reminder, a callback), holds the
 * same conversation when it is answered, and exits when it ends: 0 if it
 * was answered, 1 if busy, not answered or failed.
 *
 * With --register it REGISTERs with a registrar or PBX (digest
 * authentication, YRT_SIP_USER and YRT_SIP_PASSWORD from the environment:
 * register.c).
 *
 * It prints "listening on sip:ADDRESS:PORT" once it takes calls, then a line
 * per event of each call ("call N: …").  docs/phone.md tells the rest. */
#include "call.h"
#include "register.h"

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

PhoneOptions opts = {
  .max_calls = 8,
  .latency_ms = 60,
  .ring_timeout_s = 30,
};
gchar *listen_addr;
gchar **codec_prefs;
GHashTable *calls;

static nua_t *nua;
static GMainLoop *loop;
static gboolean shutting_down;
static int exit_status;

/* ---- SIP ---- */

#define UNREGISTER_TIMEOUT_S 3   /* stopping: the registrar's answer to the un-REGISTER, at most */

static gboolean
shutdown_sip (gpointer data)
{
  (void) data;
  static gboolean done;
  if (!done)
    nua_shutdown (nua);  /* nua_r_shutdown quits the loop */
  done = TRUE;
  return G_SOURCE_REMOVE;
}

static void
unregistered (void)
{
  shutdown_sip (NULL);
}

/* Stopping: the registration goes first (--register), then nua. */
static void
stop_sip (void)
{
  shutting_down = TRUE;
  if (phone_register_stop (unregistered))
    g_timeout_add_seconds (UNREGISTER_TIMEOUT_S, shutdown_sip, NULL);
  else
    shutdown_sip (NULL);
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
  gchar *peer = sip_caller (sip);
  if (shutting_down || (gint) g_hash_table_size (calls) >= opts.max_calls) {
    g_print ("busy: refusing a call from %s (%u open)\n", peer, g_hash_table_size (calls));
    nua_respond (nh, SIP_486_BUSY_HERE, TAG_END ());
    g_free (peer);
    return;  /* the handle goes when nua says the call is terminated */
  }
  Call *c = call_new (nh, peer, FALSE);
  g_free (peer);
  g_print ("call %u: from %s (%u open)\n", c->id, c->peer, g_hash_table_size (calls));

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
  if (!call_bind_media (c, &why) || !call_start_media (c, &why)) {
    g_print ("call %u: refused: %s\n", c->id, why);
    g_free (why);
    call_hang_up (c, "no pipeline");
    return;
  }
  c->local_sdp = phone_sdp_write (&c->params, codec_prefs, listen_addr, phone_media_local_port (c->media),
      c->sdp_session, c->sdp_version);
}

/* ---- outbound: --call ---- */

static gboolean
ring_timed_out (gpointer data)
{
  Call *c = data;
  c->answer_timeout = 0;
  g_print ("call %u: no answer within %d s\n", c->id, opts.ring_timeout_s);
  exit_status = 1;
  call_hang_up (c, "no answer");
  return G_SOURCE_REMOVE;
}

/* Places the --call call: our offer, every codec of --codecs. */
static gboolean
place_call (gpointer data)
{
  (void) data;
  gchar *from = g_strdup_printf ("<sip:agent@%s>", listen_addr);
  nua_handle_t *nh = nua_handle (nua, NULL, SIPTAG_TO_STR (opts.call_uri), SIPTAG_FROM_STR (from), TAG_END ());
  g_free (from);
  const gchar *user = opts.call_uri + 4, *at = strchr (user, '@');  /* sip:USER@… */
  gchar *peer = at ? g_strndup (user, (gsize) (at - user)) : g_strdup (user);
  Call *c = call_new (nh, peer, TRUE);
  g_free (peer);
  gchar *why = NULL;
  if (!call_bind_media (c, &why)) {
    g_printerr ("call %u: %s\n", c->id, why);
    g_free (why);
    exit_status = 1;
    nua_handle_destroy (nh);
    c->nh = NULL;
    call_free (c);
    g_main_loop_quit (loop);
    return G_SOURCE_REMOVE;
  }
  c->params.ptime_ms = 20;
  c->local_sdp = phone_sdp_write (&c->params, codec_prefs, listen_addr, phone_media_local_port (c->media),
      c->sdp_session, c->sdp_version);
  g_print ("call %u: calling %s\n", c->id, opts.call_uri);
  nua_invite (nh, SIPTAG_CONTENT_TYPE_STR ("application/sdp"), SIPTAG_PAYLOAD_STR (c->local_sdp), TAG_END ());
  /* In milliseconds: g_timeout_add_seconds fires anywhere in the last second. */
  c->answer_timeout = g_timeout_add ((guint) opts.ring_timeout_s * 1000, ring_timed_out, c);
  return G_SOURCE_REMOVE;
}

/* The answer to our INVITE: ringing, answered (the conversation starts),
 * or a clear word on why not. */
static void
on_invite_response (Call *c, int status, char const *phrase, sip_t const *sip)
{
  if (status < 200) {
    if (status == 180 || status == 183)
      g_print ("call %u: ringing\n", c->id);
    return;
  }
  g_clear_handle_id (&c->answer_timeout, g_source_remove);
  if (status >= 300) {
    const gchar *what = status == 486 || status == 600 ? "busy" : status == 480 || status == 408 || status == 487 ?
        "no answer" : "failed";
    g_print ("call %u: %s (%d %s)\n", c->id, what, status, phrase);
    exit_status = 1;
    c->state = CALL_ENDING;
    call_stop_media (c);
    return;
  }
  if (c->state != CALL_RINGING)
    return;  /* a retransmitted 200 */
  gchar *why = NULL;
  const sip_payload_t *pl = sip ? sip->sip_payload : NULL;
  PhoneMediaParams answer = {0};
  if (!pl || !phone_sdp_read_answer (pl->pl_data, pl->pl_len, &answer, &why) || !(c->params = answer, TRUE) ||
      !call_start_media (c, &why)) {
    g_print ("call %u: answered, but %s\n", c->id, why ? why : "without SDP");
    g_free (why);
    exit_status = 1;
    c->state = CALL_ACTIVE;
    call_hang_up (c, "no media");
    return;
  }
  call_answered (c);
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
 * instead of RFC 4733.  INFO is ours to answer (NUTAG_APPL_METHOD; this
 * request, not the call's INVITE: NUTAG_WITH_THIS): 200 for a digit, 415
 * for another body, 400 for a relay without a digit, 481 outside a call.
 * Unanswered, the far end sent each INFO again until its transaction
 * timed out, and some PBXs drop a call on that. */
static void
on_info (nua_handle_t *nh, Call *c, sip_t const *sip)
{
  const sip_payload_t *pl = sip ? sip->sip_payload : NULL;
  const gchar *type = sip && sip->sip_content_type ? sip->sip_content_type->c_type : NULL;
  gchar *body = pl ? g_strndup (pl->pl_data, pl->pl_len) : NULL;
  const gchar *signal = body ? strstr (body, "Signal=") : NULL;
  gchar digit = signal ? signal[7] == ' ' ? signal[8] : signal[7] : 0;
  g_free (body);
  if (!c) {
    nua_respond (nh, SIP_481_NO_TRANSACTION, NUTAG_WITH_THIS (nua), TAG_END ());
    nua_handle_destroy (nh);
  } else if (g_strcmp0 (type, "application/dtmf-relay") != 0) {
    nua_respond (nh, SIP_415_UNSUPPORTED_MEDIA, SIPTAG_ACCEPT_STR ("application/dtmf-relay"), NUTAG_WITH_THIS (nua),
        TAG_END ());
  } else if (!digit || !strchr ("0123456789*#ABCD", digit)) {
    nua_respond (nh, SIP_400_BAD_REQUEST, NUTAG_WITH_THIS (nua), TAG_END ());
  } else {
    nua_respond (nh, SIP_200_OK, NUTAG_WITH_THIS (nua), TAG_END ());
    call_dtmf (c, digit);
  }
}

static void
on_state (nua_handle_t *nh, Call *c, tagi_t tags[])
{
  int state = nua_callstate_init;
  tl_gets (tags, NUTAG_CALLSTATE_REF (state), TAG_END ());
  if (state != nua_callstate_terminated)
    return;
  gboolean outbound = c && c->outbound;
  if (c)
    call_free (c);  /* destroys the handle */
  else
    nua_handle_destroy (nh);
  if (outbound && !shutting_down)  /* --call: one call, then stop */
    stop_sip ();
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
    case nua_r_invite:
      if (c && c->outbound)
        on_invite_response (c, status, phrase, sip);
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
        g_print ("call %u: the %s hung up\n", c->id, c->outbound ? "callee" : "caller");
        phone_record_event (c->record, gst_structure_new ("hangup", "by", G_TYPE_STRING,
            c->outbound ? "callee" : "caller", NULL));
        c->state = CALL_ENDING;
        call_stop_media (c);
      }
      break;
    case nua_i_info:
      on_info (nh, c, sip);
      break;
    case nua_r_refer:
      if (c && status >= 200) {
        g_print ("call %u: transfer %s (%d %s)\n", c->id, status < 300 ? "accepted" : "refused", status, phrase);
        phone_record_event (c->record, gst_structure_new (status < 300 ? "transfer_accepted" : "transfer_refused",
            "status", G_TYPE_INT, status, NULL));
        call_hang_up (c, status < 300 ? "transferred" : "the transfer failed");
      }
      break;
    case nua_r_register:
    case nua_r_unregister:
      if (phone_register_is (nh))
        phone_register_response (event, status, phrase, sip);
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
  stop_sip ();
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
    {"call", 0, 0, G_OPTION_ARG_STRING, &opts.call_uri,
        "Place one call (numeric address: sip:USER@IP:PORT), hold the conversation, and exit when it ends: 0 if "
        "it was answered, 1 if busy, not answered or failed", "sip:URI"},
    {"ring-timeout", 0, 0, G_OPTION_ARG_INT, &opts.ring_timeout_s,
        "--call: give up when nobody answers within this (default 30 s)", "S"},
    {"record", 0, 0, G_OPTION_ARG_FILENAME, &opts.record_dir,
        "Write each call to DIR: a stereo WAV (the caller left, the agent right, as the line carried them) and "
        "a JSON-lines file of its transcript and events", "DIR"},
    {"register", 0, 0, G_OPTION_ARG_STRING, &opts.registrar,
        "REGISTER with this registrar or PBX (numeric address), as YRT_SIP_USER with the digest password "
        "YRT_SIP_PASSWORD (both from the environment); refreshed before it expires, removed on exit",
        "sip:IP[:PORT]"},
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
  if (opts.max_calls < 1 || opts.latency_ms < 0 || opts.rt_priority < 0 || opts.rt_priority > 99 ||
      opts.ring_timeout_s < 1 || (opts.call_uri && !g_str_has_prefix (opts.call_uri, "sip:"))) {
    g_printerr ("invalid --max-calls, --latency, --rt-priority, --ring-timeout or --call\n");
    return FALSE;
  }
  gchar *why = NULL;
  if (opts.registrar && !phone_register_init (opts.registrar, &why)) {
    g_printerr ("%s\n", why);
    g_free (why);
    return FALSE;
  }
  if (opts.record_dir && !g_file_test (opts.record_dir, G_FILE_TEST_IS_DIR)) {
    g_printerr ("--record: %s is not a directory\n", opts.record_dir);
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
  gchar *why = NULL;
  if (opts.rt_priority && !phone_media_set_process_priority ((guint) opts.rt_priority, &why)) {
    g_printerr ("%s\n", why);  /* the calls say so too; they go on without it */
    g_free (why);
  }

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
  phone_register_start (nua);
  if (opts.call_uri)
    g_idle_add (place_call, NULL);
  g_unix_signal_add (SIGINT, on_signal, NULL);
  g_unix_signal_add (SIGTERM, on_signal, NULL);

  g_main_loop_run (loop);

  GList *open = g_hash_table_get_keys (calls);
  for (GList *l = open; l; l = l->next)
    call_free (l->data);
  g_list_free (open);
  phone_media_shutdown ();
  phone_register_free ();
  nua_destroy (nua);
  su_root_destroy (root);
  su_deinit ();
  g_hash_table_unref (calls);
  g_main_loop_unref (loop);
  g_strfreev (codec_prefs);
  g_free (listen_addr);
  gst_deinit ();
  return exit_status;
}
