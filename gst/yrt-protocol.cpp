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
  if (!c.languages.empty ()) {
    json_builder_set_member_name (b, "languages");
    json_builder_begin_array (b);
    for (const std::string &language : c.languages)
      json_builder_add_string_value (b, language.c_str ());
    json_builder_end_array (b);
  }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "output");
  json_builder_begin_object (b);
  add_pcm_format (b, c.output_rate);
  if (!c.voice.empty ())
    add_string (b, "voice", c.voice);
  if (!c.voice_role.empty ())
    add_string (b, "role", c.voice_role);
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

/* Merges `extra` into `into`: objects member by member, anything else
 * replaced; `path` and `overridden` record what the element had set. */
void deep_merge (JsonObject *into, JsonObject *extra, const std::string &path,
    std::vector<std::string> *overridden)
{
  JsonObjectIter iter;
  const char *name;
  JsonNode *value;
  json_object_iter_init (&iter, extra);
  while (json_object_iter_next (&iter, &name, &value)) {
    std::string here = path.empty () ? name : path + "." + name;
    JsonNode *ours = json_object_get_member (into, name);
    if (ours && JSON_NODE_HOLDS_OBJECT (ours) && JSON_NODE_HOLDS_OBJECT (value)) {
      deep_merge (json_node_get_object (ours), json_node_get_object (value), here, overridden);
      continue;
    }
    if (ours && overridden)
      overridden->push_back (here);
    json_object_set_member (into, name, json_node_copy (value));
  }
}

/* The session object session.update carries, extra merged in. */
JsonNode *session_object (const SessionConfig &c, std::vector<std::string> *overridden)
{
  GObjectPtr<JsonBuilder> builder (json_builder_new ());
  JsonBuilder *b = builder.get ();
  json_builder_begin_object (b);
  add_string (b, "type", "realtime");
  add_modalities (b, c.modalities);
  add_string (b, "instructions", c.instructions);
  add_audio (b, c);
  add_tools (b, c.tools_json);
  add_tool_choice (b, c.tool_choice);
  json_builder_end_object (b);
  JsonNode *session = json_builder_get_root (b);
  /* Validated when it was set; unparsable here means "none". */
  JsonNode *extra = c.extra_json.empty () ? nullptr :
      json_from_string (c.extra_json.c_str (), nullptr);
  if (extra && JSON_NODE_HOLDS_OBJECT (extra))
    deep_merge (json_node_get_object (session), json_node_get_object (extra), "", overridden);
  if (extra)
    json_node_unref (extra);
  return session;
}

}  // namespace

