/* examples/phone/record.c: --record DIR, one call's record (record.h).
 *
 * The WAV: two channels at the line's rate.  Each channel's audio comes
 * from a streaming thread with the running time the line carried it at;
 * its samples go where that time falls (sample 0: the call's start), and
 * the file is written as far as both channels have come.  A channel that
 * stops (a caller on hold sends nothing) is written as silence once the
 * other is more than MAX_SKEW_MS ahead; audio that arrives for a time
 * already written is dropped.  A channel's buffers follow each other
 * sample for sample while their times are within ALIGN_MS of that (the
 * jitter buffer's times of the caller's packets wander by a sample or so,
 * and placing each exactly would drop or double samples: clicks, and a
 * tone a few Hz off); beyond it the channel moves to the buffer's time.  The header's sizes are set when the last
 * reference goes.
 *
 * The JSON lines: one object a line, {"t_ms": ms since the call's start,
 * "event": …, fields}, written and flushed as they happen. */
#include "record.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_SKEW_MS 2000
#define ALIGN_MS 20                /* a packet */
#define WAV_HEADER 44

struct PhoneRecord {
  gint refs;
  GMutex lock;               /* the WAV and `pending`: two streaming threads */
  FILE *wav, *jsonl;
  gchar *wav_path;
  guint rate;
  GstClockTime start;        /* running time of sample 0 */
  gint64 start_us;           /* monotonic time of t_ms 0 */
  guint64 written;           /* frames in the WAV */
  GArray *pending[2];        /* each channel's samples from frame `written` on */
  gint64 next[2];            /* the frame after each channel's last samples; -1: none yet */
  gint64 end;                /* the frame the call ended at (phone_record_end); -1: not yet */
};

static void
put_u32 (guint8 *p, guint32 v)
{
  p[0] = v & 0xff, p[1] = (v >> 8) & 0xff, p[2] = (v >> 16) & 0xff, p[3] = v >> 24;
}

/* A canonical 44-byte header: PCM S16LE, two channels. */
static void
wav_header (guint8 h[WAV_HEADER], guint rate, guint64 frames)
{
  guint32 data = (guint32) MIN (frames * 4, G_MAXUINT32 - WAV_HEADER);
  memcpy (h, "RIFF", 4);
  put_u32 (h + 4, data + WAV_HEADER - 8);
  memcpy (h + 8, "WAVEfmt ", 8);
  put_u32 (h + 16, 16);
  h[20] = 1, h[21] = 0, h[22] = 2, h[23] = 0;  /* PCM, stereo */
  put_u32 (h + 24, rate);
  put_u32 (h + 28, rate * 4);
  h[32] = 4, h[33] = 0, h[34] = 16, h[35] = 0;  /* 4 bytes a frame, 16 bits */
  memcpy (h + 36, "data", 4);
  put_u32 (h + 40, data);
}

/* `s` as a JSON string. */
static void
append_json_string (GString *out, const gchar *s)
{
  g_string_append_c (out, '"');
  for (const guchar *c = (const guchar *) (s ? s : ""); *c; c++) {
    if (*c == '"' || *c == '\\')
      g_string_append_printf (out, "\\%c", *c);
    else if (*c < 0x20)
      g_string_append_printf (out, "\\u%04x", *c);
    else
      g_string_append_c (out, (gchar) *c);  /* UTF-8 goes as it is */
  }
  g_string_append_c (out, '"');
}

static gboolean
append_field (GQuark field, const GValue *value, gpointer user_data)
{
  GString *out = user_data;
  g_string_append (out, ", ");
  append_json_string (out, g_quark_to_string (field));
  g_string_append (out, ": ");
  if (G_VALUE_HOLDS_STRING (value))
    append_json_string (out, g_value_get_string (value));
  else if (G_VALUE_HOLDS_BOOLEAN (value))
    g_string_append (out, g_value_get_boolean (value) ? "true" : "false");
  else if (G_VALUE_HOLDS_INT (value))
    g_string_append_printf (out, "%d", g_value_get_int (value));
  else if (G_VALUE_HOLDS_UINT (value))
    g_string_append_printf (out, "%u", g_value_get_uint (value));
  else if (G_VALUE_HOLDS_UINT64 (value))
    g_string_append_printf (out, "%" G_GUINT64_FORMAT, g_value_get_uint64 (value));
  else
    g_string_append (out, "null");
  return TRUE;
}

