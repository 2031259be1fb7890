#include "pausable-stream.h"

// ---------------------------------------------------------------------------
// YrtGateInput: a pollable input stream that forwards to a base stream unless
// paused or at its byte limit ("blocked"). Its poll sources are parents of
// the base stream's poll source; blocking detaches that child so the source
// simply never fires.
// ---------------------------------------------------------------------------

struct YrtGateInput {
  GInputStream parent;
  GInputStream *base;
  gboolean paused;
  GPtrArray *sources;  // live GateSources (borrowed; they remove themselves)
  guint64 bytes_read;
  guint64 limit;  // 0 = none
  YrtReadLimitFunc limit_reached;
  gpointer limit_data;
};

static gboolean yrt_gate_input_blocked(const YrtGateInput *self) {
  return self->paused || (self->limit && self->bytes_read >= self->limit);
}

struct YrtGateInputClass {
  GInputStreamClass parent_class;
};

static void yrt_gate_input_pollable_init(GPollableInputStreamInterface *iface);

G_DEFINE_TYPE_WITH_CODE(YrtGateInput, yrt_gate_input, G_TYPE_INPUT_STREAM,
                        G_IMPLEMENT_INTERFACE(G_TYPE_POLLABLE_INPUT_STREAM,
                                              yrt_gate_input_pollable_init))

#define YRT_GATE_INPUT(o) (G_TYPE_CHECK_INSTANCE_CAST((o), yrt_gate_input_get_type(), YrtGateInput))

struct GateSource {
  GSource source;
  YrtGateInput *stream;  // strong
  GSource *child;        // borrowed: owned by `source` while attached as child
};

static gboolean gate_source_dispatch(GSource *source, GSourceFunc callback, gpointer user_data) {
  auto *gate = reinterpret_cast<GateSource *>(source);
  if (!callback)
    return G_SOURCE_REMOVE;
  // Pollable sources call back with the stream, like g_pollable_source_new().
  auto func = (GPollableSourceFunc)(void (*)(void))callback;
  return func(G_OBJECT(gate->stream), user_data);
}

static void gate_source_finalize(GSource *source) {
  auto *gate = reinterpret_cast<GateSource *>(source);
  g_ptr_array_remove_fast(gate->stream->sources, gate);
  g_object_unref(gate->stream);
}

static GSourceFuncs gate_source_funcs = {
    nullptr, nullptr, gate_source_dispatch, gate_source_finalize, nullptr, nullptr,
};

static void gate_attach_child(GateSource *gate) {
  if (gate->child || g_source_is_destroyed(&gate->source))
    return;
  GSource *child =
      g_pollable_input_stream_create_source(G_POLLABLE_INPUT_STREAM(gate->stream->base), nullptr);
  g_source_set_dummy_callback(child);
  g_source_add_child_source(&gate->source, child);
  g_source_unref(child);
  gate->child = child;
}

static void gate_detach_child(GateSource *gate) {
  if (!gate->child)
    return;
  if (!g_source_is_destroyed(&gate->source))
    g_source_remove_child_source(&gate->source, gate->child);
  gate->child = nullptr;
}

static GSource *yrt_gate_input_create_source(GPollableInputStream *pollable,
                                             GCancellable *cancellable) {
  YrtGateInput *self = YRT_GATE_INPUT(pollable);
  GSource *source = g_source_new(&gate_source_funcs, sizeof(GateSource));
  g_source_set_static_name(source, "YrtGateInput");
  auto *gate = reinterpret_cast<GateSource *>(source);
  gate->stream = YRT_GATE_INPUT(g_object_ref(self));
  gate->child = nullptr;
  if (cancellable) {
    GSource *cancel = g_cancellable_source_new(cancellable);
    g_source_set_dummy_callback(cancel);
    g_source_add_child_source(source, cancel);
    g_source_unref(cancel);
  }
  g_ptr_array_add(self->sources, gate);
  if (!yrt_gate_input_blocked(self))
    gate_attach_child(gate);
  return source;
}

static gboolean yrt_gate_input_can_poll(GPollableInputStream *) {
  return TRUE;
}

