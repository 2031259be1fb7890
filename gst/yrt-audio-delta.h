/* The fast path for audio deltas: response.output_audio.delta read by a
 * scanner of its usual flat shape, without json-glib.  parse_server_event()
 * tries it first (builds with YRT_PROTOCOL_NO_FAST_PATH leave it out). */
#pragma once

#include "yrt-server-events.h"

#include <glib.h>

namespace yrt {

/* Audio deltas are nearly all the bytes the service sends, and a json-glib
 * tree of one costs several times its base64 decoding (docs/performance.md).
 * This reads their usual shape directly: one flat object of ASCII strings
 * without escapes and plain scalars, `type` an audio delta, `delta` valid
 * base64.  It accepts a strict subset of what json-glib accepts and reads
 * the same members; anything else, valid or not, is left to json-glib, so
 * both ways give the same ServerEvent and the same errors
 * (tests/bench: yrt-bench verify).
 *
 * True when `ev` was filled; false leaves the frame to json-glib. */
bool parse_audio_delta (const char *data, gsize size, ServerEvent &ev);

}  // namespace yrt
