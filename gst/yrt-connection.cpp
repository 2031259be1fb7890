#include "yrt-connection.h"
#include "yrt-backoff.h"
#include "yrt-debug.h"

#include <gio/gio.h>
#include <libsoup/soup.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>

namespace yrt {

namespace {
/* Audio deltas and a session.updated with many tools exceed libsoup's
 * 128 KiB default; one event is capped at 15 MiB by the protocol. */
constexpr guint64 kMaxIncomingPayload = 64 * 1024 * 1024;
/* Pings keep NATs open; libsoup 3.2 has no pong timeout, so a slow pong can
 * never close a healthy session (PROTOCOL.md, pitfall 5). */
constexpr guint kKeepaliveSeconds = 20;
/* How long a close waits for the server to answer our close frame. */
constexpr guint kCloseTimeoutMs = 500;
/* File audio waits this long for company before the network thread wakes;
 * a backlog this big goes at once. */
constexpr guint kBatchDelayMs = 5;
constexpr gsize kBatchBytes = 256 * 1024;

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

/* Returns the source, with a reference of the caller's when `keep` (taken
 * before it is attached: once attached it may run and go at once). */
GSource *attach (GMainContext *context, guint ms, std::function<void ()> fn, bool keep = false)
{
  GSource *source = ms ? g_timeout_source_new (ms) : g_idle_source_new ();
  g_source_set_callback (source, run_call, new Call {std::move (fn)}, free_call);
  g_source_attach (source, context);
  if (!keep)
    g_source_unref (source);
  return source;
}

/* The TCP socket under libsoup's stream (through TLS if any), so we can see
 * whether the peer keeps reading. */
GSocket *find_socket (GIOStream *stream)
{
  for (int depth = 0; stream && depth < 4; depth++) {
    if (G_IS_SOCKET_CONNECTION (stream))
      return g_socket_connection_get_socket (G_SOCKET_CONNECTION (stream));
    GIOStream *base = nullptr;
    const char *property = G_IS_TLS_CONNECTION (stream) ? "base-io-stream" :
        g_object_class_find_property (G_OBJECT_GET_CLASS (stream), "base-iostream") ?
        "base-iostream" : nullptr;
    if (!property)
      return nullptr;
    g_object_get (stream, property, &base, nullptr);
    if (base)
      g_object_unref (base);  /* still owned by `stream` */
    stream = base;
  }
  return nullptr;
}

/* Why the certificate was refused, in words. */
std::string describe_certificate_errors (GTlsCertificateFlags flags)
{
  static const std::pair<GTlsCertificateFlags, const char *> words[] = {
    {G_TLS_CERTIFICATE_UNKNOWN_CA, "it is not signed by a trusted certificate authority"},
    {G_TLS_CERTIFICATE_BAD_IDENTITY, "it is not for this host"},
    {G_TLS_CERTIFICATE_NOT_ACTIVATED, "it is not valid yet"},
    {G_TLS_CERTIFICATE_EXPIRED, "it has expired"},
    {G_TLS_CERTIFICATE_REVOKED, "it was revoked"},
    {G_TLS_CERTIFICATE_INSECURE, "it uses an insecure algorithm"},
    {G_TLS_CERTIFICATE_GENERIC_ERROR, "it could not be verified"},
  };
  std::string out;
  for (const auto &w : words)
    if (flags & w.first)
      out += (out.empty () ? "" : ", ") + std::string (w.second);
  return out.empty () ? "it could not be verified" : out;
}

/* The TLS database, user agent and proxy of every handshake. */
SoupSession *new_session (const ConnectionOptions &o, GstObject *log_object)
{
  SoupSession *session = soup_session_new ();
  if (!o.user_agent.empty ())
    soup_session_set_user_agent (session, o.user_agent.c_str ());
  GTlsDatabase *database = o.tls_database.get ();
  GTlsDatabase *from_file = nullptr;
  if (!database && !o.use_system_ca && !o.ca_file.empty ()) {
    GError *error = nullptr;
    from_file = g_tls_file_database_new (o.ca_file.c_str (), &error);
    if (!from_file) {
      GST_WARNING_OBJECT (log_object, "ssl-ca-file %s: %s", o.ca_file.c_str (), error->message);
      g_error_free (error);
    }
    database = from_file;
  }
  if (database)
    soup_session_set_tls_database (session, database);
  if (from_file)
    g_object_unref (from_file);
  if (!o.proxy.empty ()) {
    GProxyResolver *resolver = g_simple_proxy_resolver_new (o.proxy.c_str (), nullptr);
    soup_session_set_proxy_resolver (session, resolver);
    g_object_unref (resolver);
  }
  return session;
}
}  // namespace

/* State owned by the worker thread alone. */
struct Connection::Worker {
  Connection *owner = nullptr;
  GMainContext *context = nullptr;
  std::string url;
  std::string authorization;
  ConnectionOptions options;
  SoupSession *session = nullptr;
  SoupMessage *message = nullptr;
  GCancellable *cancellable = nullptr;
  SoupWebsocketConnection *socket = nullptr;
  GSocket *tcp = nullptr;            /* borrowed from `socket` */
  GSource *writable_source = nullptr;
  GSource *close_timer = nullptr;
  GSource *handshake_timer = nullptr;
  guint handshake_timeout_ms = 0;
  bool timed_out = false;
  GList *extra_cas = nullptr;        /* of options.ca_file, beside the system's */
  bool connecting = false;
  bool stopping = false;
  guint64 trace_appends = 0;  /* uplink-out trace points */
  bool restarting = false;
  bool finished = false;
  guint restart_delay_ms = 0;

