/* A second copy of the server-event parser with the audio-delta fast path
 * compiled out (json-glib for everything), in namespace yrt_slow, for
 * `yrt-bench verify`.  Nothing else may be included before it: the macro
 * renames the namespace of gst/yrt-server-events.{h,cpp} and
 * gst/yrt-base64.{h,cpp} as they are read. */
#define YRT_PROTOCOL_NO_FAST_PATH 1
#define yrt yrt_slow
#include "../../gst/yrt-server-events.cpp"
#include "../../gst/yrt-base64.cpp"
#undef yrt

#include "micro.h"

SlowResult slow_parse (const std::string &text)
{
  yrt_slow::ServerEvent ev;
  SlowResult r;
  r.ok = yrt_slow::parse_server_event (text.data (), text.size (), ev, r.why);
  r.type = (int) ev.type;
  r.type_name = ev.type_name;
  r.event_id = ev.event_id;
  r.item_id = ev.item_id;
  r.previous_item_id = ev.previous_item_id;
  r.response_id = ev.response_id;
  r.text = ev.text;
  r.status = ev.status;
  r.session_id = ev.session_id;
  r.error_code = ev.error.code;
  r.audio = ev.audio;
  r.audio_ms = ev.audio_ms;
  r.calls = ev.calls.size ();
  return r;
}
