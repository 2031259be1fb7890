// One Session per WebSocket connection: its lifecycle, the inbox of client
// frames handled in order, dispatch of client events to their handlers, and
// sending server events.
#include "emulator-impl.h"

#include "pausable-stream.h"

namespace yrt::emu {

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
  // Decided before session.created goes out: a test that changes the faults
  // once it sees it must not have its change taken by this session.
  const Faults faults = srv_.faults_for_new_session();
  send(event("session.created").node("session", session_));
  apply_faults(faults);
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
  // Before the events are answered: a client that saw the answer to an
  // event finds its bytes counted.
  if (!dead_)
    record_bytes_read();
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

}  // namespace yrt::emu