  void begin ();
  void finish ();
  void begin_connect ();
  void stop_handshake_timer ();
  void connect_after (guint delay_ms);
  void restart (guint delay_ms);
  void begin_shutdown ();
  void close_socket ();
  void release_socket ();
  void release ();
  void wait_writable ();
  static void connect_done (GObject *source, GAsyncResult *result, gpointer data);
  static gboolean accept_certificate (SoupMessage *message, GTlsCertificate *peer,
      GTlsCertificateFlags errors, gpointer data);
  static gboolean authenticate (SoupMessage *message, SoupAuth *auth, gboolean retrying,
      gpointer data);
  std::string failure_cause (GError *error) const;
  static void on_message (SoupWebsocketConnection *, gint type, GBytes *bytes,
      gpointer data);
  static void on_closed (SoupWebsocketConnection *socket, gpointer data);
};

Connection::Connection (ConnectionCallbacks callbacks, GstObject *log_object)
    : callbacks_ (std::move (callbacks)), log_object_ (log_object)
{
}

Connection::~Connection ()
{
  stop ();
}

void Connection::start (const std::string &url, const std::string &authorization,
    guint handshake_timeout_ms, const ConnectionOptions &options)
{
  g_return_if_fail (loop_ == nullptr);
  loop_ = NetworkLoop::acquire (options.sessions_per_thread);
  worker_ = new Worker ();
  worker_->owner = this;
  worker_->context = loop_->context ();
  worker_->url = url;
  worker_->authorization = authorization;
  worker_->options = options;
  worker_->handshake_timeout_ms = handshake_timeout_ms;
  Worker *w = worker_;
  std::lock_guard<std::mutex> guard (lock_);
  context_ = loop_->context ();
  done_ = stopped_ = false;
  attach_tracked_locked (0, [w] { w->begin (); });
}

/* On the worker's thread, whose thread-default context is the loop's: the
 * SoupSession is this connection's own (a shared one would queue one
 * element's handshakes behind another's stalled ones). */
void Connection::Worker::begin ()
{
  session = new_session (options, owner->log_object_);
  if (options.use_system_ca && !options.tls_database && !options.ca_file.empty ())
    extra_cas = g_tls_certificate_list_new_from_file (options.ca_file.c_str (), nullptr);
  begin_connect ();
}

/* The worker is done: it lets go of libsoup and of every source of ours
 * still on the (maybe shared) context, then tells stop(). */
void Connection::Worker::finish ()
{
  if (finished)
    return;
  finished = true;
  release ();
  owner->worker_done ();
}

void Connection::worker_done ()
{
  loop_->cancel (this);
  std::vector<GSource *> sources;
  {
    std::lock_guard<std::mutex> guard (lock_);
    sources.swap (sources_);
  }
  for (GSource *source : sources) {
    g_source_destroy (source);
    g_source_unref (source);
  }
  std::lock_guard<std::mutex> guard (lock_);
  done_ = true;
  changed_.notify_all ();
}

GSource *Connection::attach_tracked (guint ms, std::function<void ()> fn)
{
  std::lock_guard<std::mutex> guard (lock_);
  return attach_tracked_locked (ms, std::move (fn));
}

GSource *Connection::attach_tracked_locked (guint ms, std::function<void ()> fn)
{
  GSource *source = attach (context_, ms, std::move (fn), true);
  /* Sources that ran are dropped now and then, so the list stays short. */
  if (sources_.size () >= 2 * sources_pruned_at_ + 16) {
    auto ran = std::partition (sources_.begin (), sources_.end (),
        [] (GSource *s) { return !g_source_is_destroyed (s); });
    std::for_each (ran, sources_.end (), g_source_unref);
    sources_.erase (ran, sources_.end ());
    sources_pruned_at_ = sources_.size ();
  }
  sources_.push_back (source);  /* our reference */
  return source;
}

void Connection::Worker::begin_connect ()
{
  message = soup_message_new (SOUP_METHOD_GET, url.c_str ());
  if (!message) {
    owner->callbacks_.failed (0, "the location is not a valid ws:// or wss:// URL", true,
        std::nullopt);
    return;
  }
  SoupMessageHeaders *headers = soup_message_get_request_headers (message);
  for (const auto &header : options.headers)
    soup_message_headers_append (headers, header.first.c_str (), header.second.c_str ());
  if (!authorization.empty ())
    soup_message_headers_replace (headers, "Authorization", authorization.c_str ());
  g_signal_connect (message, "accept-certificate", G_CALLBACK (accept_certificate), this);
  g_signal_connect (message, "authenticate", G_CALLBACK (authenticate), this);
  cancellable = g_cancellable_new ();
  connecting = true;
  timed_out = false;
  soup_session_websocket_connect_async (session, message, nullptr, nullptr,
      G_PRIORITY_DEFAULT, cancellable, connect_done, this);
  /* A server that takes the TCP connection but never answers the upgrade
   * would otherwise leave us "connecting" for ever. */
  if (handshake_timeout_ms > 0)
    handshake_timer = owner->attach_tracked (handshake_timeout_ms, [this] {
      handshake_timer = nullptr;
      timed_out = true;
      g_cancellable_cancel (cancellable);
    });
}

void Connection::Worker::stop_handshake_timer ()
{
  if (handshake_timer) {
    g_source_destroy (handshake_timer);
    handshake_timer = nullptr;
  }
}

void Connection::Worker::connect_after (guint delay_ms)
{
  owner->attach_tracked (delay_ms, [this] {
    if (!stopping && !socket && !connecting)
      begin_connect ();
  });
}

void Connection::Worker::connect_done (GObject *source, GAsyncResult *result,
    gpointer data)
{
  auto *w = static_cast<Worker *> (data);
  GError *error = nullptr;
  w->connecting = false;
  w->stop_handshake_timer ();
  w->socket = soup_session_websocket_connect_finish (SOUP_SESSION (source),
      result, &error);
  if (w->stopping || w->restarting) {
    g_clear_error (&error);
    if (w->stopping) {
      w->begin_shutdown ();
    } else {
      w->restarting = false;
      w->release_socket ();
      w->connect_after (w->restart_delay_ms);
    }
    return;
  }
  if (!w->socket) {
    guint status = soup_message_get_status (w->message);
    std::string cause = w->failure_cause (error);
    bool refused_certificate = error && error->domain == G_TLS_ERROR;
    g_clear_error (&error);
    std::optional<guint> retry_after;
    if (status >= 300) {
      const char *reason = soup_message_get_reason_phrase (w->message);
      cause = "HTTP " + std::to_string (status) + (reason ? std::string (" ") + reason : "");
      /* A 429 or 503 may say when to come back (delta-seconds or a date). */
      retry_after = parse_retry_after (soup_message_headers_get_one (
              soup_message_get_response_headers (w->message), "Retry-After"),
          g_get_real_time ());
    }
    w->release_socket ();
    w->owner->callbacks_.failed (status >= 300 ? status : 0, cause, refused_certificate,
        retry_after);
    return;
  }
  soup_websocket_connection_set_max_incoming_payload_size (w->socket,
      kMaxIncomingPayload);
  soup_websocket_connection_set_keepalive_interval (w->socket, kKeepaliveSeconds);
  g_signal_connect (w->socket, "message", G_CALLBACK (on_message), w);
  g_signal_connect (w->socket, "closed", G_CALLBACK (on_closed), w);
  w->tcp = find_socket (soup_websocket_connection_get_io_stream (w->socket));
  {
    std::lock_guard<std::mutex> guard (w->owner->lock_);
    w->owner->open_ = true;
  }
  w->owner->callbacks_.opened ();
  w->owner->flush_outbox ();
}

std::string Connection::Worker::failure_cause (GError *error) const
{
  if (timed_out)
    return "no answer to the WebSocket handshake within " +
        std::to_string (handshake_timeout_ms) + " ms";
  if (error && error->domain == G_TLS_ERROR)
    return "the server's TLS certificate was refused: " +
        describe_certificate_errors (soup_message_get_tls_peer_certificate_errors (message)) +
        " (" + error->message + "); set ssl-ca-file or tls-database to trust its CA";
  return error ? error->message : "unknown error";
}

/* The system refused the certificate: accept it when it is signed by a CA
 * of ssl-ca-file, or when ssl-strict is off. */
gboolean Connection::Worker::accept_certificate (SoupMessage *message, GTlsCertificate *peer,
    GTlsCertificateFlags errors, gpointer data)
{
  auto *w = static_cast<Worker *> (data);
  if (!w->options.strict)
    return TRUE;  /* warned about loudly when the session opened */
  if (errors != G_TLS_CERTIFICATE_UNKNOWN_CA || !w->extra_cas)
    return FALSE;
  GUri *uri = soup_message_get_uri (message);
  GSocketConnectable *identity = g_network_address_new (g_uri_get_host (uri),
      (guint16) MAX (g_uri_get_port (uri), 0));
  bool trusted = false;
  for (GList *ca = w->extra_cas; ca && !trusted; ca = ca->next)
    trusted = g_tls_certificate_verify (peer, identity, G_TLS_CERTIFICATE (ca->data)) == 0;
  g_object_unref (identity);
  return trusted;
}

/* The proxy asks for credentials: proxy-id and proxy-pw, once. */
gboolean Connection::Worker::authenticate (SoupMessage *, SoupAuth *auth, gboolean retrying,
    gpointer data)
{
  auto *w = static_cast<Worker *> (data);
  if (!soup_auth_is_for_proxy (auth) || retrying || w->options.proxy_id.empty ())
    return FALSE;
  soup_auth_authenticate (auth, w->options.proxy_id.c_str (), w->options.proxy_pw.c_str ());
  return TRUE;
}

void Connection::Worker::on_message (SoupWebsocketConnection *, gint type,
    GBytes *bytes, gpointer data)
{
  auto *w = static_cast<Worker *> (data);
  gsize size = 0;
  const char *text = static_cast<const char *> (g_bytes_get_data (bytes, &size));
  {
    std::lock_guard<std::mutex> guard (w->owner->lock_);
    w->owner->received_bytes_ += size;
  }
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
    w->owner->open_ = false;
  }
  if (w->stopping) {
    w->finish ();
    return;
  }
  gushort code = soup_websocket_connection_get_close_code (socket);
  const char *data_text = soup_websocket_connection_get_close_data (socket);
  std::string reason = data_text ? data_text : "";
  w->release_socket ();
  if (w->restarting) {
    w->restarting = false;
    w->connect_after (w->restart_delay_ms);
    return;
  }
  w->owner->callbacks_.closed (code, reason);
}

