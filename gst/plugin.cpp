#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstyandexrealtime.h"

static gboolean plugin_init (GstPlugin *plugin)
{
  return GST_ELEMENT_REGISTER (yandexrealtime, plugin);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, yandexrealtime,
    "Spoken conversations with the Yandex Cloud Realtime API", plugin_init,
    PACKAGE_VERSION, "LGPL", PACKAGE, PACKAGE_ORIGIN)
