/* The parser again with the audio-delta fast path compiled out (json-glib
 * for every frame), in namespace yrt_reference: fuzz-server-event checks
 * that both give the same result for every input.  Nothing may be included
 * before it: the macro renames the namespace of gst/yrt-server-events.{h,cpp}
 * and gst/yrt-base64.{h,cpp} as they are read. */
#define YRT_PROTOCOL_NO_FAST_PATH 1
#define yrt yrt_reference
#include "../../gst/yrt-server-events.cpp"
#include "../../gst/yrt-base64.cpp"
#undef yrt

#include "describe-event.h"
#include "reference-parser.h"

bool reference_parse (const char *data, gsize size, std::string &description,
    std::string &why)
{
  yrt_reference::ServerEvent ev;
  bool ok = yrt_reference::parse_server_event (data, size, ev, why);
  description = describe_event (ev);
  return ok;
}
