/* The plugin's one debug category, shared by every file of the element. */
#pragma once

#include <gst/gst.h>

GST_DEBUG_CATEGORY_EXTERN (yandexrealtime_debug);
#define GST_CAT_DEFAULT yandexrealtime_debug

namespace yrt {
/* Idempotent; the element calls it in class_init, tests may call it too. */
void debug_init ();
}
