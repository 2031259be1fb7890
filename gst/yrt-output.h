/* Output events: what the conversation tells the application, typed.
 * Dialog emits them through DialogHost::emit (from the network thread, or
 * the thread of a state change); the glue routes each to the bus, a pad, or
 * both.  to_message() is the one place the bus messages of
 * docs/yandexrealtime.md are built. */
#pragma once

#include <gst/gst.h>

#include <string>
#include <variant>

namespace yrt::output {

struct Connection {
  std::string state;  /* connecting, connected, reconnecting, closed */
  std::string url;
  /* reconnecting only */
  guint attempt = 0;
  guint delay_ms = 0;
  std::string reason;
};

struct Session {
  std::string session_id;
  std::string model;
};

/* Input timing: `audio_*_ms` counts the audio the current session received
 * (as the service says); `input_position` is the same instant in samples at
 * input-rate since the input started (across sessions, from the ledger). */
struct SpeechStarted {
  std::string item_id;
  guint64 audio_start_ms = 0;
  guint64 input_position = 0;
};

struct SpeechStopped {
  std::string item_id;
  guint64 audio_end_ms = 0;
  guint64 input_position = 0;
};

/* What the user said. */
struct Transcript {
  std::string item_id;
  std::string text;
  bool final = false;
};

/* The answer's words: pieces, then once the whole text. */
struct AnswerText {
  std::string response_id;
  std::string text;
  bool final = false;
};

struct ResponseDone {
  std::string response_id;
  std::string status;
  GstClockTime audio_duration = 0;
  gint64 input_tokens = -1;   /* -1: not reported */
  gint64 output_tokens = -1;
  gint64 total_tokens = -1;
  GstClockTime first_audio_latency = GST_CLOCK_TIME_NONE;
};

struct FunctionCall {
  std::string call_id;
  std::string name;
  std::string arguments;
  std::string response_id;
};

struct ServerError {
  std::string code;
  std::string message;
  std::string event_id;
};

struct Interrupted {
  std::string response_id;
  std::string item_id;
  guint64 played_ms = 0;
};

/* Why a turn has no transcript. */
struct TranscriptFailed {
  std::string item_id;
  std::string code;
  std::string message;
};

/* The service's idle timeout fired. */
struct InputTimeout {
  std::string item_id;
  guint64 audio_start_ms = 0;
  guint64 audio_end_ms = 0;
};

/* Progress of the service's MCP tools: a call or the listing of tools. */
struct Mcp {
  bool call = false;  /* mcp-call, else mcp-list-tools */
  std::string item_id;
  std::string status;
};

using Event = std::variant<Connection, Session, SpeechStarted, SpeechStopped,
    Transcript, AnswerText, ResponseDone, FunctionCall, ServerError, Interrupted,
    TranscriptFailed, InputTimeout, Mcp>;

/* The event's `yandexrealtime/<name>` structure, for an element message. */
GstStructure *to_message (const Event &event);

}  // namespace yrt::output
