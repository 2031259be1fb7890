#include "json-util.h"

#include <string>

namespace yrt::emu {

JObj &JObj::operator=(JObj &&other) noexcept {
  if (this != &other) {
    if (o_)
      json_object_unref(o_);
    o_ = other.o_;
    other.o_ = nullptr;
  }
  return *this;
}

JObj::~JObj() {
  if (o_)
    json_object_unref(o_);
}

JObj &JObj::str(const char *key, std::string_view value) {
  json_object_set_string_member(o_, key, std::string(value).c_str());
  return *this;
}

JObj &JObj::num(const char *key, gint64 value) {
  json_object_set_int_member(o_, key, value);
  return *this;
}

JObj &JObj::real(const char *key, double value) {
  json_object_set_double_member(o_, key, value);
  return *this;
}

JObj &JObj::boolean(const char *key, bool value) {
  json_object_set_boolean_member(o_, key, value);
  return *this;
}

JObj &JObj::null(const char *key) {
  json_object_set_null_member(o_, key);
  return *this;
}

JObj &JObj::obj(const char *key, JObj &value) {
  json_object_set_object_member(o_, key, value.release());  // takes the reference
  return *this;
}

JObj &JObj::arr(const char *key, JArr &value) {
  json_object_set_array_member(o_, key, value.release());
  return *this;
}

JObj &JObj::node(const char *key, JsonNode *value) {
  if (!value)
    return null(key);
  json_object_set_member(o_, key, json_deep_copy(value));
  return *this;
}

std::string JObj::text() const {
  JsonNode *n = json_node_new(JSON_NODE_OBJECT);
  json_node_set_object(n, o_);
  std::string s = json_text(n);
  json_node_unref(n);
  return s;
}

JArr::~JArr() {
  if (a_)
    json_array_unref(a_);
}

JArr &JArr::add(JObj &value) {
  json_array_add_object_element(a_, value.release());
  return *this;
}

JArr &JArr::add_str(std::string_view value) {
  json_array_add_string_element(a_, std::string(value).c_str());
  return *this;
}

JArr &JArr::add_text(const std::string &json) {
  if (JsonNode *n = json_parse_any(json))
    json_array_add_element(a_, n);
  return *this;
}

std::string json_text(JsonNode *node) {
  JsonGenerator *gen = json_generator_new();
  json_generator_set_root(gen, node);
  gchar *s = json_generator_to_data(gen, nullptr);
  std::string out(s ? s : "");
  g_free(s);
  g_object_unref(gen);
  return out;
}

JsonNode *json_parse_any(const std::string &text) {
  JsonParser *parser = json_parser_new();
  JsonNode *root = nullptr;
  if (json_parser_load_from_data(parser, text.data(), static_cast<gssize>(text.size()), nullptr) &&
      json_parser_get_root(parser))
    root = json_node_ref(json_parser_get_root(parser));
  g_object_unref(parser);
  return root;
}

JsonNode *json_deep_copy(JsonNode *node) {
  switch (JSON_NODE_TYPE(node)) {
    case JSON_NODE_OBJECT: {
      JsonObject *dst = json_object_new();
      JsonObjectIter it;
      const gchar *name;
      JsonNode *member;
      json_object_iter_init(&it, json_node_get_object(node));
      while (json_object_iter_next(&it, &name, &member))
        json_object_set_member(dst, name, json_deep_copy(member));
      JsonNode *out = json_node_new(JSON_NODE_OBJECT);
      json_node_take_object(out, dst);
      return out;
    }
    case JSON_NODE_ARRAY: {
      JsonArray *src = json_node_get_array(node);
      JsonArray *dst = json_array_sized_new(json_array_get_length(src));
      for (guint i = 0; i < json_array_get_length(src); i++)
        json_array_add_element(dst, json_deep_copy(json_array_get_element(src, i)));
      JsonNode *out = json_node_new(JSON_NODE_ARRAY);
      json_node_take_array(out, dst);
      return out;
    }
    case JSON_NODE_VALUE: {
      GValue v = G_VALUE_INIT;
      json_node_get_value(node, &v);
      JsonNode *out = json_node_new(JSON_NODE_VALUE);
      json_node_set_value(out, &v);
      g_value_unset(&v);
      return out;
    }
    case JSON_NODE_NULL:
    default:
      return json_node_new(JSON_NODE_NULL);
  }
}

JsonNode *json_parse_object(const std::string &text, std::string *error) {
  JsonNode *root = json_parse_any(text);
  if (!root) {
    *error = "The event is not valid JSON.";
    return nullptr;
  }
  if (!JSON_NODE_HOLDS_OBJECT(root)) {
    json_node_unref(root);
    *error = "The event is not a JSON object.";
    return nullptr;
  }
  return root;
}

JsonObject *get_obj(JsonObject *o, const char *key) {
  JsonNode *n = o ? json_object_get_member(o, key) : nullptr;
  return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : nullptr;
}

JsonArray *get_arr(JsonObject *o, const char *key) {
  JsonNode *n = o ? json_object_get_member(o, key) : nullptr;
  return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : nullptr;
}

bool get_str(JsonObject *o, const char *key, std::string *out) {
  JsonNode *n = o ? json_object_get_member(o, key) : nullptr;
  if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
    return false;
  *out = json_node_get_string(n);
  return true;
}

std::string str_or(JsonObject *o, const char *key, const std::string &fallback) {
  std::string s;
  return get_str(o, key, &s) ? s : fallback;
}

bool get_number(JsonObject *o, const char *key, double *out) {
  JsonNode *n = o ? json_object_get_member(o, key) : nullptr;
  if (!n || !JSON_NODE_HOLDS_VALUE(n))
    return false;
  GType t = json_node_get_value_type(n);
  if (t == G_TYPE_INT64)
    *out = static_cast<double>(json_node_get_int(n));
  else if (t == G_TYPE_DOUBLE)
    *out = json_node_get_double(n);
  else
    return false;
  return true;
}

bool has_null(JsonObject *o, const char *key) {
  JsonNode *n = o ? json_object_get_member(o, key) : nullptr;
  return n && JSON_NODE_HOLDS_NULL(n);
}

void json_merge(JsonObject *dst, JsonObject *src) {
  JsonObjectIter it;
  const gchar *name;
  JsonNode *member;
  json_object_iter_init(&it, src);
  while (json_object_iter_next(&it, &name, &member)) {
    JsonObject *d = get_obj(dst, name);
    if (d && JSON_NODE_HOLDS_OBJECT(member))
      json_merge(d, json_node_get_object(member));
    else
      json_object_set_member(dst, name, json_deep_copy(member));
  }
}

}  // namespace yrt::emu
