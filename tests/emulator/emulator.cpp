// Realtime API emulator: HTTP/WebSocket handshake (Server::Impl), one
// Session per connection (client events -> server events), and a Response
// per answer, paced with GSources on the server thread.
#include "emulator.h"

#include <libsoup/soup.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "json-util.h"
#include "pausable-stream.h"
#include "synth.h"
#include "vad.h"

namespace yrt::emu {

namespace {

constexpr guint64 kMaxIncomingPayload = 16 * 1024 * 1024;
constexpr gint64 kMinCommitMs = 100;
constexpr guint kMinRate = 8000;
constexpr guint kMaxRate = 192000;
constexpr guint kDrainTimeoutMs = 2000;
constexpr guint kDefaultInRate = 24000;
constexpr guint kDefaultOutRate = 44100;

// The rate a session starts at: the rule's for Serve and Refuse.
guint initial_rate(const RateRule &rule, guint fallback) {
  return rule.policy == RatePolicy::Accept || rule.rate == 0 ? fallback : rule.rate;
}

std::string ascii_lower(std::string s) {
  for (char &c : s)
    c = g_ascii_tolower(c);
  return s;
}

// "hi there" -> {"hi ", "there"}: the deltas concatenate to the text.
std::vector<std::string> split_words(const std::string &text) {
  std::vector<std::string> words;
  std::string cur;
  for (char c : text) {
    cur += c;
    if (c == ' ') {
      words.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty())
    words.push_back(cur);
  return words;
}

// Strict standard base64 (g_base64_decode() accepts anything).
bool decode_base64(const std::string &in, std::vector<guint8> *out) {
  out->clear();
  if (in.empty())
    return true;
  if (in.size() % 4 != 0)
    return false;
  gsize pad = 0;
  for (gsize i = 0; i < in.size(); i++) {
    const char c = in[i];
    if (c == '=') {
      if (i + 2 < in.size())
        return false;
      pad++;
    } else if (pad || !(g_ascii_isalnum(c) || c == '+' || c == '/')) {
      return false;
    }
  }
  gsize len = 0;
  guchar *data = g_base64_decode(in.c_str(), &len);
  out->assign(data, data + len);
  g_free(data);
  return true;
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

std::string encode_base64(const guint8 *data, gsize len) {
  gchar *s = g_base64_encode(data, len);
  std::string out(s);
  g_free(s);
  return out;
}

std::vector<guint8> to_le_bytes(const std::vector<gint16> &pcm) {
  std::vector<guint8> out(pcm.size() * 2);
  for (gsize i = 0; i < pcm.size(); i++) {
    const guint16 v = static_cast<guint16>(pcm[i]);
    out[2 * i] = static_cast<guint8>(v & 0xff);
    out[2 * i + 1] = static_cast<guint8>(v >> 8);
  }
  return out;
}

std::vector<gint16> from_le_bytes(const std::vector<guint8> &bytes) {
  std::vector<gint16> out(bytes.size() / 2);
  for (gsize i = 0; i < out.size(); i++)
    out[i] = static_cast<gint16>(bytes[2 * i] | (bytes[2 * i + 1] << 8));
  return out;
}

// Byte ranges of the audio deltas. With `odd`, sizes alternate between one
// byte more and one byte less than a delta, so samples straddle deltas.
std::vector<std::pair<gsize, gsize>> delta_ranges(gsize total, gsize delta_bytes, bool odd) {
  std::vector<std::pair<gsize, gsize>> ranges;
  bool longer = true;
  for (gsize pos = 0; pos < total;) {
    gsize n = delta_bytes;
    if (odd) {
      n = longer ? delta_bytes + 1 : delta_bytes - 1;
      longer = !longer;
    }
    n = std::min(n, total - pos);
    ranges.emplace_back(pos, n);
    pos += n;
  }
  return ranges;
}

JObj error_body(guint status, const std::string &message) {
  return std::move(JObj().obj("error", JObj().num("code", status).str("message", message)));
}

JsonNode *object_node(JObj &obj) {
  JsonNode *node = json_node_new(JSON_NODE_OBJECT);
  json_node_take_object(node, obj.release());
  return node;
}

JsonNode *default_session(const std::string &id, const std::string &model, guint in_rate,
                          guint out_rate) {
  JObj turn_detection;
  turn_detection.str("type", "server_vad")
      .real("threshold", 0.5)
      .num("prefix_padding_ms", 300)
      .num("silence_duration_ms", 400)
      .boolean("create_response", true)
      .boolean("interrupt_response", true);
  JObj input;
  input.obj("format", JObj().str("type", "audio/pcm").num("rate", in_rate))
      .obj("turn_detection", turn_detection);
  JObj output;
  output.obj("format", JObj().str("type", "audio/pcm").num("rate", out_rate)).str("voice", "marina");
  JObj session;
  session.str("id", id)
      .str("object", "realtime.session")
      .str("type", "realtime")
      .str("model", model)
      .arr("output_modalities", JArr().add_str("audio"))
      .obj("audio", JObj().obj("input", input).obj("output", output))
      .str("instructions", "")
      .arr("tools", JArr());
  return object_node(session);
}

// Fills turn_detection defaults the way a server would for a partial object.
void fill_turn_detection_defaults(JsonObject *td) {
  if (!json_object_has_member(td, "threshold"))
    json_object_set_double_member(td, "threshold", 0.5);
  if (!json_object_has_member(td, "prefix_padding_ms"))
    json_object_set_int_member(td, "prefix_padding_ms", 300);
  if (!json_object_has_member(td, "silence_duration_ms"))
    json_object_set_int_member(td, "silence_duration_ms", 400);
  if (!json_object_has_member(td, "create_response"))
    json_object_set_boolean_member(td, "create_response", TRUE);
  if (!json_object_has_member(td, "interrupt_response"))
    json_object_set_boolean_member(td, "interrupt_response", TRUE);
}

struct Invalid {
  std::string param;
  std::string message;
};

bool check_format(JsonObject *dir, const std::string &param, Invalid *bad) {
  JsonNode *fmt_node = json_object_get_member(dir, "format");
  if (!fmt_node)
    return true;
  JsonObject *fmt = get_obj(dir, "format");
  if (!fmt) {
    *bad = {param + ".format", "format must be an object"};
    return false;
  }
  std::string type;
  if (json_object_has_member(fmt, "type") && (!get_str(fmt, "type", &type) || type != "audio/pcm")) {
    *bad = {param + ".format.type", "Only audio/pcm is supported"};
    return false;
  }
  double rate = 0;
  if (json_object_has_member(fmt, "rate") &&
      (!get_number(fmt, "rate", &rate) || rate != std::floor(rate) || rate < kMinRate ||
       rate > kMaxRate)) {
    *bad = {param + ".format.rate", "rate must be an integer between 8000 and 192000"};
    return false;
  }
  return true;
}

bool check_turn_detection(JsonObject *input, Invalid *bad) {
  const std::string param = "session.audio.input.turn_detection";
  if (!json_object_has_member(input, "turn_detection") || has_null(input, "turn_detection"))
    return true;
  JsonObject *td = get_obj(input, "turn_detection");
  std::string type;
  if (!td || !get_str(td, "type", &type) || (type != "server_vad" && type != "semantic_vad")) {
    *bad = {param, "turn_detection must be null or {type: server_vad|semantic_vad, ...}"};
    return false;
  }
  fill_turn_detection_defaults(td);
  double v = 0;
  if (!get_number(td, "threshold", &v) || v < 0.0 || v > 1.0) {
    *bad = {param + ".threshold", "threshold must be a number in [0, 1]"};
    return false;
  }
  for (const char *key : {"prefix_padding_ms", "silence_duration_ms"}) {
    if (!get_number(td, key, &v) || v < 0 || v > 60000) {
      *bad = {param + "." + key, std::string(key) + " must be a number of milliseconds"};
      return false;
    }
  }
  return true;
}

bool check_modalities(JsonArray *mods, const std::string &param, Invalid *bad) {
  if (!mods || json_array_get_length(mods) == 0) {
    *bad = {param, "output_modalities must be a non-empty array"};
    return false;
  }
  for (guint i = 0; i < json_array_get_length(mods); i++) {
    JsonNode *n = json_array_get_element(mods, i);
    const char *m = JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
                        ? json_node_get_string(n)
                        : "";
    if (strcmp(m, "audio") != 0 && strcmp(m, "text") != 0) {
      *bad = {param, "output_modalities may only contain \"text\" and \"audio\""};
      return false;
    }
  }
  return true;
}

// Validates a merged session object (and fills defaults into it).
bool check_session(JsonObject *s, Invalid *bad) {
  std::string str;
  if (json_object_has_member(s, "type") && (!get_str(s, "type", &str) || str != "realtime")) {
    *bad = {"session.type", "Only sessions of type \"realtime\" are supported"};
    return false;
  }
  if (json_object_has_member(s, "instructions") && !get_str(s, "instructions", &str)) {
    *bad = {"session.instructions", "instructions must be a string"};
    return false;
  }
  if (!check_modalities(get_arr(s, "output_modalities"), "session.output_modalities", bad))
    return false;
  if (json_object_has_member(s, "tools") && !get_arr(s, "tools")) {
    *bad = {"session.tools", "tools must be an array"};
    return false;
  }
  JsonObject *audio = get_obj(s, "audio");
  JsonObject *input = get_obj(audio, "input");
  JsonObject *output = get_obj(audio, "output");
  if (!input || !output) {
    *bad = {"session.audio", "audio.input and audio.output must be objects"};
    return false;
  }
  return check_format(input, "session.audio.input", bad) &&
         check_format(output, "session.audio.output", bad) && check_turn_detection(input, bad);
}

guint rate_of(JsonObject *session, const char *dir, guint fallback) {
  double rate = 0;
  JsonObject *fmt = get_obj(get_obj(get_obj(session, "audio"), dir), "format");
  return get_number(fmt, "rate", &rate) ? static_cast<guint>(rate) : fallback;
}

bool array_has(JsonArray *arr, const char *value) {
  for (guint i = 0; arr && i < json_array_get_length(arr); i++) {
    JsonNode *n = json_array_get_element(arr, i);
    if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING &&
        strcmp(json_node_get_string(n), value) == 0)
      return true;
  }
  return false;
}

// Splits a UTF-8 string roughly in half on a character boundary.
std::pair<std::string, std::string> split_utf8_half(const std::string &s) {
  const glong chars = g_utf8_strlen(s.c_str(), static_cast<gssize>(s.size()));
  const char *mid = g_utf8_offset_to_pointer(s.c_str(), chars / 2);
  const gsize at = static_cast<gsize>(mid - s.c_str());
  return {s.substr(0, at), s.substr(at)};
}

}  // namespace

class Session;

// ---------------------------------------------------------------------------
// Server::Impl: shared records (guarded by `mu`) and the server thread.
// ---------------------------------------------------------------------------
struct Server::Impl {
  explicit Impl(Config c)
      : cfg(std::move(c)), faults(cfg.faults), faulty_sessions_left(cfg.faults.sessions) {}
  ~Impl();

