// What tests read: Server::Impl's records of client events, server events,
// audio, committed turns, answers and rates (guarded by its mutex), and the
// public Server getters and waits over them.
#include "emulator-impl.h"

#include <chrono>

namespace yrt::emu {

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

guint Server::refused_handshakes() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->refused_handshakes;
}

std::vector<Handshake> Server::handshakes() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->handshakes;
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

std::vector<std::string> Server::session_request_header(guint session,
                                                        const std::string &name) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<std::string> values;
  if (session >= impl_->per_session.size())
    return values;
  for (const auto &header : impl_->per_session[session].headers)
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
