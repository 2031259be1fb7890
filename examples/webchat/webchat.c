/* yandexrealtime-webchat: a voice chat in the browser on the yandexrealtime
 * element.  One HTTP server (libsoup's SoupServer) serves the page (www/)
 * and a WebSocket, /ws, for signalling and conversation events; the audio
 * goes over WebRTC.  Every WebSocket (every browser tab) gets a pipeline of
 * its own (session.c, pipeline.c) and loses it the moment its WebSocket
 * closes.  Nothing is shared between tabs, so several instances behind a
 * load balancer serve more tabs than one machine holds (docs/webchat.md,
 * examples/webchat/nginx.conf).
 *
 * This file: the HTTP server (the page's files; GET /healthz and
 * GET /metrics for operators; new tabs taken or refused), the drain on
 * SIGTERM, and main().
 *
 * Credentials stay here: the element reads YANDEX_CLOUD_API_KEY (or
 * YANDEX_CLOUD_IAM_TOKEN) and YANDEX_CLOUD_FOLDER_ID from the environment.
 * The page never sees them.
 *
 *   yandexrealtime-webchat [--port 8080] [--address 127.0.0.1]
 *                          [--location ws://127.0.0.1:PORT/v1/realtime]
 *                          [--max-sessions 16] [--drain-seconds 30] ...
 *
 * The first line on stdout is the page's URL. */
#include "webchat.h"

#include <glib-unix.h>

#include <stdio.h>
#include <string.h>

Options opts = {
  .port = 8080,
  .latency_ms = 40,
  .max_sessions = 16,
  .drain_seconds = 30,
};

static GMainLoop *loop;
static gchar *instance;       /* host:port, in /healthz */
static gboolean draining;     /* SIGTERM came: no new tabs */
static gint64 drain_end_us;   /* monotonic: when the open tabs are closed */

/* ---- new tabs: taken or refused ---- */

/* Why a new tab is refused now ("draining", "full"), or NULL. */
static const gchar *
refusal (void)
{
  if (draining)
    return "draining";
  if ((gint) sessions_count () >= opts.max_sessions)
    return "full";
  return NULL;
}

/* /healthz's body: {"status":"ok"|"full"|"draining", ...}. */
static gchar *
health_json (void)
{
  const gchar *why = refusal ();
  GString *out = g_string_new (NULL);
  g_string_append_printf (out, "{\"status\":\"%s\",\"instance\":\"%s\",\"sessions\":%u,\"max_sessions\":%d",
      why ? why : "ok", instance, sessions_count (), opts.max_sessions);
  if (draining) {
    gint64 left = MAX (0, drain_end_us - g_get_monotonic_time ());
    g_string_append_printf (out, ",\"drain_seconds_left\":%d", (gint) ((left + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC));
  }
  g_string_append (out, "}\n");
  return g_string_free (out, FALSE);
}

static void
set_json (SoupServerMessage *msg, guint status, gchar *body)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_message_headers_append (soup_server_message_get_response_headers (msg), "Cache-Control", "no-store");
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, body, strlen (body));
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

/* Before the WebSocket handshake: a server that is draining or full
 * answers the upgrade with HTTP 503 and its /healthz body, so that a load
 * balancer can send the tab to another instance (nginx: proxy_next_upstream
 * http_503).  A browser that reaches it directly gets no status, only a
 * failed WebSocket: the page then asks /healthz why (app.js). */
