// The emulator's server: listening on 127.0.0.1, the HTTP handshake and its
// auth, the WebSocket upgrade, the server thread and its loop, and the
// public Server's start/stop and scripted turns.
#include "emulator-impl.h"

#include <cstring>

#include "pausable-stream.h"

namespace yrt::emu {

namespace {

constexpr guint64 kMaxIncomingPayload = 16 * 1024 * 1024;

constexpr guint kDrainTimeoutMs = 2000;

std::string ascii_lower(std::string s) {
  for (char &c : s)
    c = g_ascii_tolower(c);
  return s;
}

// "Api-Key  secret " -> {"Api-Key", "secret"}.
void split_authorization(const char *header, std::string *scheme, std::string *credential) {
  const std::string h = header ? header : "";
  const gsize space = h.find(' ');
  *scheme = h.substr(0, space);
  const gsize start = space == std::string::npos ? h.size() : h.find_first_not_of(' ', space);
  const gsize end = h.find_last_not_of(' ');
  *credential = start == std::string::npos || start > end ? "" : h.substr(start, end - start + 1);
}

JObj error_body(guint status, const std::string &message) {
  return std::move(JObj().obj("error", JObj().num("code", status).str("message", message)));
}

}  // namespace

// ----- Server::Impl ------------------------------------------------------------

Server::Impl::~Impl() = default;

TurnScript Server::Impl::pop_turn() {
  std::lock_guard<std::mutex> lock(mu);
  if (turns.empty())
    return cfg.default_turn;
  TurnScript script = std::move(turns.front());
  turns.pop_front();
  return script;
}

bool Server::Impl::post_locked(std::function<void()> fn) {
  if (!running || !ctx)
    return false;
  GSource *src = g_idle_source_new();
  g_source_set_priority(src, G_PRIORITY_DEFAULT);
  g_source_set_callback(
      src,
      [](gpointer data) -> gboolean {
        (*static_cast<std::function<void()> *>(data))();
        return G_SOURCE_REMOVE;
      },
      new std::function<void()>(std::move(fn)),
      [](gpointer data) { delete static_cast<std::function<void()> *>(data); });
  g_source_attach(src, ctx);
  g_source_unref(src);
  return true;
}

void Server::Impl::post(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu);
  post_locked(std::move(fn));
}

void Server::Impl::session_closed(Session *session) {
  sessions.remove_if([session](const std::unique_ptr<Session> &s) { return s.get() == session; });
  std::lock_guard<std::mutex> lock(mu);
  active = static_cast<guint>(sessions.size());
}

void Server::Impl::run() {
  GMainContext *context = g_main_context_new();
  g_main_context_push_thread_default(context);
  loop = g_main_loop_new(context, FALSE);
  const guint16 bound = setup_server();
  {
    std::lock_guard<std::mutex> lock(mu);
    ctx = context;
    port = bound;
    running = bound != 0;
    ready = true;
  }
  cv.notify_all();
  if (bound)
    g_main_loop_run(loop);
  teardown();
  {
    std::lock_guard<std::mutex> lock(mu);
    running = false;
    ctx = nullptr;  // posted work still queued is freed with the context
  }
  g_main_context_pop_thread_default(context);
  g_main_loop_unref(loop);
  loop = nullptr;
  g_main_context_unref(context);
}

static void on_request_cb(SoupServer *, SoupServerMessage *msg, const char *path,
                          GHashTable *query, gpointer impl) {
  static_cast<Server::Impl *>(impl)->handle_request(msg, path, query);
}

guint16 Server::Impl::setup_server() {
  soup = soup_server_new("server-header", "yandexrealtime-emulator ", "tls-certificate",
                         cfg.tls_certificate.get(), nullptr);
  for (const char *path : {"/v1/realtime", "/v1/realtime/openai"})
    soup_server_add_handler(soup, path, on_request_cb, this, nullptr);
  GError *error = nullptr;
  const auto flags = static_cast<SoupServerListenOptions>(
      SOUP_SERVER_LISTEN_IPV4_ONLY | (cfg.tls_certificate ? SOUP_SERVER_LISTEN_HTTPS : 0));
  if (!soup_server_listen_local(soup, cfg.port, flags, &error)) {
    g_warning("yrt-emulator: cannot listen on 127.0.0.1:%u: %s", cfg.port, error->message);
    g_error_free(error);
    return 0;
  }
  GSList *uris = soup_server_get_uris(soup);
  const guint16 bound = uris ? static_cast<guint16>(g_uri_get_port(static_cast<GUri *>(uris->data))) : 0;
  g_slist_free_full(uris, reinterpret_cast<GDestroyNotify>(g_uri_unref));
  return bound;
}

void Server::Impl::teardown() {
  for (auto &s : sessions)
    s->shutdown();
  sessions.clear();
  {
    std::lock_guard<std::mutex> lock(mu);
    active = 0;
  }
  if (soup) {
    soup_server_disconnect(soup);
    g_object_unref(soup);
    soup = nullptr;
  }
  drain_connections();
}

