/* What the pieces of yandexrealtime-webchat share: its options, the tabs
 * (session.c: one pipeline per browser tab) and the operator's counters
 * (metrics.c: what GET /metrics reports).  webchat.c is the HTTP server,
 * its drain on SIGTERM and main(). */
#pragma once

#include <gst/gst.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

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
  gint drain_seconds;
} Options;

extern Options opts;

/* ---- session.c: the open tabs ---- */

/* `on_closed` runs on the main loop after each tab's end. */
void sessions_init (void (*on_closed) (void));
void sessions_deinit (void);
guint sessions_count (void);
/* A new tab on `ws` (same origin, not refused): builds its pipeline.
 * FALSE when it could not (the tab was told and closed). */
gboolean session_open (SoupWebsocketConnection *ws);
/* Sends the JSON `text` to every open tab. */
void sessions_tell_all (const gchar *text);
/* Ends every open tab: the page gets {"type":"closing","message":…} and
 * the WebSocket closes with 1001 (going away). */
void sessions_close_all (const gchar *message);
/* Sums the element's `stats` answers and reconnects over the open tabs. */
void sessions_sum_stats (guint64 *answers, guint64 *reconnects);

/* {"type": type, key: value} (key NULL: the type alone), to send. */
gchar *simple_message (const gchar *type, const gchar *key, const gchar *value);

/* ---- metrics.c: counters for GET /metrics ---- */

void metrics_conversation_opened (void);
/* `reason`: "full" or "draining" */
void metrics_conversation_refused (const gchar *reason);
/* A tab's pipeline ends: what its element counted (its `stats`) joins the totals. */
void metrics_conversation_closed (guint answers, guint reconnects);
void metrics_pipeline_error (void);
void metrics_service_error (void);
/* Any thread. */
void metrics_observe_answer_latency (gint64 microseconds);
/* The Prometheus text exposition (version 0.0.4). */
gchar *metrics_render (gboolean draining);

G_END_DECLS
