// Small json-glib helpers for the emulator: building events fluently and
// reading client events defensively (a client may send anything).
#pragma once

#include <json-glib/json-glib.h>

#include <string>
#include <string_view>

namespace yrt::emu {

class JArr;

// Owning JsonObject builder. Members keep insertion order, so events are
// serialised in the order they are built ("event_id", "type" first).
class JObj {
 public:
  JObj() : o_(json_object_new()) {}
  explicit JObj(JsonObject *adopted) : o_(adopted) {}
  JObj(JObj &&other) noexcept : o_(other.o_) { other.o_ = nullptr; }
  JObj &operator=(JObj &&other) noexcept;
  JObj(const JObj &) = delete;
  JObj &operator=(const JObj &) = delete;
  ~JObj();

  JObj &str(const char *key, std::string_view value);
  JObj &num(const char *key, gint64 value);
  JObj &real(const char *key, double value);
  JObj &boolean(const char *key, bool value);
  JObj &null(const char *key);
  // obj()/arr() take the value's contents (the argument is left empty), so
  // fluent chains like obj("a", JObj().str("b", "c")) nest without copies.
  JObj &obj(const char *key, JObj &value);
  JObj &obj(const char *key, JObj &&value) { return obj(key, value); }
  JObj &arr(const char *key, JArr &value);
  JObj &arr(const char *key, JArr &&value) { return arr(key, value); }
  // Sets a deep copy of `node` (nullptr sets JSON null).
  JObj &node(const char *key, JsonNode *node);

  JsonObject *get() const { return o_; }
  JsonObject *release() {
    JsonObject *o = o_;
    o_ = nullptr;
    return o;
  }
  std::string text() const;

 private:
  JsonObject *o_;
};

class JArr {
 public:
  JArr() : a_(json_array_new()) {}
  JArr(JArr &&other) noexcept : a_(other.a_) { other.a_ = nullptr; }
  JArr(const JArr &) = delete;
  JArr &operator=(const JArr &) = delete;
  ~JArr();

  JArr &add(JObj &value);  // takes the contents, like JObj::obj()
  JArr &add(JObj &&value) { return add(value); }
  JArr &add_str(std::string_view value);
  // Adds a deep copy of a JSON document given as text (ignored if invalid).
  JArr &add_text(const std::string &json);

  JsonArray *release() {
    JsonArray *a = a_;
    a_ = nullptr;
    return a;
  }

 private:
  JsonArray *a_;
};

// Serialises a node compactly.
std::string json_text(JsonNode *node);
// Deep copy. json_node_copy() shares nested objects, which would let a
// later merge modify both copies.
JsonNode *json_deep_copy(JsonNode *node);
// Parses `text`; returns nullptr (and a message) unless it is a JSON object.
JsonNode *json_parse_object(const std::string &text, std::string *error);
JsonNode *json_parse_any(const std::string &text);

// Defensive getters: the wrong type counts as missing.
JsonObject *get_obj(JsonObject *o, const char *key);
JsonArray *get_arr(JsonObject *o, const char *key);
bool get_str(JsonObject *o, const char *key, std::string *out);
std::string str_or(JsonObject *o, const char *key, const std::string &fallback);
bool get_number(JsonObject *o, const char *key, double *out);
bool has_null(JsonObject *o, const char *key);

// Recursively merges `src` into `dst`: objects merge, everything else
// (including null) replaces.
void json_merge(JsonObject *dst, JsonObject *src);

}  // namespace yrt::emu
