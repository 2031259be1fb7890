/* examples/phone/media-impl.h: one call's pipeline inside: the state media.c
 * (building, the line's continuous RTP, teardown) and media-bus.c (what its
 * bus says) share. */
#pragma once

#include "phone.h"

G_BEGIN_DECLS

struct PhoneMedia {
  guint id;
  GSocket *rtp, *rtcp;
  guint port;
  PhoneMediaParams params;   /* remote_addr owned */
  PhoneAgentConfig agent;    /* strings owned */
  PhoneMediaCallbacks cb;
  gpointer user;
  GstElement *pipeline, *rtpbin, *rt, *depay, *dtmf_depay, *rtp_src, *rtcp_src, *rtp_sink, *rtcp_sink;
  guint bus_watch;
  gboolean session_seen;     /* the first session message came */
  gboolean input_live;       /* the caller's audio reached the element */
  gboolean greeted;
  /* The silence probe's state (the encoder's streaming thread). */
  gboolean in_silence;       /* chaining our own silence */
  gboolean timeline_started; /* something went through */
  guint64 next_sample;       /* where the timeline pushed so far ends, in samples */
  gint64 audio_end;          /* end (running time, ns) of the last answer audio; atomic */
  gint64 audio_pushed;       /* answer audio that went by the probe, ns; atomic */
  gint64 audio_expected;     /* audio-duration of the completed answers, ns (main thread) */
  gint rt_priority_warned;
  gint on_hold;              /* atomic: the far end takes no audio (re-INVITE) */
  GstClockTime latency;      /* the pipeline's: the RTP sink sends at running time + this */
  PhoneRecord *record;       /* --record: set once (main thread), read by the taps; atomic */
};

/* media-bus.c: the bus watch, the sync handler (--rt-priority) and the
 * probe that sees the caller's first audio. */
gboolean phone_media_on_bus_message (GstBus *bus, GstMessage *msg, gpointer user_data);
GstBusSyncReply phone_media_on_sync_message (GstBus *bus, GstMessage *msg, gpointer user_data);
GstPadProbeReturn phone_media_on_first_input (GstPad *pad, GstPadProbeInfo *info, gpointer user_data);

G_END_DECLS
