/* Server events parsed into typed structs: the event table, json-glib reads
 * that tolerate odd members, the nesting guard, and parse_server_event()
 * (audio deltas first try the fast path of yrt-audio-delta.cpp). */
#include "yrt-server-events.h"

#include "yrt-audio-delta.h"
#include "yrt-base64.h"
#include "yrt-gobject-ptr.h"

#include <json-glib/json-glib.h>

#include <cstring>
#include <unordered_map>

namespace yrt {

namespace {

const std::unordered_map<std::string, EventType> &event_types ()
{
  static const std::unordered_map<std::string, EventType> map = {
    {"error", EventType::Error},
    {"session.created", EventType::SessionCreated},
    {"session.updated", EventType::SessionUpdated},
    {"input_audio_buffer.speech_started", EventType::SpeechStarted},
    {"input_audio_buffer.speech_stopped", EventType::SpeechStopped},
    {"input_audio_buffer.committed", EventType::Committed},
    {"input_audio_buffer.cleared", EventType::Cleared},
    {"conversation.item.added", EventType::ItemAdded},
    {"conversation.item.created", EventType::ItemAdded},
    {"conversation.item.done", EventType::Ignored},
    {"conversation.item.input_audio_transcription.delta",
        EventType::TranscriptDelta},
    {"conversation.item.input_audio_transcription.completed",
        EventType::TranscriptCompleted},
    {"conversation.item.input_audio_transcription.failed",
        EventType::TranscriptFailed},
    {"conversation.item.truncated", EventType::ItemTruncated},
    {"conversation.item.deleted", EventType::ItemDeleted},
    {"response.created", EventType::ResponseCreated},
    {"response.output_item.added", EventType::OutputItemAdded},
    {"response.output_item.done", EventType::OutputItemDone},
    {"response.content_part.added", EventType::Ignored},
    {"response.content_part.done", EventType::Ignored},
    {"response.output_text.delta", EventType::TextDelta},
    {"response.text.delta", EventType::TextDelta},
    {"response.output_text.done", EventType::TextDone},
    {"response.text.done", EventType::TextDone},
    {"response.output_audio_transcript.delta", EventType::AudioTranscriptDelta},
    {"response.audio_transcript.delta", EventType::AudioTranscriptDelta},
    {"response.output_audio_transcript.done", EventType::AudioTranscriptDone},
    {"response.audio_transcript.done", EventType::AudioTranscriptDone},
    {"response.output_audio.delta", EventType::AudioDelta},
    {"response.audio.delta", EventType::AudioDelta},
    {"response.output_audio.done", EventType::AudioDone},
    {"response.audio.done", EventType::AudioDone},
    {"response.function_call_arguments.delta", EventType::Ignored},
    {"response.function_call_arguments.done", EventType::FunctionArgumentsDone},
    {"response.done", EventType::ResponseDone},
    {"rate_limits.updated", EventType::Ignored},
    {"input_audio_buffer.timeout_triggered", EventType::InputTimeout},
    {"output_audio_buffer.started", EventType::OutputAudioBuffer},
    {"output_audio_buffer.stopped", EventType::OutputAudioBuffer},
    {"output_audio_buffer.cleared", EventType::OutputAudioBuffer},
    {"mcp_list_tools.in_progress", EventType::McpListTools},
    {"mcp_list_tools.completed", EventType::McpListTools},
    {"mcp_list_tools.failed", EventType::McpListTools},
    {"response.mcp_call.in_progress", EventType::McpCall},
    {"response.mcp_call.completed", EventType::McpCall},
    {"response.mcp_call.failed", EventType::McpCall},
    {"response.mcp_call_arguments.delta", EventType::Ignored},
    {"response.mcp_call_arguments.done", EventType::Ignored},
  };
  return map;
}

/* Typed accessors that tolerate absent or wrongly typed members: a server
 * that sends odd JSON must not crash us. */
JsonObject *get_object (JsonObject *o, const char *name)
{
  if (!o)
    return nullptr;
  JsonNode *n = json_object_get_member (o, name);
  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : nullptr;
}

JsonArray *get_array (JsonObject *o, const char *name)
{
  if (!o)
    return nullptr;
  JsonNode *n = json_object_get_member (o, name);
  return n && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : nullptr;
}

bool get_string (JsonObject *o, const char *name, std::string &out)
{
  if (!o)
    return false;
  JsonNode *n = json_object_get_member (o, name);
  if (!n || json_node_get_value_type (n) != G_TYPE_STRING)
    return false;
  out = json_node_get_string (n);
  return true;
}

gint64 get_int (JsonObject *o, const char *name, gint64 fallback = -1)
{
  if (!o)
    return fallback;
  JsonNode *n = json_object_get_member (o, name);
  if (!n || !JSON_NODE_HOLDS_VALUE (n))
    return fallback;
  GType t = json_node_get_value_type (n);
  if (t == G_TYPE_INT64)
    return json_node_get_int (n);
  if (t == G_TYPE_DOUBLE) {
    /* Converting an out-of-range double is undefined behaviour. */
    double d = json_node_get_double (n);
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
      return fallback;
    return (gint64) d;
  }
  return fallback;
}

/* Only a whole, plausible rate counts: anything else is "not said". */
void read_format (JsonObject *format, AudioFormat &out)
{
  get_string (format, "type", out.type);
  gint64 rate = get_int (format, "rate", 0);
  out.rate = rate >= 1000 && rate <= 768000 ? (guint) rate : 0;
}

void read_function_call (JsonObject *item, std::vector<FunctionCall> &calls)
{
  std::string type;
  if (!get_string (item, "type", type) || type != "function_call")
    return;
  FunctionCall call;
  get_string (item, "call_id", call.call_id);
  get_string (item, "name", call.name);
  get_string (item, "arguments", call.arguments);
  get_string (item, "id", call.item_id);
  if (!call.call_id.empty ())
    calls.push_back (std::move (call));
}

void read_response (JsonObject *root, ServerEvent &ev)
{
  JsonObject *response = get_object (root, "response");
  get_string (response, "id", ev.response_id);
  get_string (response, "status", ev.status);
  JsonObject *usage = get_object (response, "usage");
  ev.usage.input_tokens = get_int (usage, "input_tokens");
  ev.usage.output_tokens = get_int (usage, "output_tokens");
  ev.usage.total_tokens = get_int (usage, "total_tokens");
  if (JsonArray *output = get_array (response, "output")) {
    for (guint i = 0; i < json_array_get_length (output); i++) {
      JsonNode *n = json_array_get_element (output, i);
      if (JSON_NODE_HOLDS_OBJECT (n))
        read_function_call (json_node_get_object (n), ev.calls);
    }
  }
}

bool read_fields (JsonObject *root, ServerEvent &ev, std::string &why)
{
  get_string (root, "item_id", ev.item_id);
  get_string (root, "previous_item_id", ev.previous_item_id);
  get_string (root, "response_id", ev.response_id);

  switch (ev.type) {
    case EventType::Error:
    case EventType::TranscriptFailed: {
      JsonObject *error = get_object (root, "error");
      get_string (error, "type", ev.error.type);
      get_string (error, "code", ev.error.code);
      get_string (error, "message", ev.error.message);
      get_string (error, "param", ev.error.param);
      get_string (error, "event_id", ev.error.event_id);
      break;
    }
    case EventType::SessionCreated:
    case EventType::SessionUpdated: {
      JsonObject *session = get_object (root, "session");
      get_string (session, "id", ev.session_id);
      get_string (session, "model", ev.model);
      JsonObject *audio = get_object (session, "audio");
      read_format (get_object (get_object (audio, "input"), "format"), ev.input_format);
      read_format (get_object (get_object (audio, "output"), "format"), ev.output_format);
      break;
    }
    case EventType::SpeechStarted:
      ev.audio_ms = get_int (root, "audio_start_ms");
      break;
    case EventType::SpeechStopped:
    case EventType::ItemTruncated:
      ev.audio_ms = get_int (root, "audio_end_ms");
      break;
    case EventType::InputTimeout:
      ev.audio_ms = get_int (root, "audio_start_ms");
      ev.audio_end_ms = get_int (root, "audio_end_ms");
      break;
    case EventType::McpListTools:
    case EventType::McpCall:
      ev.status = ev.type_name.substr (ev.type_name.rfind ('.') + 1);
      break;
    case EventType::ItemAdded:
    case EventType::OutputItemAdded:
    case EventType::OutputItemDone: {
      JsonObject *item = get_object (root, "item");
      if (ev.item_id.empty ())
        get_string (item, "id", ev.item_id);
      read_function_call (item, ev.calls);
      break;
    }
    case EventType::TranscriptCompleted:
      get_string (root, "transcript", ev.text);
      break;
    case EventType::TranscriptDelta:
    case EventType::TextDelta:
    case EventType::AudioTranscriptDelta:
      get_string (root, "delta", ev.text);
      break;
    case EventType::TextDone:
      get_string (root, "text", ev.text);
      break;
    case EventType::AudioTranscriptDone:
      get_string (root, "transcript", ev.text);
      break;
    case EventType::AudioDelta: {
      JsonNode *n = json_object_get_member (root, "delta");
      if (!n || json_node_get_value_type (n) != G_TYPE_STRING) {
        why = "audio delta without a string `delta`";
        return false;
      }
      const char *b64 = json_node_get_string (n);
      if (!base64_decode (b64, strlen (b64), ev.audio)) {
        why = "audio delta is not valid base64";
        return false;
      }
      break;
    }
    case EventType::FunctionArgumentsDone: {
      FunctionCall call;
      get_string (root, "call_id", call.call_id);
      get_string (root, "name", call.name);
      get_string (root, "arguments", call.arguments);
      call.item_id = ev.item_id;
      ev.calls.push_back (std::move (call));
      break;
    }
    case EventType::ResponseCreated:
    case EventType::ResponseDone:
      read_response (root, ev);
      break;
    default:
      break;
  }
  return true;
}

}  // namespace

namespace {

/* json-glib 1.6 recurses once per nesting level without a limit: about
 * 75000 levels (150 KB of brackets, far below the 64 MiB frame limit)
 * overflow an 8 MiB thread stack.  Events nest a few levels, tools echoed in
 * session.updated a few more. */
bool nesting_too_deep (const char *data, gsize size)
{
  int depth = 0;
  bool in_string = false, escaped = false;
  for (gsize i = 0; i < size; i++) {
    char c = data[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > 128)
        return true;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return false;
}

}  // namespace

bool parse_server_event (const char *data, gsize size, ServerEvent &ev,
    std::string &why)
{
#ifndef YRT_PROTOCOL_NO_FAST_PATH
  if (parse_audio_delta (data, size, ev))
    return true;
#endif
  ev = ServerEvent ();
  if (nesting_too_deep (data, size)) {
    why = "event nests deeper than 128 levels";
    return false;
  }
  GObjectPtr<JsonParser> parser (json_parser_new_immutable ());
  GError *error = nullptr;
  if (!json_parser_load_from_data (parser.get (), data, (gssize) size, &error)) {
    why = std::string ("invalid JSON: ") + error->message;
    g_error_free (error);
    return false;
  }
  JsonNode *root_node = json_parser_get_root (parser.get ());
  if (!root_node || !JSON_NODE_HOLDS_OBJECT (root_node)) {
    why = "event is not a JSON object";
    return false;
  }
  JsonObject *root = json_node_get_object (root_node);
  if (!get_string (root, "type", ev.type_name)) {
    why = "event has no string `type`";
    return false;
  }
  get_string (root, "event_id", ev.event_id);
  auto it = event_types ().find (ev.type_name);
  ev.type = it == event_types ().end () ? EventType::Unknown : it->second;
  return read_fields (root, ev, why);
}

}  // namespace yrt
