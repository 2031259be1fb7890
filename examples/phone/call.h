/* examples/phone/call.h: one call of yandexrealtime-phone, between its SIP
 * dialog (phone.c) and its pipeline (media.c): its state, what the agent's
 * functions and the caller's digits do to it (call.c), and the options and
 * SIP stack every call shares. */
#pragma once

#include "phone.h"

#include <sofia-sip/nua.h>

G_BEGIN_DECLS

typedef struct {
  gchar *listen;
  gchar *location;
  gchar *voice;
  gchar *instructions;
  gchar *greeting;
  gchar *codecs;
  gchar *operator_uri;
  gchar *call_uri;
  gint max_calls;
  gint latency_ms;
  gint rt_priority;
  gint ring_timeout_s;
} PhoneOptions;

extern PhoneOptions opts;
extern gchar *listen_addr;       /* numeric IP of --listen: our SDP's address */
extern gchar **codec_prefs;      /* --codecs, split */
extern GHashTable *calls;        /* Call* set */

typedef enum { CALL_RINGING, CALL_ACTIVE, CALL_ENDING } CallState;
typedef enum { AFTER_NOTHING, AFTER_HANGUP, AFTER_TRANSFER } AfterAnswer;

typedef struct {
  guint id;
  nua_handle_t *nh;
  gboolean outbound;             /* we placed it (--call) */
  gchar *peer;                   /* the other side's number: From's user, or --call's */
  CallState state;
  PhoneMediaParams params;
  PhoneMedia *media;
  gchar *local_sdp;
  guint64 sdp_session;
  guint sdp_version;
  guint answer_timeout;          /* inbound: 503 if the service is not up; outbound: the ring timeout */
  /* end_call / transfer_to_operator: what to do once the answer after the
   * function call (the goodbye) has been played out. */
  AfterAnswer after;
  gchar *after_response;         /* the response that called the function */
  guint after_poll, after_timeout;
  GString *digits;               /* DTMF gathered for the model */
  guint digits_timeout;
} Call;

Call *call_new (nua_handle_t *nh, const gchar *peer, gboolean outbound);
void call_free (Call *c);
/* Binds the call's RTP ports (its SDP's port); FALSE with *why. */
gboolean call_bind_media (Call *c, gchar **why);
/* Starts the pipeline for c->params; FALSE with *why. */
gboolean call_start_media (Call *c, gchar **why);
/* Stops the audio at once; the SIP side goes on to its end. */
void call_stop_media (Call *c);
/* 503 before the answer, BYE after it; the audio stops at once. */
void call_hang_up (Call *c, const gchar *why);
/* The caller pressed a key (RFC 4733 or SIP INFO). */
void call_dtmf (Call *c, gchar digit);

G_END_DECLS