static void
write_event (PhoneRecord *r, gint64 t_ms, GstStructure *event)
{
  GString *line = g_string_new (NULL);
  g_string_append_printf (line, "{\"t_ms\": %" G_GINT64_FORMAT ", \"event\": ", t_ms);
  append_json_string (line, gst_structure_get_name (event));
  gst_structure_foreach (event, append_field, line);
  g_string_append (line, "}\n");
  gst_structure_free (event);
  g_mutex_lock (&r->lock);
  fputs (line->str, r->jsonl);
  fflush (r->jsonl);
  g_mutex_unlock (&r->lock);
  g_string_free (line, TRUE);
}

PhoneRecord *
phone_record_new (const gchar *dir, guint call_id, guint rate, GstClockTime start, GstStructure *start_event,
    GError **error)
{
  GDateTime *now = g_date_time_new_now_local ();
  gchar *stamp = g_date_time_format (now, "%Y%m%d-%H%M%S");
  g_date_time_unref (now);
  gchar *base = g_strdup_printf ("%s/%s-call%u", dir, stamp, call_id);
  g_free (stamp);
  PhoneRecord *r = g_new0 (PhoneRecord, 1);
  r->refs = 1;
  g_mutex_init (&r->lock);
  r->wav_path = g_strconcat (base, ".wav", NULL);
  gchar *jsonl_path = g_strconcat (base, ".jsonl", NULL);
  g_free (base);
  r->rate = rate;
  r->start = start;
  r->start_us = g_get_monotonic_time ();
  r->pending[0] = g_array_new (FALSE, TRUE, sizeof (gint16));
  r->pending[1] = g_array_new (FALSE, TRUE, sizeof (gint16));
  r->next[0] = r->next[1] = r->end = -1;
  r->wav = fopen (r->wav_path, "wb");
  r->jsonl = r->wav ? fopen (jsonl_path, "w") : NULL;
  guint8 header[WAV_HEADER];
  wav_header (header, rate, 0);
  if (!r->jsonl || fwrite (header, 1, WAV_HEADER, r->wav) != WAV_HEADER) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "cannot write %s: %s",
        r->wav ? jsonl_path : r->wav_path, g_strerror (errno));
    g_free (jsonl_path);
    gst_structure_free (start_event);
    phone_record_unref (r);
    return NULL;
  }
  g_free (jsonl_path);
  gchar *wav = g_path_get_basename (r->wav_path);
  gst_structure_set (start_event, "wav", G_TYPE_STRING, wav, NULL);
  g_free (wav);
  write_event (r, 0, start_event);
  return r;
}

PhoneRecord *
phone_record_ref (PhoneRecord *r)
{
  g_atomic_int_inc (&r->refs);
  return r;
}

const gchar *
phone_record_wav_path (PhoneRecord *r)
{
  return r->wav_path;
}

/* Writes `frames` frames of the pending samples, silence where a channel
 * has none. */
static void
write_frames (PhoneRecord *r, guint64 frames)
{
  if (frames == 0)
    return;
  gint16 *out = g_new (gint16, frames * 2);
  for (guint ch = 0; ch < 2; ch++) {
    GArray *p = r->pending[ch];
    for (guint64 i = 0; i < frames; i++)
      out[i * 2 + ch] = i < p->len ? g_array_index (p, gint16, i) : 0;
    g_array_remove_range (p, 0, (guint) MIN (frames, p->len));
  }
  if (r->wav)
    fwrite (out, 4, frames, r->wav);  /* S16 in the machine's order: the pads' S16LE on x86 and ARM */
  g_free (out);
  r->written += frames;
}

