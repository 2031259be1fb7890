/* The counters of yandexrealtime-webchat for operators, and GET /metrics:
 * the Prometheus text exposition format, version 0.0.4
 * (docs/webchat.md lists every metric).  Main thread, except
 * metrics_observe_answer_latency (any thread: under the lock). */
#include "webchat.h"


#define PREFIX "yandexrealtime_webchat_"

/* Upper bounds of the answer latency's buckets, in seconds: from what the
 * element adds on loopback (a few ms) to a service that is struggling. */
static const gdouble latency_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_BOUNDS G_N_ELEMENTS (latency_bounds)

static struct {
  guint64 opened;
  guint64 refused_full;
  guint64 refused_draining;
  guint64 closed_answers;     /* of the tabs that ended */
  guint64 closed_reconnects;
  guint64 pipeline_errors;
  guint64 service_errors;
  GMutex latency_lock;
  guint64 latency_buckets[N_BOUNDS];  /* not cumulative: each observation in its first bucket */
  guint64 latency_count;
  gdouble latency_sum;
} m;

void
metrics_conversation_opened (void)
{
  m.opened++;
}

void
metrics_conversation_refused (const gchar *reason)
{
  if (g_str_equal (reason, "draining"))
    m.refused_draining++;
  else
    m.refused_full++;
}

void
metrics_conversation_closed (guint answers, guint reconnects)
{
  m.closed_answers += answers;
  m.closed_reconnects += reconnects;
}

void
metrics_pipeline_error (void)
{
  m.pipeline_errors++;
}

void
metrics_service_error (void)
{
  m.service_errors++;
}

void
metrics_observe_answer_latency (gint64 microseconds)
{
  gdouble seconds = (gdouble) microseconds / G_USEC_PER_SEC;
  g_mutex_lock (&m.latency_lock);
  for (guint i = 0; i < N_BOUNDS; i++) {
    if (seconds <= latency_bounds[i]) {
      m.latency_buckets[i]++;
      break;
    }
  }
  m.latency_count++;
  m.latency_sum += seconds;
  g_mutex_unlock (&m.latency_lock);
}

/* One metric family with a single sample: its HELP, TYPE and value. */
static void
family (GString *out, const gchar *name, const gchar *type, const gchar *help, guint64 value)
{
  g_string_append_printf (out, "# HELP " PREFIX "%s %s\n# TYPE " PREFIX "%s %s\n" PREFIX "%s %" G_GUINT64_FORMAT "\n",
      name, help, name, type, name, value);
}

static void
latency_histogram (GString *out)
{
  const gchar *name = PREFIX "answer_latency_seconds";
  gchar sum[G_ASCII_DTOSTR_BUF_SIZE], le[G_ASCII_DTOSTR_BUF_SIZE];
  g_string_append_printf (out, "# HELP %s Time from the end of the user's speech (the element's speech-stopped "
      "message) to the first answer audio (the first buffer on the element's src pad after it).\n"
      "# TYPE %s histogram\n", name, name);
  g_mutex_lock (&m.latency_lock);
  guint64 cumulative = 0;
  for (guint i = 0; i < N_BOUNDS; i++) {
    cumulative += m.latency_buckets[i];
    g_ascii_formatd (le, sizeof le, "%g", latency_bounds[i]);
    g_string_append_printf (out, "%s_bucket{le=\"%s\"} %" G_GUINT64_FORMAT "\n", name, le, cumulative);
  }
  g_string_append_printf (out, "%s_bucket{le=\"+Inf\"} %" G_GUINT64_FORMAT "\n", name, m.latency_count);
  g_ascii_dtostr (sum, sizeof sum, m.latency_sum);
  g_string_append_printf (out, "%s_sum %s\n%s_count %" G_GUINT64_FORMAT "\n", name, sum, name, m.latency_count);
  g_mutex_unlock (&m.latency_lock);
}

gchar *
metrics_render (gboolean draining)
{
  guint64 answers = 0, reconnects = 0;
  sessions_sum_stats (&answers, &reconnects);
  GString *out = g_string_new (NULL);
  family (out, "conversations_open", "gauge", "Conversations (browser tabs with a pipeline) open now.",
      sessions_count ());
  family (out, "conversations_total", "counter", "Conversations accepted since the server started.", m.opened);
  g_string_append (out, "# HELP " PREFIX "conversations_refused_total New tabs refused: the server was full "
      "(--max-sessions) or draining (SIGTERM).\n# TYPE " PREFIX "conversations_refused_total counter\n");
  g_string_append_printf (out, PREFIX "conversations_refused_total{reason=\"full\"} %" G_GUINT64_FORMAT "\n"
      PREFIX "conversations_refused_total{reason=\"draining\"} %" G_GUINT64_FORMAT "\n",
      m.refused_full, m.refused_draining);
  family (out, "answers_total", "counter", "Answers completed (the elements' stats answers).",
      m.closed_answers + answers);
  family (out, "reconnects_total", "counter", "Reconnections to the voice service (the elements' stats reconnects).",
      m.closed_reconnects + reconnects);
  family (out, "errors_total", "counter", "Conversations ended by an error of their pipeline.", m.pipeline_errors);
  family (out, "service_errors_total", "counter", "Error events from the voice service (server-error messages); "
      "the conversation went on.", m.service_errors);
  latency_histogram (out);
  family (out, "draining", "gauge", "1 while the server drains (SIGTERM): it takes no new conversations.",
      draining ? 1 : 0);
  family (out, "max_conversations", "gauge", "Conversations held at once (--max-sessions).",
      (guint64) opts.max_sessions);
  return g_string_free (out, FALSE);
}
