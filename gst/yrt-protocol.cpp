#include "yrt-protocol.h"

#include <json-glib/json-glib.h>

#include <cstring>
#include <memory>
#include <unordered_map>

namespace yrt {

namespace {

struct GObjectDeleter {
  void operator() (gpointer object) const { g_object_unref (object); }
};
template <typename T> using GObjectPtr = std::unique_ptr<T, GObjectDeleter>;

std::string to_json (JsonBuilder *builder)
{
  JsonNode *root = json_builder_get_root (builder);
  gchar *text = json_to_string (root, FALSE);
  std::string out (text);
  g_free (text);
  json_node_unref (root);
  return out;
}

/* Runs `body` inside `{"type": <type>, ...}` and returns the text. */
template <typename Body>
std::string build_event (const char *type, Body body)
{
  GObjectPtr<JsonBuilder> builder (json_builder_new ());
  json_builder_begin_object (builder.get ());
  json_builder_set_member_name (builder.get (), "type");
  json_builder_add_string_value (builder.get (), type);
  body (builder.get ());
  json_builder_end_object (builder.get ());
  return to_json (builder.get ());
}

void add_string (JsonBuilder *b, const char *name, const std::string &value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value.c_str ());
}

void add_int (JsonBuilder *b, const char *name, gint64 value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, value);
}

void add_bool (JsonBuilder *b, const char *name, bool value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_boolean_value (b, value);
}

void add_pcm_format (JsonBuilder *b, guint rate)
{
  json_builder_set_member_name (b, "format");
  json_builder_begin_object (b);
  add_string (b, "type", "audio/pcm");
  add_int (b, "rate", rate);
  json_builder_end_object (b);
}

void add_modalities (JsonBuilder *b, Modalities modalities)
{
  json_builder_set_member_name (b, "output_modalities");
  json_builder_begin_array (b);
  if (modalities != Modalities::Audio)
    json_builder_add_string_value (b, "text");
  if (modalities != Modalities::Text)
    json_builder_add_string_value (b, "audio");
  json_builder_end_array (b);
}

void add_turn_detection (JsonBuilder *b, const SessionConfig &c)
{
  json_builder_set_member_name (b, "turn_detection");
  if (c.turn_detection == TurnDetection::None) {
    json_builder_add_null_value (b);
    return;
  }
  json_builder_begin_object (b);
  add_string (b, "type", "server_vad");
  json_builder_set_member_name (b, "threshold");
  json_builder_add_double_value (b, c.vad_threshold);
  add_int (b, "prefix_padding_ms", c.prefix_padding_ms);
  add_int (b, "silence_duration_ms", c.silence_duration_ms);
  add_bool (b, "create_response", c.create_response);
  add_bool (b, "interrupt_response", c.interrupt_response);
  json_builder_end_object (b);
}

void add_audio (JsonBuilder *b, const SessionConfig &c)
{
  json_builder_set_member_name (b, "audio");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "input");
  json_builder_begin_object (b);
  add_pcm_format (b, c.input_rate);
  add_turn_detection (b, c);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "output");
  json_builder_begin_object (b);
  add_pcm_format (b, c.output_rate);
  add_string (b, "voice", c.voice);
  json_builder_end_object (b);
  json_builder_end_object (b);
}

/* The tools string was validated when it was set; a parse failure here means
 * "no tools" rather than a broken session.update. */
void add_tools (JsonBuilder *b, const std::string &tools_json)
{
  if (tools_json.empty ())
    return;
  JsonNode *tools = json_from_string (tools_json.c_str (), nullptr);
  if (!tools)
    return;
  if (JSON_NODE_HOLDS_ARRAY (tools)) {
    json_builder_set_member_name (b, "tools");
    json_builder_add_value (b, tools);
  } else {
    json_node_unref (tools);
  }
}

/* "auto", "none" and "required" are modes; a JSON object goes as given; any
 * other word names the one function to call. */
void add_tool_choice (JsonBuilder *b, const std::string &choice)
{
  json_builder_set_member_name (b, "tool_choice");
  if (choice.empty () || choice == "auto" || choice == "none" || choice == "required") {
    json_builder_add_string_value (b, choice.empty () ? "auto" : choice.c_str ());
    return;
  }
  JsonNode *node = choice[0] == '{' ? json_from_string (choice.c_str (), nullptr) : nullptr;
  if (node && JSON_NODE_HOLDS_OBJECT (node)) {
    json_builder_add_value (b, node);
    return;
  }
  if (node)
    json_node_unref (node);
  json_builder_begin_object (b);
  add_string (b, "type", "function");
  add_string (b, "name", choice);
  json_builder_end_object (b);
}

}  // namespace