void
phone_record_audio (PhoneRecord *r, guint channel, GstClockTime running_time, const gint16 *pcm, gsize n)
{
  if (!GST_CLOCK_TIME_IS_VALID (running_time) || n == 0 || channel > 1)
    return;
  /* Where these samples go, in frames from the call's start (before it:
   * dropped). */
  gint64 at = running_time >= r->start ?
      (gint64) gst_util_uint64_scale_round (running_time - r->start, r->rate, GST_SECOND) :
      -(gint64) gst_util_uint64_scale_round (r->start - running_time, r->rate, GST_SECOND);
  g_mutex_lock (&r->lock);
  if (r->end >= 0 && at + (gint64) n > r->end)  /* the call was over */
    n = at < r->end ? (gsize) (r->end - at) : 0;
  if (r->next[channel] >= 0 && ABS (at - r->next[channel]) <= (gint64) (r->rate * ALIGN_MS / 1000))
    at = r->next[channel];
  r->next[channel] = at + (gint64) n;
  gint64 skip = MAX ((gint64) r->written - at, 0);  /* already written (or before the start) */
  if ((gsize) skip < n) {
    GArray *p = r->pending[channel];
    guint from = (guint) (at + skip - (gint64) r->written), end = from + (guint) (n - (gsize) skip);
    if (p->len < end)
      g_array_set_size (p, end);  /* zeroed: silence in any hole */
    memcpy (&g_array_index (p, gint16, from), pcm + skip, (end - from) * sizeof (gint16));
    guint both = MIN (r->pending[0]->len, r->pending[1]->len);
    guint ahead = MAX (r->pending[0]->len, r->pending[1]->len);
    guint skew = r->rate * MAX_SKEW_MS / 1000;
    write_frames (r, MAX (both, ahead > skew ? ahead - skew : 0));
  }
  g_mutex_unlock (&r->lock);
}

void
phone_record_end (PhoneRecord *r, GstClockTime running_time)
{
  if (!GST_CLOCK_TIME_IS_VALID (running_time))
    return;
  gint64 end = running_time > r->start ?
      (gint64) gst_util_uint64_scale_round (running_time - r->start, r->rate, GST_SECOND) : 0;
  g_mutex_lock (&r->lock);
  r->end = MAX (end, (gint64) r->written);
  for (guint ch = 0; ch < 2; ch++)
    if (r->pending[ch]->len > r->end - (gint64) r->written)
      g_array_set_size (r->pending[ch], (guint) (r->end - (gint64) r->written));
  g_mutex_unlock (&r->lock);
}

void
phone_record_cut (PhoneRecord *r, guint channel, GstClockTime running_time)
{
  if (!GST_CLOCK_TIME_IS_VALID (running_time) || running_time < r->start || channel > 1)
    return;
  guint64 at = gst_util_uint64_scale_round (running_time - r->start, r->rate, GST_SECOND);
  g_mutex_lock (&r->lock);
  GArray *p = r->pending[channel];
  if (at >= r->written && at - r->written < p->len)
    g_array_set_size (p, (guint) (at - r->written));
  r->next[channel] = -1;  /* what comes next goes where its time says */
  g_mutex_unlock (&r->lock);
}

void
phone_record_event (PhoneRecord *r, GstStructure *event)
{
  if (r)
    write_event (r, (g_get_monotonic_time () - r->start_us) / 1000, event);
  else
    gst_structure_free (event);
}

void
phone_record_unref (PhoneRecord *r)
{
  if (!r || !g_atomic_int_dec_and_test (&r->refs))
    return;
  if (r->wav) {
    guint64 last = MAX (r->pending[0]->len, r->pending[1]->len);
    if (r->end >= 0)  /* both sides to the end of the call */
      last = (guint64) MAX (r->end - (gint64) r->written, 0);
    write_frames (r, last);
    guint8 header[WAV_HEADER];
    wav_header (header, r->rate, r->written);
    fseek (r->wav, 0, SEEK_SET);
    fwrite (header, 1, WAV_HEADER, r->wav);
    fclose (r->wav);
  }
  if (r->jsonl)
    fclose (r->jsonl);
  g_array_unref (r->pending[0]);
  g_array_unref (r->pending[1]);
  g_mutex_clear (&r->lock);
  g_free (r->wav_path);
  g_free (r);
}
