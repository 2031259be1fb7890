/* The plugin's one debug category, shared by every file of the element. */
#pragma once

#include <gst/gst.h>

GST_DEBUG_CATEGORY_EXTERN (yandexrealtime_debug);
#define GST_CAT_DEFAULT yandexrealtime_debug

/* Latency trace points for tests/bench (docs/performance.md): lines
 * "<point> seq=<n> t=<g_get_monotonic_time() µs>" at TRACE level in their
 * own category.  Off (the default), a trace point is one compare of a global;
 * seq and t are evaluated only when GST_DEBUG=yandexrealtime-trace:7. */
GST_DEBUG_CATEGORY_EXTERN (yandexrealtime_trace_debug);
#define YRT_TRACING() \
  G_UNLIKELY (GST_LEVEL_TRACE <= _gst_debug_min && \
      gst_debug_category_get_threshold (yandexrealtime_trace_debug) >= GST_LEVEL_TRACE)
#define YRT_TRACE(point, seq, t) G_STMT_START { \
  if (YRT_TRACING ()) \
    GST_CAT_LEVEL_LOG (yandexrealtime_trace_debug, GST_LEVEL_TRACE, NULL, \
        point " seq=%" G_GUINT64_FORMAT " t=%" G_GINT64_FORMAT, \
        (guint64) (seq), (gint64) (t)); \
} G_STMT_END

namespace yrt {
/* Idempotent; the element calls it in class_init, tests may call it too. */
void debug_init ();
}
