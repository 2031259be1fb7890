// Fault injection (Faults): applying them to sessions, expiry, cuts after a
// time or a byte count, stop_reading and read pacing at the gate, junk and
// extra events between real ones.
#include "emulator-impl.h"

#include <algorithm>
#include <cmath>

#include "pausable-stream.h"

namespace yrt::emu {

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

void Server::Impl::apply_faults_to_sessions() {
  const Faults f = current_faults();
  if (f.sessions != 0)
    return;  // only for sessions yet to start
  for (auto &s : sessions)
    s->apply_faults(f);
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

void Server::drop_connections() {
  impl_->post([impl = impl_.get()] {
    for (auto &s : impl->sessions)
      s->drop();
  });
}

}  // namespace yrt::emu