/* Closes gracefully, and for good after kCloseTimeoutMs. */
void Connection::Worker::close_socket ()
{
  soup_websocket_connection_close (socket, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
  close_timer = owner->attach_tracked (kCloseTimeoutMs, [this] {
    close_timer = nullptr;
    /* No answer to our close frame: drop the transport; "closed" follows. */
    if (socket)
      g_io_stream_close (soup_websocket_connection_get_io_stream (socket), nullptr, nullptr);
    if (stopping)
      finish ();
  });
}

void Connection::Worker::restart (guint delay_ms)
{
  if (stopping)
    return;
  restart_delay_ms = delay_ms;
  if (connecting) {
    restarting = true;
    g_cancellable_cancel (cancellable);
    return;
  }
  if (socket && soup_websocket_connection_get_state (socket) == SOUP_WEBSOCKET_STATE_OPEN) {
    restarting = true;
    close_socket ();
    return;
  }
  release_socket ();
  connect_after (delay_ms);
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
    close_socket ();
    return;
  }
  finish ();
}

void Connection::Worker::release_socket ()
{
  stop_handshake_timer ();
  if (close_timer) {
    g_source_destroy (close_timer);
    close_timer = nullptr;
  }
  if (writable_source) {
    g_source_destroy (writable_source);
    g_source_unref (writable_source);
    writable_source = nullptr;
    owner->unpark ();
  }
  if (socket) {
    g_signal_handlers_disconnect_by_data (socket, this);
    g_clear_object (&socket);
  }
  tcp = nullptr;
  if (message)
    g_signal_handlers_disconnect_by_data (message, this);
  g_clear_object (&message);
  g_clear_object (&cancellable);
}

