/* Client events built as JSON text: the session object of session.update
 * (tool choice, session-extra deep-merged), input_audio_buffer.append built
 * by hand for the hot path, the other events through json-glib; and the
 * checks of property values they carry (split_languages, check_json). */
#include "yrt-client-events.h"

#include "yrt-base64.h"
#include "yrt-gobject-ptr.h"

#include <json-glib/json-glib.h>

namespace yrt {

namespace {

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

}  // namespace yrt
