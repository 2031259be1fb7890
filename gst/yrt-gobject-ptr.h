/* GObjectPtr: a std::unique_ptr that g_object_unref()s, for the json-glib
 * builders and parsers of the client and server events. */
#pragma once

#include <glib-object.h>

#include <memory>

namespace yrt {

struct GObjectDeleter {
  void operator() (gpointer object) const { g_object_unref (object); }
};
template <typename T> using GObjectPtr = std::unique_ptr<T, GObjectDeleter>;

}  // namespace yrt