void Connection::Worker::release ()
{
  release_socket ();
  g_clear_object (&session);
  g_list_free_full (extra_cas, g_object_unref);
  extra_cas = nullptr;
}

/* The peer stopped reading: hand libsoup nothing more until the kernel can
 * take data again, so our outbox (bounded) holds the backlog, not libsoup. */
void Connection::Worker::wait_writable ()
{
  if (writable_source || !tcp)
    return;
  writable_source = g_socket_create_source (tcp, G_IO_OUT, nullptr);
  g_source_set_callback (writable_source, G_SOURCE_FUNC (+[] (
          GSocket *, GIOCondition, gpointer data) -> gboolean {
        auto *w = static_cast<Worker *> (data);
        g_source_unref (w->writable_source);
        w->writable_source = nullptr;
        w->owner->unpark ();
        w->owner->flush_outbox ();
        return G_SOURCE_REMOVE;
      }), this, nullptr);
  g_source_attach (writable_source, context);
}

void Connection::stop ()
{
  if (!loop_)
    return;
  {
    std::unique_lock<std::mutex> lock (lock_);
    stopped_ = true;
    outbox_.clear ();
    outbox_bytes_ = outbox_live_samples_ = 0;
    /* A send() between its check and its flush request finishes first. */
    changed_.wait (lock, [this] { return scheduling_ == 0; });
    Worker *w = worker_;
    attach (context_, 0, [w] { w->begin_shutdown (); });
  }
  if (loop_->on_thread ()) {
    /* From another element's callback on the thread we share. */
    while (!done_)
      g_main_context_iteration (loop_->context (), TRUE);
  } else {
    std::unique_lock<std::mutex> lock (lock_);
    changed_.wait (lock, [this] { return done_; });
  }
  delete worker_;
  worker_ = nullptr;
  {
    std::lock_guard<std::mutex> guard (lock_);
    context_ = nullptr;
  }
  /* A loop of its own: its thread is joined here. */
  NetworkLoop::release (loop_);
}

