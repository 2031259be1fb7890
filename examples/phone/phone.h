/* examples/phone/phone.h: what the parts of yandexrealtime-phone share: the
 * codecs it speaks, the media a call's SDP agreed on (sdp.c), and one call's
 * audio pipeline (media.c), which phone.c drives from its SIP dialogs. */
#pragma once

#include "record.h"

#include <gst/gst.h>
#include <gio/gio.h>

G_BEGIN_DECLS

/* A codec of the phone line and the GStreamer elements that carry it. */
typedef struct {
  const gchar *name;     /* SDP encoding name, as in a=rtpmap */
  guint static_pt;       /* its static payload type, or 0 for a dynamic one */
  guint clock_rate;      /* RTP clock, as in a=rtpmap */
  guint audio_rate;      /* the decoded audio's rate (G.722: 16000 on an 8000 clock) */
  const gchar *params;   /* a=rtpmap encoding parameters ("2" for opus) or NULL */
  const gchar *enc, *dec, *pay, *depay;
} PhoneCodec;

/* The codec called `name` (case-insensitive), or NULL. */
const PhoneCodec *phone_codec_find (const gchar *name);
/* All of them, NULL-terminated, in the default preference order. */
extern const PhoneCodec *const phone_codecs[];

/* What an offer and our answer agreed on. */
typedef struct {
  const PhoneCodec *codec;
  guint pt;              /* the codec's payload type in the offer */
  guint dtmf_pt;         /* telephone-event's (RFC 4733); 0: none offered */
  gchar *remote_addr;    /* numeric IP the caller's RTP comes from and goes to */
  guint remote_port;     /* RTP */
  guint remote_rtcp_port;
  guint ptime_ms;        /* packet time we send */
  gboolean on_hold;      /* the far end takes no audio (a=sendonly / inactive) */
  gboolean remote_sends; /* the far end sends audio */
} PhoneMediaParams;

void phone_media_params_clear (PhoneMediaParams *p);

/* Reads an SDP offer and picks the first codec of `prefs` (NULL-terminated
 * codec names) that it offers.  FALSE with *why set when it has no audio
 * stream we can take. */
gboolean phone_sdp_read_offer (const gchar *sdp, gsize len, gchar **prefs, PhoneMediaParams *out,
    gchar **why);
/* Our answer (or offer: with `pt` 0 every codec of prefs) for `p`, from
 * local_addr:local_port. */
gchar *phone_sdp_write (const PhoneMediaParams *p, gchar **prefs, const gchar *local_addr,
    guint local_port, guint64 session_id, guint version);
/* Reads an answer to our offer: like phone_sdp_read_offer, but the answer's
 * first codec is the one. */
gboolean phone_sdp_read_answer (const gchar *sdp, gsize len, PhoneMediaParams *out, gchar **why);

/* The service side of every call, from the command line. */
typedef struct {
  const gchar *location;
  const gchar *voice;
  const gchar *instructions;  /* the call's own instructions (with the caller's number) */
  const gchar *tools;         /* JSON array or NULL */
  const gchar *greeting;      /* the agent speaks first, with these instructions; NULL: it waits */
  guint latency_ms;           /* the jitter buffer */
  guint rt_priority;          /* SCHED_RR priority of the streaming threads; 0: none */
} PhoneAgentConfig;

typedef struct PhoneMedia PhoneMedia;

/* What a call's pipeline tells its call, on the main loop. */
typedef struct {
  /* The session with the service is up (the call can be answered). */
  void (*ready) (gpointer user);
  void (*dtmf) (gpointer user, gchar digit);
  void (*function_call) (gpointer user, const gchar *call_id, const gchar *name, const gchar *arguments,
      const gchar *response_id);
  /* An answer ended (response-done): its audio may still be playing. */
  void (*response_done) (gpointer user, const gchar *response_id);
  void (*failed) (gpointer user, const gchar *message);
} PhoneMediaCallbacks;

/* Binds the call's RTP and RTCP sockets (an even port and the next) on
 * `local_addr`. */
PhoneMedia *phone_media_new (guint call_id, const gchar *local_addr, GError **error);
guint phone_media_local_port (PhoneMedia *m);
/* Builds and starts the pipeline: RTP from and to `p`, the agent `agent`. */
gboolean phone_media_start (PhoneMedia *m, const PhoneMediaParams *p, const PhoneAgentConfig *agent,
    const PhoneMediaCallbacks *cb, gpointer user);
/* A re-INVITE moved the far end's RTP (same codec). */
void phone_media_retarget (PhoneMedia *m, const PhoneMediaParams *p);
GstElement *phone_media_agent (PhoneMedia *m);  /* the yandexrealtime element, or NULL */
/* The pipeline's running time now (NONE before it runs). */
GstClockTime phone_media_running_time (PhoneMedia *m);
/* --record: the line's audio goes to `r` from now on (a reference is
 * kept until the pipeline has stopped). */
void phone_media_record (PhoneMedia *m, PhoneRecord *r);
/* Whether every answer's audio pushed so far has gone out on the line
 * (its last RTP packet sent). */
gboolean phone_media_played_out (PhoneMedia *m);
/* Stops the pipeline and frees everything, on a thread of its own: no
 * callback comes after it returns. */
void phone_media_free (PhoneMedia *m);
/* Waits until every pipeline freed has stopped. */
void phone_media_shutdown (void);
/* --rt-priority: this thread, and every thread it starts from now on, one
 * step under the calls' streaming threads (which get `priority`).  FALSE,
 * with `why`, when the process may not. */
gboolean phone_media_set_process_priority (guint priority, gchar **why);

G_END_DECLS
