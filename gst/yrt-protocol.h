/* Realtime protocol: client events built as JSON text, server events parsed
 * into typed structs.  No I/O and no GStreamer here, so it can be unit-tested
 * and fuzzed on its own. */
#pragma once

#include "yrt-base64.h"

#include <glib.h>

#include <string>
#include <vector>

namespace yrt {

enum class TurnDetection { ServerVad, None };
enum class Modalities { AudioText, Audio, Text };

/* Everything `session.update` carries. */
struct SessionConfig {
  std::string voice = "marina";
  std::string instructions;
  TurnDetection turn_detection = TurnDetection::ServerVad;
  double vad_threshold = 0.5;
  guint silence_duration_ms = 400;
  guint prefix_padding_ms = 300;
  bool create_response = true;
  bool interrupt_response = true;
  Modalities modalities = Modalities::AudioText;
  guint input_rate = 24000;
  guint output_rate = 44100;
  std::string tools_json;  /* JSON array as given by the user; empty = none */
  std::string tool_choice = "auto";
  std::vector<std::string> languages;  /* audio.input.languages; empty = the service's */
  std::string voice_role;              /* audio.output.role; empty = the voice's default */
  /* A JSON object deep-merged into `session` after the fields above (the
   * user's value wins); empty = none. */
  std::string extra_json;
};

namespace client {
/* `event_id`, when given, comes back in an error that refuses the update. */
std::string session_update (const SessionConfig &config, const std::string &event_id = {});
/* The members of `session` (dotted paths, e.g. "audio.output.voice") that
 * config.extra_json sets where the element sets a value of its own. */
std::vector<std::string> session_extra_overrides (const SessionConfig &config);
/* Built by hand, not through a JSON tree: this is the hot path. */
std::string audio_append (const guint8 *pcm, gsize size);
std::string audio_commit ();
std::string audio_clear ();
std::string response_create (const char *instructions = nullptr);
std::string response_cancel (const std::string &response_id = {});
std::string item_truncate (const std::string &item_id, guint content_index,
    guint64 audio_end_ms);
std::string item_delete (const std::string &item_id);
/* `event_id`, when given, comes back in an error about this event. */
std::string user_text (const std::string &text, const std::string &event_id = {});
/* What the assistant said, as text: replayed into a new session. */
std::string assistant_text (const std::string &text, const std::string &event_id = {});
std::string function_call_output (const std::string &call_id,
    const std::string &output);
}  // namespace client

enum class EventType {
  Unknown,
  Error,
  SessionCreated,
  SessionUpdated,
  SpeechStarted,
  SpeechStopped,
  Committed,
  Cleared,
  ItemAdded,
  TranscriptDelta,
  TranscriptCompleted,
  TranscriptFailed,
  ItemTruncated,
  ItemDeleted,
  ResponseCreated,
  OutputItemAdded,
  OutputItemDone,
  TextDelta,
  TextDone,
  AudioTranscriptDelta,
  AudioTranscriptDone,
  AudioDelta,
  AudioDone,
  FunctionArgumentsDone,
  ResponseDone,
  InputTimeout,       /* input_audio_buffer.timeout_triggered */
  OutputAudioBuffer,  /* output_audio_buffer.* (WebRTC in OpenAI's service) */
  McpListTools,       /* mcp_list_tools.*: status from the name */
  McpCall,            /* response.mcp_call.*: status from the name */
  Ignored,  /* known, carries nothing we use (content_part.*, rate_limits...) */
};

struct FunctionCall {
  std::string call_id;
  std::string name;
  std::string arguments;
  std::string item_id;
};

struct Usage {
  gint64 input_tokens = -1;
  gint64 output_tokens = -1;
  gint64 total_tokens = -1;
};

struct ServerError {
  std::string type;
  std::string code;
  std::string message;
  std::string param;     /* the client field it is about, e.g. session.audio.output.format.rate */
  std::string event_id;
};

/* An audio format the service reports in session.created / session.updated;
 * rate 0 and an empty type when it says nothing. */
struct AudioFormat {
  std::string type;
  guint rate = 0;
};

struct ServerEvent {
  EventType type = EventType::Unknown;
  std::string type_name;
  std::string event_id;
  std::string session_id;
  std::string model;
  AudioFormat input_format;   /* session.created / session.updated: effective formats */
  AudioFormat output_format;
  std::string item_id;
  std::string previous_item_id;
  std::string response_id;
  std::string status;         /* response.done; in_progress/completed/failed of mcp_* */
  std::string text;           /* delta, transcript or full text */
  std::vector<guint8> audio;  /* decoded response.output_audio.delta */
  gint64 audio_ms = -1;       /* audio_start_ms / audio_end_ms */
  gint64 audio_end_ms = -1;   /* input_audio_buffer.timeout_triggered */
  std::vector<FunctionCall> calls; /* function_call items of an output item or response.done */
  Usage usage;
  ServerError error;          /* also of a failed transcription */
};

/* Parses one text frame.  Returns false and fills `why` when the frame is not
 * a JSON object with a string `type`, or a known event has malformed fields
 * (e.g. invalid base64); unknown types parse fine as EventType::Unknown. */
bool parse_server_event (const char *data, gsize size, ServerEvent &event,
    std::string &why);

/* "ru-RU, en-US" → {"ru-RU", "en-US"}: trimmed, empty entries dropped. */
std::vector<std::string> split_languages (const std::string &list);
/* Empty when `json` is a JSON array (or object), else why not: "not valid
 * JSON: …" or "not <expected>". */
std::string check_json (const std::string &json, bool array, const char *expected);

}  // namespace yrt