// Disposed WebSocket connections finish closing asynchronously; iterate
// until they are gone so nothing leaks past stop().
void Server::Impl::drain_connections() {
  GMainContext *context = g_main_context_get_thread_default();
  GSource *tick = g_timeout_source_new(10);
  g_source_set_callback(tick, [](gpointer) -> gboolean { return G_SOURCE_CONTINUE; }, nullptr,
                        nullptr);
  g_source_attach(tick, context);
  const gint64 deadline = g_get_monotonic_time() + kDrainTimeoutMs * 1000;
  while (live_connections > 0 && g_get_monotonic_time() < deadline)
    g_main_context_iteration(context, TRUE);
  for (int i = 0; i < 100 && g_main_context_iteration(context, FALSE); i++) {
  }
  g_source_destroy(tick);
  g_source_unref(tick);
}

void Server::Impl::handle_request(SoupServerMessage *msg, const char *path, GHashTable *query) {
  GUri *uri = soup_server_message_get_uri(msg);
  std::string path_and_query = g_uri_get_path(uri);
  if (g_uri_get_query(uri))
    path_and_query += std::string("?") + g_uri_get_query(uri);
  const char *auth =
      soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Authorization");
  std::string scheme, credential;
  split_authorization(auth, &scheme, &credential);
  const std::string lower = ascii_lower(scheme);
  Faults f;
  {
    std::lock_guard<std::mutex> lock(mu);
    path_query = path_and_query;
    request_headers.clear();
    SoupMessageHeadersIter iter;
    soup_message_headers_iter_init(&iter, soup_server_message_get_request_headers(msg));
    const char *name, *value;
    while (soup_message_headers_iter_next(&iter, &name, &value))
      request_headers.emplace_back(name, value);
    auth_scheme = lower == "api-key" ? "Api-Key" : lower == "bearer" ? "Bearer" : scheme;
    f = faults;
  }
  auto refuse = [msg](guint status, const std::string &message,
                      const std::string &retry_after = "") {
    const std::string body = error_body(status, message).text();
    soup_server_message_set_status(msg, status, nullptr);
    soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, body.data(),
                                     body.size());
    if (!retry_after.empty())
      soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Retry-After",
                                   retry_after.c_str());
  };
  const gint64 now = g_get_monotonic_time();
  const char *model = query ? static_cast<const char *>(g_hash_table_lookup(query, "model")) : nullptr;
  guint wait_s = 0;
  if (strcmp(path, "/v1/realtime") != 0 && strcmp(path, "/v1/realtime/openai") != 0)
    refuse(SOUP_STATUS_NOT_FOUND, "Not found");
  else if (f.refuse_status)
    refuse(f.refuse_status, "Refused by the emulator's fault injection", f.retry_after);
  else if (!authorized(auth, scheme, credential))
    refuse(SOUP_STATUS_UNAUTHORIZED, "Unauthenticated");
  else if (!model || !*model)
    refuse(SOUP_STATUS_BAD_REQUEST, "The query parameter 'model' is required");
  else if ((wait_s = rate_limit_wait(now)) > 0)
    refuse(429 /* Too Many Requests; libsoup names no such status */, "Too many sessions created; try again later",
           std::to_string(wait_s));
  else if (soup_websocket_server_process_handshake(msg, nullptr, nullptr, nullptr, nullptr)) {
    note_creation(now);
    prepare_upgrade(msg, model);
  }
  // else: libsoup has set 400 and an explanation.
  record_handshake(now, soup_server_message_get_status(msg));
}

