// Self-test of the Realtime API emulator through a real libsoup 3 WebSocket
// client on the test thread's default GMainContext.
#include <libsoup/soup.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "emulator.h"
#include "json-util.h"

using namespace yrt::emu;

namespace {

// g_assert_cmpstr() on a temporary std::string's c_str() would dangle.
#define ASSERT_STR(a, op, b)                             \
  do {                                                   \
    const std::string a_ = (a);                          \
    const std::string b_ = (b);                          \
    g_assert_cmpstr(a_.c_str(), op, b_.c_str());         \
  } while (0)

constexpr guint kTimeoutMs = 5000;
constexpr guint kInRate = 24000;
constexpr guint kOutRate = 44100;
const char *const kAuth = "api-key test-key";

// Iterates the default context until `done()` or the timeout.
template <typename Pred>
bool spin_until(Pred done, guint timeout_ms) {
  const gint64 deadline = g_get_monotonic_time() + gint64(timeout_ms) * 1000;
  while (!done()) {
    if (g_get_monotonic_time() >= deadline)
      return false;
    GSource *tick = g_timeout_source_new(10);  // bounds each blocking iteration
    g_source_set_callback(tick, [](gpointer) -> gboolean { return G_SOURCE_REMOVE; }, nullptr,
                          nullptr);
    g_source_attach(tick, nullptr);
    g_main_context_iteration(nullptr, TRUE);
    g_source_destroy(tick);
    g_source_unref(tick);
  }
  return true;
}

void sleep_ms(guint ms) {
  spin_until([] { return false; }, ms);
}

// One received server event.
struct Event {
  std::shared_ptr<JsonNode> node;
  gint64 at_us = 0;  // monotonic time it arrived