  const Config cfg;

  // Shared with the public API; guarded by mu.
  mutable std::mutex mu;
  mutable std::condition_variable cv;
  Faults faults;
  guint faulty_sessions_left = 0;  // for Faults::sessions
  std::deque<TurnScript> turns;
  std::vector<ClientEvent> client_events;
  std::map<std::string, guint> client_counts;
  std::vector<std::string> server_events;
  std::map<std::string, guint> server_counts;
  std::vector<std::string> session_updates;
  std::vector<guint8> sent_audio;
  std::vector<guint8> received_audio;
  struct SessionRecord {
    std::vector<guint8> audio;  // every append it handled
    guint64 bytes_read = 0;     // at the gate, until a cut
    guint in_rate = 0;          // rates in effect (latest)
    guint out_rate = 0;
  };
  std::vector<SessionRecord> per_session;  // index: session number - 1
  std::vector<CommittedTurn> commits;
  std::vector<AnswerRecord> answer_records;
  guint response_serial = 0;  // server-wide, for AnswerRecord::signature
  guint refused_updates = 0;  // session.updates refused by a rate rule
  guint opened = 0;
  guint active = 0;
  std::string auth_scheme;
  std::string path_query;
  std::vector<std::pair<std::string, std::string>> request_headers;  // of the last handshake
  guint16 port = 0;
  bool ready = false;    // the thread finished setting up (successfully or not)
  bool running = false;  // the loop runs and accepts posted work
  GMainContext *ctx = nullptr;

  std::mutex lifecycle;  // serialises start()/stop()
  // Owned by the server thread.
  std::thread thread;
  GMainLoop *loop = nullptr;
  SoupServer *soup = nullptr;
  std::list<std::unique_ptr<Session>> sessions;
  std::atomic<guint> live_connections{0};

  // Records (any thread).
  void record_client(ClientEvent ev);
  void count_client(const std::string &type);  // once handled: what waits see
  void record_server(const std::string &type);
  void record_sent_audio(const guint8 *data, gsize len);
  void record_received_audio(guint session, const std::vector<guint8> &pcm);
  void record_bytes_read(guint session, guint64 bytes);
  void record_commit(CommittedTurn turn);
  guint record_answer_start(guint session, const std::string &response_id,
                            const std::string &user_item_id);
  void record_answer_end(guint session, const std::string &response_id, const char *status);
  void record_session_update(std::string json);
  void record_rates(guint session, guint in_rate, guint out_rate);
  void record_refused_update();
  Faults current_faults() const;
  Faults faults_for_new_session();
  bool take_drop_mid_answer();
  TurnScript pop_turn();

  // Server thread.
  void run();
  guint16 setup_server();
  void teardown();
  void drain_connections();
  bool post_locked(std::function<void()> fn);  // requires mu held
  void post(std::function<void()> fn);
  void handle_request(SoupServerMessage *msg, const char *path, GHashTable *query);
  bool authorized(const char *header, const std::string &scheme,
                  const std::string &credential) const;
  void prepare_upgrade(SoupServerMessage *msg, const char *model);
  void accept_websocket(SoupServerMessage *msg);
  void session_closed(Session *session);
  void apply_faults_to_sessions();
};

// ---------------------------------------------------------------------------
// Response: the remaining steps of one answer plus what was already sent
// (needed to close it properly when cancelled).
// ---------------------------------------------------------------------------
// A one-shot GSource owned by its user, destroyed with it, so its callback
// never outlives the owner. Its deadline is absolute: a g_timeout_source
// counts from the loop's cached time, which lags behind during a long
// dispatch (a burst of client frames) and would fire early.
class Timer {
 public:
  Timer() = default;
  Timer(const Timer &) = delete;
  Timer &operator=(const Timer &) = delete;
  ~Timer() { cancel(); }

  // Runs `fn` once after `ms` (0: as soon as the loop is free), replacing
  // any pending run.
  void start(guint ms, std::function<void()> fn) {
    cancel();
    fn_ = std::move(fn);
    static GSourceFuncs funcs = {
        nullptr, nullptr,
        [](GSource *, GSourceFunc callback, gpointer data) -> gboolean { return callback(data); },
        nullptr, nullptr, nullptr};
    source_ = g_source_new(&funcs, sizeof(GSource));
    g_source_set_ready_time(source_, ms ? g_get_monotonic_time() + gint64(ms) * 1000 : 0);
    g_source_set_priority(source_, G_PRIORITY_DEFAULT);
    g_source_set_callback(source_, &Timer::fire, this, nullptr);
    g_source_attach(source_, g_main_context_get_thread_default());
  }
  void cancel() {
    if (!source_)
      return;
    g_source_destroy(source_);
    g_source_unref(source_);
    source_ = nullptr;
  }

 private:
  static gboolean fire(gpointer self) {
    auto *t = static_cast<Timer *>(self);
    g_source_unref(t->source_);
    t->source_ = nullptr;
    std::function<void()> fn = std::move(t->fn_);
    fn();  // may restart the timer or destroy its owner
    return G_SOURCE_REMOVE;
  }

  GSource *source_ = nullptr;
  std::function<void()> fn_;
};

struct Step {
  guint delay_ms = 0;  // wait this long before running
  bool yield = false;  // let other sources (client frames) run first
  std::function<void()> run;
};

struct Response {
  ~Response() { stop_timer(); }
  void stop_timer() {
    if (timer) {
      g_source_destroy(timer);
      g_source_unref(timer);
      timer = nullptr;
    }
  }

  std::string id;
  guint serial = 0;  // server-wide k (AnswerRecord::signature)
  std::deque<Step> steps;
  GSource *timer = nullptr;
  bool waited = false;  // the front step's wait is over
  std::vector<std::string> modalities;
  bool audio = false;
  bool drop_after_first_audio = false;
  // The assistant message, if any.
  std::string item_id;
  bool item_open = false;
  bool part_open = false;
  std::string text_sent;
  gsize audio_bytes_sent = 0;
  gint64 text_tokens = 0;
  std::vector<std::string> output;  // finished items as JSON text
};

struct Item {
  std::string type;
  std::string role;
  std::string json;
  gsize audio_bytes = 0;  // assistant audio sent for the item
  guint rate = 0;         // at this output rate
};

// ---------------------------------------------------------------------------
// Session: one WebSocket connection.
// ---------------------------------------------------------------------------
class Session {
 public:
  Session(Server::Impl &srv, guint number, SoupWebsocketConnection *ws, GIOStream *gate,
          GSocket *sock, const std::string &model);
  ~Session();
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  void start();
  void apply_faults(const Faults &f);
  void drop();      // abrupt: no close frame
  void shutdown();  // server stopping: close frame 1001, then the socket

 private:
  using Handler = void (Session::*)(JsonObject *ev, const std::string &event_id);
  static const std::map<std::string, Handler> &handlers();

  static void on_message_cb(SoupWebsocketConnection *, gint type, GBytes *message, gpointer self);
  static void on_read_limit_cb(gpointer self);
  static void on_closed_cb(SoupWebsocketConnection *, gpointer self);
  static gboolean on_step_timer(gpointer self);

  // Reading: the inbox, lazy reading and cuts.
  guint index() const { return number_ - 1; }
  void handle_inbox();
  void pace_input(gsize samples);
  void update_gate();
  void on_read_limit();
  void record_bytes_read();
  void abandon_response();