// Sliding window: the creations of the last second are kept; a full window
// frees a slot when its oldest one is a second old.
guint Server::Impl::rate_limit_wait(gint64 now_us) {
  if (cfg.session_rate_limit == 0)
    return 0;
  std::lock_guard<std::mutex> lock(mu);
  while (!created_us.empty() && created_us.front() <= now_us - G_USEC_PER_SEC)
    created_us.pop_front();
  if (created_us.size() < cfg.session_rate_limit)
    return 0;
  refused_handshakes++;
  const gint64 free_in_us = created_us.front() + G_USEC_PER_SEC - now_us;
  return static_cast<guint>(MAX((free_in_us + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC, 1));
}

void Server::Impl::note_creation(gint64 now_us) {
  if (cfg.session_rate_limit == 0)
    return;
  std::lock_guard<std::mutex> lock(mu);
  created_us.push_back(now_us);
}

void Server::Impl::record_handshake(gint64 now_us, guint status) {
  std::lock_guard<std::mutex> lock(mu);
  handshakes.push_back({now_us, status});
}

bool Server::Impl::authorized(const char *header, const std::string &scheme,
                              const std::string &credential) const {
  if (!header || !*header)
    return false;
  if (cfg.api_key.empty() && cfg.iam_token.empty())
    return true;  // nothing configured: any non-empty Authorization
  const std::string s = ascii_lower(scheme);
  if (s == "api-key")
    return !cfg.api_key.empty() && credential == cfg.api_key;
  if (s == "bearer")
    return !cfg.iam_token.empty() && credential == cfg.iam_token;
  return false;
}

// The 101 response is written after the handler returns; the connection can
// only be taken over from "wrote-informational" (as libsoup's own WebSocket
// handler does). Taking it over ourselves lets us wrap the stream.
static void on_wrote_informational(SoupServerMessage *msg, gpointer impl) {
  if (soup_server_message_get_status(msg) == SOUP_STATUS_SWITCHING_PROTOCOLS)
    static_cast<Server::Impl *>(impl)->accept_websocket(msg);
}

void Server::Impl::prepare_upgrade(SoupServerMessage *msg, const char *model) {
  // The socket is needed for abrupt closes; stealing the connection detaches
  // it from the message, so keep a reference now.
  GSocket *sock = soup_server_message_get_socket(msg);
  g_object_set_data_full(G_OBJECT(msg), "yrt-socket", sock ? g_object_ref(sock) : nullptr,
                         sock ? g_object_unref : nullptr);
  g_object_set_data_full(G_OBJECT(msg), "yrt-model", g_strdup(model), g_free);
  g_signal_connect(msg, "wrote-informational", G_CALLBACK(on_wrote_informational), this);
}

static void on_connection_finalized(gpointer impl, GObject *) {
  static_cast<Server::Impl *>(impl)->live_connections--;
}

void Server::Impl::accept_websocket(SoupServerMessage *msg) {
  g_object_ref(msg);  // stealing may drop the server's last reference
  GUri *uri = g_uri_ref(soup_server_message_get_uri(msg));
  auto *sock = static_cast<GSocket *>(g_object_get_data(G_OBJECT(msg), "yrt-socket"));
  if (sock)
    g_object_ref(sock);
  const std::string model = static_cast<const char *>(g_object_get_data(G_OBJECT(msg), "yrt-model"));
  const char *origin_header =
      soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Origin");
  const std::string origin = origin_header ? origin_header : "";
  std::vector<std::pair<std::string, std::string>> headers;
  SoupMessageHeadersIter iter;
  soup_message_headers_iter_init(&iter, soup_server_message_get_request_headers(msg));
  const char *name, *value;
  while (soup_message_headers_iter_next(&iter, &name, &value))
    headers.emplace_back(name, value);
  GIOStream *base = soup_server_message_steal_connection(msg);
  g_object_unref(msg);
  if (base) {
    GIOStream *gate = yrt_pausable_stream_new(base);
    SoupWebsocketConnection *ws = soup_websocket_connection_new(
        gate, uri, SOUP_WEBSOCKET_CONNECTION_SERVER, origin.empty() ? nullptr : origin.c_str(),
        nullptr, nullptr);
    soup_websocket_connection_set_max_incoming_payload_size(ws, kMaxIncomingPayload);
    live_connections++;
    g_object_weak_ref(G_OBJECT(ws), on_connection_finalized, this);
    guint number;
    {
      std::lock_guard<std::mutex> lock(mu);
      number = ++opened;
      active = static_cast<guint>(sessions.size() + 1);
      per_session.resize(number);
      per_session.back().headers = std::move(headers);
    }
    sessions.push_back(std::make_unique<Session>(*this, number, ws, gate, sock, model));
    sessions.back()->start();
    g_object_unref(ws);
    g_object_unref(gate);
    g_object_unref(base);
  }
  if (sock)
    g_object_unref(sock);
  g_uri_unref(uri);
}

// ----- Server ------------------------------------------------------------------

Server::Server(Config cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {}

Server::~Server() {
  stop();
}

guint16 Server::start() {
  std::lock_guard<std::mutex> life(impl_->lifecycle);
  std::unique_lock<std::mutex> lock(impl_->mu);
  if (impl_->running)
    return impl_->port;
  if (impl_->thread.joinable()) {  // a previous failed or stopped run
    lock.unlock();
    impl_->thread.join();
    lock.lock();
  }
  impl_->ready = false;
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
  impl_->cv.wait(lock, [this] { return impl_->ready; });
  return impl_->running ? impl_->port : 0;
}

void Server::stop() {
  std::lock_guard<std::mutex> life(impl_->lifecycle);
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    GMainLoop *loop = impl_->loop;
    // Posted, not called: a quit before g_main_loop_run() would be lost.
    if (impl_->post_locked([loop] { g_main_loop_quit(loop); }))
      impl_->running = false;  // refuse further posts; the thread is winding down
  }
  if (impl_->thread.joinable())
    impl_->thread.join();
}

std::string Server::url() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return std::string(impl_->cfg.tls_certificate ? "wss" : "ws") + "://127.0.0.1:" +
         std::to_string(impl_->port) + "/v1/realtime";
}

void Server::push_turn(TurnScript script) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->turns.push_back(std::move(script));
}

}  // namespace yrt::emu
