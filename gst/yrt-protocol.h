/* The Realtime protocol, all of it: one include for the code that speaks
 * it.  Each part is a file of its own:
 *   yrt-client-events.h  client events built as JSON text (session.update...)
 *   yrt-server-events.h  server events parsed into a typed ServerEvent
 *   yrt-base64.h         base64 of the audio, both ways (the hot path)
 * (and yrt-audio-delta.h, the server-event parser's fast path for audio
 * deltas, which only yrt-server-events.cpp calls). */
#pragma once

#include "yrt-base64.h"
#include "yrt-client-events.h"
#include "yrt-server-events.h"
