/* yandexrealtime: a spoken conversation with the Yandex Cloud Realtime API as
 * an ordinary audio filter.  See docs/yandexrealtime.md. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_YANDEX_REALTIME (gst_yandex_realtime_get_type ())
G_DECLARE_FINAL_TYPE (GstYandexRealtime, gst_yandex_realtime, GST, YANDEX_REALTIME,
    GstElement)

#define GST_TYPE_YANDEX_REALTIME_TURN_DETECTION (gst_yandex_realtime_turn_detection_get_type ())
GType gst_yandex_realtime_turn_detection_get_type (void);

#define GST_TYPE_YANDEX_REALTIME_MODALITIES (gst_yandex_realtime_modalities_get_type ())
GType gst_yandex_realtime_modalities_get_type (void);

GST_ELEMENT_REGISTER_DECLARE (yandexrealtime);

G_END_DECLS
