/* examples/phone/record.h: --record DIR, one call's record: a stereo WAV at
 * the line's rate (the caller left, the agent right, each sample where the
 * line carried it, by the pipeline's running time) and a JSON-lines file
 * beside it (the transcript and the call's events, with times from the
 * call's start).  record.c writes both. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

typedef struct PhoneRecord PhoneRecord;

enum { PHONE_RECORD_CALLER = 0, PHONE_RECORD_AGENT = 1 };

/* Creates DIR/<date>-<time>-call<ID>.wav and .jsonl; sample 0 of the WAV is
 * running time `start` of the call's pipeline, and now (monotonic) is
 * t_ms 0 of the events.  Takes `start_event`: the first line, at t_ms 0,
 * with "wav" (the WAV's file name) added.  NULL with *error set when the
 * files cannot be made. */
PhoneRecord *phone_record_new (const gchar *dir, guint call_id, guint rate, GstClockTime start,
    GstStructure *start_event, GError **error);
PhoneRecord *phone_record_ref (PhoneRecord *r);
/* The last reference writes the WAV's last samples and its header. */
void phone_record_unref (PhoneRecord *r);
const gchar *phone_record_wav_path (PhoneRecord *r);

/* A streaming thread: `n` S16 samples of `channel` that the line carried
 * from running time `running_time` on. */
void phone_record_audio (PhoneRecord *r, guint channel, GstClockTime running_time, const gint16 *pcm, gsize n);

/* The call is over at running time `running_time`: nothing after it is
 * written (the pipeline runs on while it stops, and the agent's audio was
 * pushed up to a pipeline latency ahead of the line). */
void phone_record_end (PhoneRecord *r, GstClockTime running_time);

/* What `channel` holds from running time `running_time` on never went out
 * (a flush dropped it): forgotten, unless written already. */
void phone_record_cut (PhoneRecord *r, guint channel, GstClockTime running_time);

/* One JSON line: {"t_ms": ms since the call's start, "event": the
 * structure's name, then its fields (strings, booleans and integers)}.
 * Takes `event`; without a record (r NULL) it is dropped. */
void phone_record_event (PhoneRecord *r, GstStructure *event);

G_END_DECLS
