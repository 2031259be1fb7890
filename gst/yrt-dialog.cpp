#include "yrt-dialog.h"
#include "yrt-debug.h"

#include <algorithm>
#include <cstring>


namespace yrt {

namespace {
/* Reconnect delays double from reconnect-backoff-ms up to this. */
constexpr guint kMaxBackoffMs = 30000;
/* A commit below this is refused by the service (input_audio_buffer_commit_empty). */
constexpr guint kMinCommitMs = 100;
constexpr gushort kCloseNormal = 1000;
/* How long a `commit` waits for the streaming thread before going alone. */
constexpr guint kCommitFallbackMs = 200;
/* Kept before an utterance's reported start, beyond the prefix padding: a
 * VAD reports speech some way into it. */
constexpr guint kVadDetectionMs = 500;
/* event_id of replayed conversation items, to recognise their refusal. */
constexpr const char *kReplayEventId = "yrt-replay";
/* event_id of our session.update events, to recognise an error about one. */
constexpr const char *kUpdateEventId = "yrt-update";

GstClockTime samples_to_time (guint64 samples, guint rate)
{
  return gst_util_uint64_scale (samples, GST_SECOND, rate);
}
}  // namespace

std::string endpoint_url (const std::string &location, const std::string &folder_id,
    const std::string &model)
{
  gsize query = location.find ('?');
  if (query != std::string::npos) {
    std::string params = "&" + location.substr (query + 1);
    if (params.find ("&model=") != std::string::npos)
      return location;
  }
  std::string uri = folder_id.empty () ? model : "gpt://" + folder_id + "/" + model;
  return location + (query == std::string::npos ? "?" : "&") + "model=" + uri;
}

Dialog::Dialog (DialogHost &host, Playout &playout, GstObject *log_object)
    : host_ (host), playout_ (playout), log_object_ (log_object)
{
}

Dialog::~Dialog ()
{
  close ();
}

void Dialog::open (const Endpoint &endpoint, const SessionConfig &config,
    const DialogOptions &options)
{
  close ();
  {
    std::lock_guard<std::mutex> guard (lock_);
    endpoint_ = endpoint;
    config_ = config;
    options_ = options;
    ready_ = configuring_ = finished_ = flushing_ = draining_ = commit_requested_ = false;
    formats_.configure (config.input_rate, config.output_rate);
    wire_.configure (config.input_rate, config.input_rate, options.resample_quality);
    updates_ = 0;
    session_ = output::Session ();
    live_ = live_known_ = false;
    pending_.clear ();
    ledger_.configure (config.input_rate, options.max_buffer_ms,
        config.prefix_padding_ms, kVadDetectionMs,
        config.turn_detection == TurnDetection::None);
    history_.clear ();
    history_in_instructions_ = false;
    carried_history_.clear ();
    lost_at_cut_ = 0;
    sessions_ = generation_ = failures_in_a_row_ = 0;
    rollover_due_ = false;
    outage_dropped_ = 0;
    stats_ = DialogStats ();
    uncommitted_samples_ = 0;
    sent_audio_ = false;
    books_.reset ();
    known_items_.clear ();
    turn_end_us_ = 0;
    first_audio_latency_.clear ();
    answer_text_ = AnswerText ();
  }
  ConnectionCallbacks callbacks;
  callbacks.opened = [this] { on_opened (); };
  callbacks.text = [this] (const char *data, gsize size) { on_text (data, size); };
  callbacks.binary = [this] (gsize size) {
    GST_WARNING_OBJECT (log_object_, "ignoring a binary frame of %" G_GSIZE_FORMAT " bytes",
        size);
    std::lock_guard<std::mutex> guard (lock_);
    stats_.bad_events++;
  };
  callbacks.failed = [this] (guint status, const std::string &cause, bool permanent) {
    on_failed (status, cause, permanent);
  };
  callbacks.closed = [this] (gushort code, const std::string &reason) {
    on_closed (code, reason);
  };
  playout_.set_source_rate (config.output_rate, options.resample_quality);
  connection_ = std::make_unique<Connection> (std::move (callbacks), log_object_);
  post_connection ("connecting");
  connection_->start (endpoint.url, endpoint.authorization, options.connect_timeout_ms,
      endpoint.connection);
}

void Dialog::close ()
{
  {
    std::lock_guard<std::mutex> guard (lock_);
    finished_ = true;
    ready_cond_.notify_all ();
  }
  /* Joined without lock_: the worker may be waiting for it. */
  if (connection_) {
    connection_->stop ();
    connection_.reset ();
  }
}

void Dialog::post_connection (const char *state)
{
  host_.emit (output::Connection {state, endpoint_.url, 0, 0, {}});
}

DialogStats Dialog::stats () const
{
  std::lock_guard<std::mutex> guard (lock_);
  DialogStats s = stats_;
  if (connection_) {
    s.bytes_sent = connection_->sent_bytes ();
    s.bytes_received = connection_->received_bytes ();
    s.bytes_queued = connection_->queued_bytes ();
    /* Live audio the outbox dropped (base64 JSON) in samples: near enough. */
    s.dropped_input_samples += connection_->dropped_bytes () * 3 / 4 / 2;
  }
  return s;
}

/* Non-live input streams faster than anyone could listen: the next turn
 * would always "interrupt" the answer to the previous one, and a server
 * answers a turn that ends during another answer in its own way.  So with
 * non-live input the element itself asks for one answer per turn, each
 * after the previous one ended, and the server cancels nothing. */
void Dialog::set_live (bool live)
{
  std::lock_guard<std::mutex> guard (lock_);
  SessionConfig before = effective_config_locked ();
  live_ = live;
  live_known_ = true;
  SessionConfig after = effective_config_locked ();
  if (ready_ && (after.interrupt_response != before.interrupt_response ||
          after.create_response != before.create_response))
    send_session_update_locked ();
}

SessionConfig Dialog::effective_config_locked () const
{
  SessionConfig c = config_;
  c.input_rate = formats_.asked_input ();
  c.output_rate = formats_.asked_output ();
  if (live_known_ && !live_)
    c.interrupt_response = c.create_response = false;
  if (history_in_instructions_ && !carried_history_.empty ())
    c.instructions += (c.instructions.empty () ? "" : "\n\n") + carried_history_;
  return c;
}

void Dialog::set_flushing (bool flushing)
{
  std::lock_guard<std::mutex> guard (lock_);
  flushing_ = flushing;
  if (flushing) {
    /* Audio not yet sent belongs to the flushed stream, and so does a
     * commit of it; nothing of it is owed to a later session. */
    ledger_.clear ();
    commit_requested_ = false;
    draining_ = false;
  }
  ready_cond_.notify_all ();
}

/* ---- streaming thread ---- */

/* Bytes of append events for max-buffer-ms of audio: the outbox's bound. */
gsize Dialog::outbox_limit_locked () const
{
  gsize pcm = (gsize) config_.input_rate * 2 * options_.max_buffer_ms / 1000;
  return pcm * 4 / 3 + 4096;
}

Dialog::SendResult Dialog::send_audio (const guint8 *pcm, gsize size)
{
  std::unique_lock<std::mutex> lock (lock_);
  /* Non-live input waits (bounded by max-buffer-ms) until the service has
   * confirmed enough of what it was sent; live input never waits. */
  ready_cond_.wait (lock, [&] {
    return flushing_ || finished_ || live_ || room_for_input_locked ();
  });
  if (flushing_)
    return SendResult::Flushing;
  if (finished_)
    return SendResult::Failed;
  uncommitted_samples_ += size / 2;
  sent_audio_ = true;
  ledger_.add (pcm, size);
  if (ready_) {
    send_unsent_locked ();
  } else if (live_) {
    guint64 dropped = ledger_.drop_oldest_unsent ();
    outage_dropped_ += dropped;
    stats_.dropped_input_samples += dropped;
  }
  if (live_ && ledger_.full ())
    ledger_.force_release (true);
  return SendResult::Ok;
}

/* Whether non-live input may add to the ledger; else what will make room is
 * on its way: a session, a barrier's answer, an answer to a committed turn.
 * Once the service has processed everything and still nothing can go, only
 * more input could move the release point (a turn longer than the bound):
 * its oldest audio loses its protection instead of waiting for ever. */
bool Dialog::room_for_input_locked ()
{
  if (!ledger_.full ())
    return true;
  if (!ready_ || ledger_.barrier_in_flight ())
    return false;
  if (!ledger_.all_heard ()) {
    send_session_update_locked ();
    return false;
  }
  if (ledger_.waits_for_answer ())
    return false;
  ledger_.force_release ();
  return !ledger_.full ();
}

/* Audio and our commits the session has not been given yet, in order.  A
 * barrier (any session.update) goes once half the bound is unconfirmed, so
 * the release point moves in long silences too. */
void Dialog::send_unsent_locked ()
{
  auto kind = live_ ? Connection::Frame::LiveAudio : Connection::Frame::FileAudio;
  ledger_.take_unsent ([&] (const InputLedger::Item &item) {
    if (item.commit ()) {
      std::vector<gint16> tail;
      wire_.finish ("input", tail);
      send_append_locked ((const guint8 *) tail.data (), tail.size () * 2, kind);
      connection_->send (client::audio_commit ());
      return;
    }
    send_append_locked (item.pcm.data (), item.pcm.size (), kind);
    stats_.audio_samples_sent += item.samples ();
  });
  if (ledger_.wants_barrier ())
    send_session_update_locked ();
}

/* At the rate the service took: converted when that is not input-rate. */
void Dialog::send_append_locked (const guint8 *pcm, gsize size, Connection::Frame kind)
{
  if (size == 0)
    return;
  if (wire_.passthrough ()) {
    connection_->send (client::audio_append (pcm, size), kind);
    return;
  }
  std::vector<gint16> in (size / 2), out, none;
  memcpy (in.data (), pcm, in.size () * 2);
  wire_.process ("input", in.data (), in.size (), out, none);
  if (!out.empty ())
    connection_->send (client::audio_append ((const guint8 *) out.data (), out.size () * 2), kind);
}

void Dialog::drain ()
{
  std::lock_guard<std::mutex> guard (lock_);
  if (finished_) {
    playout_.finish ();
    return;
  }
  draining_ = true;
  bool manual = config_.turn_detection == TurnDetection::None;
  if (manual && uncommitted_samples_ * 1000 >= (guint64) kMinCommitMs * config_.input_rate) {
    ledger_.add_commit ();
    uncommitted_samples_ = 0;
    if (ready_)
      send_unsent_locked ();
  } else if (!manual && sent_audio_) {
    books_.owe_barrier ();
    send_drain_barrier_locked ();
  }
  if (options_.eos_timeout_ms > 0 && connection_) {
    connection_->call_later (options_.eos_timeout_ms, [this] {
      {
        std::lock_guard<std::mutex> guard (lock_);
        if (!draining_)
          return;
      }
      /* Posted without lock_: a synchronous bus handler may call us. */
      host_.post_warning ("Timed out waiting for the final answer",
          "eos-timeout-ms passed with answers still outstanding; "
          "raise eos-timeout-ms if the service is slow");
      std::lock_guard<std::mutex> guard (lock_);
      finish_drain_locked ();
    });
  }
  check_drain_locked ();
}

/* Only to a session that has one: the next session's initial update
 * carries the config anyway. */
void Dialog::send_session_update_locked ()
{
  if (!ready_ && !configuring_)
    return;
  send_update_locked ();
  books_.update_sent ();
}

/* Every update is also a barrier for the ledger. */
void Dialog::send_update_locked ()
{
  std::string id = std::string (kUpdateEventId) + "-" + std::to_string (++updates_);
  connection_->send (client::session_update (effective_config_locked (), id));
  ledger_.update_sent ();
}

/* The service answers session.update only after it has read everything
 * sent before it, so its reply tells us the VAD has seen our last audio. */
void Dialog::send_drain_barrier_locked ()
{
  if (!ready_ || !books_.barrier_owed ())
    return;
  send_session_update_locked ();
  books_.barrier_sent ();
}

void Dialog::send_locked (std::string frame)
{
  if (!ready_) {
    pending_.push_back (std::move (frame));
    return;
  }
  connection_->send (std::move (frame));
}

/* ---- worker thread ---- */

void Dialog::on_opened ()
{
  GST_INFO_OBJECT (log_object_, "WebSocket open, waiting for session.created");
  post_connection ("connected");
}

void Dialog::on_failed (guint status, const std::string &cause, bool permanent)
{
  /* Refused credentials, endpoint or certificate will be refused again: no
   * retry storm. */
  permanent = permanent || status == 401 || status == 403 || status == 404;
  if (reconnect (cause, !permanent))
    return;
  std::string url;
  {
    std::lock_guard<std::mutex> guard (lock_);
    url = endpoint_.url;
    stats_.last_error = cause;
  }
  std::string debug = "Handshake with " + url + " failed: " + cause;
  if (status == 401 || status == 403)
    host_.post_error (DialogError::NotAuthorized,
        "The service refused the credentials (" + cause + ")",
        debug + ". Check api-key / YANDEX_CLOUD_API_KEY or iam-token / "
        "YANDEX_CLOUD_IAM_TOKEN, and that the service account has the "
        "ai.models.user role in folder-id.");
  else if (status == 404)
    host_.post_error (DialogError::NotFound,
        "The service does not know this endpoint or model (" + cause + ")",
        debug + ". Check location, folder-id and model.");
  else
    host_.post_error (DialogError::OpenFailed,
        "Could not connect to the Realtime API (" + cause + ")", debug);
  post_connection ("closed");
  std::lock_guard<std::mutex> guard (lock_);
  playout_.finish ();
}

void Dialog::on_closed (gushort code, const std::string &reason)
{
  std::string why = "closed with code " + std::to_string (code) +
      (reason.empty () ? "" : ": " + reason);
  bool done_anyway;
  {
    std::lock_guard<std::mutex> guard (lock_);
    done_anyway = draining_ && !outstanding_locked () && code == kCloseNormal;
  }
  if (!done_anyway && reconnect (why, true))
    return;
  {
    std::lock_guard<std::mutex> guard (lock_);
    stats_.last_error = why;
    ready_ = configuring_ = false;
    finished_ = true;
    ready_cond_.notify_all ();
  }
  post_connection ("closed");
  if (!done_anyway)
    host_.post_error (DialogError::Closed, "The service closed the session",
        "WebSocket " + why);
  std::lock_guard<std::mutex> guard (lock_);
  finish_drain_locked ();
}

/* Worker thread.  The books of the lost session are settled so the new one
 * starts clean: an answer in progress failed (what arrived of it is dropped:
 * its turn goes up again and is answered again), the input the service had
 * not finished with goes up again (the ledger), requests that answered no
 * turn are asked for again. */
bool Dialog::reconnect (const std::string &reason, bool retryable)
{
  std::string cut;
  guint attempt, delay_ms;
  {
    std::lock_guard<std::mutex> guard (lock_);
    ready_ = configuring_ = false;
    if (!retryable || sessions_ == 0 || failures_in_a_row_ >= options_.max_reconnects) {
      finished_ = true;
      ready_cond_.notify_all ();
      return false;
    }
    attempt = ++failures_in_a_row_;
    stats_.reconnects++;
    stats_.last_error = reason;
    delay_ms = MIN ((guint64) options_.reconnect_backoff_ms << MIN (attempt - 1, 16u),
        (guint64) kMaxBackoffMs);
    cut = books_.session_lost (draining_);
    known_items_.clear ();  /* the new session has none of them */
    /* Turns the new session is sent again are not in the history twice. */
    history_.forget (ledger_.unanswered_items ());
    lost_at_cut_ += ledger_.rewind ();
    if (history_in_instructions_)
      carried_history_ = history_.as_text ();
  }
  if (!cut.empty ())
    fail_response (cut);
  GST_WARNING_OBJECT (log_object_, "session lost (%s); reconnecting in %u ms, attempt %u",
      reason.c_str (), delay_ms, attempt);
  post_reconnecting (attempt, delay_ms, reason);
  connection_->restart (delay_ms);
  return true;
}

void Dialog::fail_response (const std::string &response_id)
{
  /* Its turn is answered again by the new session: nothing of it comes
   * twice, and what is still queued of it goes. */
  playout_.ignore_response (response_id);
  output::ResponseDone done;
  done.response_id = response_id;
  done.status = "failed";
  done.audio_duration =
      samples_to_time (playout_.received_samples (response_id), playout_.rate ());
  host_.emit (done);
}

void Dialog::post_reconnecting (guint attempt, guint delay_ms, const std::string &reason)
{
  host_.emit (output::Connection {"reconnecting", endpoint_.url, attempt, delay_ms, reason});
}

/* Proactive rollover, between turns only: an answer is never cut. */
void Dialog::on_lifetime_over (guint generation)
{
  {
    std::lock_guard<std::mutex> guard (lock_);
    if (generation != generation_ || finished_)
      return;
    rollover_due_ = true;
  }
  maybe_rollover ();
}

void Dialog::maybe_rollover ()
{
  bool rolled;
  {
    std::lock_guard<std::mutex> guard (lock_);
    rolled = rollover_locked ();
  }
  if (rolled)
    post_reconnecting (0, 0, "session-lifetime-ms reached");
}

bool Dialog::rollover_locked ()
{
  if (!rollover_due_ || !ready_ || outstanding_locked () || draining_)
    return false;
  GST_INFO_OBJECT (log_object_, "session lifetime reached between turns: rolling over");
  rollover_due_ = false;
  ready_ = configuring_ = false;
  lost_at_cut_ += ledger_.rewind ();
  books_.session_replaced ();
  connection_->restart (0);
  return true;
}

void Dialog::on_text (const char *data, gsize size)
{
  trace_arrived_us_ = YRT_TRACING () ? g_get_monotonic_time () : 0;
  ServerEvent ev;
  std::string why;
  if (!parse_server_event (data, size, ev, why)) {
    GST_WARNING_OBJECT (log_object_, "ignoring a malformed server event: %s", why.c_str ());
    std::lock_guard<std::mutex> guard (lock_);
    stats_.bad_events++;
    return;
  }
  GST_LOG_OBJECT (log_object_, "server event %s", ev.type_name.c_str ());
  handle (ev);
}

void Dialog::handle (ServerEvent &ev)
{
  switch (ev.type) {
    case EventType::SessionCreated:
      on_session_created (ev);
      break;
    case EventType::SessionUpdated:
      on_session_updated (ev);
      break;
    case EventType::Error:
      on_error (ev);
      break;
    case EventType::SpeechStarted:
      on_speech_started (ev);
      break;
    case EventType::SpeechStopped: {
      guint64 position;
      {
        std::lock_guard<std::mutex> guard (lock_);
        turn_end_us_ = g_get_monotonic_time ();
        ledger_.speech_stopped (ev.audio_ms);
        position = ledger_.to_position (ev.audio_ms);
        ready_cond_.notify_all ();
      }
      host_.emit (output::SpeechStopped {ev.item_id, (guint64) MAX (ev.audio_ms, 0), position});
      break;
    }
    case EventType::Committed:
      on_committed (ev);
      break;
    case EventType::ItemAdded:
    case EventType::OutputItemAdded: {
      std::lock_guard<std::mutex> guard (lock_);
      if (!ev.item_id.empty () && std::find (known_items_.begin (),
              known_items_.end (), ev.item_id) == known_items_.end ())
        known_items_.push_back (ev.item_id);
      break;
    }
    case EventType::OutputItemDone:
      on_function_calls (ev);
      break;
    case EventType::TranscriptDelta:
    case EventType::TranscriptCompleted: {
      if (ev.type == EventType::TranscriptCompleted) {
        std::lock_guard<std::mutex> guard (lock_);
        history_.add (History::Role::User, ev.text, ev.item_id);
      }
      host_.emit (output::Transcript {ev.item_id, ev.text,
          ev.type == EventType::TranscriptCompleted});
      break;
    }
    case EventType::ResponseCreated:
      on_response_created (ev);
      break;
    case EventType::TextDelta:
      on_response_text (ev, false, false);
      break;
    case EventType::TextDone:
      on_response_text (ev, false, true);
      break;
    case EventType::AudioTranscriptDelta:
      on_response_text (ev, true, false);
      break;
    case EventType::AudioTranscriptDone:
      on_response_text (ev, true, true);
      break;
    case EventType::AudioDelta:
      on_audio (ev);
      break;
    case EventType::AudioDone:
      playout_.end_audio (ev.response_id);
      break;
    case EventType::ResponseDone:
      on_response_done (ev);
      break;
    case EventType::TranscriptFailed:
      on_transcript_failed (ev);
      break;
    case EventType::InputTimeout:
      on_input_timeout (ev);
      break;
    case EventType::McpListTools:
    case EventType::McpCall:
      on_mcp (ev);
      break;
    case EventType::ItemTruncated:
    case EventType::ItemDeleted:
    case EventType::OutputAudioBuffer:
      GST_DEBUG_OBJECT (log_object_, "server event %s (item %s, response %s): nothing to do",
          ev.type_name.c_str (), ev.item_id.c_str (), ev.response_id.c_str ());
      break;
    case EventType::Unknown:
      GST_DEBUG_OBJECT (log_object_, "ignoring unknown server event %s", ev.type_name.c_str ());
      break;
    default:
      break;
  }
}

/* Why a turn has no transcript; the turn itself goes on. */
void Dialog::on_transcript_failed (const ServerEvent &ev)
{
  host_.emit (output::TranscriptFailed {ev.item_id, ev.error.code, ev.error.message});
}

/* The server's idle timeout (session-extra's idle_timeout_ms) fired. */
void Dialog::on_input_timeout (const ServerEvent &ev)
{
  host_.emit (output::InputTimeout {ev.item_id, (guint64) MAX (ev.audio_ms, 0),
      (guint64) MAX (ev.audio_end_ms, 0)});
}

/* Progress and failures of the service's MCP tools. */
void Dialog::on_mcp (const ServerEvent &ev)
{
  host_.emit (output::Mcp {ev.type == EventType::McpCall, ev.item_id, ev.status});
}

void Dialog::on_session_created (const ServerEvent &ev)
{
  formats_reported (ev);
  guint64 dropped_ms, lost_ms;
  {
    std::lock_guard<std::mutex> guard (lock_);
    session_ = output::Session {ev.session_id, ev.model};
    start_session_locked ();
    dropped_ms = outage_dropped_ * 1000 / config_.input_rate;
    lost_ms = lost_at_cut_ * 1000 / config_.input_rate;
    outage_dropped_ = lost_at_cut_ = 0;
  }
  if (dropped_ms > 0)
    host_.post_warning ("Live input was lost while reconnecting",
        "dropped " + std::to_string (dropped_ms) +
        " ms of the oldest input beyond max-buffer-ms");
  /* That input reached the lost session, so it is not dropped-input; but
   * the turn it belonged to is cut short in the new one. */
  if (lost_ms > 0)
    host_.post_warning ("Part of a turn could not be sent again",
        std::to_string (lost_ms) + " ms of input the lost session had not "
        "finished with were beyond max-buffer-ms (a turn longer than "
        "max-buffer-ms); raise max-buffer-ms to keep more");
}

/* A new session: configure it.  The rest waits for the service's answer
 * (session_configured_locked). */
void Dialog::start_session_locked ()
{
  if (sessions_++ > 0)
    playout_.new_session ();
  failures_in_a_row_ = 0;
  generation_++;
  configuring_ = true;
  wire_.reset ();
  connection_->set_outbox_limit (outbox_limit_locked ());
  lost_at_cut_ += ledger_.rewind ();
  ledger_.set_manual_turns (config_.turn_detection == TurnDetection::None);
  send_update_locked ();
}

/* The service took the session's settings: give it the conversation so far
 * and the input the old session had not finished with, then whatever was
 * held for it. */
void Dialog::session_configured_locked ()
{
  configuring_ = false;
  ready_ = true;
  if (sessions_ > 1 && !history_in_instructions_)
    replay_history_locked ();
  send_unsent_locked ();
  for (std::string &frame : pending_)
    connection_->send (std::move (frame));
  pending_.clear ();
  send_drain_barrier_locked ();
  release_queued_create_locked ();
  if (options_.session_lifetime_ms > 0) {
    guint generation = generation_;
    connection_->call_later (options_.session_lifetime_ms,
        [this, generation] { on_lifetime_over (generation); });
  }
  ready_cond_.notify_all ();
}

/* The conversation so far as text items.  Their event IDs let on_error
 * recognise a service that refuses them. */
void Dialog::replay_history_locked ()
{
  guint n = 0;
  for (const History::Entry &e : history_.entries ()) {
    std::string id = std::string (kReplayEventId) + "-" + std::to_string (++n);
    connection_->send (e.role == History::Role::User ? client::user_text (e.text, id) :
        client::assistant_text (e.text, id));
  }
}

/* The answer to a session.update.  The first one of a session lets
 * everything else go; the session message is posted then, once the session
 * takes requests (a handler may act on it). */
void Dialog::on_session_updated (const ServerEvent &ev)
{
  formats_reported (ev);
  std::optional<output::Session> configured;
  {
    std::lock_guard<std::mutex> guard (lock_);
    books_.update_acked ();
    ledger_.update_acked ();
    if (configuring_) {
      session_configured_locked ();
      configured = session_;
    }
    ready_cond_.notify_all ();
    check_drain_locked ();
  }
  if (configured)
    host_.emit (*configured);
  maybe_rollover ();
}

/* The formats a session.created or session.updated says the session uses:
 * the answers are converted from the rate the service really serves. */
void Dialog::formats_reported (const ServerEvent &ev)
{
  guint served, asked;
  {
    std::lock_guard<std::mutex> guard (lock_);
    formats_.reported (ev.input_format, ev.output_format);
    served = formats_.served_output ();
    asked = formats_.asked_output ();
    stats_.output_rate_served = served;
    stats_.input_rate_accepted = formats_.accepted_input ();
  }
  if (served != asked && ev.type == EventType::SessionUpdated)
    GST_INFO_OBJECT (log_object_, "the service serves answers at %u Hz (asked for %u Hz): "
        "converting them to %u Hz", served, asked, playout_.rate ());
  playout_.set_source_rate (served, options_.resample_quality);
}

/* An error about our session.update answers it (a refused update is never
 * acknowledged): the drain and the barriers do not wait for a
 * session.updated that will not come.  A refused rate is asked again at
 * the documented one, and the session is usable at once: it was held until
 * the service took its settings. */
bool Dialog::on_update_refused (const ServerEvent &ev)
{
  const ServerError &e = ev.error;
  bool ours = g_str_has_prefix (e.event_id.c_str (), kUpdateEventId) ||
      (e.event_id.empty () && g_str_has_prefix (e.param.c_str (), "session."));
  if (!ours)
    return false;
  std::optional<RateRefusal> refusal;
  std::optional<output::Session> configured;
  {
    std::lock_guard<std::mutex> guard (lock_);
    books_.update_acked ();
    ledger_.update_acked ();
    refusal = formats_.refused (e);
    if (refusal && !refusal->output)
      wire_.configure (config_.input_rate, refusal->fallback, options_.resample_quality);
    if (refusal) {
      send_session_update_locked ();
    } else if (configuring_) {
      /* The service keeps the settings it had: go on with them. */
      session_configured_locked ();
      configured = session_;
    }
    ready_cond_.notify_all ();
    check_drain_locked ();
  }
  std::string why = "session.update refused: " + e.message + " (code " + e.code + ", param " +
      e.param + ")";
  if (refusal && refusal->output) {
    guint rate = playout_.rate ();
    playout_.set_source_rate (refusal->fallback, options_.resample_quality);
    host_.post_warning ("The service refused the output rate of " +
        std::to_string (refusal->refused) + " Hz: answers are asked for at " +
        std::to_string (refusal->fallback) + " Hz and converted to " + std::to_string (rate) +
        " Hz", why);
  } else if (refusal) {
    host_.post_warning ("The service refused the input rate of " +
        std::to_string (refusal->refused) + " Hz: the input is converted to " +
        std::to_string (refusal->fallback) + " Hz and sent at that rate", why);
  } else {
    host_.post_warning ("The service refused the session settings: " + e.message,
        "code " + e.code + ", param " + e.param + "; the session goes on with the "
        "settings the service had");
  }
  if (configured)
    host_.emit (*configured);
  return true;
}

void Dialog::on_error (const ServerEvent &ev)
{
  host_.emit (output::ServerError {ev.error.code, ev.error.message, ev.error.event_id});
  if (g_str_has_prefix (ev.error.event_id.c_str (), kReplayEventId)) {
    refused_replay ();
    return;
  }
  if (on_update_refused (ev))
    return;
  /* Races every client has with server VAD; nothing is wrong (PROTOCOL.md). */
  bool expected_race = ev.error.code == "conversation_already_has_active_response" ||
      ev.error.code == "response_cancel_not_active";
  if (!expected_race)
    host_.post_warning ("The service reported an error: " + ev.error.message,
        "code " + ev.error.code + ", type " + ev.error.type);

  std::lock_guard<std::mutex> guard (lock_);
  if (ev.error.code == "input_audio_buffer_commit_empty")
    ledger_.commit_refused ();
  else if (ev.error.code == "conversation_already_has_active_response")
    books_.response_refused ();
  check_drain_locked ();
}

/* The service would not take the conversation as items (Yandex answers
 * assistant items with "not supported yet"): it goes into the instructions
 * instead, now and for every later session. */
void Dialog::refused_replay ()
{
  std::lock_guard<std::mutex> guard (lock_);
  if (history_in_instructions_)
    return;
  GST_INFO_OBJECT (log_object_, "the service refused a replayed conversation item: "
      "carrying the conversation in the instructions");
  history_in_instructions_ = true;
  carried_history_ = history_.as_text ();
  send_session_update_locked ();
}

void Dialog::on_speech_started (const ServerEvent &ev)
{
  guint64 position;
  {
    std::lock_guard<std::mutex> guard (lock_);
    books_.speech_started ();
    ledger_.speech_started (ev.audio_ms, ev.item_id);
    position = ledger_.to_position (ev.audio_ms);
    ready_cond_.notify_all ();
  }
  host_.emit (output::SpeechStarted {ev.item_id, (guint64) MAX (ev.audio_ms, 0), position});
  barge_in ();
}

/* The user talks over the answer: stop it where the listener is, tell the
 * server how much was heard (conversation.item.truncate), and let downstream
 * drop what it still holds.  Only live output is "heard"; non-live output is
 * a file being written. */
void Dialog::barge_in ()
{
  {
    std::lock_guard<std::mutex> guard (lock_);
    if (!live_ || !barge_in_)
      return;
  }
  Interruption cut;
  if (!playout_.interrupt (cut, host_.running_time (), host_.downstream_latency ()))
    return;
  guint rate = playout_.rate ();
  guint64 played;
  GstClockTime position = host_.played_position ();
  if (GST_CLOCK_TIME_IS_VALID (position) && GST_CLOCK_TIME_IS_VALID (cut.first_pts)) {
    played = position > cut.first_pts ?
        gst_util_uint64_scale (position - cut.first_pts, rate, GST_SECOND) : 0;
  } else {
    guint64 in_flight = gst_util_uint64_scale (host_.downstream_latency (), rate, GST_SECOND);
    played = cut.pushed_samples > in_flight ? cut.pushed_samples - in_flight : 0;
  }
  /* Never more than went out, which is never more than was received: the
   * server refuses a truncate beyond the item's audio. */
  played = MIN (played, cut.pushed_samples);
  if (played < cut.pushed_samples)
    playout_.flush_downstream ();
  guint64 played_ms = played * 1000 / rate;
  if (played_ms > 0 && !cut.item_id.empty ()) {
    std::lock_guard<std::mutex> guard (lock_);
    send_locked (client::item_truncate (cut.item_id, 0, played_ms));
  }
  GST_INFO_OBJECT (log_object_, "barge-in: %s heard for %" G_GUINT64_FORMAT " ms",
      cut.response_id.c_str (), played_ms);
  host_.emit (output::Interrupted {cut.response_id, cut.item_id, played_ms});
}

void Dialog::on_committed (const ServerEvent &ev)
{
  std::lock_guard<std::mutex> guard (lock_);
  books_.committed ();
  bool ours = ledger_.commit_awaited ();
  ledger_.committed (ev.item_id, ours);
  ready_cond_.notify_all ();
  /* The server answers a VAD turn by itself only when create_response is on;
   * a turn we committed by hand always needs our response.create. */
  if (!ours && effective_config_locked ().create_response)
    books_.expect_server_response ();
  else
    request_response_locked (nullptr, true);
  check_drain_locked ();
}

void Dialog::request_response_locked (const char *instructions, bool for_turn)
{
  ResponseBooks::Request request;
  if (instructions)
    request.instructions = instructions;
  request.for_turn = for_turn;
  if (auto now = books_.request (std::move (request), ready_))
    send_response_create_locked (*now);
}

void Dialog::send_response_create_locked (const ResponseBooks::Request &request)
{
  const auto &how = request.instructions;
  connection_->send (client::response_create (how ? how->c_str () : nullptr));
  books_.sent (request);
}

/* The next queued response.create, once nothing else is under way. */
void Dialog::release_queued_create_locked ()
{
  if (auto next = books_.next (ready_))
    send_response_create_locked (*next);
}

void Dialog::on_response_created (const ServerEvent &ev)
{
  std::lock_guard<std::mutex> guard (lock_);
  ledger_.response_created (ev.response_id, books_.response_created (ev.response_id));
}

void Dialog::on_response_text (const ServerEvent &ev, bool from_transcript, bool done)
{
  std::string final_text;
  {
    std::lock_guard<std::mutex> guard (lock_);
    AnswerText &a = answer_text_;
    if (a.response_id != ev.response_id)
      a = AnswerText {ev.response_id, {}, from_transcript, false};
    if (a.from_transcript != from_transcript || a.done)
      return;
    if (!done) {
      a.text += ev.text;
    } else {
      a.done = true;
      if (!ev.text.empty ())
        a.text = ev.text;
    }
    final_text = done ? a.text : ev.text;
  }
  host_.emit (output::AnswerText {ev.response_id, final_text, done});
}

void Dialog::on_audio (const ServerEvent &ev)
{
  if (ev.audio.empty ())
    return;
  {
    std::lock_guard<std::mutex> guard (lock_);
    stats_.audio_received += gst_util_uint64_scale (ev.audio.size () / 2, GST_SECOND,
        formats_.served_output ());
    if (turn_end_us_ != 0 && !playout_.is_ignored (ev.response_id)) {
      first_audio_latency_[ev.response_id] =
          (g_get_monotonic_time () - turn_end_us_) * GST_USECOND;
      turn_end_us_ = 0;
    }
  }
  GstClockTime arrival = host_.running_time ();
  gsize queued = playout_.push_audio (ev.response_id, ev.item_id, ev.audio.data (),
      ev.audio.size (), arrival);
  if (queued > 0)
    YRT_TRACE ("downlink-in", trace_deltas_++, trace_arrived_us_);
  if (queued == 0 && ev.audio.size () > 1)
    GST_LOG_OBJECT (log_object_, "dropped %" G_GSIZE_FORMAT " bytes of interrupted or cancelled %s",
        ev.audio.size (), ev.response_id.c_str ());
}

void Dialog::on_response_done (const ServerEvent &ev)
{
  guint64 samples = playout_.received_samples (ev.response_id);
  output::ResponseDone done;
  done.response_id = ev.response_id;
  done.status = ev.status;
  done.audio_duration = samples_to_time (samples, playout_.rate ());
  done.input_tokens = ev.usage.input_tokens;
  done.output_tokens = ev.usage.output_tokens;
  done.total_tokens = ev.usage.total_tokens;
  {
    std::lock_guard<std::mutex> guard (lock_);
    auto latency = first_audio_latency_.find (ev.response_id);
    if (latency != first_audio_latency_.end ()) {
      done.first_audio_latency = latency->second;
      first_audio_latency_.erase (latency);
    }
  }
  host_.emit (done);
  on_function_calls (ev);

  if (ev.status == "cancelled" || ev.status == "failed")
    playout_.ignore_response (ev.response_id);
  else
    playout_.complete_response (ev.response_id);

  {
    std::lock_guard<std::mutex> guard (lock_);
    settle_response_locked (ev);
  }
  maybe_rollover ();
}

/* The books of a finished response: the ledger lets go of the turns it
 * answered, its words join the history, the next request may go. */
void Dialog::settle_response_locked (const ServerEvent &ev)
{
  if (ev.status == "completed")
    stats_.answers++;
  books_.response_done (ev.response_id);
  ledger_.response_done (ev.response_id, !ev.calls.empty ());
  ready_cond_.notify_all ();
  if (answer_text_.response_id == ev.response_id && answer_text_.done)
    history_.add (History::Role::Assistant, answer_text_.text);
  send_call_outputs_locked ();
  release_queued_create_locked ();
  check_drain_locked ();
}

void Dialog::on_function_calls (const ServerEvent &ev)
{
  if (ev.calls.empty ())
    return;
  std::vector<FunctionCall> fresh;
  {
    std::lock_guard<std::mutex> guard (lock_);
    fresh = books_.add_calls (ev.response_id, ev.calls);
  }
  for (const FunctionCall &call : fresh)
    host_.emit (output::FunctionCall {call.call_id, call.name, call.arguments, ev.response_id});
}

/* Each complete batch: its outputs, then exactly one response.create. */
void Dialog::send_call_outputs_locked ()
{
  for (const ResponseBooks::Outputs &batch : books_.take_complete_batches ()) {
    for (const auto &[call_id, output] : batch)
      send_locked (client::function_call_output (call_id, output));
    request_response_locked ();
  }
}

/* ---- conversation control ---- */

/* A session that is still being configured takes requests too: they go
 * once it is (pending_, the books' queue). */
bool Dialog::session_open_locked (const char *action) const
{
  if ((ready_ || configuring_) && !finished_)
    return true;
  GST_WARNING_OBJECT (log_object_, "%s: no open session", action);
  return false;
}

void Dialog::update_session (const SessionConfig &config)
{
  std::lock_guard<std::mutex> guard (lock_);
  config_ = config;
  ledger_.set_manual_turns (config.turn_detection == TurnDetection::None);
  if (!finished_)
    send_session_update_locked ();
}

void Dialog::set_barge_in (bool enabled)
{
  std::lock_guard<std::mutex> guard (lock_);
  barge_in_ = enabled;
}

bool Dialog::send_function_output (const std::string &call_id, const std::string &output)
{
  std::lock_guard<std::mutex> guard (lock_);
  if (!session_open_locked ("send-function-output"))
    return false;
  switch (books_.set_output (call_id, output)) {
    case ResponseBooks::OutputResult::Taken:
      send_call_outputs_locked ();
      return true;
    case ResponseBooks::OutputResult::AlreadyAnswered:
      GST_WARNING_OBJECT (log_object_, "send-function-output: %s already answered",
          call_id.c_str ());
      return false;
    case ResponseBooks::OutputResult::Unknown:
      break;
  }
  GST_WARNING_OBJECT (log_object_, "send-function-output: unknown call-id %s", call_id.c_str ());
  return false;
}

bool Dialog::send_text (const std::string &text)
{
  std::lock_guard<std::mutex> guard (lock_);
  if (!session_open_locked ("send-text"))
    return false;
  send_locked (client::user_text (text));
  history_.add (History::Role::User, text);
  turn_end_us_ = g_get_monotonic_time ();
  request_response_locked ();
  return true;
}

/* The audio that came before the signal must go before the commit, and the
 * last partial chunk is still in the uplink, on the streaming thread: it
 * takes the request at its next buffer (or EOS), sends the partial chunk,
 * then commits.  Input that stopped flowing gets the commit from a timer. */
bool Dialog::commit ()
{
  std::lock_guard<std::mutex> guard (lock_);
  if (!session_open_locked ("commit"))
    return false;
  if (commit_requested_)
    return true;
  commit_requested_ = true;
  connection_->call_later (kCommitFallbackMs, [this] {
    std::lock_guard<std::mutex> guard (lock_);
    if (commit_requested_)
      commit_now_locked ();
  });
  return true;
}

bool Dialog::take_commit_request ()
{
  std::lock_guard<std::mutex> guard (lock_);
  bool requested = commit_requested_;
  commit_requested_ = false;
  return requested;
}

void Dialog::commit_now ()
{
  std::lock_guard<std::mutex> guard (lock_);
  commit_now_locked ();
}

void Dialog::commit_now_locked ()
{
  commit_requested_ = false;
  ledger_.add_commit ();
  if (ready_)
    send_unsent_locked ();
  uncommitted_samples_ = 0;
  turn_end_us_ = g_get_monotonic_time ();
}

bool Dialog::create_response (const char *instructions)
{
  std::lock_guard<std::mutex> guard (lock_);
  if (!session_open_locked ("create-response"))
    return false;
  request_response_locked (instructions);
  return true;
}

bool Dialog::cancel_response ()
{
  std::string id;
  {
    std::lock_guard<std::mutex> guard (lock_);
    if (!session_open_locked ("cancel-response"))
      return false;
    if (books_.active ().empty ()) {
      GST_WARNING_OBJECT (log_object_, "cancel-response: no active response");
      return false;
    }
    id = books_.active ();
    send_locked (client::response_cancel (id));
  }
  playout_.ignore_response (id);
  return true;
}

bool Dialog::clear_input ()
{
  std::lock_guard<std::mutex> guard (lock_);
  if (!session_open_locked ("clear-input"))
    return false;
  send_locked (client::audio_clear ());
  ledger_.input_cleared ();
  uncommitted_samples_ = 0;
  return true;
}

bool Dialog::clear_conversation ()
{
  std::lock_guard<std::mutex> guard (lock_);
  if (!session_open_locked ("clear-conversation"))
    return false;
  for (const std::string &item : known_items_)
    send_locked (client::item_delete (item));
  known_items_.clear ();
  history_.clear ();
  return true;
}

/* ---- drain ---- */

bool Dialog::outstanding_locked () const
{
  return books_.outstanding () || ledger_.commits_owed () > 0;
}

void Dialog::check_drain_locked ()
{
  if (draining_ && !outstanding_locked ())
    finish_drain_locked ();
}

void Dialog::finish_drain_locked ()
{
  if (!draining_ && !finished_)
    return;
  draining_ = false;
  playout_.finish ();
}

}  // namespace yrt