namespace client {

std::string session_update (const SessionConfig &c)
{
  return build_event ("session.update", [&c] (JsonBuilder *b) {
    json_builder_set_member_name (b, "session");
    json_builder_begin_object (b);
    add_string (b, "type", "realtime");
    add_modalities (b, c.modalities);
    add_string (b, "instructions", c.instructions);
    add_audio (b, c);
    add_tools (b, c.tools_json);
    add_tool_choice (b, c.tool_choice);
    json_builder_end_object (b);
  });
}

std::string audio_append (const guint8 *pcm, gsize size)
{
  static const char head[] = "{\"type\":\"input_audio_buffer.append\",\"audio\":\"";
  static const char tail[] = "\"}";
  std::string out;
  out.reserve (sizeof (head) + (size + 2) / 3 * 4 + sizeof (tail));
  out.append (head);
  base64_encode_append (pcm, size, out);
  out.append (tail);
  return out;
}

std::string audio_commit ()
{
  return build_event ("input_audio_buffer.commit", [] (JsonBuilder *) {});
}

std::string audio_clear ()
{
  return build_event ("input_audio_buffer.clear", [] (JsonBuilder *) {});
}

std::string response_create (const char *instructions)
{
  return build_event ("response.create", [instructions] (JsonBuilder *b) {
    if (!instructions)
      return;
    json_builder_set_member_name (b, "response");
    json_builder_begin_object (b);
    add_string (b, "instructions", instructions);
    json_builder_end_object (b);
  });
}

std::string response_cancel (const std::string &response_id)
{
  return build_event ("response.cancel", [&response_id] (JsonBuilder *b) {
    if (!response_id.empty ())
      add_string (b, "response_id", response_id);
  });
}

std::string item_truncate (const std::string &item_id, guint content_index,
    guint64 audio_end_ms)
{
  return build_event ("conversation.item.truncate", [&] (JsonBuilder *b) {
    add_string (b, "item_id", item_id);
    add_int (b, "content_index", content_index);
    add_int (b, "audio_end_ms", (gint64) audio_end_ms);
  });
}

std::string item_delete (const std::string &item_id)
{
  return build_event ("conversation.item.delete", [&item_id] (JsonBuilder *b) {
    add_string (b, "item_id", item_id);
  });
}

std::string user_text (const std::string &text)
{
  return build_event ("conversation.item.create", [&text] (JsonBuilder *b) {
    json_builder_set_member_name (b, "item");
    json_builder_begin_object (b);
    add_string (b, "type", "message");
    add_string (b, "role", "user");
    json_builder_set_member_name (b, "content");
    json_builder_begin_array (b);
    json_builder_begin_object (b);
    add_string (b, "type", "input_text");
    add_string (b, "text", text);
    json_builder_end_object (b);
    json_builder_end_array (b);
    json_builder_end_object (b);
  });
}

std::string function_call_output (const std::string &call_id,
    const std::string &output)
{
  return build_event ("conversation.item.create", [&] (JsonBuilder *b) {
    json_builder_set_member_name (b, "item");
    json_builder_begin_object (b);
    add_string (b, "type", "function_call_output");
    add_string (b, "call_id", call_id);
    add_string (b, "output", output);
    json_builder_end_object (b);
  });
}

}  // namespace client

/* ---- base64 ---- */

namespace {

const char kAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

struct DecodeTable {
  gint8 value[256];
  DecodeTable ()
  {
    memset (value, -1, sizeof (value));
    for (int i = 0; i < 64; i++)
      value[(guint8) kAlphabet[i]] = (gint8) i;
  }
};
const DecodeTable kDecode;

}  // namespace

void base64_encode_append (const guint8 *in, gsize size, std::string &out)
{
  gsize pos = out.size ();
  out.resize (pos + (size + 2) / 3 * 4);
  char *o = &out[pos];
  gsize i = 0;
  for (; i + 3 <= size; i += 3) {
    guint32 v = (in[i] << 16) | (in[i + 1] << 8) | in[i + 2];
    *o++ = kAlphabet[v >> 18];
    *o++ = kAlphabet[(v >> 12) & 63];
    *o++ = kAlphabet[(v >> 6) & 63];
    *o++ = kAlphabet[v & 63];
  }
  if (i < size) {
    guint32 v = in[i] << 16;
    if (i + 1 < size)
      v |= in[i + 1] << 8;
    *o++ = kAlphabet[v >> 18];
    *o++ = kAlphabet[(v >> 12) & 63];
    *o++ = i + 1 < size ? kAlphabet[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
}

bool base64_decode (const char *text, gsize size, std::vector<guint8> &out)
{
  out.clear ();
  if (size % 4 != 0)
    return false;
  out.reserve (size / 4 * 3);
  for (gsize i = 0; i < size; i += 4) {
    const guint8 *q = (const guint8 *) text + i;
    bool last = i + 4 == size;
    int pad = last ? (q[3] == '=') + (q[2] == '=' && q[3] == '=') : 0;
    guint32 v = 0;
    for (int k = 0; k < 4 - pad; k++) {
      gint8 d = kDecode.value[q[k]];
      if (d < 0)
        return false;
      v |= (guint32) d << (18 - 6 * k);
    }
    out.push_back ((guint8) (v >> 16));
    if (pad < 2)
      out.push_back ((guint8) (v >> 8));
    if (pad < 1)
      out.push_back ((guint8) v);
  }
  return true;
}

/* ---- server events ---- */

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
  if (t == G_TYPE_DOUBLE)
    return (gint64) json_node_get_double (n);
  return fallback;
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
    case EventType::Error: {
      JsonObject *error = get_object (root, "error");
      get_string (error, "type", ev.error.type);
      get_string (error, "code", ev.error.code);
      get_string (error, "message", ev.error.message);
      get_string (error, "event_id", ev.error.event_id);
      break;
    }
    case EventType::SessionCreated:
    case EventType::SessionUpdated: {
      JsonObject *session = get_object (root, "session");
      get_string (session, "id", ev.session_id);
      get_string (session, "model", ev.model);
      break;
    }
    case EventType::SpeechStarted:
      ev.audio_ms = get_int (root, "audio_start_ms");
      break;
    case EventType::SpeechStopped:
    case EventType::ItemTruncated:
      ev.audio_ms = get_int (root, "audio_end_ms");
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

bool parse_server_event (const char *data, gsize size, ServerEvent &ev,
    std::string &why)
{
  ev = ServerEvent ();
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