void Connection::restart (guint delay_ms)
{
  std::lock_guard<std::mutex> guard (lock_);
  if (stopped_ || !context_)
    return;
  outbox_.clear ();
  outbox_bytes_ = outbox_live_samples_ = 0;
  open_ = false;
  Worker *w = worker_;
  attach_tracked_locked (0, [w, delay_ms] { w->restart (delay_ms); });
}

bool Connection::send (std::string text, Frame kind, guint64 samples)
{
  bool soon = kind == Frame::FileAudio;
  {
    std::lock_guard<std::mutex> guard (lock_);
    if (stopped_ || !context_ || !open_)
      return false;
    outbox_bytes_ += text.size ();
    bool live = kind == Frame::LiveAudio;
    if (live)
      outbox_live_samples_ += samples;
    outbox_.push_back (Queued {std::move (text), live, samples});
    if (outbox_live_samples_ > live_audio_limit_)
      drop_oldest_locked ();
    soon = soon && outbox_bytes_ < kBatchBytes;
    if (!flush_due_locked (soon))
      return true;
    scheduling_++;
  }
  schedule_flush (soon);
  std::lock_guard<std::mutex> guard (lock_);
  if (--scheduling_ == 0 && stopped_)
    changed_.notify_all ();
  return true;
}

/* Live audio that cannot go out in time is worth less than what follows. */
void Connection::drop_oldest_locked ()
{
  for (auto it = outbox_.begin (); it != outbox_.end () &&
      outbox_live_samples_ > live_audio_limit_;) {
    if (!it->droppable) {
      ++it;
      continue;
    }
    outbox_bytes_ -= it->text.size ();
    outbox_live_samples_ -= it->samples;
    dropped_samples_ += it->samples;
    it = outbox_.erase (it);
  }
}

void Connection::set_live_audio_limit (guint64 samples)
{
  std::lock_guard<std::mutex> guard (lock_);
  live_audio_limit_ = samples;
}

/* Whether a flush must be scheduled: not when one that soon (or sooner) is
 * on its way, or the socket is full and its writability will flush. */
