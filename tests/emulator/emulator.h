// Loopback emulator of the Yandex Cloud Realtime API (OpenAI Realtime GA
// protocol over WebSocket) for tests.
//
// The server runs libsoup on its own thread and GMainContext, so a test
// thread may block (e.g. in gst_harness_pull) while it works. Every public
// method is thread-safe.
//
// Behaviour summary
// - Endpoints: ws://127.0.0.1:<port>/v1/realtime and /v1/realtime/openai.
//   Handshake checks, in order: path (404), Faults::refuse_status,
//   Authorization (401), query parameter `model` (400), WebSocket upgrade
//   headers (400).
// - Authorization: "Api-Key <key>" or "Bearer <token>", scheme
//   case-insensitive. With Config::api_key / iam_token set, only those
//   credentials pass; with neither set, any non-empty Authorization header
//   passes (check last_authorization_scheme() to see what the client sent).
// - Server VAD (turn_detection threshold, prefix_padding_ms,
//   silence_duration_ms; details in vad.h): each 10 ms frame's energy maps to
//   a probability p = clamp((dBFS + 60) / 50, 0, 1). Config::vad_model:
//     Realistic (default), like real server VADs: p is smoothed (moving
//       average, 30 ms) with hysteresis (voiced above threshold, until below
//       threshold - 0.15); voiced audio is speech once it spans 250 ms
//       (gaps of up to 200 ms within it count, as speech has them), so a
//       shorter blip is no turn and speech_started comes about 250 ms after
//       the speech began. audio_start_ms is the speech's first loud frame
//       minus prefix_padding_ms (clamped at 0); the committed turn starts
//       there. silence_duration_ms of unvoiced level (counted from the first
//       quiet frame) ends the turn: audio_end_ms is the end of that silence,
//       so a shorter dip does not split a turn.
//     Energy (the old model): the first loud frame (p > threshold) starts
//       speech at once; silence_duration_ms of quiet frames ends it.
//   For clean tone-then-silence both report the same times.
// - Error events: {type:"error", event_id, error:{type:"invalid_request_error",
//   code, message, param, event_id:<client event_id or null>}} with codes
//     invalid_json                    text frame is not a JSON object
//     invalid_event                   missing/non-string "type", or a binary frame
//     unknown_event                   unknown client event type (session stays open)
//     invalid_value                   a field has a wrong type or value
//                                     (param names it), incl. truncate beyond
//                                     the audio sent for the item
//     invalid_base64                  input_audio_buffer.append audio not base64
//     invalid_audio_length            decoded audio has an odd number of bytes
//     input_audio_buffer_commit_empty commit with < 100 ms of uncommitted audio
//     conversation_already_has_active_response
//     response_cancel_not_active      cancel without (that) active response
//     item_not_found                  truncate/delete/retrieve of an unknown item
//     call_id_not_found               function_call_output for an unknown call_id
//     session_expired                 Faults::session_lifetime_ms elapsed; the
//                                     server then closes with code 1000
// - "Abrupt" closes (Faults::drop_*, drop_connections()) shut the TCP socket
//   down without a WebSocket close frame: an unclean close (1006 in browser
//   terms; a libsoup client gets "closed" with close code 0).
// - A user turn under server VAD: speech_started, speech_stopped,
//   input_audio_buffer.committed, conversation.item.added,
//   conversation.item.input_audio_transcription.completed, then (if
//   create_response) a response. While no speech is going on, the buffer only
//   keeps prefix_padding_ms of audio (what a manual commit would then commit),
//   plus any loud audio the VAD may yet take for the start of speech.
// - An answer: response.created, response.output_item.added,
//   response.content_part.added, output_text.delta (one per word) interleaved
//   with output_audio.delta, output_audio.done, output_text.done,
//   content_part.done, output_item.done, response.done. Response items are
//   not announced with conversation.item.added. A cancelled answer still
//   closes its open parts; its item ends "incomplete" and response.done has
//   status "cancelled", status_details {type:"cancelled", reason:
//   "client_cancelled" | "turn_detected"}.
// - Defaults of a turn: transcript "turn <n>", answer "answer <n>", where n is
//   the per-session number of the user turn (committed audio or user text
//   item). A response that follows no new user turn (e.g. after a function
//   call) uses the next queued TurnScript's answer, else "answer <n>" with the
//   latest n.
// - Lazy reading (Faults::read_speed S > 0): like a real service behind
//   proxies, a session consumes input audio at S x real time. After each
//   input_audio_buffer.append, if the audio handled so far (in ms at the
//   input rate) is ahead of (time since the session's first append) x S, the
//   session stops reading the socket (the pausable gate, as stop_reading;
//   paused while either says so) and resumes when the clock catches up. So
//   the server VAD runs at S x real time, and a file sent at 50x waits in
//   socket buffers (megabytes of it). Client events are always handled
//   strictly in order: a session.update sent after audio is answered only
//   once that audio was read and fed to the VAD (a barrier). A client's
//   close, too, is seen only after the audio sent before it was read.
// - Cuts (abrupt, see above): Faults::drop_after_bytes = N: the session
//   reads at most N bytes of client data (WebSocket frames, counted from the
//   first byte after the handshake; the cut may fall inside a frame, and a
//   partly read frame is never handled), handles every frame completed within
//   them, then drops. Faults::drop_after_ms = T: drops T ms after the session
//   started. Both honour Faults::sessions.
// - Records per session (numbered from 0 in the order sessions opened):
//   received_audio(s) is the PCM of every append session s handled, in
//   order; bytes_read(s) the client bytes it read before any cut;
//   committed_turns() the exact PCM of each commit (manual or VAD) with its
//   item id; answers() one AnswerRecord per response: status "completed",
//   "cancelled" or "dropped" (connection ended before response.done), the
//   user item it answered (the latest committed or created user item when it
//   started) and its server-wide serial k.
// - Config::answer_signature: the answer audio of response k is the constant
//   sample value 1000 + k for answer_ms, so a client's output tells which
//   response each stretch came from and whether it is whole.
// - Rate policies (Config::input_rate_rule / output_rate_rule; pitfall 9 of
//   PROTOCOL.md: formats are the service's to grant). Without a session.update
//   a session runs at input 24000 Hz and output 44100 Hz, or at the rule's
//   rate for Serve and Refuse (session.created reports it).
//     Accept  the session takes whatever format.rate a session.update asks.
//     Serve   the asked rate is ignored: session.updated reports the served
//             rate, and answers are made at it.
//     Refuse  a session.update asking for another rate is refused whole
//             (nothing applied, no session.updated) with
//               {type:"error", event_id, error:{type:"invalid_request_error",
//                code:"invalid_value", message:"Invalid 'session.audio.output
//                .format.rate': expected 24000, got 44100.", param:
//                "session.audio.output.format.rate", event_id:<the update's
//                event_id or null>}}
//             (input: session.audio.input.format.rate; input is checked
//             first). From then until a session.update is applied, the
//             session discards appended audio: not in received_audio, not fed
//             to the VAD, not buffered (it is still read at the lazy-reading
//             pace). refused_updates() counts such refusals. A refused update
//             is a barrier like any other: answered after the audio before it.
//   Answer audio (tone, espeak, answer_signature) is always made at the rate
//   the session serves; TurnScript::answer_ms is its duration at that rate.
//   input_rate(s) / output_rate(s) tell the rates session s uses.
// - Session-creation rate limit (Config::session_rate_limit = N > 0), a
//   sliding window: a handshake that passed every other check is refused
//   with 429 when N sessions were already created in the last second (the
//   1 s before it, by the monotonic clock), with a JSON error body and
//   Retry-After: <whole seconds until the oldest of those leaves the window,
//   at least 1>. Refused handshakes create nothing and do not count against
//   the window. refused_handshakes() counts them; handshakes() lists every
//   handshake with its time and the status it got (101 for a session).
// - Faults::refuse_assistant_items: conversation.item.create of a message
//   with role "assistant" gets error invalid_value, message "Assistant
//   messages are not supported yet", param "item.role" (as Yandex reportedly
//   does); the item is not added. Other items still work.
#pragma once

