// A GIOStream wrapper whose reading can be paused.
//
// SoupWebsocketConnection reads whatever arrives into memory, so "the
// server stops reading" cannot be emulated above it. Wrapping the upgraded
// connection's stream lets the emulator stop pulling bytes off the socket:
// the kernel buffers fill up and the client sees real TCP backpressure.
// Writing is untouched. Use from the thread that owns the stream's sources.
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

// Returns a new stream (transfer full) reading from and writing to `base`.
// Closing it closes `base`.
GIOStream *yrt_pausable_stream_new(GIOStream *base);

// While paused, reads report G_IO_ERROR_WOULD_BLOCK and poll sources never
// fire; resuming wakes a pending reader.
void yrt_pausable_stream_set_paused(GIOStream *stream, gboolean paused);

G_END_DECLS