  JsonNode *at(const std::string &path) const {
    JsonNode *n = node.get();
    gchar **parts = g_strsplit(path.c_str(), ".", -1);
    for (gchar **p = parts; n && *p; p++) {
      if (JSON_NODE_HOLDS_OBJECT(n))
        n = json_object_get_member(json_node_get_object(n), *p);
      else if (JSON_NODE_HOLDS_ARRAY(n) && g_ascii_isdigit(**p) &&
               std::stoul(*p) < json_array_get_length(json_node_get_array(n)))
        n = json_array_get_element(json_node_get_array(n), guint(std::stoul(*p)));
      else
        n = nullptr;
    }
    g_strfreev(parts);
    return n;
  }
  std::string str(const std::string &path) const {
    JsonNode *n = at(path);
    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
               ? json_node_get_string(n)
               : "<missing " + path + ">";
  }
  gint64 num(const std::string &path) const {
    JsonNode *n = at(path);
    g_assert_nonnull(n);
    return json_node_get_int(n);
  }
  double real(const std::string &path) const {
    JsonNode *n = at(path);
    g_assert_nonnull(n);
    return json_node_get_double(n);
  }
  bool is_null(const std::string &path) const {
    JsonNode *n = at(path);
    return n && JSON_NODE_HOLDS_NULL(n);
  }
  std::string type() const { return str("type"); }
};

std::vector<guint8> b64decode(const std::string &s) {
  gsize len = 0;
  guchar *d = g_base64_decode(s.c_str(), &len);
  std::vector<guint8> out(d, d + len);
  g_free(d);
  return out;
}

// A libsoup WebSocket client collecting everything the server sends.
class Client {
 public:
  Client() : session_(soup_session_new()) {}
  ~Client() {
    if (ws_) {
      g_signal_handlers_disconnect_by_data(ws_, this);
      if (soup_websocket_connection_get_state(ws_) == SOUP_WEBSOCKET_STATE_OPEN) {
        soup_websocket_connection_close(ws_, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
        spin_until([this] { return soup_websocket_connection_get_state(ws_) ==
                                   SOUP_WEBSOCKET_STATE_CLOSED; },
                   1000);
      }
      g_object_unref(ws_);
    }
    g_object_unref(session_);
  }

  // Returns the HTTP status of the handshake (101 on success).
  guint connect(const std::string &url, const char *auth) {
    SoupMessage *msg = soup_message_new("GET", url.c_str());
    g_assert_nonnull(msg);
    if (auth)
      soup_message_headers_append(soup_message_get_request_headers(msg), "Authorization", auth);
    bool done = false;
    struct Ctx {
      Client *self;
      bool *done;
    } ctx{this, &done};
    soup_session_websocket_connect_async(
        session_, msg, nullptr, nullptr, G_PRIORITY_DEFAULT, nullptr,
        [](GObject *src, GAsyncResult *res, gpointer data) {
          auto *c = static_cast<Ctx *>(data);
          GError *error = nullptr;
          c->self->ws_ = soup_session_websocket_connect_finish(SOUP_SESSION(src), res, &error);
          if (error) {
            c->self->connect_error_ = error->message;
            g_error_free(error);
          }
          *c->done = true;
        },
        &ctx);
    g_assert_true(spin_until([&] { return done; }, kTimeoutMs));
    const guint status = soup_message_get_status(msg);
    const char *retry_after =
        soup_message_headers_get_one(soup_message_get_response_headers(msg), "Retry-After");
    retry_after_ = retry_after ? retry_after : "";
    g_object_unref(msg);
    if (ws_) {
      soup_websocket_connection_set_max_incoming_payload_size(ws_, 16 * 1024 * 1024);
      g_signal_connect(ws_, "message", G_CALLBACK(on_message), this);
      g_signal_connect(ws_, "closed", G_CALLBACK(on_closed), this);
    }
    return status;
  }

  void send(JObj &&ev) { send_text(ev.text()); }
  void send(JObj &ev) { send_text(ev.text()); }
  void send_text(const std::string &text) {
    soup_websocket_connection_send_text(ws_, text.c_str());
  }
  void append(const std::vector<gint16> &pcm) {
    gchar *b64 = g_base64_encode(reinterpret_cast<const guchar *>(pcm.data()), pcm.size() * 2);
    send(JObj().str("type", "input_audio_buffer.append").str("audio", b64));
    g_free(b64);
  }

  // Next JSON event (non-JSON text frames are only counted).
  Event next(guint timeout_ms = kTimeoutMs) {
    if (!spin_until([this] { return !events_.empty(); }, timeout_ms))
      g_error("timed out waiting for a server event");
    Event ev = events_.front();
    events_.pop_front();
    types_.push_back(ev.type());
    return ev;
  }
  bool pending() const { return !events_.empty(); }

  // Reads events until one of `type` arrives.
  Event until(const std::string &type, guint timeout_ms = kTimeoutMs) {
    for (;;) {
      Event ev = next(timeout_ms);
      if (ev.type() == type)
        return ev;
    }
  }

  bool wait_closed(guint timeout_ms = kTimeoutMs) {
    return spin_until([this] { return closed_; }, timeout_ms);
  }

  SoupWebsocketConnection *ws() const { return ws_; }
  // Bytes this client wrote that its kernel still holds (the server's side
  // has not taken them): what sits in socket buffers.
  gsize unsent_bytes() const {
    GIOStream *base = nullptr;
    g_object_get(soup_websocket_connection_get_io_stream(ws_), "base-iostream", &base, nullptr);
    g_assert_true(G_IS_SOCKET_CONNECTION(base));
    int queued = 0;
    const int fd = g_socket_get_fd(g_socket_connection_get_socket(G_SOCKET_CONNECTION(base)));
    g_assert_cmpint(ioctl(fd, SIOCOUTQ, &queued), ==, 0);
    g_object_unref(base);
    return gsize(queued);
  }
  const std::vector<std::string> &types() const { return types_; }
  const std::string &connect_error() const { return connect_error_; }
  const std::string &retry_after() const { return retry_after_; }  // of the last handshake
  guint garbage() const { return garbage_; }
  guint binaries() const { return binaries_; }
  bool closed() const { return closed_; }

 private:
  static void on_message(SoupWebsocketConnection *, gint type, GBytes *message, gpointer data) {
    auto *self = static_cast<Client *>(data);
    if (type == SOUP_WEBSOCKET_DATA_BINARY) {
      self->binaries_++;
      return;
    }
    gsize len = 0;
    const char *text = static_cast<const char *>(g_bytes_get_data(message, &len));
    JsonNode *node = json_parse_any(std::string(text, len));
    if (!node || !JSON_NODE_HOLDS_OBJECT(node)) {
      self->garbage_++;
      if (node)
        json_node_unref(node);
      return;
    }
    self->events_.push_back(
        Event{std::shared_ptr<JsonNode>(node, json_node_unref), g_get_monotonic_time()});
  }
  static void on_closed(SoupWebsocketConnection *, gpointer data) {
    static_cast<Client *>(data)->closed_ = true;
  }

  SoupSession *session_;
  SoupWebsocketConnection *ws_ = nullptr;
  std::string connect_error_;
  std::string retry_after_;
  std::deque<Event> events_;
  std::vector<std::string> types_;
  guint garbage_ = 0;
  guint binaries_ = 0;
  bool closed_ = false;
};

std::string model_url(const Server &server, const std::string &suffix = "") {
  return server.url() + suffix + "?model=gpt://folder/speech-realtime-250923";
}

// Connects, checks session.created and returns the session id.
std::string open(Client &client, const Server &server) {
  g_assert_cmpuint(client.connect(model_url(server), kAuth), ==, 101);
  Event created = client.next();
  ASSERT_STR(created.type().c_str(), ==, "session.created");
  return created.str("session.id");
}

void manual_turns(Client &client) {
  client.send(JObj().str("type", "session.update").obj(
      "session",
      JObj().obj("audio", JObj().obj("input", JObj().null("turn_detection")))));
  Event updated = client.until("session.updated");
  g_assert_true(updated.is_null("session.audio.input.turn_detection"));
}

// Adds a user text message to the conversation.
void send_user_text(Client &client, const char *text) {
  client.send(JObj().str("type", "conversation.item.create").obj(
      "item", JObj()
                  .str("type", "message")
                  .str("role", "user")
                  .arr("content", JArr().add(JObj().str("type", "input_text").str("text", text)))));
}

std::vector<gint16> tone(guint ms, guint rate = kInRate, double amplitude = 10000) {
  std::vector<gint16> pcm(gsize(ms) * rate / 1000);
  for (gsize i = 0; i < pcm.size(); i++)
    pcm[i] = gint16(amplitude * std::sin(2 * G_PI * 440.0 * double(i) / rate));
  return pcm;
}

std::vector<gint16> silence(guint ms, guint rate = kInRate) {
  return std::vector<gint16>(gsize(ms) * rate / 1000, 0);
}

void append_chunked(Client &client, const std::vector<gint16> &pcm, guint chunk_ms = 40) {
  const gsize chunk = gsize(chunk_ms) * kInRate / 1000;
  for (gsize pos = 0; pos < pcm.size(); pos += chunk)
    client.append(std::vector<gint16>(pcm.begin() + pos,
                                      pcm.begin() + std::min(pcm.size(), pos + chunk)));
}

// Reads one whole response, returning its events; the PCM goes to *audio.
std::vector<Event> read_response(Client &client, std::vector<guint8> *audio,
                                 guint timeout_ms = kTimeoutMs) {
  std::vector<Event> events;
  for (;;) {
    Event ev = client.next(timeout_ms);
    events.push_back(ev);
    if (ev.type() == "response.output_audio.delta" && audio) {
      auto bytes = b64decode(ev.str("delta"));
      audio->insert(audio->end(), bytes.begin(), bytes.end());
    }
    if (ev.type() == "response.done")
      return events;
  }
}

// Order of distinct types, collapsing runs of deltas.
std::vector<std::string> skeleton(const std::vector<Event> &events) {
  std::vector<std::string> out;
  for (const Event &e : events)
    if (e.type().find(".delta") == std::string::npos)
      out.push_back(e.type());
  return out;
}

void assert_sequence(const std::vector<std::string> &got, const std::vector<std::string> &want) {
  std::string g, w;
  for (auto &s : got)
    g += s + "\n";
  for (auto &s : want)
    w += s + "\n";
  ASSERT_STR(g.c_str(), ==, w.c_str());
}

// ---------------------------------------------------------------------------

// Config::session_rate_limit: N creations in any second, then 429 with
// Retry-After until the oldest is a second old; refusals create nothing.
void test_session_rate_limit() {
  Config cfg;
  cfg.session_rate_limit = 2;
  Server server(cfg);
  g_assert_cmpuint(server.start(), !=, 0);
  Client a, b, c, d;
  const gint64 t0 = g_get_monotonic_time();
  g_assert_cmpuint(a.connect(model_url(server), kAuth), ==, 101);
  g_assert_cmpuint(b.connect(model_url(server), kAuth), ==, 101);
  g_assert_cmpuint(c.connect(model_url(server), kAuth), ==, 429);
  const gint64 refused_at = g_get_monotonic_time();
  g_assert_null(c.ws());
  ASSERT_STR(c.retry_after(), ==, "1");
  g_assert_cmpuint(server.refused_handshakes(), ==, 1);
  // Refusals create nothing (sessions are counted just after the 101).
  g_assert_true(spin_until([&] { return server.sessions_opened() == 2; }, kTimeoutMs));
  // A slot frees when the first creation is a second old, not before.
  if (refused_at - t0 < G_USEC_PER_SEC / 2) {
    g_assert_cmpuint(c.connect(model_url(server), kAuth), ==, 429);
    g_assert_cmpuint(server.refused_handshakes(), ==, 2);
  }
  sleep_ms(1100);
  g_assert_cmpuint(d.connect(model_url(server), kAuth), ==, 101);
  g_assert_true(spin_until([&] { return server.sessions_opened() == 3; }, kTimeoutMs));
  std::vector<Handshake> hs = server.handshakes();
  g_assert_cmpuint(hs.size(), >=, 4);
  g_assert_cmpuint(hs.front().status, ==, 101);
  g_assert_cmpuint(hs[2].status, ==, 429);
  g_assert_cmpuint(hs.back().status, ==, 101);
  g_assert_cmpint(hs.back().monotonic_us - hs.front().monotonic_us, >=, G_USEC_PER_SEC);
  // A fault's refusal carries the Retry-After it was given, verbatim.
  Faults f;
  f.refuse_status = 503;
  f.retry_after = "Wed, 21 Oct 2026 07:28:00 GMT";
  server.set_faults(f);
  Client e;
  g_assert_cmpuint(e.connect(model_url(server), kAuth), ==, 503);
  ASSERT_STR(e.retry_after(), ==, "Wed, 21 Oct 2026 07:28:00 GMT");
  server.stop();
}

void test_handshake() {
  Config cfg;
  cfg.api_key = "test-key";
  cfg.iam_token = "iam-token";
  Server server(cfg);
  g_assert_cmpuint(server.start(), !=, 0);
  {
    Client c;
    g_assert_cmpuint(c.connect(model_url(server), nullptr), ==, 401);
    g_assert_null(c.ws());
    g_assert_false(c.connect_error().empty());
  }
  {
    Client c;
    g_assert_cmpuint(c.connect(model_url(server), "Api-Key wrong"), ==, 401);
  }
  {
    Client c;
    g_assert_cmpuint(c.connect(server.url(), kAuth), ==, 400);  // no model
  }
  {
    Client c;
    g_assert_cmpuint(c.connect(model_url(server, "/nope"), kAuth), ==, 404);
  }
  {
    Faults f;
    f.refuse_status = 403;
    server.set_faults(f);
    Client c;
    g_assert_cmpuint(c.connect(model_url(server), kAuth), ==, 403);
    server.set_faults(Faults{});
  }
  g_assert_cmpuint(server.sessions_opened(), ==, 0);
  {
    Client c;
    ASSERT_STR(open(c, server).c_str(), ==, "sess_1");
    ASSERT_STR(server.last_authorization_scheme().c_str(), ==, "Api-Key");
    ASSERT_STR(server.last_request_path_and_query().c_str(), ==,
                    "/v1/realtime?model=gpt://folder/speech-realtime-250923");
  }
  {
    Client c;
    g_assert_cmpuint(c.connect(model_url(server, "/openai"), "Bearer iam-token"), ==, 101);
    Event created = c.next();
    ASSERT_STR(created.type().c_str(), ==, "session.created");
    ASSERT_STR(created.str("session.id").c_str(), ==, "sess_2");
    ASSERT_STR(created.str("session.model").c_str(), ==, "gpt://folder/speech-realtime-250923");
    g_assert_cmpint(created.num("session.audio.input.format.rate"), ==, kInRate);
    g_assert_cmpint(created.num("session.audio.output.format.rate"), ==, kOutRate);
    ASSERT_STR(created.str("session.audio.input.turn_detection.type").c_str(), ==,
                    "server_vad");
    ASSERT_STR(created.str("session.audio.output.voice").c_str(), ==, "marina");
    ASSERT_STR(created.str("event_id").c_str(), ==, "event_1");
    ASSERT_STR(server.last_authorization_scheme().c_str(), ==, "Bearer");
  }
  g_assert_cmpuint(server.sessions_opened(), ==, 2);
  server.stop();
}

void test_session_update() {
  Server server;
  server.start();
  Client c;
  open(c, server);
  c.send(JObj()
             .str("type", "session.update")
             .str("event_id", "upd1")
             .obj("session",
                  JObj()
                      .str("instructions", "Be brief.")
                      .obj("audio",
                           JObj()
                               .obj("input", JObj().obj("turn_detection",
                                                        JObj()
                                                            .str("type", "server_vad")
                                                            .num("silence_duration_ms", 200)))
                               .obj("output", JObj().str("voice", "alena")))));
  Event updated = c.next();
  ASSERT_STR(updated.type().c_str(), ==, "session.updated");
  ASSERT_STR(updated.str("session.instructions").c_str(), ==, "Be brief.");
  ASSERT_STR(updated.str("session.audio.output.voice").c_str(), ==, "alena");
  g_assert_cmpint(updated.num("session.audio.output.format.rate"), ==, kOutRate);
  g_assert_cmpint(updated.num("session.audio.input.turn_detection.silence_duration_ms"), ==, 200);
  g_assert_cmpfloat(updated.real("session.audio.input.turn_detection.threshold"), ==, 0.5);
  g_assert_true(server.session_update_json(0).find("alena") != std::string::npos);
  g_assert_true(server.session_update_json(1).empty());

  c.send(JObj().str("type", "session.update").str("event_id", "upd2").obj(
      "session",
      JObj().obj("audio",
                 JObj().obj("input", JObj().obj("format", JObj().str("type", "audio/pcm").num("rate", 5))))));
  Event err = c.next();
  ASSERT_STR(err.type().c_str(), ==, "error");
  ASSERT_STR(err.str("error.code").c_str(), ==, "invalid_value");
  ASSERT_STR(err.str("error.param").c_str(), ==, "session.audio.input.format.rate");
  ASSERT_STR(err.str("error.event_id").c_str(), ==, "upd2");
  server.stop();
}

void test_vad_turn() {
  Server server;
  server.start();
  TurnScript turn;
  turn.transcript = "hello there";
  turn.answer_text = "hi there friend";
  turn.answer_ms = 500;
  server.push_turn(turn);
  Client c;
  open(c, server);
  append_chunked(c, tone(1000));
  append_chunked(c, silence(1000));

  Event started = c.next();
  ASSERT_STR(started.type().c_str(), ==, "input_audio_buffer.speech_started");
  g_assert_cmpint(started.num("audio_start_ms"), ==, 0);
  const std::string item = started.str("item_id");
  Event stopped = c.next();
  ASSERT_STR(stopped.type().c_str(), ==, "input_audio_buffer.speech_stopped");
  g_assert_cmpint(stopped.num("audio_end_ms"), ==, 1000 + 400);
  ASSERT_STR(stopped.str("item_id").c_str(), ==, item.c_str());
  Event committed = c.next();
  ASSERT_STR(committed.type().c_str(), ==, "input_audio_buffer.committed");
  ASSERT_STR(committed.str("item_id").c_str(), ==, item.c_str());
  g_assert_true(committed.is_null("previous_item_id"));
  Event added = c.next();
  ASSERT_STR(added.type().c_str(), ==, "conversation.item.added");
  ASSERT_STR(added.str("item.role").c_str(), ==, "user");
  ASSERT_STR(added.str("item.content.0.type").c_str(), ==, "input_audio");
  Event transcript = c.next();
  ASSERT_STR(transcript.type().c_str(), ==,
                  "conversation.item.input_audio_transcription.completed");
  ASSERT_STR(transcript.str("transcript").c_str(), ==, "hello there");

  std::vector<guint8> audio;
  auto events = read_response(c, &audio);
  assert_sequence(skeleton(events), {"response.created", "response.output_item.added",
                                     "response.content_part.added", "response.output_audio.done",
                                     "response.output_text.done", "response.content_part.done",
                                     "response.output_item.done", "response.done"});
  std::string text;
  for (const Event &e : events)
    if (e.type() == "response.output_text.delta")
      text += e.str("delta");
  ASSERT_STR(text.c_str(), ==, "hi there friend");
  const Event &done = events.back();
  ASSERT_STR(done.str("response.status").c_str(), ==, "completed");
  ASSERT_STR(done.str("response.output.0.role").c_str(), ==, "assistant");
  g_assert_cmpint(done.num("response.usage.total_tokens"), >, 0);
  g_assert_cmpuint(audio.size(), ==, gsize(std::lround(500 * kOutRate / 1000.0)) * 2);
  g_assert_true(audio == server.sent_audio());
  // The server may still be reading the trailing silence.
  g_assert_true(server.wait_for_client_event("input_audio_buffer.append", 50, kTimeoutMs));
  g_assert_cmpuint(server.received_audio().size(), ==, 2 * kInRate * 2);
  server.stop();
}

void test_manual_commit() {
  Server server;
  server.start();
  Client c;
  open(c, server);
  manual_turns(c);
  c.append(tone(50));
  c.send(JObj().str("type", "input_audio_buffer.commit").str("event_id", "commit1"));
  Event err = c.next();
  ASSERT_STR(err.type().c_str(), ==, "error");
  ASSERT_STR(err.str("error.code").c_str(), ==, "input_audio_buffer_commit_empty");
  ASSERT_STR(err.str("error.type").c_str(), ==, "invalid_request_error");
  ASSERT_STR(err.str("error.event_id").c_str(), ==, "commit1");

  c.append(tone(60));  // 110 ms in total
  c.send(JObj().str("type", "input_audio_buffer.commit"));
  ASSERT_STR(c.next().type().c_str(), ==, "input_audio_buffer.committed");
  ASSERT_STR(c.next().type().c_str(), ==, "conversation.item.added");
  Event tr = c.next();
  ASSERT_STR(tr.str("transcript").c_str(), ==, "turn 1");
  c.send(JObj().str("type", "response.create").obj("response", JObj().str("instructions", "Short.")));
  std::vector<guint8> audio;
  auto events = read_response(c, &audio);
  ASSERT_STR(events.front().type().c_str(), ==, "response.created");
  ASSERT_STR(events.back().str("response.status").c_str(), ==, "completed");
  g_assert_cmpuint(audio.size(), ==, kOutRate * 2);  // default answer: 1000 ms
  server.stop();
}

void test_cancel() {
  Config cfg;
  cfg.pace_ms = 20;
  Server server(cfg);
  server.start();
  TurnScript turn;
  turn.answer_ms = 5000;
  server.push_turn(turn);
  Client c;
  open(c, server);
  manual_turns(c);
  send_user_text(c, "Hi");
  ASSERT_STR(c.next().type().c_str(), ==, "conversation.item.added");
  c.send(JObj().str("type", "response.create"));
  c.until("response.output_audio.delta");
  c.send(JObj().str("type", "response.create").str("event_id", "again"));
  Event busy = c.until("error");
  ASSERT_STR(busy.str("error.code").c_str(), ==, "conversation_already_has_active_response");
  c.send(JObj().str("type", "response.cancel"));
  std::vector<guint8> audio;
  auto events = read_response(c, &audio);
  const Event &done = events.back();
  ASSERT_STR(done.str("response.status").c_str(), ==, "cancelled");
  ASSERT_STR(done.str("response.status_details.reason").c_str(), ==, "client_cancelled");
  ASSERT_STR(done.str("response.output.0.status").c_str(), ==, "incomplete");
  g_assert_cmpuint(server.sent_audio().size(), <, 5 * kOutRate * 2);
  c.send(JObj().str("type", "response.cancel").str("event_id", "late"));
  Event err = c.until("error");
  ASSERT_STR(err.str("error.code").c_str(), ==, "response_cancel_not_active");
  ASSERT_STR(err.str("error.event_id").c_str(), ==, "late");
  server.stop();
}

void test_barge_in() {
  Config cfg;
  cfg.pace_ms = 50;
  Server server(cfg);
  server.start();
  TurnScript turn;
  turn.answer_ms = 10000;
  server.push_turn(turn);
  Client c;
  open(c, server);
  append_chunked(c, tone(500));
  append_chunked(c, silence(500));
  c.until("response.output_audio.delta");
  append_chunked(c, tone(300));
  Event started = c.until("input_audio_buffer.speech_started");
  g_assert_cmpint(started.num("audio_start_ms"), ==, 1000 - 300);
  Event done = c.until("response.done");
  ASSERT_STR(done.str("response.status").c_str(), ==, "cancelled");
  ASSERT_STR(done.str("response.status_details.reason").c_str(), ==, "turn_detected");
  server.stop();
}

void test_errors() {
  Server server;
  server.start();
  Client c;
  open(c, server);
  auto expect_error = [&](const std::string &text, const char *code) {
    c.send_text(text);
    Event err = c.next();
    ASSERT_STR(err.type().c_str(), ==, "error");
    ASSERT_STR(err.str("error.code").c_str(), ==, code);
  };
  expect_error(R"({"type":"no.such.event","event_id":"x1"})", "unknown_event");
  expect_error("not json", "invalid_json");
  expect_error(R"({"audio":"AAAA"})", "invalid_event");
  expect_error(R"({"type":"input_audio_buffer.append","audio":"@@@@"})", "invalid_base64");
  expect_error(R"({"type":"input_audio_buffer.append","audio":"AA=="})", "invalid_audio_length");
  expect_error(R"({"type":"conversation.item.truncate","item_id":"nope","content_index":0,"audio_end_ms":0})",
               "item_not_found");
  expect_error(R"({"type":"conversation.item.delete","item_id":"nope"})", "item_not_found");
  expect_error(R"({"type":"conversation.item.create","item":{"type":"function_call_output","call_id":"call_x","output":"{}"}})",
               "call_id_not_found");
  expect_error(R"({"type":"response.cancel"})", "response_cancel_not_active");
  // Still usable.
  c.send(JObj().str("type", "input_audio_buffer.clear"));
  ASSERT_STR(c.next().type().c_str(), ==, "input_audio_buffer.cleared");
  g_assert_true(server.wait_for_client_event("input_audio_buffer.clear", 1, kTimeoutMs));
  auto types = server.client_event_types();
  ASSERT_STR(types.front().c_str(), ==, "no.such.event");
  ASSERT_STR(types[1].c_str(), ==, "(invalid json)");
  server.stop();
}

void test_function_calls_and_truncate() {
  Server server;
  server.start();
  TurnScript call_turn;
  call_turn.calls.push_back({"get_weather", R"({"city":"Москва"})"});
  server.push_turn(call_turn);
  TurnScript answer;
  answer.answer_text = "It is sunny";
  answer.answer_ms = 500;
  server.push_turn(answer);
  Client c;
  open(c, server);
  manual_turns(c);
  send_user_text(c, "Weather?");
  c.until("conversation.item.added");
  c.send(JObj().str("type", "response.create"));
  auto events = read_response(c, nullptr);
  std::string args;
  std::string call_id;
  for (const Event &e : events) {
    if (e.type() == "response.function_call_arguments.delta")
      args += e.str("delta");
    if (e.type() == "response.function_call_arguments.done") {
      ASSERT_STR(e.str("name").c_str(), ==, "get_weather");
      ASSERT_STR(e.str("arguments").c_str(), ==, R"({"city":"Москва"})");
      call_id = e.str("call_id");
    }
    ASSERT_STR(e.type().c_str(), !=, "response.output_audio.delta");
  }
  ASSERT_STR(args.c_str(), ==, R"({"city":"Москва"})");
  const Event &done = events.back();
  ASSERT_STR(done.str("response.status").c_str(), ==, "completed");
  ASSERT_STR(done.str("response.output.0.type").c_str(), ==, "function_call");
  ASSERT_STR(done.str("response.output.0.call_id").c_str(), ==, call_id.c_str());

  c.send(JObj().str("type", "conversation.item.create").obj(
      "item", JObj().str("type", "function_call_output").str("call_id", "call_999").str("output", "{}")));
  ASSERT_STR(c.next().str("error.code").c_str(), ==, "call_id_not_found");
  c.send(JObj().str("type", "conversation.item.create").obj(
      "item", JObj()
                  .str("type", "function_call_output")
                  .str("call_id", call_id)
                  .str("output", R"({"temperature_c":20})")));
  Event added = c.next();
  ASSERT_STR(added.type().c_str(), ==, "conversation.item.added");
  ASSERT_STR(added.str("item.type").c_str(), ==, "function_call_output");
  c.send(JObj().str("type", "response.create"));
  std::vector<guint8> audio;
  events = read_response(c, &audio);
  std::string item_id, text;
  for (const Event &e : events) {
    if (e.type() == "response.output_text.done")
      text = e.str("text");
    if (e.type() == "response.output_item.added")
      item_id = e.str("item.id");
  }
  ASSERT_STR(text.c_str(), ==, "It is sunny");
  g_assert_cmpuint(audio.size(), ==, gsize(kOutRate / 2) * 2);

  auto truncate = [&](gint64 ms) {
    c.send(JObj()
               .str("type", "conversation.item.truncate")
               .str("item_id", item_id)
               .num("content_index", 0)
               .num("audio_end_ms", ms));
    return c.next();
  };
  Event too_far = truncate(501);
  ASSERT_STR(too_far.str("error.code").c_str(), ==, "invalid_value");
  ASSERT_STR(too_far.str("error.param").c_str(), ==, "audio_end_ms");
  Event truncated = truncate(300);
  ASSERT_STR(truncated.type().c_str(), ==, "conversation.item.truncated");
  g_assert_cmpint(truncated.num("audio_end_ms"), ==, 300);
  c.send(JObj().str("type", "conversation.item.delete").str("item_id", item_id));
  ASSERT_STR(c.next().type().c_str(), ==, "conversation.item.deleted");
  server.stop();
}

// Reads one default (manual) turn's answer after a text item.
std::vector<Event> ask(Client &c, std::vector<guint8> *audio) {
  send_user_text(c, "?");
  c.send(JObj().str("type", "response.create"));
  return read_response(c, audio);
}

void test_fault_deltas() {
  Server server;
  server.start();
  Faults f;
  f.odd_deltas = true;
  f.unknown_events = true;
  f.first_audio_delay_ms = 200;
  server.set_faults(f);
  Client c;
  open(c, server);
  manual_turns(c);
  std::vector<guint8> audio;
  const gint64 t0 = g_get_monotonic_time();
  auto events = ask(c, &audio);
  g_assert_cmpint(g_get_monotonic_time() - t0, >=, 200 * 1000);
  guint odd = 0, deltas = 0;
  for (const Event &e : events) {
    if (e.type() != "response.output_audio.delta")
      continue;
    deltas++;
    odd += b64decode(e.str("delta")).size() % 2;
  }
  g_assert_cmpuint(deltas, >, 2);
  g_assert_cmpuint(odd, >=, deltas - 1);  // all but possibly the last
  g_assert_cmpuint(audio.size(), ==, kOutRate * 2);
  g_assert_true(audio == server.sent_audio());
  g_assert_cmpuint(c.garbage(), >, 0);
  g_assert_cmpuint(c.binaries(), >, 0);
  bool unknown = false;
  for (const Event &e : events)
    unknown |= e.type() == "yandex.unknown_event";
  g_assert_true(unknown);
  server.stop();
}

void test_fault_drops() {
  Server server;
  server.start();
  {
    Faults f;
    f.drop_after_client_events = 2;
    server.set_faults(f);
    Client c;
    open(c, server);
    c.send(JObj().str("type", "input_audio_buffer.clear"));
    c.send(JObj().str("type", "input_audio_buffer.clear"));
    g_assert_true(c.wait_closed());
    g_assert_cmpuint(soup_websocket_connection_get_close_code(c.ws()), !=, SOUP_WEBSOCKET_CLOSE_NORMAL);
    server.set_faults(Faults{});
  }
  {
    Faults f;
    f.drop_mid_answer = true;
    server.set_faults(f);
    Client c;
    open(c, server);
    manual_turns(c);
    c.send(JObj().str("type", "response.create"));
    c.until("response.output_audio.delta");
    g_assert_true(c.wait_closed());
    g_assert_false(server.faults().drop_mid_answer);  // one-shot
  }
  {
    Faults f;
    f.session_lifetime_ms = 300;
    server.set_faults(f);
    Client c;
    open(c, server);
    Event err = c.until("error", 2000);
    ASSERT_STR(err.str("error.code").c_str(), ==, "session_expired");
    g_assert_true(c.wait_closed());
    g_assert_cmpuint(soup_websocket_connection_get_close_code(c.ws()), ==, SOUP_WEBSOCKET_CLOSE_NORMAL);
    server.set_faults(Faults{});
  }
  {
    Client c;
    open(c, server);
    server.drop_connections();
    g_assert_true(c.wait_closed());
  }
  g_assert_true(spin_until([&] { return server.sessions_active() == 0; }, kTimeoutMs));
  server.stop();
}

void test_stop_reading() {
  Server server;
  server.start();
  Client c;
  open(c, server);
  Faults f;
  f.stop_reading = true;
  server.set_faults(f);
  sleep_ms(100);  // set_faults reaches the session asynchronously
  c.send(JObj().str("type", "input_audio_buffer.clear"));
  g_assert_false(server.wait_for_client_event("input_audio_buffer.clear", 1, 300));
  // Real backpressure: eventually the socket stops accepting data.
  const std::string big(256 * 1024, 'x');
  for (int i = 0; i < 64; i++)
    c.send(JObj().str("type", "padding").str("data", big));
  sleep_ms(300);
  g_assert_false(server.wait_for_client_event("padding", 64, 10));
  server.set_faults(Faults{});
  // Keep iterating: the client still has queued frames to write.
  g_assert_true(spin_until(
      [&] { return server.wait_for_client_event("padding", 64, 0); }, 10 * kTimeoutMs));
  g_assert_true(server.wait_for_client_event("input_audio_buffer.clear", 1, 0));
  ASSERT_STR(c.until("input_audio_buffer.cleared").type().c_str(), ==,
                  "input_audio_buffer.cleared");
  server.stop();
}

gint64 ms_of(gsize pcm_bytes, guint rate = kInRate) {
  return gint64(pcm_bytes / 2) * 1000 / rate;
}

// Faults::read_speed: a file sent far faster than real time is read at the
// set pace; the rest waits in socket buffers. Stopping stays prompt.
void test_lazy_reading() {
  Config cfg;
  cfg.faults.read_speed = 1.0;
  auto server = std::make_unique<Server>(cfg);
  server->start();
  Client c;
  open(c, *server);
  const gint64 t0 = g_get_monotonic_time();
  append_chunked(c, tone(60000));  // a minute of audio at once: far beyond 50x
  g_assert_true(server->wait_for_client_event("input_audio_buffer.append", 1, kTimeoutMs));
  sleep_ms(1000);
  const gint64 read_ms = ms_of(server->received_audio(0).size());
  const gint64 elapsed_ms = (g_get_monotonic_time() - t0) / 1000;
  // Never ahead of the clock by more than the one chunk that starts it.
  g_assert_cmpint(read_ms, <=, elapsed_ms + 40);
  g_assert_cmpint(read_ms, >=, 40);
  const gsize unsent = c.unsent_bytes();
  g_test_message("read %" G_GINT64_FORMAT " ms (%" G_GUINT64_FORMAT " bytes) in %" G_GINT64_FORMAT
                 " ms; %zu bytes in the client's socket",
                 read_ms, server->bytes_read(0), elapsed_ms, unsent);
  g_assert_cmpuint(unsent, >, 1024 * 1024);
  g_assert_cmpuint(unsent, >, 10 * server->bytes_read(0));
  const gint64 stop_t0 = g_get_monotonic_time();
  server.reset();  // with a paused gate, a pending pace timer and megabytes unread
  g_assert_cmpint(g_get_monotonic_time() - stop_t0, <, 1000 * 1000);
  g_assert_true(c.wait_closed());
}

// read_speed and stop_reading compose: the gate is paused while either
// says so.
void test_lazy_reading_stop_reading() {
  Config cfg;
  cfg.faults.read_speed = 1.0;
  cfg.faults.stop_reading = true;
  Server server(cfg);
  server.start();
  Client c;
  open(c, server);
  append_chunked(c, tone(5000));
  g_assert_false(server.wait_for_client_event("input_audio_buffer.append", 1, 300));
  Faults paced;
  paced.read_speed = 1.0;
  server.set_faults(paced);
  g_assert_true(server.wait_for_client_event("input_audio_buffer.append", 1, kTimeoutMs));
  const gint64 t0 = g_get_monotonic_time();
  sleep_ms(400);
  g_assert_cmpint(ms_of(server.received_audio(0).size()), <=,
                  (g_get_monotonic_time() - t0) / 1000 + 40);
  Faults stopped = paced;
  stopped.stop_reading = true;
  server.set_faults(stopped);
  sleep_ms(100);  // set_faults reaches the session asynchronously
  const gint64 read_ms = ms_of(server.received_audio(0).size());
  sleep_ms(400);  // the pace timer fires meanwhile: reading stays paused
  // At most the frames already read when it paused.
  g_assert_cmpint(ms_of(server.received_audio(0).size()), <=, read_ms + 40);
  server.stop();
}

// With Faults::read_speed, client events are still handled strictly in
// order: a session.update behind audio is answered only after that audio
// was read at the set pace and fed to the VAD.
void test_lazy_reading_barrier() {
  const double speed = 2.0;
  Config cfg;
  cfg.faults.read_speed = speed;
  Server server(cfg);
  server.start();
  Client c;
  open(c, server);
  const std::vector<gint16> tone_part = tone(520), quiet = silence(680);  // whole 40 ms chunks
  append_chunked(c, tone_part);
  append_chunked(c, quiet);
  c.send(JObj().str("type", "session.update").obj("session", JObj().str("instructions", "x")));
  std::vector<std::string> before;
  Event stopped, updated;
  for (;;) {
    Event ev = c.next();
    if (ev.type() == "input_audio_buffer.speech_stopped")
      stopped = ev;
    if (ev.type() == "session.updated") {
      updated = ev;
      break;
    }
    before.push_back(ev.type());
  }
  // Everything was read and fed to the VAD before the answer.
  const gsize total = (tone_part.size() + quiet.size()) * 2;
  g_assert_cmpuint(server.received_audio(0).size(), ==, total);
  g_assert_nonnull(stopped.node);
  g_assert_true(std::find(before.begin(), before.end(), "input_audio_buffer.committed") !=
                before.end());
  // Appends were handled at the pace: the i-th 40 ms chunk not before
  // i * 40 ms / speed after the first; the update after the last one.
  gint64 first_us = 0, last_append_us = 0, update_us = 0;
  guint appends = 0;
  for (const ClientEvent &ev : server.client_events()) {
    if (ev.type == "input_audio_buffer.append") {
      if (!appends)
        first_us = ev.monotonic_us;
      const gint64 due_us = gint64(appends * 40 * 1000 / speed);
      g_assert_cmpint(ev.monotonic_us - first_us, >=, due_us - 2000);
      last_append_us = ev.monotonic_us;
      appends++;
    } else if (ev.type == "session.update") {
      g_assert_cmpuint(appends, ==, total / 2 / (kInRate / 25));
      update_us = ev.monotonic_us;
    }
  }
  g_assert_cmpint(update_us, >=, last_append_us);
  const gint64 audio_ms = ms_of(total);
  g_assert_cmpint(update_us - first_us, >=, gint64((audio_ms - 40) * 1000 / speed) - 2000);
  // The VAD ran at the pace too: speech stopped (at 920 ms of audio) no
  // sooner than 880 ms / speed after the first chunk was read.
  g_assert_cmpint(stopped.num("audio_end_ms"), ==, 920);
  g_assert_cmpint(stopped.at_us - first_us, >=, gint64((920 - 40) * 1000 / speed) - 2000);
  g_assert_cmpint(updated.at_us, >=, stopped.at_us);
  server.stop();
}

std::vector<guint8> bytes_of(const std::vector<gint16> &pcm) {
  const auto *p = reinterpret_cast<const guint8 *>(pcm.data());
  return std::vector<guint8>(p, p + pcm.size() * 2);  // S16LE on this host, as Client::append
}

template <typename T>
std::vector<T> concat(std::vector<T> a, const std::vector<T> &b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Per-session records: the audio each session handled, the exact PCM of
// each commit, and one AnswerRecord per response with its fate and the
// user item it answered.
void test_records() {
  Config cfg;
  cfg.pace_ms = 20;  // answers last long enough to cancel one
  Server server(cfg);
  server.start();
  const std::vector<gint16> speech = tone(520), quiet = silence(680);
  const std::vector<guint8> audio0 = bytes_of(concat(speech, quiet));
  std::string vad_item, text_item, text_item2;
  {
    Client c;
    open(c, server);
    append_chunked(c, speech);
    append_chunked(c, quiet);
    vad_item = c.until("input_audio_buffer.committed").str("item_id");
    ASSERT_STR(read_response(c, nullptr).back().str("response.status"), ==, "completed");
    send_user_text(c, "?");
    text_item = c.until("conversation.item.added").str("item.id");
    c.send(JObj().str("type", "response.create"));
    c.until("response.output_audio.delta");
    c.send(JObj().str("type", "response.cancel"));
    ASSERT_STR(c.until("response.done").str("response.status"), ==, "cancelled");
    Faults f;
    f.drop_mid_answer = true;
    server.set_faults(f);
    send_user_text(c, "again?");
    text_item2 = c.until("conversation.item.added").str("item.id");
    c.send(JObj().str("type", "response.create"));
    g_assert_true(c.wait_closed());
  }
  const std::vector<gint16> manual = tone(300, kInRate, 5000);
  std::string manual_item;
  {
    Client c;
    open(c, server);
    manual_turns(c);
    append_chunked(c, manual);
    c.send(JObj().str("type", "input_audio_buffer.commit"));
    manual_item = c.until("input_audio_buffer.committed").str("item_id");
    c.send(JObj().str("type", "response.create"));
    ASSERT_STR(read_response(c, nullptr).back().str("response.status"), ==, "completed");
  }
  g_assert_true(server.received_audio(0) == audio0);
  g_assert_true(server.received_audio(1) == bytes_of(manual));
  g_assert_true(server.received_audio(2).empty());
  g_assert_true(server.received_audio() == concat(audio0, bytes_of(manual)));
  g_assert_cmpuint(server.bytes_read(0), >, audio0.size());
  g_assert_cmpuint(server.bytes_read(1), >, manual.size() * 2);

  const auto turns = server.committed_turns();
  g_assert_cmpuint(turns.size(), ==, 2);
  // Server VAD: from the start to the end of the 400 ms of silence that
  // ended the speech.
  g_assert_cmpuint(turns[0].session, ==, 0);
  ASSERT_STR(turns[0].item_id, ==, vad_item);
  g_assert_cmpuint(turns[0].rate, ==, kInRate);
  const gsize end = gsize(520 + 400) * kInRate / 1000 * 2;
  g_assert_true(turns[0].pcm == std::vector<guint8>(audio0.begin(), audio0.begin() + end));
  g_assert_cmpuint(turns[1].session, ==, 1);
  ASSERT_STR(turns[1].item_id, ==, manual_item);
  g_assert_true(turns[1].pcm == bytes_of(manual));

  const auto answers = server.answers();
  g_assert_cmpuint(answers.size(), ==, 4);
  const struct {
    guint session;
    const char *status;
    std::string item;
  } want[] = {{0, "completed", vad_item},
              {0, "cancelled", text_item},
              {0, "dropped", text_item2},
              {1, "completed", manual_item}};
  for (guint k = 0; k < answers.size(); k++) {
    g_assert_cmpuint(answers[k].session, ==, want[k].session);
    ASSERT_STR(answers[k].status, ==, want[k].status);
    ASSERT_STR(answers[k].user_item_id, ==, want[k].item);
    g_assert_cmpuint(answers[k].signature, ==, k + 1);
    g_assert_false(answers[k].response_id.empty());
  }
  server.clear_records();
  g_assert_true(server.received_audio(0).empty());
  g_assert_true(server.committed_turns().empty());
  g_assert_true(server.answers().empty());
  server.stop();
}

// Config::answer_signature: response k's audio is the constant 1000 + k,
// whole, whatever session it is in.
void test_answer_signature() {
  Config cfg;
  cfg.answer_signature = true;
  cfg.faults.odd_deltas = true;  // samples straddle deltas
  Server server(cfg);
  server.start();
  TurnScript short_turn;
  short_turn.answer_ms = 300;
  server.push_turn(short_turn);
  auto expect_signature = [](const std::vector<guint8> &audio, gint16 value, guint ms) {
    g_assert_cmpuint(audio.size(), ==, gsize(std::lround(ms * kOutRate / 1000.0)) * 2);
    std::vector<gint16> pcm(audio.size() / 2);
    memcpy(pcm.data(), audio.data(), audio.size());
    for (gint16 v : pcm)
      g_assert_cmpint(v, ==, value);
  };
  for (guint session = 0; session < 2; session++) {
    Client c;
    open(c, server);
    manual_turns(c);
    std::vector<guint8> audio;
    ask(c, &audio);
    const guint k = server.answers().back().signature;
    g_assert_cmpuint(k, ==, 2 * session + 1);
    expect_signature(audio, gint16(1000 + k), session == 0 ? 300 : 1000);
    audio.clear();
    ask(c, &audio);
    expect_signature(audio, gint16(1000 + k + 1), 1000);
  }
  server.stop();
}

// Server VAD without responses (create_response false), so a test reads
// only the VAD's events.
void vad_without_responses(Client &c, guint prefix_padding_ms = 300) {
  c.send(JObj().str("type", "session.update").obj(
      "session", JObj().obj("audio", JObj().obj("input", JObj().obj(
                                         "turn_detection",
                                         JObj()
                                             .str("type", "server_vad")
                                             .num("prefix_padding_ms", prefix_padding_ms)
                                             .boolean("create_response", false))))));
  c.until("session.updated");
}

// Appends `pcm`, then a barrier (input_audio_buffer.clear), and returns the
// VAD's events (speech_started / speech_stopped) sent before it was answered.
std::vector<Event> vad_events(Client &c, const std::vector<gint16> &pcm) {
  append_chunked(c, pcm);
  c.send(JObj().str("type", "input_audio_buffer.clear"));
  std::vector<Event> events;
  for (;;) {
    Event ev = c.next();
    if (ev.type() == "input_audio_buffer.cleared")
      return events;
    if (ev.type().rfind("input_audio_buffer.speech_", 0) == 0)
      events.push_back(ev);
  }
}

std::vector<gint16> pcm_of(std::initializer_list<std::vector<gint16>> parts) {
  std::vector<gint16> out;
  for (const auto &part : parts)
    out.insert(out.end(), part.begin(), part.end());
  return out;
}

gsize samples_at(guint ms) {
  return gsize(ms) * kInRate / 1000;
}

// VadModel::Realistic (the default): a short blip is no turn.
void test_vad_blip() {
  Server server;
  server.start();
  Client c;
  open(c, server);
  vad_without_responses(c);
  // 100 ms of loud tone, and a 200 ms one, between silences.
  auto events = vad_events(c, pcm_of({silence(500), tone(100), silence(1000), tone(200),
                                      silence(1000)}));
  g_assert_cmpuint(events.size(), ==, 0);
  // Two blips 300 ms apart are two blips.
  events = vad_events(c, pcm_of({tone(100), silence(300), tone(100), silence(1000)}));
  g_assert_cmpuint(events.size(), ==, 0);
  g_assert_true(server.committed_turns().empty());
  // A gap of 100 ms early in the speech (a stop consonant) does not make the
  // start a blip: the speech began with the first sound.
  const gint64 t0 = 500 + 100 + 1000 + 200 + 1000 + 100 + 300 + 100 + 1000;
  events = vad_events(c, pcm_of({tone(120), silence(100), tone(200), silence(600)}));
  g_assert_cmpuint(events.size(), ==, 2);
  g_assert_cmpint(events[0].num("audio_start_ms"), ==, t0 - 300);
  g_assert_cmpint(events[1].num("audio_end_ms"), ==, t0 + 420 + 400);
  // VadModel::Energy, the old model, takes a blip for a turn.
  Config cfg;
  cfg.vad_model = VadModel::Energy;
  Server energy(cfg);
  energy.start();
  Client e;
  open(e, energy);
  vad_without_responses(e);
  events = vad_events(e, pcm_of({silence(500), tone(100), silence(1000)}));
  g_assert_cmpuint(events.size(), ==, 2);
  g_assert_cmpint(events[0].num("audio_start_ms"), ==, 500 - 300);
  g_assert_cmpint(events[1].num("audio_end_ms"), ==, 600 + 400);
  energy.stop();
  server.stop();
}

// 300 ms of speech is a turn: speech_started is reported once 250 ms of it
// were heard, with audio_start_ms at its start minus the prefix padding; the
// committed turn holds exactly the padding, the speech and the silence.
void test_vad_speech() {
  const double speed = 4.0;
  Config cfg;
  cfg.faults.read_speed = speed;  // to see when speech_started is sent
  Server server(cfg);
  server.start();
  Client c;
  open(c, server);
  vad_without_responses(c);
  const std::vector<gint16> audio = pcm_of({silence(500), tone(300), silence(600)});
  auto events = vad_events(c, audio);
  g_assert_cmpuint(events.size(), ==, 2);
  ASSERT_STR(events[0].type(), ==, "input_audio_buffer.speech_started");
  g_assert_cmpint(events[0].num("audio_start_ms"), ==, 500 - 300);
  ASSERT_STR(events[1].type(), ==, "input_audio_buffer.speech_stopped");
  g_assert_cmpint(events[1].num("audio_end_ms"), ==, 800 + 400);
  ASSERT_STR(events[1].str("item_id"), ==, events[0].str("item_id"));
  // Sent no sooner than 750 ms of audio were read at the pace.
  gint64 first_us = 0;
  for (const ClientEvent &ev : server.client_events())
    if (ev.type == "input_audio_buffer.append" && !first_us)
      first_us = ev.monotonic_us;
  g_assert_cmpint(events[0].at_us - first_us, >=, gint64((750 - 40) * 1000 / speed) - 2000);
  const auto turns = server.committed_turns();
  g_assert_cmpuint(turns.size(), ==, 1);
  ASSERT_STR(turns[0].item_id, ==, events[0].str("item_id"));
  const std::vector<guint8> bytes = bytes_of(audio);
  g_assert_true(turns[0].pcm == std::vector<guint8>(bytes.begin() + samples_at(200) * 2,
                                                    bytes.begin() + samples_at(1200) * 2));
  server.stop();
}

// audio_start_ms is the speech's start minus prefix_padding_ms, clamped at
// 0, and the committed turn starts there.
void test_vad_prefix_padding() {
  Server server;
  server.start();
  Client c;
  open(c, server);
  vad_without_responses(c, 100);
  const std::vector<gint16> audio = pcm_of({silence(500), tone(400), silence(500)});
  auto events = vad_events(c, audio);
  g_assert_cmpuint(events.size(), ==, 2);
  g_assert_cmpint(events[0].num("audio_start_ms"), ==, 500 - 100);
  g_assert_cmpint(events[1].num("audio_end_ms"), ==, 900 + 400);
  const std::vector<guint8> bytes = bytes_of(audio);
  auto turns = server.committed_turns();
  g_assert_cmpuint(turns.size(), ==, 1);
  g_assert_true(turns[0].pcm == std::vector<guint8>(bytes.begin() + samples_at(400) * 2,
                                                    bytes.begin() + samples_at(1300) * 2));
  // The padding may reach back before the buffer was last cleared (at 1400
  // ms of audio); audio_start_ms still counts from the session's first audio.
  vad_without_responses(c, 300);
  events = vad_events(c, pcm_of({silence(100), tone(400), silence(500)}));
  g_assert_cmpuint(events.size(), ==, 2);
  g_assert_cmpint(events[0].num("audio_start_ms"), ==, 1400 + 100 - 300);
  // And at 0.
  Client c2;
  open(c2, server);
  vad_without_responses(c2, 300);
  events = vad_events(c2, pcm_of({silence(100), tone(400), silence(500)}));
  g_assert_cmpuint(events.size(), ==, 2);
  g_assert_cmpint(events[0].num("audio_start_ms"), ==, 0);
  turns = server.committed_turns();
  g_assert_cmpuint(turns.size(), ==, 3);
  g_assert_cmpuint(turns[2].pcm.size(), ==, samples_at(100 + 400 + 400) * 2);
  server.stop();
}

// A dip shorter than silence_duration_ms (400 ms) does not split the turn;
// a longer silence does.
void test_vad_dip() {
  Server server;
  server.start();
  Client c;
  open(c, server);
  vad_without_responses(c);
  auto events = vad_events(c, pcm_of({tone(400), silence(150), tone(400), silence(600)}));
  g_assert_cmpuint(events.size(), ==, 2);
  g_assert_cmpint(events[0].num("audio_start_ms"), ==, 0);
  g_assert_cmpint(events[1].num("audio_end_ms"), ==, 950 + 400);
  g_assert_cmpuint(server.committed_turns().size(), ==, 1);
  // A quiet stretch inside the speech (-48 dBFS: below the threshold, above
  // the silence) is a dip like any other.
  gint64 t0 = 400 + 150 + 400 + 600;
  events = vad_events(c, pcm_of({tone(400), tone(300, kInRate, 185), tone(400), silence(600)}));
  g_assert_cmpuint(events.size(), ==, 2);
  g_assert_cmpint(events[0].num("audio_start_ms"), ==, t0 - 300);
  g_assert_cmpint(events[1].num("audio_end_ms"), ==, t0 + 1100 + 400);
  // 450 ms of silence ends the turn after 400 ms.
  t0 += 1100 + 600;
  events = vad_events(c, pcm_of({tone(400), silence(450), tone(400), silence(600)}));
  g_assert_cmpuint(events.size(), ==, 4);
  g_assert_cmpint(events[1].num("audio_end_ms"), ==, t0 + 400 + 400);
  g_assert_cmpint(events[2].num("audio_start_ms"), ==, t0 + 850 - 300);
  g_assert_cmpint(events[3].num("audio_end_ms"), ==, t0 + 1250 + 400);
  g_assert_cmpuint(server.committed_turns().size(), ==, 4);
  server.stop();
}

// A session.update asking for these rates (0: not asked), with an event_id
// and instructions unless nullptr.
JObj rate_update(const char *event_id, gint64 in_rate, gint64 out_rate,
                 const char *instructions = nullptr) {
  auto dir = [](gint64 rate) {
    JObj d;
    if (rate)
      d.obj("format", JObj().str("type", "audio/pcm").num("rate", rate));
    return d;
  };
  JObj session;
  if (instructions)
    session.str("instructions", instructions);
  session.obj("audio", JObj().obj("input", dir(in_rate)).obj("output", dir(out_rate)));
  JObj ev;
  ev.str("type", "session.update");
  if (event_id)
    ev.str("event_id", event_id);
  ev.obj("session", session);
  return ev;
}

// Every output_audio.delta but the last is audio_delta_ms (100) at `rate`.
void expect_delta_sizes(const std::vector<Event> &events, guint rate) {
  std::vector<gsize> sizes;
  for (const Event &e : events)
    if (e.type() == "response.output_audio.delta")
      sizes.push_back(b64decode(e.str("delta")).size());
  g_assert_cmpuint(sizes.size(), >=, 2);
  for (gsize i = 0; i + 1 < sizes.size(); i++)
    g_assert_cmpuint(sizes[i], ==, gsize(rate / 10) * 2);
}

// RatePolicy::Accept (the default): the session takes the asked rates.
void test_rate_accept() {
  Server server;
  server.start();
  Client c;
  g_assert_cmpuint(c.connect(model_url(server), kAuth), ==, 101);
  Event created = c.next();
  g_assert_cmpint(created.num("session.audio.input.format.rate"), ==, kInRate);
  g_assert_cmpint(created.num("session.audio.output.format.rate"), ==, kOutRate);
  g_assert_cmpuint(server.input_rate(0), ==, kInRate);
  g_assert_cmpuint(server.output_rate(0), ==, kOutRate);
  c.send(rate_update("u1", 16000, 16000));
  Event updated = c.next();
  ASSERT_STR(updated.type(), ==, "session.updated");
  g_assert_cmpint(updated.num("session.audio.input.format.rate"), ==, 16000);
  g_assert_cmpint(updated.num("session.audio.output.format.rate"), ==, 16000);
  g_assert_cmpuint(server.input_rate(0), ==, 16000);
  g_assert_cmpuint(server.output_rate(0), ==, 16000);
  g_assert_cmpuint(server.input_rate(1), ==, 0);  // no such session
  manual_turns(c);
  std::vector<guint8> audio;
  expect_delta_sizes(ask(c, &audio), 16000);
  g_assert_cmpuint(audio.size(), ==, 16000 * 2);  // default answer: 1000 ms
  g_assert_cmpuint(server.refused_updates(), ==, 0);
  server.stop();
}

// RatePolicy::Serve: the asked output rate is ignored; session.created and
// every session.updated report the served one, and answers are made at it.
void test_rate_serve() {
  {
    Config cfg;
    cfg.output_rate_rule = {RatePolicy::Serve, 44100};
    Server server(cfg);
    server.start();
    Client c;
    g_assert_cmpuint(c.connect(model_url(server), kAuth), ==, 101);
    g_assert_cmpint(c.next().num("session.audio.output.format.rate"), ==, 44100);
    c.send(rate_update("u1", 16000, 48000));
    Event updated = c.next();
    ASSERT_STR(updated.type(), ==, "session.updated");
    g_assert_cmpint(updated.num("session.audio.output.format.rate"), ==, 44100);
    g_assert_cmpint(updated.num("session.audio.input.format.rate"), ==, 16000);  // Accept
    g_assert_cmpuint(server.output_rate(0), ==, 44100);
    g_assert_cmpuint(server.input_rate(0), ==, 16000);
    manual_turns(c);  // an update without rates: still 44100
    TurnScript turn;
    turn.answer_ms = 300;
    server.push_turn(turn);
    std::vector<guint8> audio;
    expect_delta_sizes(ask(c, &audio), 44100);
    g_assert_cmpuint(audio.size(), ==, gsize(std::lround(300 * 44100 / 1000.0)) * 2);
    g_assert_cmpuint(server.refused_updates(), ==, 0);
    server.stop();
  }
  {
    Config cfg;
    cfg.output_rate_rule = {RatePolicy::Serve, 22050};
    Server server(cfg);
    server.start();
    Client c;
    g_assert_cmpuint(c.connect(model_url(server), kAuth), ==, 101);
    Event created = c.next();
    g_assert_cmpint(created.num("session.audio.output.format.rate"), ==, 22050);
    g_assert_cmpint(created.num("session.audio.input.format.rate"), ==, kInRate);
    g_assert_cmpuint(server.output_rate(0), ==, 22050);
    c.send(rate_update("u1", 0, kOutRate));
    g_assert_cmpint(c.until("session.updated").num("session.audio.output.format.rate"), ==, 22050);
    manual_turns(c);
    std::vector<guint8> audio;
    expect_delta_sizes(ask(c, &audio), 22050);
    g_assert_cmpuint(audio.size(), ==, 22050 * 2);  // default answer: 1000 ms
    server.stop();
  }
}

// RatePolicy::Refuse: an update asking for another rate is refused whole
// with an error naming the field; no session.updated; appended audio is
// discarded (not recorded, not heard by the VAD) until a valid update.
void test_rate_refuse() {
  Config cfg;
  cfg.input_rate_rule = {RatePolicy::Refuse, 24000};
  cfg.output_rate_rule = {RatePolicy::Refuse, 24000};
  Server server(cfg);
  server.start();
  Client c;
  g_assert_cmpuint(c.connect(model_url(server), kAuth), ==, 101);
  Event created = c.next();
  g_assert_cmpint(created.num("session.audio.input.format.rate"), ==, 24000);
  g_assert_cmpint(created.num("session.audio.output.format.rate"), ==, 24000);
  g_assert_cmpuint(server.output_rate(0), ==, 24000);
  const std::vector<gint16> taken = silence(100);
  c.append(taken);  // before any update: taken

  c.send(rate_update("u1", 0, 44100, "refused"));
  Event err = c.next();
  ASSERT_STR(err.type(), ==, "error");
  g_assert_false(err.str("event_id").empty());
  ASSERT_STR(err.str("error.type"), ==, "invalid_request_error");
  ASSERT_STR(err.str("error.code"), ==, "invalid_value");
  ASSERT_STR(err.str("error.message"), ==,
             "Invalid 'session.audio.output.format.rate': expected 24000, got 44100.");
  ASSERT_STR(err.str("error.param"), ==, "session.audio.output.format.rate");
  ASSERT_STR(err.str("error.event_id"), ==, "u1");
  g_assert_cmpuint(server.refused_updates(), ==, 1);

  // Discarded: speech the VAD would take, then a barrier.
  append_chunked(c, tone(1000));
  append_chunked(c, silence(600));
  c.send(JObj().str("type", "input_audio_buffer.clear"));
  ASSERT_STR(c.next().type(), ==, "input_audio_buffer.cleared");  // no speech events
  g_assert_true(server.received_audio(0) == bytes_of(taken));
  g_assert_true(server.committed_turns().empty());

  c.send(rate_update(nullptr, 16000, 24000));
  Event err2 = c.next();
  ASSERT_STR(err2.type(), ==, "error");
  ASSERT_STR(err2.str("error.message"), ==,
             "Invalid 'session.audio.input.format.rate': expected 24000, got 16000.");
  ASSERT_STR(err2.str("error.param"), ==, "session.audio.input.format.rate");
  g_assert_true(err2.is_null("error.event_id"));
  g_assert_cmpuint(server.refused_updates(), ==, 2);
  g_assert_cmpuint(server.input_rate(0), ==, 24000);

  // Asking for the rates the session takes is valid; nothing of the refused
  // updates was applied.
  c.send(rate_update("u3", 24000, 24000));
  Event updated = c.next();
  ASSERT_STR(updated.type(), ==, "session.updated");
  ASSERT_STR(updated.str("session.instructions"), ==, "");
  g_assert_cmpint(updated.num("session.audio.output.format.rate"), ==, 24000);
  g_assert_cmpint(updated.num("session.audio.input.format.rate"), ==, 24000);
  g_assert_cmpuint(server.refused_updates(), ==, 2);
  const std::vector<gint16> later = silence(200);
  c.append(later);
  c.send(JObj().str("type", "input_audio_buffer.clear"));
  c.until("input_audio_buffer.cleared");
  g_assert_true(server.received_audio(0) == concat(bytes_of(taken), bytes_of(later)));
  manual_turns(c);
  std::vector<guint8> audio;
  ask(c, &audio);
  g_assert_cmpuint(audio.size(), ==, 24000 * 2);  // answers at the session's rate
  g_assert_cmpuint(server.output_rate(0), ==, 24000);
  server.clear_records();
  g_assert_cmpuint(server.refused_updates(), ==, 0);
  server.stop();
}

// A refused update is a barrier like any other: with lazy reading it is
// answered only after the audio before it was read (and taken); the audio
// between it and the next valid update is discarded.
void test_rate_refuse_barrier() {
  const double speed = 2.0;
  Config cfg;
  cfg.output_rate_rule = {RatePolicy::Refuse, 24000};
  cfg.faults.read_speed = speed;
  Server server(cfg);
  server.start();
  Client c;
  open(c, server);
  const std::vector<gint16> before = silence(400), between = silence(400), after = silence(200);
  append_chunked(c, before);
  c.send(rate_update("bad", 0, 44100));
  append_chunked(c, between);
  c.send(rate_update("good", 0, 24000));
  append_chunked(c, after);
  ASSERT_STR(c.next().str("error.event_id"), ==, "bad");
  Event updated = c.next();
  ASSERT_STR(updated.type(), ==, "session.updated");
  g_assert_true(server.wait_for_client_event("input_audio_buffer.append", 25, kTimeoutMs));
  g_assert_true(server.received_audio(0) == concat(bytes_of(before), bytes_of(after)));
  gint64 first_us = 0;
  std::vector<gint64> updates_us;
  guint appends_before_bad = 0;
  for (const ClientEvent &ev : server.client_events()) {
    if (ev.type == "input_audio_buffer.append" && !first_us)
      first_us = ev.monotonic_us;
    if (ev.type == "input_audio_buffer.append" && updates_us.empty())
      appends_before_bad++;
    if (ev.type == "session.update")
      updates_us.push_back(ev.monotonic_us - first_us);
  }
  g_assert_cmpuint(appends_before_bad, ==, 10);
  g_assert_cmpuint(updates_us.size(), ==, 2);
  // Read at the pace, discarded or not.
  g_assert_cmpint(updates_us[0], >=, gint64((400 - 40) * 1000 / speed) - 2000);
  g_assert_cmpint(updates_us[1], >=, gint64((800 - 40) * 1000 / speed) - 2000);
  g_assert_cmpuint(server.refused_updates(), ==, 1);
  server.stop();
}

// Bytes a client's masked text frame of `payload` bytes takes on the wire.
gsize client_frame_size(gsize payload) {
  return 2 + (payload <= 125 ? 0 : payload <= 65535 ? 2 : 8) + 4 + payload;
}

std::string append_text(const std::vector<gint16> &pcm) {
  const std::vector<guint8> bytes = bytes_of(pcm);
  gchar *b64 = g_base64_encode(bytes.data(), bytes.size());
  std::string text = JObj().str("type", "input_audio_buffer.append").str("audio", b64).text();
  g_free(b64);
  return text;
}

// Faults::drop_after_bytes cuts at any byte: at a frame boundary, inside a
// header, inside a payload. Exactly the frames completed within the bytes
// are handled; only the first session (Faults::sessions) is cut.
void test_drop_after_bytes() {
  Server server;
  server.start();
  std::vector<std::vector<gint16>> chunks;
  std::vector<std::string> texts;
  std::vector<guint64> starts{0};  // wire offset of each frame, then the end
  for (guint i = 0; i < 8; i++) {
    chunks.push_back(tone(20 + 10 * i, kInRate, 1000 + 500 * i));
    texts.push_back(append_text(chunks.back()));
    starts.push_back(starts.back() + client_frame_size(texts.back().size()));
  }
  auto audio_of_first = [&](guint n) {
    std::vector<guint8> out;
    for (guint i = 0; i < n; i++)
      out = concat(out, bytes_of(chunks[i]));
    return out;
  };
  const struct {
    guint64 cut;
    guint frames;  // completed within the cut
  } cases[] = {{starts[3], 3}, {starts[5] + 1, 5}, {starts[5] + 300, 5}, {starts[8] - 1, 7}};
  guint session = 0;
  for (const auto &cs : cases) {
    Faults f;
    f.drop_after_bytes = cs.cut;
    f.sessions = 1;
    server.set_faults(f);
    Client c;
    open(c, server);
    // The cut may land while we are still writing.
    for (gsize i = 0; i < texts.size() && !c.closed() &&
                      soup_websocket_connection_get_state(c.ws()) == SOUP_WEBSOCKET_STATE_OPEN;
         i++)
      c.send_text(texts[i]);
    g_assert_true(c.wait_closed());
    g_assert_cmpuint(soup_websocket_connection_get_close_code(c.ws()), !=,
                     SOUP_WEBSOCKET_CLOSE_NORMAL);
    g_assert_cmpuint(server.bytes_read(session), ==, cs.cut);
    g_assert_true(server.received_audio(session) == audio_of_first(cs.frames));
    session++;
  }
  // Sessions after the first N are not cut.
  Client c;
  open(c, server);
  for (const std::string &text : texts)
    c.send_text(text);
  c.send(JObj().str("type", "input_audio_buffer.clear"));
  c.until("input_audio_buffer.cleared");
  g_assert_false(c.closed());
  g_assert_true(server.received_audio(session) == audio_of_first(8));
  g_assert_cmpuint(server.bytes_read(session), >, starts[8]);
  server.stop();
}

// Faults::drop_after_ms: an abrupt cut that long after the session started,
// for the first Faults::sessions sessions only.
void test_drop_after_ms() {
  Server server;
  server.start();
  Faults f;
  f.drop_after_ms = 300;
  f.sessions = 1;
  server.set_faults(f);
  const gint64 t0 = g_get_monotonic_time();
  Client c;
  open(c, server);
  g_assert_true(c.wait_closed());
  g_assert_cmpint(g_get_monotonic_time() - t0, >=, 300 * 1000);
  g_assert_cmpuint(soup_websocket_connection_get_close_code(c.ws()), !=,
                   SOUP_WEBSOCKET_CLOSE_NORMAL);
  Client later;
  open(later, server);
  sleep_ms(500);
  later.send(JObj().str("type", "input_audio_buffer.clear"));
  later.until("input_audio_buffer.cleared");
  g_assert_false(later.closed());
  server.stop();
}

// Faults::refuse_assistant_items: the error Yandex reportedly sends for a
// replayed assistant message; user items still work.
void test_refuse_assistant_items() {
  Server server;
  server.start();
  auto assistant_item = [](Client &c) {
    c.send(JObj().str("type", "conversation.item.create").str("event_id", "asst1").obj(
        "item", JObj()
                    .str("id", "item_asst")
                    .str("type", "message")
                    .str("role", "assistant")
                    .arr("content",
                         JArr().add(JObj().str("type", "output_text").str("text", "Hi")))));
  };
  Faults f;
  f.refuse_assistant_items = true;
  server.set_faults(f);
  {
    Client c;
    open(c, server);
    assistant_item(c);
    Event err = c.next();
    ASSERT_STR(err.type(), ==, "error");
    ASSERT_STR(err.str("error.type"), ==, "invalid_request_error");
    ASSERT_STR(err.str("error.code"), ==, "invalid_value");
    ASSERT_STR(err.str("error.message"), ==, "Assistant messages are not supported yet");
    ASSERT_STR(err.str("error.param"), ==, "item.role");
    ASSERT_STR(err.str("error.event_id"), ==, "asst1");
    c.send(JObj().str("type", "conversation.item.retrieve").str("item_id", "item_asst"));
    ASSERT_STR(c.next().str("error.code"), ==, "item_not_found");
    send_user_text(c, "?");
    Event added = c.next();
    ASSERT_STR(added.type(), ==, "conversation.item.added");
    ASSERT_STR(added.str("item.role"), ==, "user");
  }
  server.set_faults(Faults{});
  Client c;
  open(c, server);
  assistant_item(c);
  Event added = c.next();
  ASSERT_STR(added.type(), ==, "conversation.item.added");
  ASSERT_STR(added.str("item.role"), ==, "assistant");
  server.stop();
}

// Stops a server mid-answer, after `then` ran, and checks the stop is prompt.
template <typename Then>
void stop_mid_answer(Config cfg, Then then) {
  cfg.pace_ms = 100;
  auto server = std::make_unique<Server>(cfg);
  server->start();
  Client c;
  open(c, *server);
  c.send(JObj().str("type", "response.create"));
  c.until("response.output_audio.delta");
  then(c, *server);
  const gint64 t0 = g_get_monotonic_time();
  server.reset();  // destructor stops
  g_assert_cmpint(g_get_monotonic_time() - t0, <, 1000 * 1000);
  g_assert_true(c.wait_closed());
}

void test_stop_is_prompt() {
  stop_mid_answer(Config{}, [](Client &, Server &) {});
}

// Stopping stays prompt and leak-free with every timer armed: a session
// throttled by read_speed, waiting for a byte limit, a drop and its end of
// life, with an answer in progress.
void test_stop_with_pending_faults() {
  Config cfg;
  cfg.faults.read_speed = 1.0;
  cfg.faults.drop_after_bytes = guint64(1) << 30;
  cfg.faults.drop_after_ms = 60000;
  cfg.faults.session_lifetime_ms = 60000;
  stop_mid_answer(cfg, [](Client &c, Server &server) {
    append_chunked(c, tone(10000));
    g_assert_true(server.wait_for_client_event("input_audio_buffer.append", 2, kTimeoutMs));
  });
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  // The test log handler prints debug messages, and libsoup logs every frame.
  static GLogFunc test_handler = g_log_set_default_handler(
      [](const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data) {
        if (!(level & G_LOG_LEVEL_DEBUG))
          test_handler(domain, level, message, data);
      },
      nullptr);
  g_test_add_func("/emulator/handshake", test_handshake);
  g_test_add_func("/emulator/session-rate-limit", test_session_rate_limit);
  g_test_add_func("/emulator/session-update", test_session_update);
  g_test_add_func("/emulator/vad-turn", test_vad_turn);
  g_test_add_func("/emulator/manual-commit", test_manual_commit);
  g_test_add_func("/emulator/cancel", test_cancel);
  g_test_add_func("/emulator/barge-in", test_barge_in);
  g_test_add_func("/emulator/errors", test_errors);
  g_test_add_func("/emulator/function-calls-truncate", test_function_calls_and_truncate);
  g_test_add_func("/emulator/faults/deltas", test_fault_deltas);
  g_test_add_func("/emulator/faults/drops", test_fault_drops);
  g_test_add_func("/emulator/faults/stop-reading", test_stop_reading);
  g_test_add_func("/emulator/faults/lazy-reading", test_lazy_reading);
  g_test_add_func("/emulator/faults/drop-after-bytes", test_drop_after_bytes);
  g_test_add_func("/emulator/faults/drop-after-ms", test_drop_after_ms);
  g_test_add_func("/emulator/faults/refuse-assistant-items", test_refuse_assistant_items);
  g_test_add_func("/emulator/faults/lazy-reading-barrier", test_lazy_reading_barrier);
  g_test_add_func("/emulator/faults/lazy-reading-stop-reading", test_lazy_reading_stop_reading);
  g_test_add_func("/emulator/records", test_records);
  g_test_add_func("/emulator/answer-signature", test_answer_signature);
  g_test_add_func("/emulator/vad/blip", test_vad_blip);
  g_test_add_func("/emulator/vad/speech", test_vad_speech);
  g_test_add_func("/emulator/vad/prefix-padding", test_vad_prefix_padding);
  g_test_add_func("/emulator/vad/dip", test_vad_dip);
  g_test_add_func("/emulator/rates/accept", test_rate_accept);
  g_test_add_func("/emulator/rates/serve", test_rate_serve);
  g_test_add_func("/emulator/rates/refuse", test_rate_refuse);
  g_test_add_func("/emulator/rates/refuse-barrier", test_rate_refuse_barrier);
  g_test_add_func("/emulator/stop", test_stop_is_prompt);
  g_test_add_func("/emulator/stop-with-pending-faults", test_stop_with_pending_faults);
  return g_test_run();
}
