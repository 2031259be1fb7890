/* Conversation: what each server event means for the books, the ledger, the
 * playout and the output events; barge-in, the EOS drain and the action
 * signals.  The session's life is in yrt-session.cpp. */
#include "yrt-conversation.h"
#include "yrt-debug.h"

#include <algorithm>

namespace yrt {

namespace {
/* A commit below this is refused by the service (input_audio_buffer_commit_empty). */
constexpr guint kMinCommitMs = 100;
/* How long a `commit` waits for the streaming thread before going alone. */
constexpr guint kCommitFallbackMs = 200;

GstClockTime samples_to_time (guint64 samples, guint rate)
{
  return gst_util_uint64_scale (samples, GST_SECOND, rate);
}
}  // namespace

Conversation::Conversation (Session &session, DialogHost &host, Playout &playout,
    GstObject *log_object)
    : session_ (session), host_ (host), playout_ (playout), log_object_ (log_object),
      lock_ (session.lock ())
{
}

void Conversation::reset (const DialogOptions &options)
{
  std::lock_guard<std::mutex> guard (lock_);
  eos_timeout_ms_ = options.eos_timeout_ms;
  draining_ = commit_requested_ = false;
  books_.reset ();
  known_items_.clear ();
  turn_end_us_ = 0;
  first_audio_latency_.clear ();
  answer_text_ = AnswerText ();
  answers_ = 0;
  audio_received_ = 0;
}

void Conversation::flushed_locked ()
{
  commit_requested_ = false;
  draining_ = false;
}

void Conversation::add_stats_locked (DialogStats &stats) const
{
  stats.answers = answers_;
  stats.audio_received = audio_received_;
}

/* ---- the session's news ---- */

/* What waited for a ready session: the drain's barrier, a queued request. */
void Conversation::session_ready_locked ()
{
  send_drain_barrier_locked ();
  release_queued_create_locked ();
}

std::string Conversation::session_lost_locked ()
{
  std::string cut = books_.session_lost (draining_);
  /* The new session has none of its items, and may use its response IDs
   * again: an answer's text or latency must not pass for a later one's. */
  known_items_.clear ();
  answer_text_ = AnswerText ();
  first_audio_latency_.clear ();
  return cut;
}

void Conversation::update_answered_locked ()
{
  books_.update_acked ();
  check_drain_locked ();
}

void Conversation::response_cut (const std::string &response_id)
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

/* ---- streaming thread ---- */

void Conversation::drain ()
{
  std::lock_guard<std::mutex> guard (lock_);
  if (session_.finished_locked ()) {
    playout_.finish ();
    return;
  }
  draining_ = true;
  InputLedger &ledger = session_.ledger ();
  bool manual = ledger.manual_turns ();
  if (manual && ledger.uncommitted () * 1000 >= (guint64) kMinCommitMs * ledger.rate ()) {
    ledger.add_commit ();
    if (session_.ready_locked ())
      session_.send_unsent_locked ();
  } else if (!manual && ledger.end () > 0) {  /* any input at all */
    books_.owe_barrier ();
    send_drain_barrier_locked ();
  }
  if (eos_timeout_ms_ > 0) {
    session_.call_later (eos_timeout_ms_, [this] {
      {
        std::lock_guard<std::mutex> guard (lock_);
        if (!draining_)
          return;
      }
      /* Posted without the lock: a synchronous bus handler may call us. */
      host_.post_warning ("Timed out waiting for the final answer",
          "eos-timeout-ms passed with answers still outstanding; "
          "raise eos-timeout-ms if the service is slow");
      std::lock_guard<std::mutex> guard (lock_);
      finish_drain_locked ();
    });
  }
  check_drain_locked ();
}

/* The service answers session.update only after it has read everything
 * sent before it, so its reply tells us the VAD has seen our last audio. */
void Conversation::send_drain_barrier_locked ()
{
  if (!session_.ready_locked () || !books_.barrier_owed ())
    return;
  session_.send_barrier_locked ();
  books_.barrier_sent ();
}

/* ---- worker thread ---- */

void Conversation::handle (ServerEvent &ev, gint64 arrived_us)
{
  switch (ev.type) {
    case EventType::Error:
      on_error (ev);
      break;
    case EventType::SpeechStarted:
      on_speech_started (ev);
      break;
    case EventType::SpeechStopped:
      on_speech_stopped (ev);
      break;
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
    case EventType::TranscriptCompleted:
      on_transcript (ev);
      break;
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
      on_audio (ev, arrived_us);
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

/* An error about anything but the session's settings and replayed items
 * (the session took those); the session posted the server-error message. */
void Conversation::on_error (const ServerEvent &ev)
{
  /* Races every client has with server VAD; nothing is wrong (PROTOCOL.md). */
  bool expected_race = ev.error.code == "conversation_already_has_active_response" ||
      ev.error.code == "response_cancel_not_active";
  if (!expected_race)
    host_.post_warning ("The service reported an error: " + ev.error.message,
        "code " + ev.error.code + ", type " + ev.error.type);

  std::lock_guard<std::mutex> guard (lock_);
  if (ev.error.code == "input_audio_buffer_commit_empty")
    session_.ledger ().commit_refused ();
  else if (ev.error.code == "conversation_already_has_active_response")
    books_.response_refused ();
  check_drain_locked ();
}

void Conversation::on_transcript (const ServerEvent &ev)
{
  if (ev.type == EventType::TranscriptCompleted) {
    std::lock_guard<std::mutex> guard (lock_);
    session_.history ().add (History::Role::User, ev.text, ev.item_id);
  }
  host_.emit (output::Transcript {ev.item_id, ev.text,
      ev.type == EventType::TranscriptCompleted});
}

/* Why a turn has no transcript; the turn itself goes on. */
void Conversation::on_transcript_failed (const ServerEvent &ev)
{
  host_.emit (output::TranscriptFailed {ev.item_id, ev.error.code, ev.error.message});
}

/* The server's idle timeout (session-extra's idle_timeout_ms) fired. */
void Conversation::on_input_timeout (const ServerEvent &ev)
{
  host_.emit (output::InputTimeout {ev.item_id, (guint64) MAX (ev.audio_ms, 0),
      (guint64) MAX (ev.audio_end_ms, 0)});
}

/* Progress and failures of the service's MCP tools. */
void Conversation::on_mcp (const ServerEvent &ev)
{
  host_.emit (output::Mcp {ev.type == EventType::McpCall, ev.item_id, ev.status});
}

void Conversation::on_speech_started (const ServerEvent &ev)
{
  guint64 position;
  {
    std::lock_guard<std::mutex> guard (lock_);
    books_.speech_started ();
    session_.ledger ().speech_started (ev.audio_ms, ev.item_id);
    position = session_.ledger ().to_position (ev.audio_ms);
    session_.wake_locked ();
  }
  host_.emit (output::SpeechStarted {ev.item_id, (guint64) MAX (ev.audio_ms, 0), position});
  barge_in ();
}

void Conversation::on_speech_stopped (const ServerEvent &ev)
{
  guint64 position;
  {
    std::lock_guard<std::mutex> guard (lock_);
    turn_end_us_ = g_get_monotonic_time ();
    session_.ledger ().speech_stopped (ev.audio_ms);
    position = session_.ledger ().to_position (ev.audio_ms);
    session_.wake_locked ();
  }
  host_.emit (output::SpeechStopped {ev.item_id, (guint64) MAX (ev.audio_ms, 0), position});
}

/* The user talks over the answer: stop it where the listener is, tell the
 * server how much was heard (conversation.item.truncate), and let downstream
 * drop what it still holds.  Only live output is "heard"; non-live output is
 * a file being written. */
void Conversation::barge_in ()
{
  {
    std::lock_guard<std::mutex> guard (lock_);
    if (!session_.live_locked () || !barge_in_)
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
    host_.flush_downstream ();
  guint64 played_ms = played * 1000 / rate;
  if (played_ms > 0 && !cut.item_id.empty ()) {
    std::lock_guard<std::mutex> guard (lock_);
    session_.send_locked (client::item_truncate (cut.item_id, 0, played_ms));
  }
  GST_INFO_OBJECT (log_object_, "barge-in: %s heard for %" G_GUINT64_FORMAT " ms",
      cut.response_id.c_str (), played_ms);
  host_.emit (output::Interrupted {cut.response_id, cut.item_id, played_ms});
}

void Conversation::on_committed (const ServerEvent &ev)
{
  std::lock_guard<std::mutex> guard (lock_);
  books_.committed ();
  InputLedger &ledger = session_.ledger ();
  bool ours = ledger.commit_awaited ();
  ledger.committed (ev.item_id, ours);
  session_.wake_locked ();
  /* The server answers a VAD turn by itself only when create_response is on;
   * a turn we committed by hand always needs our response.create. */
  if (!ours && session_.server_answers_turns_locked ())
    books_.expect_server_response ();
  else
    request_response_locked (nullptr, true);
  check_drain_locked ();
}

void Conversation::request_response_locked (const char *instructions, bool for_turn)
{
  ResponseBooks::Request request;
  if (instructions)
    request.instructions = instructions;
  request.for_turn = for_turn;
  if (auto now = books_.request (std::move (request), session_.ready_locked ()))
    send_response_create_locked (*now);
}

void Conversation::send_response_create_locked (const ResponseBooks::Request &request)
{
  const auto &how = request.instructions;
  session_.send_locked (client::response_create (how ? how->c_str () : nullptr));
  books_.sent (request);
}

/* The next queued response.create, once nothing else is under way. */
void Conversation::release_queued_create_locked ()
{
  if (auto next = books_.next (session_.ready_locked ()))
    send_response_create_locked (*next);
}

void Conversation::on_response_created (const ServerEvent &ev)
{
  std::lock_guard<std::mutex> guard (lock_);
  session_.ledger ().response_created (ev.response_id,
      books_.response_created (ev.response_id));
}

void Conversation::on_response_text (const ServerEvent &ev, bool from_transcript, bool done)
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

void Conversation::on_audio (const ServerEvent &ev, gint64 arrived_us)
{
  if (ev.audio.empty ())
    return;
  {
    std::lock_guard<std::mutex> guard (lock_);
    audio_received_ += gst_util_uint64_scale (ev.audio.size () / 2, GST_SECOND,
        session_.served_rate_locked ());
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
    YRT_TRACE ("downlink-in", trace_deltas_++, arrived_us);
  if (queued == 0 && ev.audio.size () > 1)
    GST_LOG_OBJECT (log_object_, "dropped %" G_GSIZE_FORMAT " bytes of interrupted or cancelled %s",
        ev.audio.size (), ev.response_id.c_str ());
}

void Conversation::on_response_done (const ServerEvent &ev)
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
  session_.maybe_rollover ();
}

/* The books of a finished response: the ledger lets go of the turns it
 * answered, its words join the history, the next request may go. */
void Conversation::settle_response_locked (const ServerEvent &ev)
{
  if (ev.status == "completed")
    answers_++;
  books_.response_done (ev.response_id);
  session_.ledger ().response_done (ev.response_id, !ev.calls.empty ());
  session_.wake_locked ();
  if (answer_text_.response_id == ev.response_id && answer_text_.done)
    session_.history ().add (History::Role::Assistant, answer_text_.text);
  send_call_outputs_locked ();
  release_queued_create_locked ();
  check_drain_locked ();
}

void Conversation::on_function_calls (const ServerEvent &ev)
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
void Conversation::send_call_outputs_locked ()
{
  for (const ResponseBooks::Outputs &batch : books_.take_complete_batches ()) {
    for (const auto &[call_id, output] : batch)
      session_.send_locked (client::function_call_output (call_id, output));
    request_response_locked ();
  }
}

/* ---- conversation control ---- */

void Conversation::set_barge_in (bool enabled)
{
  std::lock_guard<std::mutex> guard (lock_);
  barge_in_ = enabled;
}

bool Conversation::send_function_output (const std::string &call_id, const std::string &output)
{
  std::lock_guard<std::mutex> guard (lock_);
  if (!session_.takes_requests_locked ("send-function-output"))
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

bool Conversation::send_text (const std::string &text)
{
  std::lock_guard<std::mutex> guard (lock_);
  if (!session_.takes_requests_locked ("send-text"))
    return false;
  session_.send_locked (client::user_text (text));
  session_.history ().add (History::Role::User, text);
  turn_end_us_ = g_get_monotonic_time ();
  request_response_locked ();
  return true;
}

/* The audio that came before the signal must go before the commit, and the
 * last partial chunk is still in the uplink, on the streaming thread: it
 * takes the request at its next buffer (or EOS), sends the partial chunk,
 * then commits.  Input that stopped flowing gets the commit from a timer. */
bool Conversation::commit ()
{
  std::lock_guard<std::mutex> guard (lock_);
  if (!session_.takes_requests_locked ("commit"))
    return false;
  if (commit_requested_)
    return true;
  commit_requested_ = true;
  session_.call_later (kCommitFallbackMs, [this] {
    std::lock_guard<std::mutex> guard (lock_);
    if (commit_requested_)
      commit_now_locked ();
  });
  return true;
}

bool Conversation::take_commit_request ()
{
  std::lock_guard<std::mutex> guard (lock_);
  bool requested = commit_requested_;
  commit_requested_ = false;
  return requested;
}

void Conversation::commit_now ()
{
  std::lock_guard<std::mutex> guard (lock_);
  commit_now_locked ();
}

void Conversation::commit_now_locked ()
{
  commit_requested_ = false;
  session_.ledger ().add_commit ();
  if (session_.ready_locked ())
    session_.send_unsent_locked ();
  turn_end_us_ = g_get_monotonic_time ();
}

bool Conversation::create_response (const char *instructions)
{
  std::lock_guard<std::mutex> guard (lock_);
  if (!session_.takes_requests_locked ("create-response"))
    return false;
  request_response_locked (instructions);
  return true;
}

bool Conversation::cancel_response ()
{
  std::string id;
  {
    std::lock_guard<std::mutex> guard (lock_);
    if (!session_.takes_requests_locked ("cancel-response"))
      return false;
    if (books_.active ().empty ()) {
      GST_WARNING_OBJECT (log_object_, "cancel-response: no active response");
      return false;
    }
    id = books_.active ();
    session_.send_locked (client::response_cancel (id));
  }
  playout_.ignore_response (id);
  return true;
}

bool Conversation::clear_input ()
{
  std::lock_guard<std::mutex> guard (lock_);
  if (!session_.takes_requests_locked ("clear-input"))
    return false;
  session_.send_locked (client::audio_clear ());
  session_.ledger ().input_cleared ();
  return true;
}

bool Conversation::clear_conversation ()
{
  std::lock_guard<std::mutex> guard (lock_);
  if (!session_.takes_requests_locked ("clear-conversation"))
    return false;
  for (const std::string &item : known_items_)
    session_.send_locked (client::item_delete (item));
  known_items_.clear ();
  session_.history ().clear ();
  return true;
}

/* ---- drain ---- */

bool Conversation::outstanding_locked () const
{
  return books_.outstanding () || session_.ledger ().commits_owed () > 0;
}

void Conversation::check_drain_locked ()
{
  if (draining_ && !outstanding_locked ())
    finish_drain_locked ();
}

void Conversation::finish_drain_locked ()
{
  if (!draining_ && !session_.finished_locked ())
    return;
  draining_ = false;
  playout_.finish ();
}

}  // namespace yrt