static gboolean yrt_gate_input_is_readable(GPollableInputStream *pollable) {
  YrtGateInput *self = YRT_GATE_INPUT(pollable);
  return !yrt_gate_input_blocked(self) &&
         g_pollable_input_stream_is_readable(G_POLLABLE_INPUT_STREAM(self->base));
}

static void yrt_gate_input_update_sources(YrtGateInput *self);

static gssize yrt_gate_input_read_nonblocking(GPollableInputStream *pollable, void *buffer,
                                              gsize count, GError **error) {
  YrtGateInput *self = YRT_GATE_INPUT(pollable);
  if (yrt_gate_input_blocked(self)) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "Reading is paused");
    return -1;
  }
  if (self->limit)
    count = MIN(count, self->limit - self->bytes_read);
  const gssize n = g_pollable_input_stream_read_nonblocking(G_POLLABLE_INPUT_STREAM(self->base),
                                                            buffer, count, nullptr, error);
  if (n <= 0)
    return n;
  self->bytes_read += static_cast<guint64>(n);
  if (yrt_gate_input_blocked(self)) {
    yrt_gate_input_update_sources(self);
    if (self->limit_reached)
      self->limit_reached(self->limit_data);
  }
  return n;
}

static gssize yrt_gate_input_read(GInputStream *stream, void *buffer, gsize count,
                                  GCancellable *cancellable, GError **error) {
  return g_input_stream_read(YRT_GATE_INPUT(stream)->base, buffer, count, cancellable, error);
}

// The base input belongs to the base GIOStream, which closes it.
static gboolean yrt_gate_input_close(GInputStream *, GCancellable *, GError **) {
  return TRUE;
}

static void yrt_gate_input_finalize(GObject *object) {
  YrtGateInput *self = YRT_GATE_INPUT(object);
  g_ptr_array_unref(self->sources);
  g_object_unref(self->base);
  G_OBJECT_CLASS(yrt_gate_input_parent_class)->finalize(object);
}

static void yrt_gate_input_init(YrtGateInput *self) {
  self->sources = g_ptr_array_new();
}

static void yrt_gate_input_class_init(YrtGateInputClass *klass) {
  G_OBJECT_CLASS(klass)->finalize = yrt_gate_input_finalize;
  G_INPUT_STREAM_CLASS(klass)->read_fn = yrt_gate_input_read;
  G_INPUT_STREAM_CLASS(klass)->close_fn = yrt_gate_input_close;
}

static void yrt_gate_input_pollable_init(GPollableInputStreamInterface *iface) {
  iface->can_poll = yrt_gate_input_can_poll;
  iface->is_readable = yrt_gate_input_is_readable;
  iface->create_source = yrt_gate_input_create_source;
  iface->read_nonblocking = yrt_gate_input_read_nonblocking;
}

static void yrt_gate_input_update_sources(YrtGateInput *self) {
  const gboolean blocked = yrt_gate_input_blocked(self);
  for (guint i = 0; i < self->sources->len; i++) {
    auto *gate = static_cast<GateSource *>(g_ptr_array_index(self->sources, i));
    if (blocked)
      gate_detach_child(gate);
    else
      gate_attach_child(gate);
  }
}

// ---------------------------------------------------------------------------
// YrtPausableStream: GIOStream = gate input + the base's own output.
// ---------------------------------------------------------------------------

struct YrtPausableStream {
  GIOStream parent;
  GIOStream *base;
  YrtGateInput *input;
};

struct YrtPausableStreamClass {
  GIOStreamClass parent_class;
};

G_DEFINE_TYPE(YrtPausableStream, yrt_pausable_stream, G_TYPE_IO_STREAM)

#define YRT_PAUSABLE_STREAM(o) \
  (G_TYPE_CHECK_INSTANCE_CAST((o), yrt_pausable_stream_get_type(), YrtPausableStream))
#define YRT_IS_PAUSABLE_STREAM(o) (G_TYPE_CHECK_INSTANCE_TYPE((o), yrt_pausable_stream_get_type()))

static GInputStream *yrt_pausable_stream_get_input(GIOStream *stream) {
  return G_INPUT_STREAM(YRT_PAUSABLE_STREAM(stream)->input);
}

static GOutputStream *yrt_pausable_stream_get_output(GIOStream *stream) {
  return g_io_stream_get_output_stream(YRT_PAUSABLE_STREAM(stream)->base);
}

