#include "yrt-connection.h"
#include "yrt-debug.h"

#include <gst/gst.h>
#include <libsoup/soup.h>


namespace yrt {

namespace {
/* Audio deltas and a session.updated with many tools exceed libsoup's
 * 128 KiB default; one event is capped at 15 MiB by the protocol. */
constexpr guint64 kMaxIncomingPayload = 64 * 1024 * 1024;
/* Pings keep NATs open; libsoup 3.2 has no pong timeout, so a slow pong can
 * never close a healthy session (PROTOCOL.md, pitfall 5). */
constexpr guint kKeepaliveSeconds = 20;
/* How long stop() waits for the server to answer our close frame. */
constexpr guint kCloseTimeoutMs = 500;
}  // namespace

/* State owned by the worker thread alone. */
struct Connection::Worker {
  Connection *owner = nullptr;
  std::string url;
  std::string authorization;
  GMainLoop *loop = nullptr;
  SoupSession *session = nullptr;
  SoupMessage *message = nullptr;
  GCancellable *cancellable = nullptr;
  SoupWebsocketConnection *socket = nullptr;
  bool connecting = false;
  bool stopping = false;

  void begin_connect ();
  void begin_shutdown ();
  void release ();
  static void connect_done (GObject *source, GAsyncResult *result, gpointer data);
  static void on_message (SoupWebsocketConnection *, gint type, GBytes *bytes,
      gpointer data);
  static void on_closed (SoupWebsocketConnection *socket, gpointer data);
  static gboolean close_timeout (gpointer data);
};

namespace {

/* A std::function carried through a GSource. */
struct Call {
  std::function<void ()> fn;
};

gboolean run_call (gpointer data)
{
  static_cast<Call *> (data)->fn ();
  return G_SOURCE_REMOVE;
}

void free_call (gpointer data)
{
  delete static_cast<Call *> (data);
}

void attach (GMainContext *context, guint ms, GSourceFunc fn, gpointer data,
    GDestroyNotify notify)
{
  GSource *source = ms ? g_timeout_source_new (ms) : g_idle_source_new ();
  g_source_set_callback (source, fn, data, notify);
  g_source_attach (source, context);
  g_source_unref (source);
}

}  // namespace

Connection::Connection (ConnectionCallbacks callbacks)
    : callbacks_ (std::move (callbacks))
{
}

Connection::~Connection ()
{
  stop ();
}

void Connection::start (const std::string &url, const std::string &authorization)
{
  g_return_if_fail (thread_ == nullptr);
  context_ = g_main_context_new ();
  worker_ = new Worker ();
  worker_->owner = this;
  worker_->url = url;
  worker_->authorization = authorization;
  thread_ = g_thread_new ("yrt-network", thread_main, this);
}

gpointer Connection::thread_main (gpointer data)
{
  auto *self = static_cast<Connection *> (data);
  Worker *w = self->worker_;
  g_main_context_push_thread_default (self->context_);
  w->loop = g_main_loop_new (self->context_, FALSE);
  w->begin_connect ();
  g_main_loop_run (w->loop);
  w->release ();
  /* Let finalizers queued by the unrefs above run on this context. */
  while (g_main_context_iteration (self->context_, FALSE)) {
  }
  g_main_loop_unref (w->loop);
  g_main_context_pop_thread_default (self->context_);
  return nullptr;
}

void Connection::Worker::begin_connect ()
{
  session = soup_session_new ();
  message = soup_message_new (SOUP_METHOD_GET, url.c_str ());
  if (!message) {
    owner->callbacks_.failed (0, "the location is not a valid ws:// or wss:// URL");
    return;
  }
  if (!authorization.empty ())
    soup_message_headers_replace (soup_message_get_request_headers (message),
        "Authorization", authorization.c_str ());
  cancellable = g_cancellable_new ();
  connecting = true;
  soup_session_websocket_connect_async (session, message, nullptr, nullptr,
      G_PRIORITY_DEFAULT, cancellable, connect_done, this);
}

void Connection::Worker::connect_done (GObject *source, GAsyncResult *result,
    gpointer data)
{
  auto *w = static_cast<Worker *> (data);
  GError *error = nullptr;
  w->connecting = false;
  w->socket = soup_session_websocket_connect_finish (SOUP_SESSION (source),
      result, &error);
  if (w->stopping) {
    g_clear_error (&error);
    w->begin_shutdown ();
    return;
  }
  if (!w->socket) {
    guint status = soup_message_get_status (w->message);
    std::string cause = error ? error->message : "unknown error";
    g_clear_error (&error);
    if (status >= 300) {
      const char *reason = soup_message_get_reason_phrase (w->message);
      cause = "HTTP " + std::to_string (status) + (reason ? std::string (" ") + reason : "");
    }
    {
      std::lock_guard<std::mutex> guard (w->owner->lock_);
      w->owner->finished_ = true;
    }
    w->owner->callbacks_.failed (status >= 300 ? status : 0, cause);
    return;
  }
  soup_websocket_connection_set_max_incoming_payload_size (w->socket,
      kMaxIncomingPayload);
  soup_websocket_connection_set_keepalive_interval (w->socket, kKeepaliveSeconds);
  g_signal_connect (w->socket, "message", G_CALLBACK (on_message), w);
  g_signal_connect (w->socket, "closed", G_CALLBACK (on_closed), w);
  w->owner->callbacks_.opened ();
  w->owner->flush_outbox ();
}

void Connection::Worker::on_message (SoupWebsocketConnection *, gint type,
    GBytes *bytes, gpointer data)
{
  auto *w = static_cast<Worker *> (data);
  gsize size = 0;
  const char *text = static_cast<const char *> (g_bytes_get_data (bytes, &size));
  if (type == SOUP_WEBSOCKET_DATA_TEXT)
    w->owner->callbacks_.text (text, size);
  else
    w->owner->callbacks_.binary (size);
}

void Connection::Worker::on_closed (SoupWebsocketConnection *socket, gpointer data)
{
  auto *w = static_cast<Worker *> (data);
  {
    std::lock_guard<std::mutex> guard (w->owner->lock_);
    w->owner->finished_ = true;
  }
  if (w->stopping) {
    g_main_loop_quit (w->loop);
    return;
  }
  const char *reason = soup_websocket_connection_get_close_data (socket);
  w->owner->callbacks_.closed (soup_websocket_connection_get_close_code (socket),
      reason ? reason : "", false);
}

gboolean Connection::Worker::close_timeout (gpointer data)
{
  auto *w = static_cast<Worker *> (data);
  /* The peer never answered our close frame: drop the transport. */
  if (w->socket)
    g_io_stream_close (soup_websocket_connection_get_io_stream (w->socket),
        nullptr, nullptr);
  g_main_loop_quit (w->loop);
  return G_SOURCE_REMOVE;
}

void Connection::Worker::begin_shutdown ()
{
  stopping = true;
  if (connecting) {
    /* connect_done() comes back (cancelled) and finishes the shutdown. */
    g_cancellable_cancel (cancellable);
    return;
  }
  if (socket && soup_websocket_connection_get_state (socket) == SOUP_WEBSOCKET_STATE_OPEN) {
    soup_websocket_connection_close (socket, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
    attach (g_main_context_get_thread_default (), kCloseTimeoutMs, close_timeout,
        this, nullptr);
    return;
  }
  g_main_loop_quit (loop);
}

void Connection::Worker::release ()
{
  if (socket) {
    g_signal_handlers_disconnect_by_data (socket, this);
    g_object_unref (socket);
  }
  g_clear_object (&message);
  g_clear_object (&cancellable);
  g_clear_object (&session);
}

void Connection::stop ()
{
  if (!thread_)
    return;
  {
    std::lock_guard<std::mutex> guard (lock_);
    finished_ = true;
    outbox_.clear ();
    outbox_bytes_ = 0;
  }
  Worker *w = worker_;
  attach (context_, 0, [] (gpointer data) -> gboolean {
        static_cast<Worker *> (data)->begin_shutdown ();
        return G_SOURCE_REMOVE;
      }, w, nullptr);
  g_thread_join (thread_);
  thread_ = nullptr;
  delete worker_;
  worker_ = nullptr;
  GMainContext *context;
  {
    std::lock_guard<std::mutex> guard (lock_);
    context = context_;
    context_ = nullptr;
  }
  /* Frees timers queued by call_later() that never fired. */
  g_main_context_unref (context);
}

bool Connection::send (std::string text)
{
  std::lock_guard<std::mutex> guard (lock_);
  if (finished_ || !context_)
    return false;
  outbox_bytes_ += text.size ();
  outbox_.push_back (std::move (text));
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    attach (context_, 0, flush_outbox_cb, this, nullptr);
  }
  return true;
}

gboolean Connection::flush_outbox_cb (gpointer data)
{
  auto *self = static_cast<Connection *> (data);
  {
    std::lock_guard<std::mutex> guard (self->lock_);
    self->flush_scheduled_ = false;
  }
  self->flush_outbox ();
  return G_SOURCE_REMOVE;
}

/* Worker thread: hands queued frames to the socket, in order. */
void Connection::flush_outbox ()
{
  SoupWebsocketConnection *socket = worker_->socket;
  if (!socket || worker_->stopping ||
      soup_websocket_connection_get_state (socket) != SOUP_WEBSOCKET_STATE_OPEN)
    return;
  std::deque<std::string> frames;
  {
    std::lock_guard<std::mutex> guard (lock_);
    frames.swap (outbox_);
    sent_bytes_ += outbox_bytes_;
    outbox_bytes_ = 0;
  }
  for (const std::string &frame : frames) {
    GBytes *bytes = g_bytes_new_static (frame.data (), frame.size ());
    /* send_message copies into the socket's output queue. */
    soup_websocket_connection_send_message (socket, SOUP_WEBSOCKET_DATA_TEXT, bytes);
    g_bytes_unref (bytes);
  }
}

void Connection::call_later (guint ms, std::function<void ()> fn)
{
  std::lock_guard<std::mutex> guard (lock_);
  if (!context_)
    return;
  attach (context_, ms, run_call, new Call {std::move (fn)}, free_call);
}

gsize Connection::queued_bytes () const
{
  std::lock_guard<std::mutex> guard (lock_);
  return outbox_bytes_;
}

guint64 Connection::sent_bytes () const
{
  std::lock_guard<std::mutex> guard (lock_);
  return sent_bytes_;
}

}  // namespace yrt
