/* Server events: each text frame the service sends, parsed into a typed
 * ServerEvent.  No I/O and no GStreamer here, so it can be unit-tested and
 * fuzzed on its own (tests/check/protocol.cpp, tests/fuzz). */
#pragma once

#include <glib.h>

#include <string>
#include <vector>

namespace yrt {

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

}  // namespace yrt
