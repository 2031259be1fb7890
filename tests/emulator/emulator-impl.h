// Private to the emulator: what its source files share (Server::Impl, the
// Session class, Response, Timer, Item, shared helpers). Tests use emulator.h.
#pragma once

#include <libsoup/soup.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "emulator.h"
#include "json-util.h"
#include "vad.h"

namespace yrt::emu {

constexpr guint kDefaultInRate = 24000;
constexpr guint kDefaultOutRate = 44100;

// Shared helpers (session-config.cpp unless noted).
// The rate a session starts at: the rule's for Serve and Refuse.
guint initial_rate(const RateRule &rule, guint fallback);
JsonNode *default_session(const std::string &id, const std::string &model, guint in_rate,
                          guint out_rate);
std::vector<guint8> to_le_bytes(const std::vector<gint16> &pcm);  // turns.cpp

struct Invalid {
  std::string param;
  std::string message;
};

bool check_modalities(JsonArray *mods, const std::string &param, Invalid *bad);
guint rate_of(JsonObject *session, const char *dir, guint fallback);

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
    std::vector<std::pair<std::string, std::string>> headers;  // of its handshake
  };
  std::vector<SessionRecord> per_session;  // index: session number - 1
  std::vector<CommittedTurn> commits;
  std::vector<AnswerRecord> answer_records;
  guint response_serial = 0;  // server-wide, for AnswerRecord::signature
  guint refused_updates = 0;  // session.updates refused by a rate rule
  std::deque<gint64> created_us;  // session creations within the last second (rate limit)
  guint refused_handshakes = 0;   // by the rate limit
  std::vector<Handshake> handshakes;
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
  // Seconds until a session may be created (0: now) under
  // Config::session_rate_limit; a creation is then noted with
  // note_creation().
  guint rate_limit_wait(gint64 now_us);
  void note_creation(gint64 now_us);
  void record_handshake(gint64 now_us, guint status);
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
}  // namespace yrt::emu
