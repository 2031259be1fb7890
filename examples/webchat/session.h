/* One browser tab of yandexrealtime-webchat, as session.c (its WebSocket,
 * its messages, its end) and pipeline.c (its GStreamer pipeline) share it. */
#pragma once

#include "webchat.h"

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* One browser tab: its WebSocket and its pipeline.  Reference counted,
 * because webrtcbin's signals and promises arrive on its own threads and
 * hop to the main loop with a reference. */
typedef struct Session {
  gint refs;
  guint id;
  SoupWebsocketConnection *ws;  /* NULL once closed */
  GstElement *pipeline;         /* NULL once freed */
  GstElement *webrtc;
  GstElement *rt;               /* the yandexrealtime element */
  GstElement *depay;            /* where webrtcbin's incoming audio goes */
  /* For the answer latency (metrics): when the element posted
   * speech-stopped and no answer audio has left it since, else 0
   * (monotonic µs).  Set on the element's thread, read on the streaming
   * thread. */
  GMutex speech_lock;
  gint64 speech_end_us;
} Session;

Session *session_ref (Session *s);
void session_unref (Session *s);

/* Main thread only, like every libsoup object. */
void send_text (Session *s, const gchar *text);
/* From any thread: queued for the main loop, in order.  Takes `text`. */
void post_text (Session *s, gchar *text);
/* The builder's object as text; unrefs the builder. */
gchar *json_to_text (JsonBuilder *b);

/* pipeline.c: builds the tab's pipeline and sets it to PLAYING (FALSE:
 * it could not), and frees it (the element's stats go to the metrics). */
gboolean session_build (Session *s);
void session_free_pipeline (Session *s);
/* The bus watch pipeline.c installs (session.c). */
gboolean session_on_bus_message (GstBus *bus, GstMessage *msg, gpointer user_data);

G_END_DECLS