  // Client events.
  void on_frame(gint type, GBytes *message);
  void on_text(const std::string &text);
  void record(const std::string &type, const std::string &json);
  void on_session_update(JsonObject *ev, const std::string &eid);
  bool apply_rate_rules(JsonObject *update, JsonObject *merged, const std::string &eid);
  void on_append(JsonObject *ev, const std::string &eid);
  void on_commit(JsonObject *ev, const std::string &eid);
  void on_clear(JsonObject *ev, const std::string &eid);
  void on_item_create(JsonObject *ev, const std::string &eid);
  void on_item_truncate(JsonObject *ev, const std::string &eid);
  void on_item_delete(JsonObject *ev, const std::string &eid);
  void on_item_retrieve(JsonObject *ev, const std::string &eid);
  void on_response_create(JsonObject *ev, const std::string &eid);
  void on_response_cancel(JsonObject *ev, const std::string &eid);

  // Server events.
  JObj event(const char *type);
  void send(JObj &ev);
  void send(JObj &&ev) { send(ev); }
  void send_junk(guint k);
  void send_extra_events(const std::string &item_id, gint64 audio_end_ms);
  void send_error(const std::string &code, const std::string &message, const char *param,
                  const std::string &client_event_id);
  bool can_send() const;

  // Session configuration.
  guint in_rate() const {
    return rate_of(json_node_get_object(session_), "input", kDefaultInRate);
  }
  guint out_rate() const {
    return rate_of(json_node_get_object(session_), "output", kDefaultOutRate);
  }
  JsonObject *turn_detection() const;
  bool td_flag(const char *key) const;
  void configure_vad();

  // Input audio and turns.
  void feed_audio(const std::vector<guint8> &bytes);
  void on_speech_started(const Vad::Edge &edge);
  void on_speech_stopped(gint64 at_ms);
  void trim_idle_buffer();
  void commit_buffer(bool respond);
  void begin_user_turn();
  TurnScript take_script();
  void fill_defaults(TurnScript *script) const;
  std::string next_id(const char *prefix);
  void register_item(const std::string &id, Item item, JsonObject *json);
  void add_item(const std::string &id, Item item, JsonObject *json);

  // Responses.
  void start_response(JsonObject *params);
  void plan_calls(const TurnScript &script);
  void plan_call(const FunctionCallScript &call, gint64 index);
  void plan_answer(const TurnScript &script);
  void plan_audio_and_text(const std::vector<guint8> &pcm, const std::vector<std::string> &words,
                           const Faults &faults);
  void send_audio_delta(const std::vector<guint8> &chunk);
  JObj response_object(const char *status) const;
  JObj assistant_item(const char *status) const;
  JObj usage() const;
  void pump();
  void arm_step_timer(guint delay_ms);
  void finish_response();
  void cancel_response(const char *reason);
  void end_response(const char *status);
  void close_open_parts(bool complete);
  void expire();

  Server::Impl &srv_;
  const guint number_;
  SoupWebsocketConnection *ws_;
  GIOStream *gate_;
  GSocket *sock_;
  JsonNode *session_;
  const gint64 started_us_;
  bool dead_ = false;     // dropped or shutting down: no more events
  bool closing_ = false;  // orderly close in progress (session expired)
  guint events_handled_ = 0;
  Faults faults_;
  Timer lifetime_timer_;  // Faults::session_lifetime_ms
  std::map<std::string, guint> counters_;

  // Frames read but not yet handled: handled strictly in order.
  std::deque<std::pair<gint, std::shared_ptr<GBytes>>> inbox_;
  bool throttled_ = false;      // Faults::read_speed: ahead of the clock, wait
  gint64 first_append_us_ = 0;  // when the first append was handled
  double received_ms_ = 0;      // audio handled, at the input rate of its time
  bool limit_reached_ = false;  // Faults::drop_after_bytes: read them all
  Timer pace_timer_;            // ends throttled_
  Timer cut_timer_;             // drop once the read frames are handled
  Timer drop_timer_;            // Faults::drop_after_ms

  bool discard_audio_ = false;  // RatePolicy::Refuse refused an update: appends are dropped

  Vad vad_;
  std::vector<gint16> buffer_;  // uncommitted input audio
  std::string speech_item_;     // item id announced by speech_started
  std::string last_user_item_;  // latest user item committed or created
  guint user_turns_ = 0;
  bool has_pending_script_ = false;
  TurnScript pending_script_;