static gboolean yrt_pausable_stream_close(GIOStream *stream, GCancellable *cancellable,
                                          GError **error) {
  return g_io_stream_close(YRT_PAUSABLE_STREAM(stream)->base, cancellable, error);
}

static void on_base_closed(GObject *base, GAsyncResult *result, gpointer user_data) {
  GTask *task = G_TASK(user_data);
  GError *error = nullptr;
  if (g_io_stream_close_finish(G_IO_STREAM(base), result, &error))
    g_task_return_boolean(task, TRUE);
  else
    g_task_return_error(task, error);
  g_object_unref(task);
}

// Forwarded so the close completes on the caller's main context instead of
// the default implementation's worker thread.
static void yrt_pausable_stream_close_async(GIOStream *stream, int io_priority,
                                            GCancellable *cancellable, GAsyncReadyCallback callback,
                                            gpointer user_data) {
  GTask *task = g_task_new(stream, cancellable, callback, user_data);
  g_io_stream_close_async(YRT_PAUSABLE_STREAM(stream)->base, io_priority, cancellable,
                          on_base_closed, task);
}

static gboolean yrt_pausable_stream_close_finish(GIOStream *, GAsyncResult *result,
                                                 GError **error) {
  return g_task_propagate_boolean(G_TASK(result), error);
}

// GIOStream's dispose closes the stream, so the base must outlive it.
static void yrt_pausable_stream_finalize(GObject *object) {
  YrtPausableStream *self = YRT_PAUSABLE_STREAM(object);
  g_object_unref(self->input);
  g_object_unref(self->base);
  G_OBJECT_CLASS(yrt_pausable_stream_parent_class)->finalize(object);
}

static void yrt_pausable_stream_init(YrtPausableStream *) {}

static void yrt_pausable_stream_class_init(YrtPausableStreamClass *klass) {
  GIOStreamClass *io_class = G_IO_STREAM_CLASS(klass);
  G_OBJECT_CLASS(klass)->finalize = yrt_pausable_stream_finalize;
  io_class->get_input_stream = yrt_pausable_stream_get_input;
  io_class->get_output_stream = yrt_pausable_stream_get_output;
  io_class->close_fn = yrt_pausable_stream_close;
  io_class->close_async = yrt_pausable_stream_close_async;
  io_class->close_finish = yrt_pausable_stream_close_finish;
}

GIOStream *yrt_pausable_stream_new(GIOStream *base) {
  g_return_val_if_fail(G_IS_IO_STREAM(base), nullptr);
  g_return_val_if_fail(G_IS_POLLABLE_INPUT_STREAM(g_io_stream_get_input_stream(base)), nullptr);
  auto *self = YRT_PAUSABLE_STREAM(g_object_new(yrt_pausable_stream_get_type(), nullptr));
  self->base = G_IO_STREAM(g_object_ref(base));
  self->input = YRT_GATE_INPUT(g_object_new(yrt_gate_input_get_type(), nullptr));
  self->input->base = G_INPUT_STREAM(g_object_ref(g_io_stream_get_input_stream(base)));
  return G_IO_STREAM(self);
}

void yrt_pausable_stream_set_paused(GIOStream *stream, gboolean paused) {
  g_return_if_fail(YRT_IS_PAUSABLE_STREAM(stream));
  YrtGateInput *input = YRT_PAUSABLE_STREAM(stream)->input;
  input->paused = paused;
  yrt_gate_input_update_sources(input);
}

guint64 yrt_pausable_stream_get_bytes_read(GIOStream *stream) {
  g_return_val_if_fail(YRT_IS_PAUSABLE_STREAM(stream), 0);
  return YRT_PAUSABLE_STREAM(stream)->input->bytes_read;
}

void yrt_pausable_stream_set_read_limit(GIOStream *stream, guint64 limit,
                                        YrtReadLimitFunc reached, gpointer user_data) {
  g_return_if_fail(YRT_IS_PAUSABLE_STREAM(stream));
  YrtGateInput *input = YRT_PAUSABLE_STREAM(stream)->input;
  input->limit = limit;
  input->limit_reached = reached;
  input->limit_data = user_data;
  yrt_gate_input_update_sources(input);
}