static void
on_ws_request (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  (void) server, (void) path, (void) query, (void) user_data;
  const gchar *why = refusal ();
  if (!why)
    return;
  metrics_conversation_refused (why);
  g_print ("refused a new tab: %s (%u open)\n", why, sessions_count ());
  soup_message_headers_append (soup_server_message_get_response_headers (msg), "Retry-After", "10");
  set_json (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, health_json ());
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
  const gchar *why = refusal ();  /* changed since on_ws_request: say it on the socket */
  if (why) {
    metrics_conversation_refused (why);
    gchar *text = simple_message ("error", "message", g_str_equal (why, "draining")
        ? "This server is shutting down and takes no new conversations. Try again in a minute."
        : "This server is busy: it holds all the conversations it can. Try again later.");
    soup_websocket_connection_send_text (ws, text);
    g_free (text);
    soup_websocket_connection_close (ws, 1013 /* try again later */, why);
    return;
  }
  session_open (ws);
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
  const char *method = soup_server_message_get_method (msg);
  if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD) {
    soup_server_message_set_status (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
    return;
  }
  if (g_str_equal (path, "/healthz")) {  /* for load balancers: 503 when a new tab would be refused */
    set_json (msg, refusal () ? SOUP_STATUS_SERVICE_UNAVAILABLE : SOUP_STATUS_OK, health_json ());
    return;
  }
  if (g_str_equal (path, "/metrics")) {
    gchar *body = metrics_render (draining);
    soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
    soup_server_message_set_response (msg, "text/plain; version=0.0.4; charset=utf-8", SOUP_MEMORY_TAKE,
        body, strlen (body));
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


/* ---- stopping: SIGTERM drains, SIGINT (or a second SIGTERM) stops ---- */

static void
stop_now (void)
{
  g_main_loop_quit (loop);
}

static gboolean
end_drain (gpointer unused)
{
  (void) unused;
  g_print ("drain over: closing %u conversations\n", sessions_count ());
  stop_now ();
  return G_SOURCE_REMOVE;
}

/* After each tab's end: the last one ends the drain early. */
static void
on_tab_closed (void)
{
  if (draining && sessions_count () == 0 && g_main_loop_is_running (loop)) {
    g_print ("drain over: no conversation left\n");
    stop_now ();
  }
}

static gboolean
on_sigterm (gpointer unused)
{
  (void) unused;
  if (draining) {
    stop_now ();
    return G_SOURCE_CONTINUE;
  }
  draining = TRUE;
  drain_end_us = g_get_monotonic_time () + (gint64) opts.drain_seconds * G_USEC_PER_SEC;
  g_print ("SIGTERM: draining: new tabs refused, %u open conversations may go on for up to %d s\n",
      sessions_count (), opts.drain_seconds);
  gchar *text = g_strdup_printf ("{\"type\":\"draining\",\"seconds\":%d}", opts.drain_seconds);
  sessions_tell_all (text);
  g_free (text);
  if (sessions_count () == 0)
    stop_now ();
  else
    g_timeout_add_full (G_PRIORITY_DEFAULT, (guint) opts.drain_seconds * 1000, end_drain, NULL, NULL);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_sigint (gpointer unused)
{
  (void) unused;
  stop_now ();
  return G_SOURCE_CONTINUE;
}

/* ---- main ---- */

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
    {"drain-seconds", 0, 0, G_OPTION_ARG_INT, &opts.drain_seconds,
        "On SIGTERM, how long open conversations may go on before they are closed (default 30)", "S"},
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
  } else if (opts.port < 0 || opts.port > 65535 || opts.latency_ms < 0 || opts.max_sessions < 1 ||
      opts.drain_seconds < 0 || opts.drain_seconds > 86400) {
    g_printerr ("invalid --port, --latency, --max-sessions or --drain-seconds\n");
    ok = FALSE;
  }
  return ok;
}

int
main (int argc, char **argv)
{
  if (!parse_options (&argc, &argv))
    return 2;
  /* One line at a time into a log file or a pipe (journald, docker): the
   * drain's lines show when they happen, not at exit. */
  setvbuf (stdout, NULL, _IOLBF, 0);
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

  sessions_init (on_tab_closed);
  loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGINT, on_sigint, NULL);
  g_unix_signal_add (SIGTERM, on_sigterm, NULL);

  SoupServer *server = soup_server_new ("server-header", "yandexrealtime-webchat", NULL);
  soup_server_add_early_handler (server, "/ws", on_ws_request, NULL, NULL);
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
  instance = g_strdup_printf ("%s:%d", g_get_host_name (), g_uri_get_port (uris->data));
  printf ("%s\n", uri);
  fflush (stdout);
  g_free (uri);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  g_main_loop_run (loop);

  sessions_close_all ("This server is shutting down: this conversation ends here. "
      "Press Reconnect to start a new one.");
  /* Tell the pages before going: let the close frames out. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_object_unref (server);
  sessions_deinit ();
  g_main_loop_unref (loop);
  g_free (instance);
  gst_deinit ();  /* GST_TRACERS=leaks reports what a tab left behind */
  return 0;
}