#include <gio/gio.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vad.h"

namespace yrt::emu {

struct FunctionCallScript {
  std::string name;
  std::string arguments;  // JSON string
};

// What the server answers to one user turn. Queued scripts are consumed in
// order, one per user turn; when the queue is empty, defaults are used.
struct TurnScript {
  std::string transcript;   // "" = default "turn <n>"
  std::string answer_text;  // "" = default "answer <n>"
  guint answer_ms = 1000;   // audio duration at the session's output rate
  // If non-empty, the response yields these function_call items (no audio);
  // the next response (after function_call_output + response.create)
  // answers with the following queued script or defaults.
  std::vector<FunctionCallScript> calls;
};

struct Faults {
  guint refuse_status = 0;             // refuse the handshake with this HTTP status
  std::string retry_after;             // with refuse_status: a Retry-After header, verbatim
                                       // ("2", or an HTTP-date); "" sends none
  guint drop_after_client_events = 0;  // abrupt close after handling N client events of a session
  bool drop_mid_answer = false;        // abrupt close after the first audio delta of the next
                                       // answer; one-shot (cleared once an answer takes it)
  guint first_audio_delay_ms = 0;      // delay before the first audio delta of each answer
  bool odd_deltas = false;             // audio deltas with odd byte counts
  bool unknown_events = false;         // unknown event types, non-JSON text and binary frames
                                       // between audio deltas
  guint session_lifetime_ms = 0;       // error session_expired, then close 1000 after T
                                       // (measured from the session's start)
  bool stop_reading = false;           // stop reading the socket (real TCP backpressure);
                                       // clearing it resumes reading
  // GA events the emulator does not otherwise send, sent in this order after
  // the transcript of each user turn: input_audio_buffer.timeout_triggered,
  // conversation.item.input_audio_transcription.delta / .failed,
  // conversation.item.truncated / .deleted, output_audio_buffer.started /
  // .stopped / .cleared, mcp_list_tools.in_progress / .completed / .failed,
  // response.mcp_call_arguments.delta / .done, response.mcp_call.in_progress /
  // .completed / .failed (any other name: just type and event_id).
  std::vector<std::string> extra_events;
  guint sessions = 0;                  // 0: every session; N: only the first N sessions that
                                       // start after these faults are set (open ones keep theirs)
  double read_speed = 0;               // 0: read as fast as the client sends; S > 0: consume
                                       // input audio at S x real time (see "Lazy reading")
  guint64 drop_after_bytes = 0;        // abrupt close once N bytes of client data were read
                                       // (counted from the first byte after the handshake)
  guint drop_after_ms = 0;             // abrupt close T ms after the session started
  bool refuse_assistant_items = false; // conversation.item.create of an assistant message
                                       // gets error invalid_value, param "item.role"
};

// One WebSocket handshake the server answered (any path).
struct Handshake {
  gint64 monotonic_us;  // when the request arrived (g_get_monotonic_time)
  guint status;         // 101 (a session), or the refusal's status
};

struct ClientEvent {
  std::string type;  // "(invalid json)" / "(binary)" for frames without a type
  std::string json;  // raw text (audio elided when Config::record_audio is false)
  gint64 monotonic_us;
};

// A user turn as committed (manually or by server VAD).
struct CommittedTurn {
  guint session = 0;          // 0-based, in the order sessions opened
  std::string item_id;
  std::vector<guint8> pcm;    // S16LE, exactly the buffer committed
  guint rate = 0;             // the session's input rate at commit time
};

// One response, from response.created on.
struct AnswerRecord {
  guint session = 0;          // 0-based, in the order sessions opened
  std::string response_id;
  std::string status;         // "in_progress", then "completed", "cancelled" or "dropped"
                              // (the connection ended before response.done)
  std::string user_item_id;   // latest user item committed or created when it started; "" if none
  guint signature = 0;        // k: server-wide serial of the response, from 1
};

// What a session does with the audio rate a session.update asks for, per
// direction (Config::input_rate_rule / output_rate_rule): the service's word
// on formats (see "Rate policies" above).
enum class RatePolicy {
  Accept,  // the session uses whatever rate session.update asks for
  Serve,   // the session ignores the asked rate and serves `rate`; session.created and every
           // session.updated report format.rate = rate (the effective value)
  Refuse,  // a session.update asking for a rate other than `rate` is refused whole (nothing of it
           // applied) with an error event; until a valid session.update is applied the session
           // discards input_audio_buffer.append audio (not recorded, not fed to the VAD)
};
struct RateRule {
  RatePolicy policy = RatePolicy::Accept;
  guint rate = 0;  // Serve/Refuse: the one rate (0: the direction's default, 24000 in, 44100 out)
};

struct Config {
  std::string api_key;  // if non-empty, "Api-Key <api_key>" is accepted
  std::string iam_token;  // if non-empty, "Bearer <iam_token>" is accepted
  guint16 port = 0;            // 0 = any free port
  guint audio_delta_ms = 100;  // duration of each audio delta
  guint pace_ms = 0;           // delay between audio deltas; 0 = as fast as possible
  bool speak = false;          // espeak-ng synthesis of the answer if built with it, else tone
  Faults faults;
  TurnScript default_turn;     // used when the queue is empty ("" fields keep "<n>" defaults)
  bool answer_signature = false;  // answer audio of response k is the constant sample
                                  // 1000 + k for answer_ms (see AnswerRecord::signature)
  RateRule output_rate_rule;   // e.g. {RatePolicy::Serve, 44100}
  RateRule input_rate_rule;    // e.g. {RatePolicy::Refuse, 24000} (Serve works too: the
                               // session takes input as `rate`, whatever was asked)
  VadModel vad_model = VadModel::Realistic;  // server VAD (see vad.h); Energy only for a
                                            // test that needs the old per-frame model
  bool record_audio = true;    // keep sent/received PCM and append payloads (tests); the
                               // long-running CLI turns it off to bound memory
  // With a certificate (and its private key), the server speaks TLS only:
  // wss://127.0.0.1:<port>/v1/realtime.
  std::shared_ptr<GTlsCertificate> tls_certificate;
  // Session creations allowed in any 1 s (sliding window); beyond: 429 with
  // Retry-After (see "Session-creation rate limit"). 0 = no limit.
  guint session_rate_limit = 0;
  // Called on the server thread for every client event (e.g. --verbose).
  std::function<void(const ClientEvent &)> on_client_event;
};

class Server {
 public:
  explicit Server(Config cfg = {});
  ~Server();
  Server(const Server &) = delete;
  Server &operator=(const Server &) = delete;