  std::map<std::string, Item> items_;
  std::vector<std::string> order_;
  std::set<std::string> known_calls_;
  std::unique_ptr<Response> active_;
};

// ----- Session: lifecycle ---------------------------------------------------

Session::Session(Server::Impl &srv, guint number, SoupWebsocketConnection *ws, GIOStream *gate,
                 GSocket *sock, const std::string &model)
    : srv_(srv),
      number_(number),
      ws_(SOUP_WEBSOCKET_CONNECTION(g_object_ref(ws))),
      gate_(G_IO_STREAM(g_object_ref(gate))),
      sock_(sock ? G_SOCKET(g_object_ref(sock)) : nullptr),
      session_(default_session("sess_" + std::to_string(number), model,
                               initial_rate(srv.cfg.input_rate_rule, kDefaultInRate),
                               initial_rate(srv.cfg.output_rate_rule, kDefaultOutRate))),
      started_us_(g_get_monotonic_time()) {
  g_signal_connect(ws_, "message", G_CALLBACK(on_message_cb), this);
  g_signal_connect(ws_, "closed", G_CALLBACK(on_closed_cb), this);
  configure_vad();
}

Session::~Session() {
  abandon_response();
  yrt_pausable_stream_set_read_limit(gate_, 0, nullptr, nullptr);
  g_signal_handlers_disconnect_by_data(ws_, this);
  g_object_unref(ws_);  // disposing closes the stream asynchronously
  g_object_unref(gate_);
  if (sock_)
    g_object_unref(sock_);
  json_node_unref(session_);
}

void Session::start() {
  srv_.record_rates(index(), in_rate(), out_rate());
  send(event("session.created").node("session", session_));
  apply_faults(srv_.faults_for_new_session());
}

void Session::apply_faults(const Faults &f) {
  faults_ = f;
  if (dead_)
    return;
  const gint64 elapsed_ms = (g_get_monotonic_time() - started_us_) / 1000;
  auto left = [elapsed_ms](guint total_ms) {
    return static_cast<guint>(std::max<gint64>(0, total_ms - elapsed_ms));
  };
  if (f.session_lifetime_ms && !closing_)
    lifetime_timer_.start(left(f.session_lifetime_ms), [this] { expire(); });
  else
    lifetime_timer_.cancel();
  if (f.drop_after_ms)
    drop_timer_.start(left(f.drop_after_ms), [this] { drop(); });
  else
    drop_timer_.cancel();
  yrt_pausable_stream_set_read_limit(gate_, f.drop_after_bytes,
                                     f.drop_after_bytes ? on_read_limit_cb : nullptr, this);
  limit_reached_ =
      f.drop_after_bytes && yrt_pausable_stream_get_bytes_read(gate_) >= f.drop_after_bytes;
  if (!f.drop_after_bytes)
    cut_timer_.cancel();
  if (f.read_speed <= 0 && throttled_) {
    throttled_ = false;
    pace_timer_.cancel();
  }
  handle_inbox();  // last: it may drop the session
}

// Like OpenAI at its maximum duration: an error event, then a normal close.
void Session::expire() {
  if (dead_ || closing_)
    return;
  send_error("session_expired",
             "Your session hit the maximum duration of " +
                 std::to_string(faults_.session_lifetime_ms) + " ms.",
             nullptr, "");
  abandon_response();
  closing_ = true;
  soup_websocket_connection_close(ws_, SOUP_WEBSOCKET_CLOSE_NORMAL, "session expired");
}

void Session::drop() {
  if (dead_)
    return;
  record_bytes_read();
  dead_ = true;
  abandon_response();
  inbox_.clear();
  pace_timer_.cancel();
  cut_timer_.cancel();
  drop_timer_.cancel();
  lifetime_timer_.cancel();
  // Reading must go on so the WebSocket notices the shutdown and emits "closed".
  yrt_pausable_stream_set_read_limit(gate_, 0, nullptr, nullptr);
  yrt_pausable_stream_set_paused(gate_, FALSE);
  if (sock_)
    g_socket_shutdown(sock_, TRUE, TRUE, nullptr);
  else
    soup_websocket_connection_close(ws_, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, nullptr);
}

void Session::shutdown() {
  if (soup_websocket_connection_get_state(ws_) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close(ws_, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "emulator stopped");
  drop();  // don't wait for the client's close frame
}

void Session::on_closed_cb(SoupWebsocketConnection *, gpointer self) {
  auto *s = static_cast<Session *>(self);
  s->srv_.session_closed(s);  // deletes s
}

void Session::on_message_cb(SoupWebsocketConnection *, gint type, GBytes *message, gpointer self) {
  auto *s = static_cast<Session *>(self);
  if (s->dead_ || s->closing_)
    return;
  s->inbox_.emplace_back(type, std::shared_ptr<GBytes>(g_bytes_ref(message), g_bytes_unref));
  s->handle_inbox();
}

// ----- Session: reading ---------------------------------------------------------

// Client events are handled strictly in order, so an event queued behind
// audio (a session.update barrier) is answered only after that audio was
// fed to the VAD.
void Session::handle_inbox() {
  while (!inbox_.empty() && !throttled_ && !dead_ && !closing_) {
    auto frame = std::move(inbox_.front());
    inbox_.pop_front();
    on_frame(frame.first, frame.second.get());
  }
  if (dead_)
    return;
  record_bytes_read();
  update_gate();
  if (limit_reached_ && inbox_.empty())
    on_read_limit();
}

// Faults::read_speed: once the audio handled runs ahead of the session's
// clock (time since its first append x speed), stop reading until the
// clock catches up.
void Session::pace_input(gsize samples) {
  const gint64 now = g_get_monotonic_time();
  if (!first_append_us_)
    first_append_us_ = now;
  received_ms_ += static_cast<double>(samples) * 1000.0 / in_rate();
  const double speed = faults_.read_speed;
  if (speed <= 0)
    return;
  const double clock_ms = static_cast<double>(now - first_append_us_) / 1000.0 * speed;
  const double ahead_ms = received_ms_ - clock_ms;
  if (ahead_ms <= 0)
    return;
  throttled_ = true;
  pace_timer_.start(static_cast<guint>(std::ceil(ahead_ms / speed)), [this] {
    throttled_ = false;
    handle_inbox();
  });
}

void Session::update_gate() {
  if (!dead_)
    yrt_pausable_stream_set_paused(gate_, faults_.stop_reading || throttled_);
}

// Called from inside the gate's read: drop later, once libsoup has delivered
// the frames completed by that read and they were handled.
void Session::on_read_limit_cb(gpointer self) {
  static_cast<Session *>(self)->on_read_limit();
}

void Session::on_read_limit() {
  limit_reached_ = true;
  cut_timer_.start(0, [this] {
    if (inbox_.empty())
      drop();
  });
}

void Session::record_bytes_read() {
  if (!dead_)
    srv_.record_bytes_read(index(), yrt_pausable_stream_get_bytes_read(gate_));
}

// ----- Session: client events -----------------------------------------------

const std::map<std::string, Session::Handler> &Session::handlers() {
  static const std::map<std::string, Handler> table = {
      {"session.update", &Session::on_session_update},
      {"input_audio_buffer.append", &Session::on_append},
      {"input_audio_buffer.commit", &Session::on_commit},
      {"input_audio_buffer.clear", &Session::on_clear},
      {"conversation.item.create", &Session::on_item_create},
      {"conversation.item.truncate", &Session::on_item_truncate},
      {"conversation.item.delete", &Session::on_item_delete},
      {"conversation.item.retrieve", &Session::on_item_retrieve},
      {"response.create", &Session::on_response_create},
      {"response.cancel", &Session::on_response_cancel},
  };
  return table;
}

void Session::on_frame(gint type, GBytes *message) {
  if (dead_ || closing_)
    return;
  if (type == SOUP_WEBSOCKET_DATA_BINARY) {
    record("(binary)", "");
    srv_.count_client("(binary)");
    send_error("invalid_event", "Binary frames are not supported; send JSON text events.",
               nullptr, "");
  } else {
    gsize len = 0;
    const char *data = static_cast<const char *>(g_bytes_get_data(message, &len));
    on_text(std::string(data ? data : "", len));
  }
  if (dead_ || closing_)
    return;
  events_handled_++;
  if (faults_.drop_after_client_events && events_handled_ >= faults_.drop_after_client_events)
    drop();
}

void Session::on_text(const std::string &text) {
  std::string parse_error;
  JsonNode *root = json_parse_object(text, &parse_error);
  if (!root) {
    record("(invalid json)", text);
    send_error("invalid_json", parse_error, nullptr, "");
    srv_.count_client("(invalid json)");
    return;
  }
  JsonObject *ev = json_node_get_object(root);
  std::string type, eid;
  get_str(ev, "event_id", &eid);
  const bool typed = get_str(ev, "type", &type);
  std::string recorded = text;
  if (!srv_.cfg.record_audio && type == "input_audio_buffer.append") {
    std::string audio = str_or(ev, "audio", "");
    recorded = JObj().str("type", type).str("event_id", eid).num("audio_chars",
                                                                   static_cast<gint64>(audio.size()))
                   .text();
  }
  const std::string recorded_type = typed ? type : "(no type)";
  record(recorded_type, recorded);
  auto it = typed ? handlers().find(type) : handlers().end();
  if (!typed)
    send_error("invalid_event", "The event has no string \"type\".", "type", eid);
  else if (it == handlers().end())
    send_error("unknown_event", "Unknown event type: " + type, "type", eid);
  else
    (this->*(it->second))(ev, eid);
  // Counted once handled, so a test that waits for the event also sees what
  // it changed (received audio, the stored session.update).
  srv_.count_client(recorded_type);
  json_node_unref(root);
}

void Session::record(const std::string &type, const std::string &json) {
  ClientEvent ev{type, json, g_get_monotonic_time()};
  if (srv_.cfg.on_client_event)
    srv_.cfg.on_client_event(ev);
  srv_.record_client(std::move(ev));
}

void Session::on_session_update(JsonObject *ev, const std::string &eid) {
  JsonObject *update = get_obj(ev, "session");
  if (!update) {
    send_error("invalid_value", "session must be an object", "session", eid);
    return;
  }
  JsonNode *update_node = json_object_get_member(ev, "session");
  srv_.record_session_update(json_text(update_node));

  JsonNode *next = json_deep_copy(session_);
  JsonObject *s = json_node_get_object(next);
  JsonObjectIter iter;
  const gchar *name;
  JsonNode *member;
  json_object_iter_init(&iter, update);
  while (json_object_iter_next(&iter, &name, &member)) {
    if (strcmp(name, "id") == 0 || strcmp(name, "object") == 0)
      continue;  // read-only
    JsonObject *dst = strcmp(name, "audio") == 0 ? get_obj(s, "audio") : nullptr;
    if (dst && JSON_NODE_HOLDS_OBJECT(member))
      json_merge(dst, json_node_get_object(member));
    else
      json_object_set_member(s, name, json_deep_copy(member));
  }
  Invalid bad;
  if (!check_session(s, &bad)) {
    json_node_unref(next);
    send_error("invalid_value", bad.message, bad.param.c_str(), eid);
    return;
  }
  if (!apply_rate_rules(update, s, eid)) {
    json_node_unref(next);
    return;
  }
  json_node_unref(session_);
  session_ = next;
  discard_audio_ = false;
  configure_vad();
  srv_.record_rates(index(), in_rate(), out_rate());
  send(event("session.updated").node("session", session_));
}

// Config::input_rate_rule / output_rate_rule on a valid update (`merged` is
// the session it would make). Serve: the served rate replaces the asked one.
// Refuse: another rate refuses the whole update; appends are then discarded
// until an update is applied. Returns false when refused.
bool Session::apply_rate_rules(JsonObject *update, JsonObject *merged, const std::string &eid) {
  const struct {
    const char *dir;
    const RateRule &rule;
    guint fallback;
  } dirs[] = {{"input", srv_.cfg.input_rate_rule, kDefaultInRate},
              {"output", srv_.cfg.output_rate_rule, kDefaultOutRate}};
  for (const auto &d : dirs) {
    const guint rate = initial_rate(d.rule, d.fallback);
    double asked = 0;
    if (d.rule.policy != RatePolicy::Refuse ||
        !get_number(get_obj(get_obj(get_obj(update, "audio"), d.dir), "format"), "rate", &asked) ||
        asked == rate)
      continue;
    const std::string param = std::string("session.audio.") + d.dir + ".format.rate";
    srv_.record_refused_update();  // before the error: a client may check it at once
    discard_audio_ = true;
    send_error("invalid_value",
               "Invalid '" + param + "': expected " + std::to_string(rate) + ", got " +
                   std::to_string(static_cast<guint>(asked)) + ".",
               param.c_str(), eid);
    return false;
  }
  for (const auto &d : dirs) {
    if (d.rule.policy != RatePolicy::Serve)
      continue;
    JsonObject *fmt = get_obj(get_obj(get_obj(merged, "audio"), d.dir), "format");
    if (fmt)  // check_session() made sure it is an object if present
      json_object_set_int_member(fmt, "rate", initial_rate(d.rule, d.fallback));
  }
  return true;
}

void Session::on_append(JsonObject *ev, const std::string &eid) {
  std::string audio;
  std::vector<guint8> pcm;
  if (!get_str(ev, "audio", &audio)) {
    send_error("invalid_value", "audio must be a base64 string", "audio", eid);
  } else if (!decode_base64(audio, &pcm)) {
    send_error("invalid_base64", "audio is not valid base64", "audio", eid);
  } else if (pcm.size() % 2 != 0) {
    send_error("invalid_audio_length",
               "audio must be whole 16-bit samples, got " + std::to_string(pcm.size()) + " bytes",
               "audio", eid);
  } else {
    if (!discard_audio_) {  // RatePolicy::Refuse: no audio until a valid update
      srv_.record_received_audio(index(), pcm);
      feed_audio(pcm);
    }
    pace_input(pcm.size() / 2);
  }
}

void Session::on_commit(JsonObject *, const std::string &eid) {
  const gint64 ms = static_cast<gint64>(buffer_.size()) * 1000 / in_rate();
  if (ms < kMinCommitMs) {
    send_error("input_audio_buffer_commit_empty",
               "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
               "audio, but buffer only has " +
                   std::to_string(ms) + "ms of audio.",
               nullptr, eid);
    return;
  }
  vad_.reset_speech();
  commit_buffer(false);  // a manual commit never creates a response by itself
}

void Session::on_clear(JsonObject *, const std::string &) {
  buffer_.clear();
  vad_.reset_speech();
  speech_item_.clear();
  send(event("input_audio_buffer.cleared"));
}

void Session::on_item_create(JsonObject *ev, const std::string &eid) {
  JsonObject *item = get_obj(ev, "item");
  std::string type, role, id, call_id;
  if (!item || !get_str(item, "type", &type)) {
    send_error("invalid_value", "item must be an object with a type", "item", eid);
    return;
  }
  if (type == "message") {
    get_str(item, "role", &role);
    if ((role != "user" && role != "assistant" && role != "system") || !get_arr(item, "content")) {
      send_error("invalid_value", "a message needs role user|assistant|system and content",
                 "item", eid);
      return;
    }
    if (role == "assistant" && faults_.refuse_assistant_items) {
      send_error("invalid_value", "Assistant messages are not supported yet", "item.role", eid);
      return;
    }
  } else if (type == "function_call_output" || type == "function_call") {
    if (!get_str(item, "call_id", &call_id)) {
      send_error("invalid_value", "call_id must be a string", "item.call_id", eid);
      return;
    }
    if (type == "function_call_output" && !known_calls_.count(call_id)) {
      send_error("call_id_not_found", "No function call with call_id " + call_id, "item.call_id",
                 eid);
      return;
    }
    known_calls_.insert(call_id);
  } else {
    send_error("invalid_value", "Unsupported item type: " + type, "item.type", eid);
    return;
  }
  if (!get_str(item, "id", &id))
    id = next_id("item");
  if (items_.count(id)) {
    send_error("invalid_value", "An item with id " + id + " already exists", "item.id", eid);
    return;
  }
  JsonNode *copy = json_deep_copy(json_object_get_member(ev, "item"));
  JsonObject *obj = json_node_get_object(copy);
  json_object_set_string_member(obj, "id", id.c_str());
  json_object_set_string_member(obj, "object", "realtime.item");
  json_object_set_string_member(obj, "status", "completed");
  add_item(id, Item{type, role, "", 0, 0}, obj);
  json_node_unref(copy);
  if (type == "message" && role == "user") {
    last_user_item_ = id;
    begin_user_turn();
  }
}

void Session::on_item_truncate(JsonObject *ev, const std::string &eid) {
  std::string id;
  double content_index = 0, end_ms = 0;
  get_str(ev, "item_id", &id);
  auto it = items_.find(id);
  if (it == items_.end()) {
    send_error("item_not_found", "Item " + id + " does not exist", "item_id", eid);
  } else if (it->second.role != "assistant" || it->second.rate == 0) {
    send_error("invalid_value", "Only assistant audio messages can be truncated", "item_id", eid);
  } else if (!get_number(ev, "content_index", &content_index) || content_index != 0) {
    send_error("invalid_value", "content_index must be 0", "content_index", eid);
  } else if (!get_number(ev, "audio_end_ms", &end_ms) || end_ms < 0) {
    send_error("invalid_value", "audio_end_ms must be a non-negative number", "audio_end_ms", eid);
  } else {
    Item &item = it->second;
    const gint64 sent_ms = std::llround((item.audio_bytes / 2) * 1000.0 / item.rate);
    const gint64 end = static_cast<gint64>(end_ms);
    if (end > sent_ms) {
      send_error("invalid_value",
                 "audio_end_ms " + std::to_string(end) + " exceeds the " +
                     std::to_string(sent_ms) + " ms of audio sent for item " + id,
                 "audio_end_ms", eid);
      return;
    }
    item.audio_bytes = static_cast<gsize>(end * item.rate / 1000) * 2;
    send(event("conversation.item.truncated")
             .str("item_id", id)
             .num("content_index", 0)
             .num("audio_end_ms", end));
  }
}

void Session::on_item_delete(JsonObject *ev, const std::string &eid) {
  std::string id;
  get_str(ev, "item_id", &id);
  if (!items_.erase(id)) {
    send_error("item_not_found", "Item " + id + " does not exist", "item_id", eid);
    return;
  }
  order_.erase(std::remove(order_.begin(), order_.end(), id), order_.end());
  send(event("conversation.item.deleted").str("item_id", id));
}

void Session::on_item_retrieve(JsonObject *ev, const std::string &eid) {
  std::string id;
  get_str(ev, "item_id", &id);
  auto it = items_.find(id);
  if (it == items_.end()) {
    send_error("item_not_found", "Item " + id + " does not exist", "item_id", eid);
    return;
  }
  JsonNode *item = json_parse_any(it->second.json);
  send(event("conversation.item.retrieved").node("item", item));
  if (item)
    json_node_unref(item);
}

void Session::on_response_create(JsonObject *ev, const std::string &eid) {
  if (active_) {
    send_error("conversation_already_has_active_response",
               "Conversation already has an active response in progress: " + active_->id +
                   ". Wait until the response is finished before creating a new one.",
               nullptr, eid);
    return;
  }
  JsonObject *params = get_obj(ev, "response");
  JsonArray *mods = get_arr(params, "output_modalities");
  Invalid bad;
  if (mods && !check_modalities(mods, "response.output_modalities", &bad)) {
    send_error("invalid_value", bad.message, bad.param.c_str(), eid);
    return;
  }
  start_response(params);
}

void Session::on_response_cancel(JsonObject *ev, const std::string &eid) {
  std::string id;
  const bool named = get_str(ev, "response_id", &id);
  if (!active_ || (named && id != active_->id)) {
    send_error("response_cancel_not_active", "Cancellation failed: no active response found",
               nullptr, eid);
    return;
  }
  cancel_response("client_cancelled");
}

// ----- Session: server events -------------------------------------------------

JObj Session::event(const char *type) {
  JObj ev;
  ev.str("event_id", next_id("event")).str("type", type);
  return ev;
}

bool Session::can_send() const {
  return !dead_ && soup_websocket_connection_get_state(ws_) == SOUP_WEBSOCKET_STATE_OPEN;
}

void Session::send(JObj &ev) {
  if (!can_send())
    return;
  srv_.record_server(str_or(ev.get(), "type", ""));
  soup_websocket_connection_send_text(ws_, ev.text().c_str());
}

void Session::send_error(const std::string &code, const std::string &message, const char *param,
                         const std::string &client_event_id) {
  JObj err;
  err.str("type", "invalid_request_error").str("code", code).str("message", message);
  if (param)
    err.str("param", param);
  else
    err.null("param");
  if (client_event_id.empty())
    err.null("event_id");
  else
    err.str("event_id", client_event_id);
  send(event("error").obj("error", err));
}

// Fault injection: things a client must survive between real events.
void Session::send_junk(guint k) {
  if (!can_send())
    return;
  switch (k % 3) {
    case 0:
      send(event("yandex.unknown_event").obj("payload", JObj().num("sequence", k)));
      break;
    case 1:
      srv_.record_server("(garbage)");
      soup_websocket_connection_send_text(ws_, "}{ this is not JSON");
      break;
    default: {
      static const guint8 junk[] = {0xde, 0xad, 0xbe, 0xef, 0x00, 0xff};
      srv_.record_server("(binary)");
      soup_websocket_connection_send_binary(ws_, junk, sizeof(junk));
      break;
    }
  }
}

// Faults::extra_events: GA events the emulator does not otherwise send, with
// the fields OpenAI documents, about the user item just committed.
void Session::send_extra_events(const std::string &item, gint64 audio_end_ms) {
  const std::string response = next_id("resp");
  const std::string mcp_item = next_id("mcp");
  for (const std::string &type : faults_.extra_events) {
    JObj ev = event(type.c_str());
    if (type == "input_audio_buffer.timeout_triggered")
      ev.num("audio_start_ms", 0).num("audio_end_ms", audio_end_ms).str("item_id", item);
    else if (type == "conversation.item.input_audio_transcription.failed")
      ev.str("item_id", item).num("content_index", 0).obj("error", JObj()
          .str("type", "transcription_error").str("code", "audio_unintelligible")
          .str("message", "The audio could not be transcribed.").null("param"));
    else if (type == "conversation.item.input_audio_transcription.delta")
      ev.str("item_id", item).num("content_index", 0).str("delta", "partial ");
    else if (type == "conversation.item.truncated")
      ev.str("item_id", item).num("content_index", 0).num("audio_end_ms", audio_end_ms);
    else if (type == "conversation.item.deleted")
      ev.str("item_id", item);
    else if (type.rfind("output_audio_buffer.", 0) == 0)
      ev.str("response_id", response);
    else if (type.rfind("mcp_list_tools.", 0) == 0)
      ev.str("item_id", mcp_item);
    else if (type.rfind("response.mcp_call_arguments.", 0) == 0)
      ev.str("response_id", response).str("item_id", mcp_item).num("output_index", 0)
          .str(type.back() == 'a' ? "delta" : "arguments", "{\"city\":\"Moscow\"}");
    else if (type.rfind("response.mcp_call.", 0) == 0)
      ev.str("item_id", mcp_item).num("output_index", 0);
    send(ev);
  }
}

// ----- Session: configuration ---------------------------------------------------

JsonObject *Session::turn_detection() const {
  return get_obj(get_obj(get_obj(json_node_get_object(session_), "audio"), "input"),
                 "turn_detection");
}

bool Session::td_flag(const char *key) const {
  JsonObject *td = turn_detection();
  return td && json_object_has_member(td, key) && json_object_get_boolean_member(td, key);
}

void Session::configure_vad() {
  vad_.set_rate(in_rate());
  JsonObject *td = turn_detection();
  vad_.set_enabled(td != nullptr);
  if (!td)
    return;
  double threshold = 0.5, prefix = 300, silence = 400;
  get_number(td, "threshold", &threshold);
  get_number(td, "prefix_padding_ms", &prefix);
  get_number(td, "silence_duration_ms", &silence);
  Vad::Params params;
  params.model = srv_.cfg.vad_model;
  params.threshold = threshold;
  params.prefix_padding_ms = static_cast<guint>(prefix);
  params.silence_duration_ms = static_cast<guint>(silence);
  vad_.set_params(params);
}

// ----- Session: input audio and user turns ------------------------------------------

void Session::feed_audio(const std::vector<guint8> &bytes) {
  const std::vector<gint16> pcm = from_le_bytes(bytes);
  gsize done = 0;
  for (const Vad::Edge &edge : vad_.feed(pcm.data(), pcm.size())) {
    // Commit exactly the audio up to the frame that ended the utterance.
    buffer_.insert(buffer_.end(), pcm.begin() + done, pcm.begin() + edge.consumed);
    done = edge.consumed;
    if (edge.started)
      on_speech_started(edge);
    else
      on_speech_stopped(edge.at_ms);
  }
  buffer_.insert(buffer_.end(), pcm.begin() + done, pcm.end());
  trim_idle_buffer();
}

// Under server VAD, audio before speech is only kept as prefix padding
// (and, while the VAD weighs whether loud audio is speech, all of it).
void Session::trim_idle_buffer() {
  if (!vad_.enabled() || vad_.active())
    return;
  double prefix_ms = 300;
  get_number(turn_detection(), "prefix_padding_ms", &prefix_ms);
  const double keep_ms = prefix_ms + static_cast<double>(vad_.pending_ms());
  const gsize keep = static_cast<gsize>(keep_ms * in_rate() / 1000);
  if (buffer_.size() > keep)
    buffer_.erase(buffer_.begin(), buffer_.end() - keep);
}

// The buffer holds at least the audio since at_ms (the prefix padding
// before the speech and the speech so far): the turn starts at at_ms.
void Session::on_speech_started(const Vad::Edge &edge) {
  const gint64 keep_us = edge.clock_us - edge.at_ms * 1000;
  const gsize keep = static_cast<gsize>(std::llround(keep_us * double(in_rate()) / G_USEC_PER_SEC));
  if (buffer_.size() > keep)
    buffer_.erase(buffer_.begin(), buffer_.end() - keep);
  speech_item_ = next_id("item");
  send(event("input_audio_buffer.speech_started")
           .num("audio_start_ms", edge.at_ms)
           .str("item_id", speech_item_));
  if (active_ && td_flag("interrupt_response"))
    cancel_response("turn_detected");
}

void Session::on_speech_stopped(gint64 at_ms) {
  send(event("input_audio_buffer.speech_stopped")
           .num("audio_end_ms", at_ms)
           .str("item_id", speech_item_));
  commit_buffer(td_flag("create_response"));
}

void Session::commit_buffer(bool respond) {
  const std::string id = speech_item_.empty() ? next_id("item") : speech_item_;
  speech_item_.clear();
  const gint64 committed_ms = static_cast<gint64>(buffer_.size() * 1000 / in_rate());
  srv_.record_commit(
      {index(), id, srv_.cfg.record_audio ? to_le_bytes(buffer_) : std::vector<guint8>{}, in_rate()});
  last_user_item_ = id;
  buffer_.clear();
  const std::string previous = order_.empty() ? "" : order_.back();
  begin_user_turn();
  const std::string transcript = pending_script_.transcript;

  JObj committed = event("input_audio_buffer.committed");
  if (previous.empty())
    committed.null("previous_item_id");
  else
    committed.str("previous_item_id", previous);
  send(committed.str("item_id", id));

  JObj item;
  item.str("id", id)
      .str("object", "realtime.item")
      .str("type", "message")
      .str("status", "completed")
      .str("role", "user")
      .arr("content", JArr().add(JObj().str("type", "input_audio").null("transcript")));
  add_item(id, Item{"message", "user", "", 0, 0}, item.get());
  // Keep the transcript for conversation.item.retrieve.
  items_[id].json = JObj().str("id", id)
                        .str("object", "realtime.item")
                        .str("type", "message")
                        .str("status", "completed")
                        .str("role", "user")
                        .arr("content", JArr().add(JObj().str("type", "input_audio")
                                                       .str("transcript", transcript)))
                        .text();
  send(event("conversation.item.input_audio_transcription.completed")
           .str("item_id", id)
           .num("content_index", 0)
           .str("transcript", transcript));
  send_extra_events(id, committed_ms);
  if (respond && !active_)
    start_response(nullptr);
}

// Items of responses are only announced by response.output_item.* events.
void Session::register_item(const std::string &id, Item item, JsonObject *json) {
  JsonNode *node = json_node_new(JSON_NODE_OBJECT);
  json_node_set_object(node, json);
  item.json = json_text(node);
  json_node_unref(node);
  items_[id] = std::move(item);
  order_.push_back(id);
}

// Registers a client-side item and announces it (conversation.item.added).
void Session::add_item(const std::string &id, Item item, JsonObject *json) {
  JObj ev = event("conversation.item.added");
  if (order_.empty())
    ev.null("previous_item_id");
  else
    ev.str("previous_item_id", order_.back());
  register_item(id, std::move(item), json);
  send(ev.obj("item", JObj(json_object_ref(json))));
}

void Session::begin_user_turn() {
  user_turns_++;
  pending_script_ = srv_.pop_turn();
  fill_defaults(&pending_script_);
  has_pending_script_ = true;
}

// The script for a response: the pending user turn's, else the next queued.
TurnScript Session::take_script() {
  if (has_pending_script_) {
    has_pending_script_ = false;
    return std::move(pending_script_);
  }
  TurnScript script = srv_.pop_turn();
  fill_defaults(&script);
  return script;
}

void Session::fill_defaults(TurnScript *script) const {
  const std::string n = std::to_string(user_turns_);
  if (script->transcript.empty())
    script->transcript = "turn " + n;
  if (script->answer_text.empty())
    script->answer_text = "answer " + n;
}

std::string Session::next_id(const char *prefix) {
  return std::string(prefix) + "_" + std::to_string(++counters_[prefix]);
}

// ----- Session: responses ----------------------------------------------------

JObj Session::response_object(const char *status) const {
  JArr mods;
  for (const std::string &m : active_->modalities)
    mods.add_str(m);
  JArr output;
  for (const std::string &item : active_->output)
    output.add_text(item);
  JObj r;
  r.str("id", active_->id)
      .str("object", "realtime.response")
      .str("status", status)
      .null("status_details")
      .arr("output", output)
      .str("conversation_id", "conv_" + std::to_string(number_))
      .arr("output_modalities", mods);
  return r;
}

// Deterministic numbers: 50 input tokens per user turn, one text token per
// word (or per 4 bytes of arguments), 10 audio tokens per second.
JObj Session::usage() const {
  const gint64 input = 50 * std::max<guint>(1, user_turns_);
  const gint64 audio = static_cast<gint64>(active_->audio_bytes_sent / 2) * 10 / out_rate();
  const gint64 output = active_->text_tokens + audio;
  JObj u;
  u.num("total_tokens", input + output)
      .num("input_tokens", input)
      .num("output_tokens", output)
      .obj("input_token_details", JObj().num("text_tokens", 0).num("audio_tokens", input))
      .obj("output_token_details",
           JObj().num("text_tokens", active_->text_tokens).num("audio_tokens", audio));
  return u;
}

void Session::start_response(JsonObject *params) {
  TurnScript script = take_script();
  active_ = std::make_unique<Response>();
  Response &r = *active_;
  r.id = next_id("resp");
  r.serial = srv_.record_answer_start(index(), r.id, last_user_item_);
  JsonArray *mods = get_arr(params, "output_modalities");
  if (!mods)
    mods = get_arr(json_node_get_object(session_), "output_modalities");
  for (const char *m : {"text", "audio"})
    if (array_has(mods, m))
      r.modalities.push_back(m);
  r.audio = array_has(mods, "audio");
  send(event("response.created").obj("response", response_object("in_progress")));
  if (script.calls.empty())
    plan_answer(script);
  else
    plan_calls(script);
  r.steps.push_back({0, false, [this] { finish_response(); }});
  pump();
}

void Session::plan_calls(const TurnScript &script) {
  for (gsize i = 0; i < script.calls.size(); i++)
    plan_call(script.calls[i], static_cast<gint64>(i));
}

void Session::plan_call(const FunctionCallScript &call, gint64 index) {
  const std::string item_id = next_id("item"), call_id = next_id("call");
  known_calls_.insert(call_id);
  auto item = [=](const char *status, const std::string &args) {
    JObj it;
    it.str("id", item_id)
        .str("object", "realtime.item")
        .str("type", "function_call")
        .str("status", status)
        .str("name", call.name)
        .str("call_id", call_id)
        .str("arguments", args);
    return it;
  };
  auto args_event = [=](const char *type) {
    JObj ev = event(type);
    ev.str("response_id", active_->id)
        .str("item_id", item_id)
        .num("output_index", index)
        .str("call_id", call_id);
    return ev;
  };
  auto &steps = active_->steps;
  steps.push_back({0, false, [=] {
                     JObj it = item("in_progress", "");
                     register_item(item_id, Item{"function_call", "", "", 0, 0}, it.get());
                     send(event("response.output_item.added")
                              .str("response_id", active_->id)
                              .num("output_index", index)
                              .obj("item", item("in_progress", "")));
                   }});
  const auto halves = split_utf8_half(call.arguments);
  for (const std::string &part : {halves.first, halves.second}) {
    if (!part.empty())
      steps.push_back(
          {0, false, [=] { send(args_event("response.function_call_arguments.delta").str("delta", part)); }});
  }
  steps.push_back({0, false, [=] {
                     send(args_event("response.function_call_arguments.done")
                              .str("name", call.name)
                              .str("arguments", call.arguments));
                     JObj done = item("completed", call.arguments);
                     items_[item_id].json = done.text();
                     active_->output.push_back(done.text());
                     active_->text_tokens += static_cast<gint64>(call.arguments.size() / 4 + 1);
                     send(event("response.output_item.done")
                              .str("response_id", active_->id)
                              .num("output_index", index)
                              .obj("item", done));
                   }});
}

JObj Session::assistant_item(const char *status) const {
  const Response &r = *active_;
  JArr content;
  if (r.part_open || std::string(status) != "in_progress") {
    JObj part;
    if (r.audio)
      part.str("type", "output_audio").str("transcript", r.text_sent);
    else
      part.str("type", "output_text").str("text", r.text_sent);
    content.add(part);
  }
  JObj it;
  it.str("id", r.item_id)
      .str("object", "realtime.item")
      .str("type", "message")
      .str("status", status)
      .str("role", "assistant")
      .arr("content", content);
  return it;
}

void Session::plan_answer(const TurnScript &script) {
  Response &r = *active_;
  const Faults faults = faults_;
  r.item_id = next_id("item");
  const guint rate = out_rate();
  std::vector<guint8> pcm;
  if (r.audio) {
    std::vector<gint16> voice;
    if (srv_.cfg.answer_signature)
      voice.assign(static_cast<gsize>(std::llround(script.answer_ms * double(rate) / 1000.0)),
                   static_cast<gint16>(1000 + r.serial));
    else if (srv_.cfg.speak)
      voice = speak(script.answer_text, rate);
    if (voice.empty())
      voice = make_tone(static_cast<gsize>(std::llround(script.answer_ms * double(rate) / 1000.0)),
                        rate);
    pcm = to_le_bytes(voice);
    r.drop_after_first_audio = !pcm.empty() && srv_.take_drop_mid_answer();
  }
  auto part_event = [this](const char *type) {
    JObj ev = event(type);
    ev.str("response_id", active_->id)
        .str("item_id", active_->item_id)
        .num("output_index", 0)
        .num("content_index", 0);
    return ev;
  };
  r.steps.push_back({0, false, [this, rate] {
                       register_item(active_->item_id, Item{"message", "assistant", "", 0, rate},
                                     assistant_item("in_progress").get());
                       active_->item_open = true;
                       send(event("response.output_item.added")
                                .str("response_id", active_->id)
                                .num("output_index", 0)
                                .obj("item", assistant_item("in_progress")));
                     }});
  r.steps.push_back({0, false, [this, part_event] {
                       active_->part_open = true;
                       JObj part;
                       if (active_->audio)
                         part.str("type", "output_audio").str("transcript", "");
                       else
                         part.str("type", "output_text").str("text", "");
                       send(part_event("response.content_part.added").obj("part", part));
                     }});
  plan_audio_and_text(pcm, split_words(script.answer_text), faults);
  r.steps.push_back({0, false, [this] { close_open_parts(true); }});
}

void Session::plan_audio_and_text(const std::vector<guint8> &pcm,
                                  const std::vector<std::string> &words, const Faults &faults) {
  Response &r = *active_;
  const guint rate = out_rate();
  const gsize samples_per_delta =
      std::max<gsize>(1, static_cast<gsize>(std::llround(srv_.cfg.audio_delta_ms * double(rate) / 1000.0)));
  const auto ranges = delta_ranges(pcm.size(), samples_per_delta * 2, faults.odd_deltas);
  auto text_step = [this](const std::string &word, guint delay) {
    return Step{delay, false, [this, word] {
                  active_->text_sent += word;
                  active_->text_tokens++;
                  send(event("response.output_text.delta")
                           .str("response_id", active_->id)
                           .str("item_id", active_->item_id)
                           .num("output_index", 0)
                           .num("content_index", 0)
                           .str("delta", word));
                }};
  };
  const gsize nwords = words.size(), nchunks = ranges.size();
  gsize w = 0;
  for (gsize k = 0; k < nchunks; k++) {
    // Spread the words evenly: word i goes before audio delta i*nchunks/nwords.
    for (; w < nwords && w * nchunks / nwords <= k; w++)
      r.steps.push_back(text_step(words[w], 0));
    if (faults.unknown_events)
      r.steps.push_back({0, false, [this, k] { send_junk(static_cast<guint>(k)); }});
    std::vector<guint8> chunk(pcm.begin() + ranges[k].first,
                              pcm.begin() + ranges[k].first + ranges[k].second);
    const guint delay = k == 0 ? faults.first_audio_delay_ms : srv_.cfg.pace_ms;
    r.steps.push_back({delay, true, [this, chunk] { send_audio_delta(chunk); }});
  }
  for (; w < nwords; w++)  // text-only answers are paced like audio
    r.steps.push_back(text_step(words[w], w == 0 ? faults.first_audio_delay_ms : srv_.cfg.pace_ms));
}

void Session::send_audio_delta(const std::vector<guint8> &chunk) {
  Response &r = *active_;
  send(event("response.output_audio.delta")
           .str("response_id", r.id)
           .str("item_id", r.item_id)
           .num("output_index", 0)
           .num("content_index", 0)
           .str("delta", encode_base64(chunk.data(), chunk.size())));
  r.audio_bytes_sent += chunk.size();
  items_[r.item_id].audio_bytes = r.audio_bytes_sent;
  srv_.record_sent_audio(chunk.data(), chunk.size());
  if (r.drop_after_first_audio)
    drop();
}

// Ends the assistant message: audio/text/part/item done events, as far as
// they were opened. Used by normal completion and by cancellation.
void Session::close_open_parts(bool complete) {
  Response &r = *active_;
  auto part_event = [&](const char *type) {
    JObj ev = event(type);
    ev.str("response_id", r.id).str("item_id", r.item_id).num("output_index", 0).num(
        "content_index", 0);
    return ev;
  };
  if (r.part_open) {
    if (r.audio)
      send(part_event("response.output_audio.done"));
    send(part_event("response.output_text.done").str("text", r.text_sent));
    JObj part;
    if (r.audio)
      part.str("type", "output_audio").str("transcript", r.text_sent);
    else
      part.str("type", "output_text").str("text", r.text_sent);
    send(part_event("response.content_part.done").obj("part", part));
  }
  if (r.item_open) {
    JObj item = assistant_item(complete ? "completed" : "incomplete");
    items_[r.item_id].json = item.text();
    r.output.push_back(item.text());
    send(event("response.output_item.done")
             .str("response_id", r.id)
             .num("output_index", 0)
             .obj("item", item));
  }
  r.part_open = r.item_open = false;
}

// Recorded before response.done goes out: a client may act on it at once.
void Session::finish_response() {
  JObj done = event("response.done");
  done.obj("response", response_object("completed").obj("usage", usage()));
  end_response("completed");
  send(done);
}

void Session::end_response(const char *status) {
  srv_.record_answer_end(index(), active_->id, status);
  active_.reset();
}

// The connection ends before response.done.
void Session::abandon_response() {
  if (active_)
    end_response("dropped");
}

void Session::cancel_response(const char *reason) {
  Response &r = *active_;
  r.stop_timer();
  r.steps.clear();
  close_open_parts(false);
  JObj resp = response_object("cancelled");
  json_object_remove_member(resp.get(), "status_details");
  resp.obj("status_details", JObj().str("type", "cancelled").str("reason", reason))
      .obj("usage", usage());
  JObj done = event("response.done");
  done.obj("response", resp);
  end_response("cancelled");
  send(done);
}

void Session::pump() {
  while (active_ && !active_->steps.empty() && !dead_) {
    Step &front = active_->steps.front();
    if (!active_->waited && (front.delay_ms > 0 || front.yield)) {
      arm_step_timer(front.delay_ms);
      return;
    }
    active_->waited = false;
    std::function<void()> run = std::move(front.run);
    active_->steps.pop_front();
    run();  // may finish, cancel or drop: re-check everything
  }
}

// An idle source for a plain yield: it runs after pending client frames,
// which is what lets a response.cancel land mid-answer even when unpaced.
void Session::arm_step_timer(guint delay_ms) {
  GSource *src = delay_ms ? g_timeout_source_new(delay_ms) : g_idle_source_new();
  g_source_set_priority(src, G_PRIORITY_DEFAULT);
  g_source_set_callback(src, on_step_timer, this, nullptr);
  g_source_attach(src, g_main_context_get_thread_default());
  active_->timer = src;
}

gboolean Session::on_step_timer(gpointer self) {
  auto *s = static_cast<Session *>(self);
  g_source_unref(s->active_->timer);
  s->active_->timer = nullptr;
  s->active_->waited = true;
  s->pump();
  return G_SOURCE_REMOVE;
}

// ----- Server::Impl ------------------------------------------------------------

Server::Impl::~Impl() = default;

void Server::Impl::record_client(ClientEvent ev) {
  std::lock_guard<std::mutex> lock(mu);
  client_events.push_back(std::move(ev));
}

void Server::Impl::count_client(const std::string &type) {
  std::lock_guard<std::mutex> lock(mu);
  client_counts[type]++;
  cv.notify_all();
}

void Server::Impl::record_server(const std::string &type) {
  std::lock_guard<std::mutex> lock(mu);
  server_counts[type]++;
  server_events.push_back(type);
  cv.notify_all();
}

void Server::Impl::record_sent_audio(const guint8 *data, gsize len) {
  if (!cfg.record_audio)
    return;
  std::lock_guard<std::mutex> lock(mu);
  sent_audio.insert(sent_audio.end(), data, data + len);
}

void Server::Impl::record_received_audio(guint session, const std::vector<guint8> &pcm) {
  if (!cfg.record_audio)
    return;
  std::lock_guard<std::mutex> lock(mu);
  received_audio.insert(received_audio.end(), pcm.begin(), pcm.end());
  std::vector<guint8> &mine = per_session.at(session).audio;
  mine.insert(mine.end(), pcm.begin(), pcm.end());
}

void Server::Impl::record_bytes_read(guint session, guint64 bytes) {
  std::lock_guard<std::mutex> lock(mu);
  per_session.at(session).bytes_read = bytes;
}

void Server::Impl::record_commit(CommittedTurn turn) {
  std::lock_guard<std::mutex> lock(mu);
  commits.push_back(std::move(turn));
}

guint Server::Impl::record_answer_start(guint session, const std::string &response_id,
                                        const std::string &user_item_id) {
  std::lock_guard<std::mutex> lock(mu);
  const guint k = ++response_serial;
  answer_records.push_back({session, response_id, "in_progress", user_item_id, k});
  return k;
}

void Server::Impl::record_answer_end(guint session, const std::string &response_id,
                                     const char *status) {
  std::lock_guard<std::mutex> lock(mu);
  for (auto it = answer_records.rbegin(); it != answer_records.rend(); ++it) {
    if (it->session == session && it->response_id == response_id) {
      it->status = status;
      return;
    }
  }
}

void Server::Impl::record_session_update(std::string json) {
  std::lock_guard<std::mutex> lock(mu);
  session_updates.push_back(std::move(json));
}

void Server::Impl::record_rates(guint session, guint in_rate, guint out_rate) {
  std::lock_guard<std::mutex> lock(mu);
  per_session.at(session).in_rate = in_rate;
  per_session.at(session).out_rate = out_rate;
}

void Server::Impl::record_refused_update() {
  std::lock_guard<std::mutex> lock(mu);
  refused_updates++;
}

Faults Server::Impl::current_faults() const {
  std::lock_guard<std::mutex> lock(mu);
  return faults;
}

Faults Server::Impl::faults_for_new_session() {
  std::lock_guard<std::mutex> lock(mu);
  if (faults.sessions == 0)
    return faults;
  if (faulty_sessions_left == 0)
    return Faults{};
  faulty_sessions_left--;
  return faults;
}

bool Server::Impl::take_drop_mid_answer() {
  std::lock_guard<std::mutex> lock(mu);
  const bool drop = faults.drop_mid_answer;
  faults.drop_mid_answer = false;
  return drop;
}

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

void Server::Impl::apply_faults_to_sessions() {
  const Faults f = current_faults();
  if (f.sessions != 0)
    return;  // only for sessions yet to start
  for (auto &s : sessions)
    s->apply_faults(f);
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
  auto refuse = [msg](guint status, const std::string &message) {
    const std::string body = error_body(status, message).text();
    soup_server_message_set_status(msg, status, nullptr);
    soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, body.data(),
                                     body.size());
  };
  const char *model = query ? static_cast<const char *>(g_hash_table_lookup(query, "model")) : nullptr;
  if (strcmp(path, "/v1/realtime") != 0 && strcmp(path, "/v1/realtime/openai") != 0)
    refuse(SOUP_STATUS_NOT_FOUND, "Not found");
  else if (f.refuse_status)
    refuse(f.refuse_status, "Refused by the emulator's fault injection");
  else if (!authorized(auth, scheme, credential))
    refuse(SOUP_STATUS_UNAUTHORIZED, "Unauthenticated");
  else if (!model || !*model)
    refuse(SOUP_STATUS_BAD_REQUEST, "The query parameter 'model' is required");
  else if (soup_websocket_server_process_handshake(msg, nullptr, nullptr, nullptr, nullptr))
    prepare_upgrade(msg, model);
  // else: libsoup has set 400 and an explanation.
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

void Server::set_faults(const Faults &faults) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->faults = faults;
    impl_->faulty_sessions_left = faults.sessions;
  }
  impl_->post([impl = impl_.get()] { impl->apply_faults_to_sessions(); });
}

Faults Server::faults() const {
  return impl_->current_faults();
}

void Server::push_turn(TurnScript script) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->turns.push_back(std::move(script));
}

