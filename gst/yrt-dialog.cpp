#include "yrt-dialog.h"
#include "yrt-debug.h"

#include <algorithm>


namespace yrt {

namespace {
/* Reconnect delays double from reconnect-backoff-ms up to this. */
constexpr guint kMaxBackoffMs = 30000;
/* A commit below this is refused by the service (input_audio_buffer_commit_empty). */
constexpr guint kMinCommitMs = 100;
constexpr gushort kCloseNormal = 1000;
/* How long a `commit` waits for the streaming thread before going alone. */
constexpr guint kCommitFallbackMs = 200;

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
    ready_ = finished_ = flushing_ = draining_ = commit_requested_ = false;
    live_ = live_known_ = false;
    pending_.clear ();
    turn_audio_.configure (config.input_rate, options.max_buffer_ms);
    history_.clear ();
    sessions_ = generation_ = failures_in_a_row_ = 0;
    rollover_due_ = false;
    outage_dropped_ = 0;
    stats_ = DialogStats ();
    uncommitted_samples_ = 0;
    sent_audio_ = speech_open_ = false;
    commits_in_flight_ = expected_responses_ = 0;
    queued_creates_.clear ();
    call_batches_.clear ();
    known_items_.clear ();
    turn_end_us_ = 0;
    first_audio_latency_.clear ();
    /* Update #1 is the initial one: it goes out first, before anything held. */
    session_updates_sent_ = 1;
    session_updates_acked_ = barrier_ = 0;
    active_response_.clear ();
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
  callbacks.failed = [this] (guint status, const std::string &cause) {
    on_failed (status, cause);
  };
  callbacks.closed = [this] (gushort code, const std::string &reason) {
    on_closed (code, reason);
  };
  callbacks.drained = [this] {
    std::lock_guard<std::mutex> guard (lock_);
    if (outbox_full_ && connection_->queued_bytes () <= outbox_limit_locked () / 2)
      ready_cond_.notify_all ();
  };
  connection_ = std::make_unique<Connection> (std::move (callbacks));
  post_connection ("connecting");
  connection_->start (endpoint.url, endpoint.authorization, options.connect_timeout_ms);
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
  if (live_known_ && !live_)
    c.interrupt_response = c.create_response = false;
  return c;
}

void Dialog::set_flushing (bool flushing)
{
  std::lock_guard<std::mutex> guard (lock_);
  flushing_ = flushing;
  if (flushing) {
    /* Audio not yet sent belongs to the flushed stream, and so does a
     * commit of it. */
    turn_audio_.clear ();
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
  /* Non-live input waits (bounded by max-buffer-ms) for a session, or for a
   * peer that stopped reading; live input never waits: the oldest goes. */
  ready_cond_.wait (lock, [&] {
    if (flushing_ || finished_ || live_)
      return true;
    if (!ready_)
      return !turn_audio_.unsent_full ();
    /* Once full, wait for half of it to go: one wake-up per half outbox,
     * not one per frame. */
    gsize queued = connection_->queued_bytes ();
    if (queued >= outbox_limit_locked ())
      outbox_full_ = true;
    else if (queued <= outbox_limit_locked () / 2)
      outbox_full_ = false;
    return !outbox_full_;
  });
  if (flushing_)
    return SendResult::Flushing;
  if (finished_)
    return SendResult::Failed;
  uncommitted_samples_ += size / 2;
  sent_audio_ = true;
  if (ready_) {
    connection_->send (client::audio_append (pcm, size),
        live_ ? Connection::Frame::LiveAudio : Connection::Frame::FileAudio);
    turn_audio_.add_sent (pcm, size);
    stats_.audio_samples_sent += size / 2;
  } else {
    turn_audio_.add_unsent (pcm, size);
    guint64 dropped = turn_audio_.drop_oldest_unsent ();
    outage_dropped_ += dropped;
    stats_.dropped_input_samples += dropped;
  }
  return SendResult::Ok;
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
    send_locked (client::audio_commit ());
    commits_in_flight_++;
    uncommitted_samples_ = 0;
  } else if (!manual && sent_audio_) {
    /* The service answers session.update only after it has read everything
     * sent before it, so its reply tells us the VAD has seen our last audio. */
    send_session_update_locked ();
    barrier_ = session_updates_sent_;
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

void Dialog::send_session_update_locked ()
{
  send_locked (client::session_update (effective_config_locked ()));
  session_updates_sent_++;
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

void Dialog::on_failed (guint status, const std::string &cause)
{
  /* Refused credentials or endpoint will be refused again: no retry storm. */
  bool permanent = status == 401 || status == 403 || status == 404;
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
    ready_ = false;
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
 * starts clean: an answer in progress failed (its audio is not repeated), the
 * uncommitted turn goes up again, commits and answers still owed are asked
 * for again. */
bool Dialog::reconnect (const std::string &reason, bool retryable)
{
  std::string cut;
  guint attempt, delay_ms;
  {
    std::lock_guard<std::mutex> guard (lock_);
    ready_ = false;
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
    cut = active_response_;
    active_response_.clear ();
    speech_open_ = false;
    call_batches_.clear ();
    known_items_.clear ();  /* the new session has none of them */
    for (guint i = 0; i < expected_responses_; i++)
      queued_creates_.push_back (std::nullopt);
    expected_responses_ = 0;
    for (guint i = 0; i < commits_in_flight_; i++)
      pending_.push_back (client::audio_commit ());
    session_updates_sent_ = 1;
    session_updates_acked_ = 0;
    if (draining_ && barrier_ > 0) {
      send_session_update_locked ();
      barrier_ = session_updates_sent_;
    }
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
  /* What arrived of it still plays; nothing of it comes twice. */
  playout_.ignore_response (response_id, false);
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
  ready_ = false;
  session_updates_sent_ = 1;
  session_updates_acked_ = 0;
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
    case EventType::SessionUpdated: {
      {
        std::lock_guard<std::mutex> guard (lock_);
        session_updates_acked_++;
        check_drain_locked ();
      }
      maybe_rollover ();
      break;
    }
    case EventType::Error:
      on_error (ev);
      break;
    case EventType::SpeechStarted:
      on_speech_started (ev);
      break;
    case EventType::SpeechStopped: {
      {
        std::lock_guard<std::mutex> guard (lock_);
        turn_end_us_ = g_get_monotonic_time ();
      }
      host_.emit (output::SpeechStopped {ev.item_id, (guint64) MAX (ev.audio_ms, 0)});
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
        history_.add (History::Role::User, ev.text);
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
    case EventType::ResponseDone:
      on_response_done (ev);
      break;
    case EventType::Unknown:
      GST_DEBUG_OBJECT (log_object_, "ignoring unknown server event %s", ev.type_name.c_str ());
      break;
    default:
      break;
  }
}

void Dialog::on_session_created (const ServerEvent &ev)
{
  guint64 dropped_ms;
  {
    std::lock_guard<std::mutex> guard (lock_);
    start_session_locked ();
    dropped_ms = outage_dropped_ * 1000 / config_.input_rate;
    outage_dropped_ = 0;
  }
  /* Posted once the session takes requests: a handler may act on it. */
  host_.emit (output::Session {ev.session_id, ev.model});
  if (dropped_ms > 0)
    host_.post_warning ("Live input was lost while reconnecting",
        "dropped " + std::to_string (dropped_ms) +
        " ms of the oldest input beyond max-buffer-ms");
}

/* A new session: configure it, give it the conversation so far and the
 * user's uncommitted turn, then whatever was held for it. */
void Dialog::start_session_locked ()
{
  bool resumed = sessions_++ > 0;
  failures_in_a_row_ = 0;
  generation_++;
  ready_ = true;
  connection_->set_outbox_limit (outbox_limit_locked ());
  send_locked (client::session_update (effective_config_locked ()));
  if (resumed) {
    for (const History::Entry &e : history_.entries ())
      send_locked (e.role == History::Role::User ? client::user_text (e.text) :
          client::assistant_text (e.text));
  }
  for (const std::vector<guint8> &chunk : turn_audio_.take_for_new_session ()) {
    send_locked (client::audio_append (chunk.data (), chunk.size ()));
    stats_.audio_samples_sent += chunk.size () / 2;
  }
  for (std::string &frame : pending_)
    send_locked (std::move (frame));
  pending_.clear ();
  if (!queued_creates_.empty () && active_response_.empty () && expected_responses_ == 0) {
    std::optional<std::string> how = queued_creates_.front ();
    queued_creates_.pop_front ();
    send_response_create_locked (how);
  }
  if (options_.session_lifetime_ms > 0) {
    guint generation = generation_;
    connection_->call_later (options_.session_lifetime_ms,
        [this, generation] { on_lifetime_over (generation); });
  }
  ready_cond_.notify_all ();
}

void Dialog::on_error (const ServerEvent &ev)
{
  host_.emit (output::ServerError {ev.error.code, ev.error.message, ev.error.event_id});
  /* Races every client has with server VAD; nothing is wrong (PROTOCOL.md). */
  bool expected_race = ev.error.code == "conversation_already_has_active_response" ||
      ev.error.code == "response_cancel_not_active";
  if (!expected_race)
    host_.post_warning ("The service reported an error: " + ev.error.message,
        "code " + ev.error.code + ", type " + ev.error.type);

  std::lock_guard<std::mutex> guard (lock_);
  if (ev.error.code == "input_audio_buffer_commit_empty" && commits_in_flight_ > 0)
    commits_in_flight_--;
  else if (ev.error.code == "conversation_already_has_active_response" &&
      expected_responses_ > 0)
    expected_responses_--;
  check_drain_locked ();
}

void Dialog::on_speech_started (const ServerEvent &ev)
{
  host_.emit (output::SpeechStarted {ev.item_id, (guint64) MAX (ev.audio_ms, 0)});

  {
    std::lock_guard<std::mutex> guard (lock_);
    speech_open_ = true;
  }
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

void Dialog::on_committed (const ServerEvent &)
{
  std::lock_guard<std::mutex> guard (lock_);
  speech_open_ = false;
  turn_audio_.committed ();
  bool ours = commits_in_flight_ > 0;
  if (ours)
    commits_in_flight_--;
  /* The server answers a VAD turn by itself only when create_response is on;
   * a turn we committed by hand always needs our response.create. */
  if (!ours && effective_config_locked ().create_response)
    expected_responses_++;  /* the server answers by itself */
  else
    request_response_locked ();
  check_drain_locked ();
}

void Dialog::request_response_locked (const char *instructions)
{
  std::optional<std::string> how;
  if (instructions)
    how = instructions;
  /* Never while another response is active or about to start: the server
   * would refuse it (conversation_already_has_active_response). */
  if (!active_response_.empty () || expected_responses_ > 0) {
    queued_creates_.push_back (how);
    return;
  }
  send_response_create_locked (how);
}

void Dialog::send_response_create_locked (const std::optional<std::string> &how)
{
  send_locked (client::response_create (how ? how->c_str () : nullptr));
  expected_responses_++;
}

void Dialog::on_response_created (const ServerEvent &ev)
{
  std::lock_guard<std::mutex> guard (lock_);
  if (expected_responses_ > 0)
    expected_responses_--;
  active_response_ = ev.response_id;
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
    if (done)
      history_.add (History::Role::Assistant, a.text);
  }
  host_.emit (output::AnswerText {ev.response_id, final_text, done});
}

void Dialog::on_audio (const ServerEvent &ev)
{
  if (ev.audio.empty ())
    return;
  {
    std::lock_guard<std::mutex> guard (lock_);
    stats_.audio_samples_received += ev.audio.size () / 2;
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

  {
    std::lock_guard<std::mutex> guard (lock_);
    settle_response_locked (ev);
  }
  maybe_rollover ();
}

void Dialog::settle_response_locked (const ServerEvent &ev)
{
  if (ev.status == "completed")
    stats_.answers++;
  if (active_response_ == ev.response_id || active_response_.empty ())
    active_response_.clear ();
  else if (expected_responses_ > 0)
    expected_responses_--;  /* done without a created we saw */
  for (FunctionCallBatch &batch : call_batches_)
    if (batch.response_id == ev.response_id)
      batch.response_done = true;
  send_call_outputs_locked ();
  if (!queued_creates_.empty () && active_response_.empty () && expected_responses_ == 0) {
    std::optional<std::string> how = queued_creates_.front ();
    queued_creates_.pop_front ();
    send_response_create_locked (how);
  }
  check_drain_locked ();
}

void Dialog::on_function_calls (const ServerEvent &ev)
{
  if (ev.calls.empty ())
    return;
  std::vector<FunctionCall> fresh;
  {
    std::lock_guard<std::mutex> guard (lock_);
    auto batch = std::find_if (call_batches_.begin (), call_batches_.end (),
        [&] (const FunctionCallBatch &b) { return b.response_id == ev.response_id; });
    if (batch == call_batches_.end ()) {
      call_batches_.emplace_back ();
      batch = call_batches_.end () - 1;
      batch->response_id = ev.response_id;
    }
    for (const FunctionCall &call : ev.calls) {
      if (std::find (batch->call_ids.begin (), batch->call_ids.end (), call.call_id) ==
          batch->call_ids.end ()) {
        batch->call_ids.push_back (call.call_id);
        fresh.push_back (call);
      }
    }
  }
  for (const FunctionCall &call : fresh) {
    host_.emit (output::FunctionCall {call.call_id, call.name, call.arguments, ev.response_id});
  }
}

/* Once a response has ended and every call of it has its output: the
 * outputs, then exactly one response.create. */
void Dialog::send_call_outputs_locked ()
{
  for (auto batch = call_batches_.begin (); batch != call_batches_.end ();) {
    if (!batch->response_done || batch->outputs.size () < batch->call_ids.size ()) {
      ++batch;
      continue;
    }
    for (const std::string &call_id : batch->call_ids)
      send_locked (client::function_call_output (call_id, batch->outputs[call_id]));
    batch = call_batches_.erase (batch);
    request_response_locked ();
  }
}

/* ---- conversation control ---- */

bool Dialog::session_open_locked (const char *action) const
{
  if (ready_ && !finished_)
    return true;
  GST_WARNING_OBJECT (log_object_, "%s: no open session", action);
  return false;
}

void Dialog::update_session (const SessionConfig &config)
{
  std::lock_guard<std::mutex> guard (lock_);
  config_ = config;
  if (ready_ && !finished_)
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
  for (FunctionCallBatch &batch : call_batches_) {
    if (std::find (batch.call_ids.begin (), batch.call_ids.end (), call_id) ==
        batch.call_ids.end ())
      continue;
    if (batch.outputs.count (call_id)) {
      GST_WARNING_OBJECT (log_object_, "send-function-output: %s already answered",
          call_id.c_str ());
      return false;
    }
    batch.outputs[call_id] = output;
    send_call_outputs_locked ();
    return true;
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
  send_locked (client::audio_commit ());
  commits_in_flight_++;
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
    if (active_response_.empty ()) {
      GST_WARNING_OBJECT (log_object_, "cancel-response: no active response");
      return false;
    }
    id = active_response_;
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
  return speech_open_ || commits_in_flight_ > 0 || expected_responses_ > 0 ||
      !queued_creates_.empty () || !active_response_.empty () || !call_batches_.empty () ||
      session_updates_acked_ < barrier_;
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