bool Connection::flush_due_locked (bool soon)
{
  if (flush_ == Flush::Now || flush_ == Flush::Parked || (flush_ == Flush::Soon && soon))
    return false;
  flush_ = soon ? Flush::Soon : Flush::Now;
  return true;
}

/* Outside lock_: waking the worker takes the context's lock, and the worker
 * would otherwise wait for us on lock_.  A flush now is a request to the
 * loop, which wakes once for the requests of every connection it serves
 * made before it gets to them. */
void Connection::schedule_flush (bool soon)
{
  if (soon)
    attach_tracked (kBatchDelayMs, [this] { on_request (); });
  else
    loop_->request (this);
}

void Connection::on_request ()
{
  {
    std::lock_guard<std::mutex> guard (lock_);
    if (flush_ == Flush::Parked)
      return;
    flush_ = Flush::None;
  }
  flush_outbox ();
}

void Connection::unpark ()
{
  std::lock_guard<std::mutex> guard (lock_);
  if (flush_ == Flush::Parked)
    flush_ = Flush::None;
}

namespace {
void cork (GSocket *tcp, bool on)
{
  if (tcp)
    g_socket_set_option (tcp, IPPROTO_TCP, TCP_CORK, on ? 1 : 0, nullptr);
}
}  // namespace

/* Worker thread: hands queued frames to the socket, in order, while the
 * peer keeps reading. */
void Connection::flush_outbox ()
{
  Worker *w = worker_;
  SoupWebsocketConnection *socket = w->socket;
  if (!socket || w->stopping || w->restarting ||
      soup_websocket_connection_get_state (socket) != SOUP_WEBSOCKET_STATE_OPEN)
    return;
  if (w->tcp && g_socket_is_closed (w->tcp))
    return;  /* "closed" is on its way */
  /* Checked once per batch: libsoup queues at most one batch beyond what
   * the kernel took.  Parked, sends schedule nothing: writability flushes. */
  if (w->tcp && !g_socket_condition_check (w->tcp, G_IO_OUT)) {
    {
      std::lock_guard<std::mutex> guard (lock_);
      flush_ = Flush::Parked;
    }
    w->wait_writable ();
    return;
  }
  /* One lock for the whole batch, so the streaming thread, which keeps
   * adding frames, does not contend with us once per frame. */
  std::deque<Queued> batch;
  {
    std::lock_guard<std::mutex> guard (lock_);
    batch.swap (outbox_);
    sent_bytes_ += outbox_bytes_;
    outbox_bytes_ = outbox_live_samples_ = 0;
  }
  /* A write can fail inside send_message and close the socket at once (the
   * peer is gone): the rest of the batch is then dropped, not written into a
   * closed socket.  Nothing is lost by that: the dialog's ledger sends the
   * input again to the next session.  The reference keeps the socket alive
   * through a "closed" handler that releases it. */
  g_object_ref (socket);
  /* libsoup writes each frame with a syscall of its own; corked, the kernel
   * sends the batch in full segments when it is uncorked at the end, rather
   * than one packet per frame while the peer keeps up.  A lone frame (most
   * flushes of a live session) needs neither call. */
  bool corked = batch.size () > 1;
  if (corked)
    cork (w->tcp, true);
  for (const Queued &frame : batch) {
    if (soup_websocket_connection_get_state (socket) != SOUP_WEBSOCKET_STATE_OPEN)
      break;
    GBytes *bytes = g_bytes_new_static (frame.text.data (), frame.text.size ());
    /* send_message copies into the socket's output queue. */
    soup_websocket_connection_send_message (socket, SOUP_WEBSOCKET_DATA_TEXT, bytes);
    g_bytes_unref (bytes);
    if (YRT_TRACING () && g_str_has_prefix (frame.text.c_str (),
            "{\"type\":\"input_audio_buffer.append\""))
      YRT_TRACE ("uplink-out", w->trace_appends++, g_get_monotonic_time ());
  }
  if (corked)
    cork (w->tcp, false);
  g_object_unref (socket);
}

void Connection::call_later (guint ms, std::function<void ()> fn)
{
  std::lock_guard<std::mutex> guard (lock_);
  if (!context_ || stopped_)
    return;
  attach_tracked_locked (ms, std::move (fn));
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

guint64 Connection::received_bytes () const
{
  std::lock_guard<std::mutex> guard (lock_);
  return received_bytes_;
}

guint64 Connection::dropped_samples () const
{
  std::lock_guard<std::mutex> guard (lock_);
  return dropped_samples_;
}

}  // namespace yrt