namespace client {

std::string session_update (const SessionConfig &c, const std::string &event_id)
{
  return build_event ("session.update", [&] (JsonBuilder *b) {
    if (!event_id.empty ())
      add_string (b, "event_id", event_id);
    json_builder_set_member_name (b, "session");
    json_builder_add_value (b, session_object (c, nullptr));
  });
}

std::vector<std::string> session_extra_overrides (const SessionConfig &c)
{
  std::vector<std::string> overridden;
  json_node_unref (session_object (c, &overridden));
  return overridden;
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

namespace {
std::string message_item (const char *role, const char *content_type,
    const std::string &text, const std::string &event_id)
{
  return build_event ("conversation.item.create", [&] (JsonBuilder *b) {
    if (!event_id.empty ())
      add_string (b, "event_id", event_id);
    json_builder_set_member_name (b, "item");
    json_builder_begin_object (b);
    add_string (b, "type", "message");
    add_string (b, "role", role);
    json_builder_set_member_name (b, "content");
    json_builder_begin_array (b);
    json_builder_begin_object (b);
    add_string (b, "type", content_type);
    add_string (b, "text", text);
    json_builder_end_object (b);
    json_builder_end_array (b);
    json_builder_end_object (b);
  });
}
}  // namespace

std::string user_text (const std::string &text, const std::string &event_id)
{
  return message_item ("user", "input_text", text, event_id);
}

std::string assistant_text (const std::string &text, const std::string &event_id)
{
  return message_item ("assistant", "output_text", text, event_id);
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

std::vector<std::string> split_languages (const std::string &list)
{
  std::vector<std::string> out;
  gchar **parts = g_strsplit (list.c_str (), ",", -1);
  for (gchar **p = parts; *p; p++) {
    g_strstrip (*p);
    if (**p)
      out.emplace_back (*p);
  }
  g_strfreev (parts);
  return out;
}

std::string check_json (const std::string &json, bool array, const char *expected)
{
  GError *error = nullptr;
  JsonNode *node = json_from_string (json.c_str (), &error);
  std::string why;
  if (!node)
    why = std::string ("not valid JSON: ") + (error ? error->message : "empty");
  else if (array ? !JSON_NODE_HOLDS_ARRAY (node) : !JSON_NODE_HOLDS_OBJECT (node))
    why = std::string ("not ") + expected;
  g_clear_error (&error);
  if (node)
    json_node_unref (node);
  return why;
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

/* ---- the audio delta fast path ---- */

#ifndef YRT_PROTOCOL_NO_FAST_PATH
namespace {

/* Audio deltas are nearly all the bytes the service sends, and a json-glib
 * tree of one costs several times its base64 decoding (docs/performance.md).
 * This reads their usual shape directly: one flat object of ASCII strings
 * without escapes and plain scalars, `type` an audio delta, `delta` valid
 * base64.  It accepts a strict subset of what json-glib accepts and reads
 * the same members; anything else, valid or not, is left to json-glib, so
 * both ways give the same ServerEvent and the same errors
 * (tests/bench: yrt-bench verify). */

struct Span {
  const char *data = nullptr;
  gsize size = 0;
};

enum Member { kType, kEventId, kItemId, kPreviousItemId, kResponseId, kDelta, kMembers };

int member_index (const Span &key)
{
  static const char *const names[kMembers] = {
    "type", "event_id", "item_id", "previous_item_id", "response_id", "delta",
  };
  for (int i = 0; i < kMembers; i++)
    if (strlen (names[i]) == key.size && memcmp (names[i], key.data, key.size) == 0)
      return i;
  return -1;
}

bool is_space (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A string without escapes, control or non-ASCII characters.  With `check`
 * false the characters are left to the caller: the delta's are all checked
 * by base64_decode(), which accepts none of those. */
bool scan_string (const char *&p, const char *end, Span &out, bool check)
{
  if (p == end || *p != '"')
    return false;
  const char *start = ++p;
  const char *close = static_cast<const char *> (memchr (start, '"', end - start));
  if (!close)
    return false;
  if (check)
    for (const char *c = start; c < close; c++)
      if ((guint8) *c < 0x20 || (guint8) *c >= 0x7f || *c == '\\')
        return false;
  out = {start, (gsize) (close - start)};
  p = close + 1;
  return true;
}

bool scan_digits (const char *&p, const char *end)
{
  const char *first = p;
  while (p < end && g_ascii_isdigit (*p))
    p++;
  return p > first;
}

/* true, false, null or a JSON number short enough for any parser. */
bool scan_scalar (const char *&p, const char *end)
{
  for (const char *word : {"true", "false", "null"}) {
    gsize n = strlen (word);
    if ((gsize) (end - p) >= n && memcmp (p, word, n) == 0) {
      p += n;
      return true;
    }
  }
  const char *q = p;
  if (q < end && *q == '-')
    q++;
  if (q < end && *q == '0')
    q++;
  else if (q == end || *q < '1' || *q > '9' || !scan_digits (q, end))
    return false;
  if (q < end && *q == '.' && !scan_digits (++q, end))
    return false;
  if (q < end && (*q == 'e' || *q == 'E')) {
    q++;
    if (q < end && (*q == '+' || *q == '-'))
      q++;
    if (!scan_digits (q, end))
      return false;
  }
  if (q - p > 15)
    return false;
  p = q;
  return true;
}

/* True when `ev` was filled; false leaves the frame to json-glib. */
bool parse_audio_delta (const char *data, gsize size, ServerEvent &ev)
{
  const char *p = data, *end = data + size;
  auto skip_space = [&] {
    while (p < end && is_space (*p))
      p++;
  };
  Span values[kMembers];
  guint seen = 0, strings = 0;
  skip_space ();
  if (p == end || *p++ != '{')
    return false;
  for (;;) {
    skip_space ();
    Span key;
    if (!scan_string (p, end, key, true) || key.size == 0)
      return false;
    skip_space ();
    if (p == end || *p++ != ':')
      return false;
    skip_space ();
    int member = member_index (key);
    if (member >= 0) {
      if (seen & (1u << member))
        return false;  /* json-glib keeps the last one; rare enough to leave */
      seen |= 1u << member;
    }
    if (p < end && *p == '"') {
      Span value;
      if (!scan_string (p, end, value, member != kDelta))
        return false;
      if (member >= 0) {
        values[member] = value;
        strings |= 1u << member;
      }
    } else if (member == kType || member == kDelta || !scan_scalar (p, end)) {
      return false;
    }
    skip_space ();
    if (p == end)
      return false;
    if (*p == ',') {
      p++;
      continue;
    }
    if (*p++ != '}')
      return false;
    break;
  }
  skip_space ();
  if (p != end || !(strings & (1u << kType)) || !(strings & (1u << kDelta)))
    return false;
  const Span &type = values[kType];
  auto type_is = [&type] (const char *name) {
    return strlen (name) == type.size && memcmp (name, type.data, type.size) == 0;
  };
  if (!type_is ("response.output_audio.delta") && !type_is ("response.audio.delta"))
    return false;
  ev = ServerEvent ();
  /* An escape in the delta (say "\/") fails here and goes to json-glib. */
  if (!base64_decode (values[kDelta].data, values[kDelta].size, ev.audio))
    return false;
  ev.type = EventType::AudioDelta;
  ev.type_name.assign (type.data, type.size);
  auto take = [&] (Member m, std::string &out) {
    if (strings & (1u << m))
      out.assign (values[m].data, values[m].size);
  };
  take (kEventId, ev.event_id);
  take (kItemId, ev.item_id);
  take (kPreviousItemId, ev.previous_item_id);
  take (kResponseId, ev.response_id);
  return true;
}

}  // namespace
#endif  /* YRT_PROTOCOL_NO_FAST_PATH */

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
