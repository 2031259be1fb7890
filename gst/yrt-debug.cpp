#include "yrt-debug.h"

GST_DEBUG_CATEGORY (yandexrealtime_debug);
GST_DEBUG_CATEGORY (yandexrealtime_trace_debug);

namespace yrt {
void debug_init ()
{
  static gsize once = 0;
  if (g_once_init_enter (&once)) {
    GST_DEBUG_CATEGORY_INIT (yandexrealtime_debug, "yandexrealtime", 0,
        "Yandex Cloud Realtime API element");
    GST_DEBUG_CATEGORY_INIT (yandexrealtime_trace_debug, "yandexrealtime-trace", 0,
        "yandexrealtime latency trace points (tests/bench)");
    g_once_init_leave (&once, 1);
  }
}
}  // namespace yrt
