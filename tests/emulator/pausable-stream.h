// A GIOStream wrapper whose reading can be paused.
//
// SoupWebsocketConnection reads whatever arrives into memory, so "the
// server stops reading" cannot be emulated above it. Wrapping the upgraded
// connection's stream lets the emulator stop pulling bytes off the socket:
// the kernel buffers fill up and the client sees real TCP backpressure.
// It also counts the bytes read and can stop at a byte limit, so a connection
// can be cut at any byte, even inside a frame.
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

// Bytes read through the stream so far.
guint64 yrt_pausable_stream_get_bytes_read(GIOStream *stream);

// Reading stops (as if paused) once `limit` bytes were read in total; the
// read that reaches it is shortened to end exactly there, and `reached` is
// called from inside that read (don't close the stream from it). 0 lifts
// the limit.
typedef void (*YrtReadLimitFunc)(gpointer user_data);
void yrt_pausable_stream_set_read_limit(GIOStream *stream, guint64 limit,
                                        YrtReadLimitFunc reached, gpointer user_data);

G_END_DECLS