  guint16 start();  // returns the bound port (0 on failure); returns once listening
  void stop();      // closes connections (close frame 1001), quits and joins
  std::string url() const;  // "ws://127.0.0.1:<port>/v1/realtime" (no model param; wss:// with TLS)

  void set_faults(const Faults &);  // takes effect for subsequent events
  Faults faults() const;
  void push_turn(TurnScript);
  void drop_connections();  // abrupt close of every open session (reconnect tests)

  std::vector<ClientEvent> client_events() const;  // all sessions, in order
  std::vector<std::string> client_event_types() const;
  bool wait_for_client_event(const std::string &type, guint count, guint timeout_ms) const;
  std::vector<std::string> server_event_types() const;  // "(garbage)" / "(binary)" for junk
  bool wait_for_server_event(const std::string &type, guint count, guint timeout_ms) const;
  std::string session_update_json(guint index = 0) const;  // client's `session` object
  std::vector<guint8> sent_audio() const;      // PCM of every audio delta sent
  std::vector<guint8> received_audio() const; // decoded PCM of every append
  // Per session, 0-based in the order sessions opened ({} for unknown ones).
  std::vector<guint8> received_audio(guint session) const;  // PCM of every append it handled
  guint64 bytes_read(guint session) const;  // client bytes it read off the socket (before a cut)
  std::vector<CommittedTurn> committed_turns() const;  // all sessions, in order (PCM only
                                                      // with Config::record_audio)
  std::vector<AnswerRecord> answers() const;           // all sessions, in order of start
  // The rates session s uses now (the latest in effect; 0 for unknown sessions).
  guint input_rate(guint session) const;
  guint output_rate(guint session) const;
  // session.update events refused by a rate rule (RatePolicy::Refuse), all sessions.
  guint refused_updates() const;
  guint sessions_opened() const;
  // Handshakes refused by Config::session_rate_limit (429), since start.
  guint refused_handshakes() const;
  std::vector<Handshake> handshakes() const;  // every handshake answered, in order
  guint sessions_active() const;
  std::string last_authorization_scheme() const;  // "Api-Key" / "Bearer" / raw scheme
  std::string last_request_path_and_query() const;
  // Values of a header of the last handshake (case-insensitive name), in order.
  std::vector<std::string> last_request_header(const std::string &name) const;
  // Values of a header of session s's handshake (case-insensitive name), in order.
  std::vector<std::string> session_request_header(guint session, const std::string &name) const;
  void clear_records();  // forget recorded events/audio/turns/answers and the refused_updates()
                         // count (not sessions, their rates or scripts)

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace yrt::emu