void Server::drop_connections() {
  impl_->post([impl = impl_.get()] {
    for (auto &s : impl->sessions)
      s->drop();
  });
}

std::vector<ClientEvent> Server::client_events() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->client_events;
}

std::vector<std::string> Server::client_event_types() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<std::string> types;
  for (const ClientEvent &ev : impl_->client_events)
    types.push_back(ev.type);
  return types;
}

static bool wait_count(std::mutex &mu, std::condition_variable &cv,
                       const std::map<std::string, guint> &counts, const std::string &type,
                       guint count, guint timeout_ms) {
  std::unique_lock<std::mutex> lock(mu);
  return cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
    auto it = counts.find(type);
    return it != counts.end() && it->second >= count;
  });
}

bool Server::wait_for_client_event(const std::string &type, guint count, guint timeout_ms) const {
  return wait_count(impl_->mu, impl_->cv, impl_->client_counts, type, count, timeout_ms);
}

std::vector<std::string> Server::server_event_types() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->server_events;
}

bool Server::wait_for_server_event(const std::string &type, guint count, guint timeout_ms) const {
  return wait_count(impl_->mu, impl_->cv, impl_->server_counts, type, count, timeout_ms);
}

std::string Server::session_update_json(guint index) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return index < impl_->session_updates.size() ? impl_->session_updates[index] : "";
}

