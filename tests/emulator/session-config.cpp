// Session configuration: the default session, session.update merging and
// validation, turn_detection defaults, the rate rules (Serve/Refuse), and the
// VAD set up from the session.
#include "emulator-impl.h"

#include <cmath>
#include <cstring>

namespace yrt::emu {

namespace {

constexpr guint kMinRate = 8000;
constexpr guint kMaxRate = 192000;

JsonNode *object_node(JObj &obj) {
  JsonNode *node = json_node_new(JSON_NODE_OBJECT);
  json_node_take_object(node, obj.release());
  return node;
}

// Fills turn_detection defaults the way a server would for a partial object.
void fill_turn_detection_defaults(JsonObject *td) {
  if (!json_object_has_member(td, "threshold"))
    json_object_set_double_member(td, "threshold", 0.5);
  if (!json_object_has_member(td, "prefix_padding_ms"))
    json_object_set_int_member(td, "prefix_padding_ms", 300);
  if (!json_object_has_member(td, "silence_duration_ms"))
    json_object_set_int_member(td, "silence_duration_ms", 400);
  if (!json_object_has_member(td, "create_response"))
    json_object_set_boolean_member(td, "create_response", TRUE);
  if (!json_object_has_member(td, "interrupt_response"))
    json_object_set_boolean_member(td, "interrupt_response", TRUE);
}

bool check_format(JsonObject *dir, const std::string &param, Invalid *bad) {
  JsonNode *fmt_node = json_object_get_member(dir, "format");
  if (!fmt_node)
    return true;
  JsonObject *fmt = get_obj(dir, "format");
  if (!fmt) {
    *bad = {param + ".format", "format must be an object"};
    return false;
  }
  std::string type;
  if (json_object_has_member(fmt, "type") && (!get_str(fmt, "type", &type) || type != "audio/pcm")) {
    *bad = {param + ".format.type", "Only audio/pcm is supported"};
    return false;
  }
  double rate = 0;
  if (json_object_has_member(fmt, "rate") &&
      (!get_number(fmt, "rate", &rate) || rate != std::floor(rate) || rate < kMinRate ||
       rate > kMaxRate)) {
    *bad = {param + ".format.rate", "rate must be an integer between 8000 and 192000"};
    return false;
  }
  return true;
}

bool check_turn_detection(JsonObject *input, Invalid *bad) {
  const std::string param = "session.audio.input.turn_detection";
  if (!json_object_has_member(input, "turn_detection") || has_null(input, "turn_detection"))
    return true;
  JsonObject *td = get_obj(input, "turn_detection");
  std::string type;
  if (!td || !get_str(td, "type", &type) || (type != "server_vad" && type != "semantic_vad")) {
    *bad = {param, "turn_detection must be null or {type: server_vad|semantic_vad, ...}"};
    return false;
  }
  fill_turn_detection_defaults(td);
  double v = 0;
  if (!get_number(td, "threshold", &v) || v < 0.0 || v > 1.0) {
    *bad = {param + ".threshold", "threshold must be a number in [0, 1]"};
    return false;
  }
  for (const char *key : {"prefix_padding_ms", "silence_duration_ms"}) {
    if (!get_number(td, key, &v) || v < 0 || v > 60000) {
      *bad = {param + "." + key, std::string(key) + " must be a number of milliseconds"};
      return false;
    }
  }
  return true;
}

}  // namespace

guint initial_rate(const RateRule &rule, guint fallback) {
  return rule.policy == RatePolicy::Accept || rule.rate == 0 ? fallback : rule.rate;
}

JsonNode *default_session(const std::string &id, const std::string &model, guint in_rate,
                          guint out_rate) {
  JObj turn_detection;
  turn_detection.str("type", "server_vad")
      .real("threshold", 0.5)
      .num("prefix_padding_ms", 300)
      .num("silence_duration_ms", 400)
      .boolean("create_response", true)
      .boolean("interrupt_response", true);
  JObj input;
  input.obj("format", JObj().str("type", "audio/pcm").num("rate", in_rate))
      .obj("turn_detection", turn_detection);
  JObj output;
  output.obj("format", JObj().str("type", "audio/pcm").num("rate", out_rate)).str("voice", "marina");
  JObj session;
  session.str("id", id)
      .str("object", "realtime.session")
      .str("type", "realtime")
      .str("model", model)
      .arr("output_modalities", JArr().add_str("audio"))
      .obj("audio", JObj().obj("input", input).obj("output", output))
      .str("instructions", "")
      .arr("tools", JArr());
  return object_node(session);
}

bool check_modalities(JsonArray *mods, const std::string &param, Invalid *bad) {
  if (!mods || json_array_get_length(mods) == 0) {
    *bad = {param, "output_modalities must be a non-empty array"};
    return false;
  }
  for (guint i = 0; i < json_array_get_length(mods); i++) {
    JsonNode *n = json_array_get_element(mods, i);
    const char *m = JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
                        ? json_node_get_string(n)
                        : "";
    if (strcmp(m, "audio") != 0 && strcmp(m, "text") != 0) {
      *bad = {param, "output_modalities may only contain \"text\" and \"audio\""};
      return false;
    }
  }
  return true;
}

// Validates a merged session object (and fills defaults into it).
bool check_session(JsonObject *s, Invalid *bad) {
  std::string str;
  if (json_object_has_member(s, "type") && (!get_str(s, "type", &str) || str != "realtime")) {
    *bad = {"session.type", "Only sessions of type \"realtime\" are supported"};
    return false;
  }
  if (json_object_has_member(s, "instructions") && !get_str(s, "instructions", &str)) {
    *bad = {"session.instructions", "instructions must be a string"};
    return false;
  }
  if (!check_modalities(get_arr(s, "output_modalities"), "session.output_modalities", bad))
    return false;
  if (json_object_has_member(s, "tools") && !get_arr(s, "tools")) {
    *bad = {"session.tools", "tools must be an array"};
    return false;
  }
  JsonObject *audio = get_obj(s, "audio");
  JsonObject *input = get_obj(audio, "input");
  JsonObject *output = get_obj(audio, "output");
  if (!input || !output) {
    *bad = {"session.audio", "audio.input and audio.output must be objects"};
    return false;
  }
  return check_format(input, "session.audio.input", bad) &&
         check_format(output, "session.audio.output", bad) && check_turn_detection(input, bad);
}

guint rate_of(JsonObject *session, const char *dir, guint fallback) {
  double rate = 0;
  JsonObject *fmt = get_obj(get_obj(get_obj(session, "audio"), dir), "format");
  return get_number(fmt, "rate", &rate) ? static_cast<guint>(rate) : fallback;
}

void Session::on_session_update(JsonObject *ev, const std::string &eid) {
  JsonObject *update = get_obj(ev, "session");
  if (!update) {
    send_error("invalid_value", "session must be an object", "session", eid);
    return;
  }
  JsonNode *update_node = json_object_get_member(ev, "session");
  srv_.record_session_update(json_text(update_node));

  JsonNode *next = json_deep_copy(session_);
  JsonObject *s = json_node_get_object(next);
  JsonObjectIter iter;
  const gchar *name;
  JsonNode *member;
  json_object_iter_init(&iter, update);
  while (json_object_iter_next(&iter, &name, &member)) {
    if (strcmp(name, "id") == 0 || strcmp(name, "object") == 0)
      continue;  // read-only
    JsonObject *dst = strcmp(name, "audio") == 0 ? get_obj(s, "audio") : nullptr;
    if (dst && JSON_NODE_HOLDS_OBJECT(member))
      json_merge(dst, json_node_get_object(member));
    else
      json_object_set_member(s, name, json_deep_copy(member));
  }
  Invalid bad;
  if (!check_session(s, &bad)) {
    json_node_unref(next);
    send_error("invalid_value", bad.message, bad.param.c_str(), eid);
    return;
  }
  if (!apply_rate_rules(update, s, eid)) {
    json_node_unref(next);
    return;
  }
  json_node_unref(session_);
  session_ = next;
  discard_audio_ = false;
  configure_vad();
  srv_.record_rates(index(), in_rate(), out_rate());
  send(event("session.updated").node("session", session_));
}

// Config::input_rate_rule / output_rate_rule on a valid update (`merged` is
// the session it would make). Serve: the served rate replaces the asked one.
// Refuse: another rate refuses the whole update; appends are then discarded
// until an update is applied. Returns false when refused.
bool Session::apply_rate_rules(JsonObject *update, JsonObject *merged, const std::string &eid) {
  const struct {
    const char *dir;
    const RateRule &rule;
    guint fallback;
  } dirs[] = {{"input", srv_.cfg.input_rate_rule, kDefaultInRate},
              {"output", srv_.cfg.output_rate_rule, kDefaultOutRate}};
  for (const auto &d : dirs) {
    const guint rate = initial_rate(d.rule, d.fallback);
    double asked = 0;
    if (d.rule.policy != RatePolicy::Refuse ||
        !get_number(get_obj(get_obj(get_obj(update, "audio"), d.dir), "format"), "rate", &asked) ||
        asked == rate)
      continue;
    const std::string param = std::string("session.audio.") + d.dir + ".format.rate";
    srv_.record_refused_update();  // before the error: a client may check it at once
    discard_audio_ = true;
    send_error("invalid_value",
               "Invalid '" + param + "': expected " + std::to_string(rate) + ", got " +
                   std::to_string(static_cast<guint>(asked)) + ".",
               param.c_str(), eid);
    return false;
  }
  for (const auto &d : dirs) {
    if (d.rule.policy != RatePolicy::Serve)
      continue;
    JsonObject *fmt = get_obj(get_obj(get_obj(merged, "audio"), d.dir), "format");
    if (fmt)  // check_session() made sure it is an object if present
      json_object_set_int_member(fmt, "rate", initial_rate(d.rule, d.fallback));
  }
  return true;
}

// ----- Session: configuration ---------------------------------------------------

JsonObject *Session::turn_detection() const {
  return get_obj(get_obj(get_obj(json_node_get_object(session_), "audio"), "input"),
                 "turn_detection");
}

bool Session::td_flag(const char *key) const {
  JsonObject *td = turn_detection();
  return td && json_object_has_member(td, key) && json_object_get_boolean_member(td, key);
}

void Session::configure_vad() {
  vad_.set_rate(in_rate());
  JsonObject *td = turn_detection();
  vad_.set_enabled(td != nullptr);
  if (!td)
    return;
  double threshold = 0.5, prefix = 300, silence = 400;
  get_number(td, "threshold", &threshold);
  get_number(td, "prefix_padding_ms", &prefix);
  get_number(td, "silence_duration_ms", &silence);
  Vad::Params params;
  params.model = srv_.cfg.vad_model;
  params.threshold = threshold;
  params.prefix_padding_ms = static_cast<guint>(prefix);
  params.silence_duration_ms = static_cast<guint>(silence);
  vad_.set_params(params);
}

}  // namespace yrt::emu
