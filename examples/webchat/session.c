/* The open tabs of yandexrealtime-webchat: each tab's WebSocket, the JSON
 * messages both ways, the element's bus messages forwarded to the page,
 * and a tab's end (its pipeline goes at once: pipeline.c).
 *
 * The WebSocket carries JSON objects with a "type":
 *   page → server  answer {sdp}, ice {candidate, sdpMLineIndex},
 *                  mode {value: "ptt" | "hands-free"}, talk {pressed},
 *                  text {text}, clear, cancel
 *   server → page  hello {max_sessions}, offer {sdp},
 *                  ice {candidate, sdpMLineIndex},
 *                  event {name, ...fields of the element's bus message
 *                  yandexrealtime/<name>}, done {what, ok},
 *                  error {message}, warning {message},
 *                  draining {seconds} (the server is stopping: this
 *                  conversation may go on that long),
 *                  closing {message} (the server ends the conversation;
 *                  the WebSocket closes with 1001 next) */
#define GST_USE_UNSTABLE_API
#include "session.h"

#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>

#include <string.h>

static GHashTable *sessions;  /* Session* set: the open tabs */
static guint next_session_id = 1;
static void (*closed_hook) (void);


Session *
session_ref (Session *s)
{
  g_atomic_int_inc (&s->refs);
  return s;
}

void
session_unref (Session *s)
{
  if (!g_atomic_int_dec_and_test (&s->refs))
    return;
  g_assert (s->pipeline == NULL && s->ws == NULL);
  g_mutex_clear (&s->speech_lock);
  g_free (s);
}

/* ---- messages to the page ---- */

gchar *
json_to_text (JsonBuilder *b)
{
  JsonNode *root = json_builder_get_root (b);
  gchar *text = json_to_string (root, FALSE);
  json_node_unref (root);
  g_object_unref (b);
  return text;
}

void
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

void
post_text (Session *s, gchar *text)
{
  Outgoing *o = g_new0 (Outgoing, 1);
  o->session = session_ref (s);
  o->text = text;
  g_idle_add_full (G_PRIORITY_DEFAULT, send_outgoing, o, free_outgoing);
}

gchar *
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
    if (closed_hook)
      closed_hook ();
  }
  session_unref (s);
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

gboolean
session_on_bus_message (GstBus *bus, GstMessage *msg, gpointer user_data)
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
        if (gst_structure_has_name (st, "yandexrealtime/server-error"))
          metrics_service_error ();
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
      metrics_pipeline_error ();
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


/* ---- the table of open tabs ---- */

void
sessions_init (void (*on_closed) (void))
{
  sessions = g_hash_table_new (NULL, NULL);
  closed_hook = on_closed;
}

void
sessions_deinit (void)
{
  g_hash_table_unref (sessions);
  sessions = NULL;
}

guint
sessions_count (void)
{
  return g_hash_table_size (sessions);
}

gboolean
session_open (SoupWebsocketConnection *ws)
{
  Session *s = g_new0 (Session, 1);
  s->refs = 1;  /* the table's */
  s->id = next_session_id++;
  s->ws = g_object_ref (ws);
  g_mutex_init (&s->speech_lock);
  g_hash_table_add (sessions, s);
  metrics_conversation_opened ();
  soup_websocket_connection_set_keepalive_interval (ws, 15);
  g_signal_connect (ws, "message", G_CALLBACK (on_ws_message), s);
  g_signal_connect (ws, "closed", G_CALLBACK (on_ws_closed), s);
  gchar *hello = g_strdup_printf ("{\"type\":\"hello\",\"max_sessions\":%d}", opts.max_sessions);
  send_text (s, hello);
  g_free (hello);
  g_print ("tab %u: opened (%u open)\n", s->id, g_hash_table_size (sessions));
  if (session_build (s))
    return TRUE;
  send_text (s, "{\"type\":\"error\",\"message\":\"The server could not start a conversation "
      "(missing GStreamer plugins? see its log).\"}");
  session_end (s, SOUP_WEBSOCKET_CLOSE_SERVER_ERROR, "no pipeline");
  return FALSE;
}

void
sessions_tell_all (const gchar *text)
{
  GHashTableIter it;
  gpointer s;
  g_hash_table_iter_init (&it, sessions);
  while (g_hash_table_iter_next (&it, &s, NULL))
    send_text (s, text);
}

void
sessions_close_all (const gchar *message)
{
  gchar *text = simple_message ("closing", "message", message);
  GList *open = g_hash_table_get_keys (sessions);
  for (GList *l = open; l; l = l->next) {
    send_text (l->data, text);
    session_end (l->data, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "server stopping");
  }
  g_list_free (open);
  g_free (text);
}

void
sessions_sum_stats (guint64 *answers, guint64 *reconnects)
{
  GHashTableIter it;
  gpointer key;
  *answers = *reconnects = 0;
  g_hash_table_iter_init (&it, sessions);
  while (g_hash_table_iter_next (&it, &key, NULL)) {
    Session *s = key;
    GstStructure *stats = NULL;
    guint n = 0, r = 0;
    if (s->rt)
      g_object_get (s->rt, "stats", &stats, NULL);
    if (stats) {
      gst_structure_get_uint (stats, "answers", &n);
      gst_structure_get_uint (stats, "reconnects", &r);
      gst_structure_free (stats);
    }
    *answers += n;
    *reconnects += r;
  }
}
