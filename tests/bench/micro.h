/* yrt-bench's in-process modes (micro.cpp) and the json-glib-only parser
 * they are checked against (slow-protocol.cpp). */
#pragma once

#include <glib.h>

#include <string>
#include <vector>

int cmd_micro (double seconds, guint64 iterations);
int cmd_verify ();
int cmd_resampler (double seconds);

/* parse_server_event() of gst/yrt-server-events.cpp built with
 * YRT_PROTOCOL_NO_FAST_PATH, flattened so that no type of that second copy
 * leaks out of slow-protocol.cpp. */
struct SlowResult {
  bool ok = false;
  std::string why;
  int type = 0;
  std::string type_name, event_id, item_id, previous_item_id, response_id;
  std::string text, status, session_id, error_code;
  std::vector<guint8> audio;
  gint64 audio_ms = -1;
  size_t calls = 0;
};
SlowResult slow_parse (const std::string &text);
