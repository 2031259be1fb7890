// Input audio and user turns: appends, commits and clears, server-VAD
// speech edges, the uncommitted buffer, and conversation items
// (create/truncate/delete/retrieve).
#include "emulator-impl.h"

#include <algorithm>
#include <cmath>

namespace yrt::emu {

namespace {

constexpr gint64 kMinCommitMs = 100;

// Strict standard base64 (g_base64_decode() accepts anything).
bool decode_base64(const std::string &in, std::vector<guint8> *out) {
  out->clear();
  if (in.empty())
    return true;
  if (in.size() % 4 != 0)
    return false;
  gsize pad = 0;
  for (gsize i = 0; i < in.size(); i++) {
    const char c = in[i];
    if (c == '=') {
      if (i + 2 < in.size())
        return false;
      pad++;
    } else if (pad || !(g_ascii_isalnum(c) || c == '+' || c == '/')) {
      return false;
    }
  }
  gsize len = 0;
  guchar *data = g_base64_decode(in.c_str(), &len);
  out->assign(data, data + len);
  g_free(data);
  return true;
}

std::vector<gint16> from_le_bytes(const std::vector<guint8> &bytes) {
  std::vector<gint16> out(bytes.size() / 2);
  for (gsize i = 0; i < out.size(); i++)
    out[i] = static_cast<gint16>(bytes[2 * i] | (bytes[2 * i + 1] << 8));
  return out;
}

}  // namespace

std::vector<guint8> to_le_bytes(const std::vector<gint16> &pcm) {
  std::vector<guint8> out(pcm.size() * 2);
  for (gsize i = 0; i < pcm.size(); i++) {
    const guint16 v = static_cast<guint16>(pcm[i]);
    out[2 * i] = static_cast<guint8>(v & 0xff);
    out[2 * i + 1] = static_cast<guint8>(v >> 8);
  }
  return out;
}

void Session::on_append(JsonObject *ev, const std::string &eid) {
  std::string audio;
  std::vector<guint8> pcm;
  if (!get_str(ev, "audio", &audio)) {
    send_error("invalid_value", "audio must be a base64 string", "audio", eid);
  } else if (!decode_base64(audio, &pcm)) {
    send_error("invalid_base64", "audio is not valid base64", "audio", eid);
  } else if (pcm.size() % 2 != 0) {
    send_error("invalid_audio_length",
               "audio must be whole 16-bit samples, got " + std::to_string(pcm.size()) + " bytes",
               "audio", eid);
  } else {
    if (!discard_audio_) {  // RatePolicy::Refuse: no audio until a valid update
      srv_.record_received_audio(index(), pcm);
      feed_audio(pcm);
    }
    pace_input(pcm.size() / 2);
  }
}

void Session::on_commit(JsonObject *, const std::string &eid) {
  const gint64 ms = static_cast<gint64>(buffer_.size()) * 1000 / in_rate();
  if (ms < kMinCommitMs) {
    send_error("input_audio_buffer_commit_empty",
               "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
               "audio, but buffer only has " +
                   std::to_string(ms) + "ms of audio.",
               nullptr, eid);
    return;
  }
  vad_.reset_speech();
  commit_buffer(false);  // a manual commit never creates a response by itself
}

void Session::on_clear(JsonObject *, const std::string &) {
  buffer_.clear();
  vad_.reset_speech();
  speech_item_.clear();
  send(event("input_audio_buffer.cleared"));
}

void Session::on_item_create(JsonObject *ev, const std::string &eid) {
  JsonObject *item = get_obj(ev, "item");
  std::string type, role, id, call_id;
  if (!item || !get_str(item, "type", &type)) {
    send_error("invalid_value", "item must be an object with a type", "item", eid);
    return;
  }
  if (type == "message") {
    get_str(item, "role", &role);
    if ((role != "user" && role != "assistant" && role != "system") || !get_arr(item, "content")) {
      send_error("invalid_value", "a message needs role user|assistant|system and content",
                 "item", eid);
      return;
    }
    if (role == "assistant" && faults_.refuse_assistant_items) {
      send_error("invalid_value", "Assistant messages are not supported yet", "item.role", eid);
      return;
    }
  } else if (type == "function_call_output" || type == "function_call") {
    if (!get_str(item, "call_id", &call_id)) {
      send_error("invalid_value", "call_id must be a string", "item.call_id", eid);
      return;
    }
    if (type == "function_call_output" && !known_calls_.count(call_id)) {
      send_error("call_id_not_found", "No function call with call_id " + call_id, "item.call_id",
                 eid);
      return;
    }
    known_calls_.insert(call_id);
  } else {
    send_error("invalid_value", "Unsupported item type: " + type, "item.type", eid);
    return;
  }
  if (!get_str(item, "id", &id))
    id = next_id("item");
  if (items_.count(id)) {
    send_error("invalid_value", "An item with id " + id + " already exists", "item.id", eid);
    return;
  }
  JsonNode *copy = json_deep_copy(json_object_get_member(ev, "item"));
  JsonObject *obj = json_node_get_object(copy);
  json_object_set_string_member(obj, "id", id.c_str());
  json_object_set_string_member(obj, "object", "realtime.item");
  json_object_set_string_member(obj, "status", "completed");
  add_item(id, Item{type, role, "", 0, 0}, obj);
  json_node_unref(copy);
  if (type == "message" && role == "user") {
    last_user_item_ = id;
    begin_user_turn();
  }
}

void Session::on_item_truncate(JsonObject *ev, const std::string &eid) {
  std::string id;
  double content_index = 0, end_ms = 0;
  get_str(ev, "item_id", &id);
  auto it = items_.find(id);
  if (it == items_.end()) {
    send_error("item_not_found", "Item " + id + " does not exist", "item_id", eid);
  } else if (it->second.role != "assistant" || it->second.rate == 0) {
    send_error("invalid_value", "Only assistant audio messages can be truncated", "item_id", eid);
  } else if (!get_number(ev, "content_index", &content_index) || content_index != 0) {
    send_error("invalid_value", "content_index must be 0", "content_index", eid);
  } else if (!get_number(ev, "audio_end_ms", &end_ms) || end_ms < 0) {
    send_error("invalid_value", "audio_end_ms must be a non-negative number", "audio_end_ms", eid);
  } else {
    Item &item = it->second;
    const gint64 sent_ms = std::llround((item.audio_bytes / 2) * 1000.0 / item.rate);
    const gint64 end = static_cast<gint64>(end_ms);
    if (end > sent_ms) {
      send_error("invalid_value",
                 "audio_end_ms " + std::to_string(end) + " exceeds the " +
                     std::to_string(sent_ms) + " ms of audio sent for item " + id,
                 "audio_end_ms", eid);
      return;
    }
    item.audio_bytes = static_cast<gsize>(end * item.rate / 1000) * 2;
    send(event("conversation.item.truncated")
             .str("item_id", id)
             .num("content_index", 0)
             .num("audio_end_ms", end));
  }
}

void Session::on_item_delete(JsonObject *ev, const std::string &eid) {
  std::string id;
  get_str(ev, "item_id", &id);
  if (!items_.erase(id)) {
    send_error("item_not_found", "Item " + id + " does not exist", "item_id", eid);
    return;
  }
  order_.erase(std::remove(order_.begin(), order_.end(), id), order_.end());
  send(event("conversation.item.deleted").str("item_id", id));
}

void Session::on_item_retrieve(JsonObject *ev, const std::string &eid) {
  std::string id;
  get_str(ev, "item_id", &id);
  auto it = items_.find(id);
  if (it == items_.end()) {
    send_error("item_not_found", "Item " + id + " does not exist", "item_id", eid);
    return;
  }
  JsonNode *item = json_parse_any(it->second.json);
  send(event("conversation.item.retrieved").node("item", item));
  if (item)
    json_node_unref(item);
}

// ----- Session: input audio and user turns ------------------------------------------

void Session::feed_audio(const std::vector<guint8> &bytes) {
  const std::vector<gint16> pcm = from_le_bytes(bytes);
  gsize done = 0;
  for (const Vad::Edge &edge : vad_.feed(pcm.data(), pcm.size())) {
    // Commit exactly the audio up to the frame that ended the utterance.
    buffer_.insert(buffer_.end(), pcm.begin() + done, pcm.begin() + edge.consumed);
    done = edge.consumed;
    if (edge.started)
      on_speech_started(edge);
    else
      on_speech_stopped(edge.at_ms);
  }
  buffer_.insert(buffer_.end(), pcm.begin() + done, pcm.end());
  trim_idle_buffer();
}

// Under server VAD, audio before speech is only kept as prefix padding
// (and, while the VAD weighs whether loud audio is speech, all of it).
void Session::trim_idle_buffer() {
  if (!vad_.enabled() || vad_.active())
    return;
  double prefix_ms = 300;
  get_number(turn_detection(), "prefix_padding_ms", &prefix_ms);
  const double keep_ms = prefix_ms + static_cast<double>(vad_.pending_ms());
  const gsize keep = static_cast<gsize>(keep_ms * in_rate() / 1000);
  if (buffer_.size() > keep)
    buffer_.erase(buffer_.begin(), buffer_.end() - keep);
}

// The buffer holds at least the audio since at_ms (the prefix padding
// before the speech and the speech so far): the turn starts at at_ms.
void Session::on_speech_started(const Vad::Edge &edge) {
  const gint64 keep_us = edge.clock_us - edge.at_ms * 1000;
  const gsize keep = static_cast<gsize>(std::llround(keep_us * double(in_rate()) / G_USEC_PER_SEC));
  if (buffer_.size() > keep)
    buffer_.erase(buffer_.begin(), buffer_.end() - keep);
  speech_item_ = next_id("item");
  send(event("input_audio_buffer.speech_started")
           .num("audio_start_ms", edge.at_ms)
           .str("item_id", speech_item_));
  if (active_ && td_flag("interrupt_response"))
    cancel_response("turn_detected");
}

void Session::on_speech_stopped(gint64 at_ms) {
  send(event("input_audio_buffer.speech_stopped")
           .num("audio_end_ms", at_ms)
           .str("item_id", speech_item_));
  commit_buffer(td_flag("create_response"));
}

void Session::commit_buffer(bool respond) {
  const std::string id = speech_item_.empty() ? next_id("item") : speech_item_;
  speech_item_.clear();
  const gint64 committed_ms = static_cast<gint64>(buffer_.size() * 1000 / in_rate());
  srv_.record_commit(
      {index(), id, srv_.cfg.record_audio ? to_le_bytes(buffer_) : std::vector<guint8>{}, in_rate()});
  last_user_item_ = id;
  buffer_.clear();
  const std::string previous = order_.empty() ? "" : order_.back();
  begin_user_turn();
  const std::string transcript = pending_script_.transcript;

  JObj committed = event("input_audio_buffer.committed");
  if (previous.empty())
    committed.null("previous_item_id");
  else
    committed.str("previous_item_id", previous);
  send(committed.str("item_id", id));

  JObj item;
  item.str("id", id)
      .str("object", "realtime.item")
      .str("type", "message")
      .str("status", "completed")
      .str("role", "user")
      .arr("content", JArr().add(JObj().str("type", "input_audio").null("transcript")));
  add_item(id, Item{"message", "user", "", 0, 0}, item.get());
  // Keep the transcript for conversation.item.retrieve.
  items_[id].json = JObj().str("id", id)
                        .str("object", "realtime.item")
                        .str("type", "message")
                        .str("status", "completed")
                        .str("role", "user")
                        .arr("content", JArr().add(JObj().str("type", "input_audio")
                                                       .str("transcript", transcript)))
                        .text();
  send(event("conversation.item.input_audio_transcription.completed")
           .str("item_id", id)
           .num("content_index", 0)
           .str("transcript", transcript));
  send_extra_events(id, committed_ms);
  if (respond && !active_)
    start_response(nullptr);
}

// Items of responses are only announced by response.output_item.* events.
void Session::register_item(const std::string &id, Item item, JsonObject *json) {
  JsonNode *node = json_node_new(JSON_NODE_OBJECT);
  json_node_set_object(node, json);
  item.json = json_text(node);
  json_node_unref(node);
  items_[id] = std::move(item);
  order_.push_back(id);
}

// Registers a client-side item and announces it (conversation.item.added).
void Session::add_item(const std::string &id, Item item, JsonObject *json) {
  JObj ev = event("conversation.item.added");
  if (order_.empty())
    ev.null("previous_item_id");
  else
    ev.str("previous_item_id", order_.back());
  register_item(id, std::move(item), json);
  send(ev.obj("item", JObj(json_object_ref(json))));
}

void Session::begin_user_turn() {
  user_turns_++;
  pending_script_ = srv_.pop_turn();
  fill_defaults(&pending_script_);
  has_pending_script_ = true;
}

// The script for a response: the pending user turn's, else the next queued.
TurnScript Session::take_script() {
  if (has_pending_script_) {
    has_pending_script_ = false;
    return std::move(pending_script_);
  }
  TurnScript script = srv_.pop_turn();
  fill_defaults(&script);
  return script;
}

void Session::fill_defaults(TurnScript *script) const {
  const std::string n = std::to_string(user_turns_);
  if (script->transcript.empty())
    script->transcript = "turn " + n;
  if (script->answer_text.empty())
    script->answer_text = "answer " + n;
}

std::string Session::next_id(const char *prefix) {
  return std::string(prefix) + "_" + std::to_string(++counters_[prefix]);
}

}  // namespace yrt::emu
