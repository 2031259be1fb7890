/* Session: the life of the service sessions (connect, reconnect, roll over,
 * configure each new one and give it what it needs to carry on).  What the
 * conversation's events mean is in yrt-conversation.cpp. */
#include "yrt-session.h"
#include "yrt-debug.h"

#include <cstring>

namespace yrt {

namespace {
/* A stall of the network thread (or of the service's reading) that live
 * input is protected against beyond max-buffer-ms: in the send backlog and
 * in the ledger. */
constexpr guint kBacklogStallMs = 1000;
constexpr gushort kCloseNormal = 1000;
/* Kept before an utterance's reported start, beyond the prefix padding: a
 * VAD reports speech some way into it. */
constexpr guint kVadDetectionMs = 500;
/* event_id of replayed conversation items, to recognise their refusal. */
constexpr const char *kReplayEventId = "yrt-replay";
/* event_id of our session.update events, to recognise an error about one. */
constexpr const char *kUpdateEventId = "yrt-update";
}  // namespace

Session::Session (DialogHost &host, Playout &playout, GstObject *log_object,
    SessionListener &listener)
    : host_ (host), playout_ (playout), log_object_ (log_object), listener_ (listener)
{
}

Session::~Session ()
{
  close ();
}

void Session::open (const Endpoint &endpoint, const SessionConfig &config,
    const DialogOptions &options)
{
  close ();
  {
    std::lock_guard<std::mutex> guard (lock_);
    endpoint_ = endpoint;
    config_ = config;
    options_ = options;
    ready_ = configuring_ = finished_ = flushing_ = false;
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
    sessions_ = failures_in_a_row_ = 0;
    rollover_due_ = false;
    outage_dropped_ = 0;
    stats_ = DialogStats ();
    backoff_.reseed (backoff_seed ());
  }
  GST_INFO_OBJECT (log_object_, "reconnection backoff seed %u", backoff_.seed ());
  ConnectionCallbacks callbacks;
  callbacks.opened = [this] { on_opened (); };
  callbacks.text = [this] (const char *data, gsize size) { on_text (data, size); };
  callbacks.binary = [this] (gsize size) {
    GST_WARNING_OBJECT (log_object_, "ignoring a binary frame of %" G_GSIZE_FORMAT " bytes",
        size);
    std::lock_guard<std::mutex> guard (lock_);
    stats_.bad_events++;
  };
  callbacks.failed = [this] (guint status, const std::string &cause, bool permanent,
      std::optional<guint> retry_after_ms) {
    on_failed (status, cause, permanent, retry_after_ms);
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

void Session::close ()
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

void Session::call_later (guint delay_ms, std::function<void ()> fn)
{
  if (connection_)
    connection_->call_later (delay_ms, std::move (fn));
}

void Session::post_connection (const char *state)
{
  host_.emit (output::Connection {state, endpoint_.url, 0, 0, {}});
}

DialogStats Session::stats_locked () const
{
  DialogStats s = stats_;
  if (connection_) {
    s.bytes_sent = connection_->sent_bytes ();
    s.bytes_received = connection_->received_bytes ();
    s.bytes_queued = connection_->queued_bytes ();
    /* Live audio the outbox dropped. */
    s.dropped_input_samples += connection_->dropped_samples ();
  }
  return s;
}

/* Non-live input streams faster than anyone could listen: the next turn
 * would always "interrupt" the answer to the previous one, and a server
 * answers a turn that ends during another answer in its own way.  So with
 * non-live input the element itself asks for one answer per turn, each
 * after the previous one ended, and the server cancels nothing. */
void Session::set_live (bool live)
{
  std::lock_guard<std::mutex> guard (lock_);
  SessionConfig before = effective_config_locked ();
  live_ = live;
  live_known_ = true;
  SessionConfig after = effective_config_locked ();
  /* Also while the session's first update is unanswered: the audio held
   * for the session goes after this one. */
  if (after.interrupt_response != before.interrupt_response ||
      after.create_response != before.create_response)
    send_session_update_locked ();
}

SessionConfig Session::effective_config_locked () const
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

void Session::set_flushing_locked (bool flushing)
{
  flushing_ = flushing;
  /* Audio not yet sent belongs to the flushed stream, and so does a
   * commit of it; nothing of it is owed to a later session. */
  if (flushing)
    ledger_.clear ();
  ready_cond_.notify_all ();
}

void Session::update_session (const SessionConfig &config)
{
  std::lock_guard<std::mutex> guard (lock_);
  config_ = config;
  ledger_.set_manual_turns (config.turn_detection == TurnDetection::None);
  if (!finished_)
    send_session_update_locked ();
}

bool Session::takes_requests_locked (const char *action) const
{
  if ((ready_ || configuring_) && !finished_)
    return true;
  GST_WARNING_OBJECT (log_object_, "%s: no open session", action);
  return false;
}

/* ---- streaming thread ---- */

/* In input samples: what the ledger holds at most, so that sending it
 * again to a new session never drops any of it, plus kBacklogStallMs of
 * live input arriving before the network thread writes it. */
guint64 Session::live_audio_limit_locked () const
{
  return (guint64) config_.input_rate * (options_.max_buffer_ms + kBacklogStallMs) / 1000;
}

Session::SendResult Session::send_audio (const guint8 *pcm, gsize size)
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
  ledger_.add (pcm, size);
  if (ready_) {
    send_unsent_locked ();
  } else if (live_) {
    guint64 dropped = ledger_.drop_oldest_unsent ();
    outage_dropped_ += dropped;
    stats_.dropped_input_samples += dropped;
  }
  /* Live input never waits: past the bound the oldest input loses its
   * protection, heard or not.  The bound has the backlog's second more, or
   * a session just given max-buffer-ms again would forget, at the next
   * buffer, input it has not read yet. */
  if (live_ && ledger_.retained () >= live_audio_limit_locked ())
    ledger_.force_release (true);
  return SendResult::Ok;
}

/* Whether non-live input may add to the ledger; else what will make room is
 * on its way: a session, a barrier's answer, an answer to a committed turn.
 * Once the service has processed everything and still nothing can go, only
 * more input could move the release point (a turn longer than the bound):
 * its oldest audio loses its protection instead of waiting for ever. */
bool Session::room_for_input_locked ()
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
 * the release point moves in long silences too.  A new session's catch-up
 * (up to max-buffer-ms, the ledger's bound) is never dropped from the send
 * backlog: part of it may have reached the lost session, so dropping it
 * would count in dropped-input what a session did receive; live input
 * after it is dropped first when the backlog is full. */
void Session::send_unsent_locked (bool catch_up)
{
  auto kind = live_ && !catch_up ? Connection::Frame::LiveAudio : Connection::Frame::FileAudio;
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
void Session::send_append_locked (const guint8 *pcm, gsize size, Connection::Frame kind)
{
  if (size == 0)
    return;
  if (wire_.passthrough ()) {
    connection_->send (client::audio_append (pcm, size), kind, size / 2);
    return;
  }
  std::vector<gint16> in (size / 2), out, none;
  memcpy (in.data (), pcm, in.size () * 2);
  wire_.process ("input", in.data (), in.size (), out, none);
  if (!out.empty ())
    connection_->send (client::audio_append ((const guint8 *) out.data (), out.size () * 2), kind,
        in.size ());
}

/* Only to a session that has one: the next session's initial update
 * carries the config anyway. */
void Session::send_session_update_locked ()
{
  if (!ready_ && !configuring_)
    return;
  send_update_locked ();
  listener_.update_sent_locked ();
}

/* Every update is also a barrier for the ledger. */
void Session::send_update_locked ()
{
  std::string id = std::string (kUpdateEventId) + "-" + std::to_string (++updates_);
  connection_->send (client::session_update (effective_config_locked (), id));
  ledger_.update_sent ();
}

void Session::send_locked (std::string frame)
{
  if (!ready_) {
    pending_.push_back (std::move (frame));
    return;
  }
  connection_->send (std::move (frame));
}

/* ---- worker thread ---- */

void Session::on_opened ()
{
  GST_INFO_OBJECT (log_object_, "WebSocket open, waiting for session.created");
  post_connection ("connected");
}

void Session::on_failed (guint status, const std::string &cause, bool permanent,
    std::optional<guint> retry_after_ms)
{
  /* Refused credentials, endpoint or certificate will be refused again: no
   * retry storm. */
  permanent = permanent || status == 401 || status == 403 || status == 404;
  /* Too many sessions or handshakes just now: the service says when to come
   * back.  A pool of elements starting together meets 429 before its first
   * session, and that is no configuration problem either. */
  bool busy = status == 429;
  guint floor_ms = busy || status == 503 ? retry_after_ms.value_or (0) : 0;
  if (reconnect (cause, !permanent, floor_ms, busy))
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
  finish_locked ();
  playout_.finish ();
}

/* Nothing more will flow: the streaming thread's next send fails.  Only
 * after the error is posted, so that the element's error, not upstream's
 * "internal data stream error" that the failed send leads to, is the first
 * on the bus. */
void Session::finish_locked ()
{
  finished_ = true;
  ready_cond_.notify_all ();
}

void Session::on_closed (gushort code, const std::string &reason)
{
  std::string why = "closed with code " + std::to_string (code) +
      (reason.empty () ? "" : ": " + reason);
  bool done_anyway;
  {
    std::lock_guard<std::mutex> guard (lock_);
    done_anyway = listener_.draining_locked () && !listener_.outstanding_locked () &&
        code == kCloseNormal;
  }
  if (!done_anyway && reconnect (why, true))
    return;
  {
    std::lock_guard<std::mutex> guard (lock_);
    stats_.last_error = why;
    ready_ = configuring_ = false;
  }
  post_connection ("closed");
  if (!done_anyway)
    host_.post_error (DialogError::Closed, "The service closed the session",
        "WebSocket " + why);
  std::lock_guard<std::mutex> guard (lock_);
  finish_locked ();
  listener_.finish_drain_locked ();
}

/* Worker thread.  The session ended under us, or an attempt was refused:
 * the next one starts clean (settle_lost_session_locked), after a jittered
 * backoff (yrt-backoff.h) no shorter than the service's Retry-After. */
bool Session::reconnect (const std::string &reason, bool retryable, guint retry_after_ms,
    bool busy)
{
  std::string cut;
  guint attempt, delay_ms;
  {
    std::lock_guard<std::mutex> guard (lock_);
    ready_ = configuring_ = false;
    /* Given up: the caller posts why, then finish_locked().  Before the
     * first session only a refusal for load (429) is worth a retry, since a
     * wrong location or a network that is down must say so at once; once
     * such a series began, whatever fails next in it (a reset handshake, a
     * 503 from a load balancer) is retried too, within max-reconnects. */
    bool starting = sessions_ == 0 && failures_in_a_row_ == 0;
    if (!retryable || (starting && !busy) || failures_in_a_row_ >= options_.max_reconnects)
      return false;
    attempt = ++failures_in_a_row_;
    stats_.reconnects++;
    stats_.last_error = reason;
    delay_ms = backoff_.delay_ms (attempt, options_.reconnect_backoff_ms, retry_after_ms);
    cut = settle_lost_session_locked ();
  }
  if (!cut.empty ())
    listener_.response_cut (cut);
  GST_WARNING_OBJECT (log_object_, "session lost (%s); reconnecting in %u ms, attempt %u",
      reason.c_str (), delay_ms, attempt);
  post_reconnecting (attempt, delay_ms, reason);
  connection_->restart (delay_ms);
  return true;
}

/* The books of a session that is gone (lost, or rolled over between turns)
 * are settled so the next one starts clean: an answer in progress failed
 * (what arrived of it is dropped: its turn goes up again and is answered
 * again), the input the service had not finished with goes up again (the
 * ledger), requests that answered no turn are asked for again, and the
 * conversation so far is what the next one is told.  Returns the response
 * cut (empty if none). */
std::string Session::settle_lost_session_locked ()
{
  std::string cut = listener_.session_lost_locked ();
  /* Turns the new session is sent again are not in the history twice. */
  history_.forget (ledger_.unanswered_items ());
  lost_at_cut_ += ledger_.rewind ();
  if (history_in_instructions_)
    carried_history_ = history_.as_text ();
  return cut;
}

void Session::post_reconnecting (guint attempt, guint delay_ms, const std::string &reason)
{
  host_.emit (output::Connection {"reconnecting", endpoint_.url, attempt, delay_ms, reason});
}

/* Proactive rollover, between turns only: an answer is never cut. */
void Session::on_lifetime_over (guint session)
{
  {
    std::lock_guard<std::mutex> guard (lock_);
    if (session != sessions_ || finished_)
      return;
    rollover_due_ = true;
  }
  maybe_rollover ();
}

void Session::maybe_rollover ()
{
  bool rolled;
  {
    std::lock_guard<std::mutex> guard (lock_);
    rolled = rollover_locked ();
  }
  if (rolled)
    post_reconnecting (0, 0, "session-lifetime-ms reached");
}

bool Session::rollover_locked ()
{
  if (!rollover_due_ || !ready_ || listener_.outstanding_locked () ||
      listener_.draining_locked ())
    return false;
  GST_INFO_OBJECT (log_object_, "session lifetime reached between turns: rolling over");
  rollover_due_ = false;
  ready_ = configuring_ = false;
  settle_lost_session_locked ();  /* nothing in flight: nothing is cut */
  connection_->restart (0);
  return true;
}

/* The events of the session's life are handled here; the others, and the
 * errors about anything else, go to the conversation. */
void Session::on_text (const char *data, gsize size)
{
  gint64 arrived_us = YRT_TRACING () ? g_get_monotonic_time () : 0;
  ServerEvent ev;
  std::string why;
  if (!parse_server_event (data, size, ev, why)) {
    GST_WARNING_OBJECT (log_object_, "ignoring a malformed server event: %s", why.c_str ());
    std::lock_guard<std::mutex> guard (lock_);
    stats_.bad_events++;
    return;
  }
  GST_LOG_OBJECT (log_object_, "server event %s", ev.type_name.c_str ());
  if (ev.type == EventType::SessionCreated)
    on_session_created (ev);
  else if (ev.type == EventType::SessionUpdated)
    on_session_updated (ev);
  else if (ev.type != EventType::Error || !on_session_error (ev))
    listener_.handle (ev, arrived_us);
}

/* Every error is posted; one about our session.update or a replayed item is
 * the session's to act on (true), the others the conversation's. */
bool Session::on_session_error (const ServerEvent &ev)
{
  host_.emit (output::ServerError {ev.error.code, ev.error.message, ev.error.event_id});
  if (g_str_has_prefix (ev.error.event_id.c_str (), kReplayEventId)) {
    refused_replay ();
    return true;
  }
  return on_update_refused (ev);
}

void Session::on_session_created (const ServerEvent &ev)
{
  formats_reported (ev);
  std::lock_guard<std::mutex> guard (lock_);
  session_ = output::Session {ev.session_id, ev.model};
  start_session_locked ();
}

/* Outside lock_, once the session is configured: it takes requests now (a
 * handler of the session message may act on it), and what the outage cost
 * is told, now that no more of it can be dropped (live input is dropped at
 * the bound until the session takes it). */
void Session::announce_configured (const output::Session &session)
{
  guint64 dropped_ms, lost_ms;
  {
    std::lock_guard<std::mutex> guard (lock_);
    dropped_ms = outage_dropped_ * 1000 / config_.input_rate;
    lost_ms = lost_at_cut_ * 1000 / config_.input_rate;
    outage_dropped_ = lost_at_cut_ = 0;
  }
  host_.emit (session);
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
void Session::start_session_locked ()
{
  if (sessions_++ > 0)
    playout_.new_session ();
  failures_in_a_row_ = 0;
  configuring_ = true;
  wire_.reset ();
  connection_->set_live_audio_limit (live_audio_limit_locked ());
  lost_at_cut_ += ledger_.rewind ();
  ledger_.set_manual_turns (config_.turn_detection == TurnDetection::None);
  send_update_locked ();
}

/* The service took the session's settings: give it the conversation so far
 * and the input the old session had not finished with, then whatever was
 * held for it. */
void Session::session_configured_locked ()
{
  configuring_ = false;
  ready_ = true;
  if (sessions_ > 1 && !history_in_instructions_)
    replay_history_locked ();
  send_unsent_locked (true);
  for (std::string &frame : pending_)
    connection_->send (std::move (frame));
  pending_.clear ();
  listener_.session_ready_locked ();
  if (options_.session_lifetime_ms > 0) {
    guint session = sessions_;
    connection_->call_later (options_.session_lifetime_ms,
        [this, session] { on_lifetime_over (session); });
  }
  ready_cond_.notify_all ();
}

/* The conversation so far as text items.  Their event IDs let on_text
 * recognise a service that refuses them. */
void Session::replay_history_locked ()
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
void Session::on_session_updated (const ServerEvent &ev)
{
  formats_reported (ev);
  std::optional<output::Session> configured;
  {
    std::lock_guard<std::mutex> guard (lock_);
    ledger_.update_acked ();
    if (configuring_) {
      session_configured_locked ();
      configured = session_;
    }
    ready_cond_.notify_all ();
    listener_.update_answered_locked ();
  }
  if (configured)
    announce_configured (*configured);
  maybe_rollover ();
}

/* The formats a session.created or session.updated says the session uses:
 * the answers are converted from the rate the service really serves. */
void Session::formats_reported (const ServerEvent &ev)
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
bool Session::on_update_refused (const ServerEvent &ev)
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
    listener_.update_answered_locked ();
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
    announce_configured (*configured);
  return true;
}

/* The service would not take the conversation as items (Yandex answers
 * assistant items with "not supported yet"): it goes into the instructions
 * instead, now and for every later session. */
void Session::refused_replay ()
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

}  // namespace yrt