std::vector<guint8> Server::sent_audio() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->sent_audio;
}

std::vector<guint8> Server::received_audio() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->received_audio;
}

std::vector<guint8> Server::received_audio(guint session) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return session < impl_->per_session.size() ? impl_->per_session[session].audio
                                              : std::vector<guint8>{};
}

guint64 Server::bytes_read(guint session) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return session < impl_->per_session.size() ? impl_->per_session[session].bytes_read : 0;
}

std::vector<CommittedTurn> Server::committed_turns() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->commits;
}

std::vector<AnswerRecord> Server::answers() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->answer_records;
}

guint Server::input_rate(guint session) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return session < impl_->per_session.size() ? impl_->per_session[session].in_rate : 0;
}

guint Server::output_rate(guint session) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return session < impl_->per_session.size() ? impl_->per_session[session].out_rate : 0;
}

guint Server::refused_updates() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->refused_updates;
}

guint Server::sessions_opened() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->opened;
}

guint Server::sessions_active() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->active;
}

std::string Server::last_authorization_scheme() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->auth_scheme;
}

std::string Server::last_request_path_and_query() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->path_query;
}

std::vector<std::string> Server::last_request_header(const std::string &name) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<std::string> values;
  for (const auto &header : impl_->request_headers)
    if (g_ascii_strcasecmp(header.first.c_str(), name.c_str()) == 0)
      values.push_back(header.second);
  return values;
}

void Server::clear_records() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->client_events.clear();
  impl_->client_counts.clear();
  impl_->server_events.clear();
  impl_->server_counts.clear();
  impl_->session_updates.clear();
  impl_->sent_audio.clear();
  impl_->received_audio.clear();
  for (auto &record : impl_->per_session)
    record.audio.clear();
  impl_->commits.clear();
  impl_->answer_records.clear();
  impl_->refused_updates = 0;
}

}  // namespace yrt::emu
