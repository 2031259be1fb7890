// Responses: response.create/cancel, planning an answer (function calls,
// text, audio) into paced steps, the deltas, and closing or cancelling it.
#include "emulator-impl.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "synth.h"

namespace yrt::emu {

namespace {

// "hi there" -> {"hi ", "there"}: the deltas concatenate to the text.
std::vector<std::string> split_words(const std::string &text) {
  std::vector<std::string> words;
  std::string cur;
  for (char c : text) {
    cur += c;
    if (c == ' ') {
      words.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty())
    words.push_back(cur);
  return words;
}

std::string encode_base64(const guint8 *data, gsize len) {
  gchar *s = g_base64_encode(data, len);
  std::string out(s);
  g_free(s);
  return out;
}

// Byte ranges of the audio deltas. With `odd`, sizes alternate between one
// byte more and one byte less than a delta, so samples straddle deltas.
std::vector<std::pair<gsize, gsize>> delta_ranges(gsize total, gsize delta_bytes, bool odd) {
  std::vector<std::pair<gsize, gsize>> ranges;
  bool longer = true;
  for (gsize pos = 0; pos < total;) {
    gsize n = delta_bytes;
    if (odd) {
      n = longer ? delta_bytes + 1 : delta_bytes - 1;
      longer = !longer;
    }
    n = std::min(n, total - pos);
    ranges.emplace_back(pos, n);
    pos += n;
  }
  return ranges;
}

bool array_has(JsonArray *arr, const char *value) {
  for (guint i = 0; arr && i < json_array_get_length(arr); i++) {
    JsonNode *n = json_array_get_element(arr, i);
    if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING &&
        strcmp(json_node_get_string(n), value) == 0)
      return true;
  }
  return false;
}

// Splits a UTF-8 string roughly in half on a character boundary.
std::pair<std::string, std::string> split_utf8_half(const std::string &s) {
  const glong chars = g_utf8_strlen(s.c_str(), static_cast<gssize>(s.size()));
  const char *mid = g_utf8_offset_to_pointer(s.c_str(), chars / 2);
  const gsize at = static_cast<gsize>(mid - s.c_str());
  return {s.substr(0, at), s.substr(at)};
}

}  // namespace

void Session::on_response_create(JsonObject *ev, const std::string &eid) {
  if (active_) {
    send_error("conversation_already_has_active_response",
               "Conversation already has an active response in progress: " + active_->id +
                   ". Wait until the response is finished before creating a new one.",
               nullptr, eid);
    return;
  }
  JsonObject *params = get_obj(ev, "response");
  JsonArray *mods = get_arr(params, "output_modalities");
  Invalid bad;
  if (mods && !check_modalities(mods, "response.output_modalities", &bad)) {
    send_error("invalid_value", bad.message, bad.param.c_str(), eid);
    return;
  }
  start_response(params);
}

void Session::on_response_cancel(JsonObject *ev, const std::string &eid) {
  std::string id;
  const bool named = get_str(ev, "response_id", &id);
  if (!active_ || (named && id != active_->id)) {
    send_error("response_cancel_not_active", "Cancellation failed: no active response found",
               nullptr, eid);
    return;
  }
  cancel_response("client_cancelled");
}

// ----- Session: responses ----------------------------------------------------

JObj Session::response_object(const char *status) const {
  JArr mods;
  for (const std::string &m : active_->modalities)
    mods.add_str(m);
  JArr output;
  for (const std::string &item : active_->output)
    output.add_text(item);
  JObj r;
  r.str("id", active_->id)
      .str("object", "realtime.response")
      .str("status", status)
      .null("status_details")
      .arr("output", output)
      .str("conversation_id", "conv_" + std::to_string(number_))
      .arr("output_modalities", mods);
  return r;
}

// Deterministic numbers: 50 input tokens per user turn, one text token per
// word (or per 4 bytes of arguments), 10 audio tokens per second.
JObj Session::usage() const {
  const gint64 input = 50 * std::max<guint>(1, user_turns_);
  const gint64 audio = static_cast<gint64>(active_->audio_bytes_sent / 2) * 10 / out_rate();
  const gint64 output = active_->text_tokens + audio;
  JObj u;
  u.num("total_tokens", input + output)
      .num("input_tokens", input)
      .num("output_tokens", output)
      .obj("input_token_details", JObj().num("text_tokens", 0).num("audio_tokens", input))
      .obj("output_token_details",
           JObj().num("text_tokens", active_->text_tokens).num("audio_tokens", audio));
  return u;
}

void Session::start_response(JsonObject *params) {
  TurnScript script = take_script();
  active_ = std::make_unique<Response>();
  Response &r = *active_;
  r.id = next_id("resp");
  r.serial = srv_.record_answer_start(index(), r.id, last_user_item_);
  JsonArray *mods = get_arr(params, "output_modalities");
  if (!mods)
    mods = get_arr(json_node_get_object(session_), "output_modalities");
  for (const char *m : {"text", "audio"})
    if (array_has(mods, m))
      r.modalities.push_back(m);
  r.audio = array_has(mods, "audio");
  send(event("response.created").obj("response", response_object("in_progress")));
  if (script.calls.empty())
    plan_answer(script);
  else
    plan_calls(script);
  r.steps.push_back({0, false, [this] { finish_response(); }});
  pump();
}

void Session::plan_calls(const TurnScript &script) {
  for (gsize i = 0; i < script.calls.size(); i++)
    plan_call(script.calls[i], static_cast<gint64>(i));
}

void Session::plan_call(const FunctionCallScript &call, gint64 index) {
  const std::string item_id = next_id("item"), call_id = next_id("call");
  known_calls_.insert(call_id);
  auto item = [=](const char *status, const std::string &args) {
    JObj it;
    it.str("id", item_id)
        .str("object", "realtime.item")
        .str("type", "function_call")
        .str("status", status)
        .str("name", call.name)
        .str("call_id", call_id)
        .str("arguments", args);
    return it;
  };
  auto args_event = [=](const char *type) {
    JObj ev = event(type);
    ev.str("response_id", active_->id)
        .str("item_id", item_id)
        .num("output_index", index)
        .str("call_id", call_id);
    return ev;
  };
  auto &steps = active_->steps;
  steps.push_back({0, false, [=] {
                     JObj it = item("in_progress", "");
                     register_item(item_id, Item{"function_call", "", "", 0, 0}, it.get());
                     send(event("response.output_item.added")
                              .str("response_id", active_->id)
                              .num("output_index", index)
                              .obj("item", item("in_progress", "")));
                   }});
  const auto halves = split_utf8_half(call.arguments);
  for (const std::string &part : {halves.first, halves.second}) {
    if (!part.empty())
      steps.push_back(
          {0, false, [=] { send(args_event("response.function_call_arguments.delta").str("delta", part)); }});
  }
  steps.push_back({0, false, [=] {
                     send(args_event("response.function_call_arguments.done")
                              .str("name", call.name)
                              .str("arguments", call.arguments));
                     JObj done = item("completed", call.arguments);
                     items_[item_id].json = done.text();
                     active_->output.push_back(done.text());
                     active_->text_tokens += static_cast<gint64>(call.arguments.size() / 4 + 1);
                     send(event("response.output_item.done")
                              .str("response_id", active_->id)
                              .num("output_index", index)
                              .obj("item", done));
                   }});
}

JObj Session::assistant_item(const char *status) const {
  const Response &r = *active_;
  JArr content;
  if (r.part_open || std::string(status) != "in_progress") {
    JObj part;
    if (r.audio)
      part.str("type", "output_audio").str("transcript", r.text_sent);
    else
      part.str("type", "output_text").str("text", r.text_sent);
    content.add(part);
  }
  JObj it;
  it.str("id", r.item_id)
      .str("object", "realtime.item")
      .str("type", "message")
      .str("status", status)
      .str("role", "assistant")
      .arr("content", content);
  return it;
}

void Session::plan_answer(const TurnScript &script) {
  Response &r = *active_;
  const Faults faults = faults_;
  r.item_id = next_id("item");
  const guint rate = out_rate();
  std::vector<guint8> pcm;
  if (r.audio) {
    std::vector<gint16> voice;
    if (srv_.cfg.answer_signature)
      voice.assign(static_cast<gsize>(std::llround(script.answer_ms * double(rate) / 1000.0)),
                   static_cast<gint16>(1000 + r.serial));
    else if (srv_.cfg.speak)
      voice = speak(script.answer_text, rate);
    if (voice.empty())
      voice = make_tone(static_cast<gsize>(std::llround(script.answer_ms * double(rate) / 1000.0)),
                        rate);
    pcm = to_le_bytes(voice);
    r.drop_after_first_audio = !pcm.empty() && srv_.take_drop_mid_answer();
  }
  auto part_event = [this](const char *type) {
    JObj ev = event(type);
    ev.str("response_id", active_->id)
        .str("item_id", active_->item_id)
        .num("output_index", 0)
        .num("content_index", 0);
    return ev;
  };
  r.steps.push_back({0, false, [this, rate] {
                       register_item(active_->item_id, Item{"message", "assistant", "", 0, rate},
                                     assistant_item("in_progress").get());
                       active_->item_open = true;
                       send(event("response.output_item.added")
                                .str("response_id", active_->id)
                                .num("output_index", 0)
                                .obj("item", assistant_item("in_progress")));
                     }});
  r.steps.push_back({0, false, [this, part_event] {
                       active_->part_open = true;
                       JObj part;
                       if (active_->audio)
                         part.str("type", "output_audio").str("transcript", "");
                       else
                         part.str("type", "output_text").str("text", "");
                       send(part_event("response.content_part.added").obj("part", part));
                     }});
  plan_audio_and_text(pcm, split_words(script.answer_text), faults);
  r.steps.push_back({0, false, [this] { close_open_parts(true); }});
}

void Session::plan_audio_and_text(const std::vector<guint8> &pcm,
                                  const std::vector<std::string> &words, const Faults &faults) {
  Response &r = *active_;
  const guint rate = out_rate();
  const gsize samples_per_delta =
      std::max<gsize>(1, static_cast<gsize>(std::llround(srv_.cfg.audio_delta_ms * double(rate) / 1000.0)));
  const auto ranges = delta_ranges(pcm.size(), samples_per_delta * 2, faults.odd_deltas);
  auto text_step = [this](const std::string &word, guint delay) {
    return Step{delay, false, [this, word] {
                  active_->text_sent += word;
                  active_->text_tokens++;
                  send(event("response.output_text.delta")
                           .str("response_id", active_->id)
                           .str("item_id", active_->item_id)
                           .num("output_index", 0)
                           .num("content_index", 0)
                           .str("delta", word));
                }};
  };
  const gsize nwords = words.size(), nchunks = ranges.size();
  gsize w = 0;
  for (gsize k = 0; k < nchunks; k++) {
    // Spread the words evenly: word i goes before audio delta i*nchunks/nwords.
    for (; w < nwords && w * nchunks / nwords <= k; w++)
      r.steps.push_back(text_step(words[w], 0));
    if (faults.unknown_events)
      r.steps.push_back({0, false, [this, k] { send_junk(static_cast<guint>(k)); }});
    std::vector<guint8> chunk(pcm.begin() + ranges[k].first,
                              pcm.begin() + ranges[k].first + ranges[k].second);
    const guint delay = k == 0 ? faults.first_audio_delay_ms : srv_.cfg.pace_ms;
    r.steps.push_back({delay, true, [this, chunk] { send_audio_delta(chunk); }});
  }
  for (; w < nwords; w++)  // text-only answers are paced like audio
    r.steps.push_back(text_step(words[w], w == 0 ? faults.first_audio_delay_ms : srv_.cfg.pace_ms));
}

void Session::send_audio_delta(const std::vector<guint8> &chunk) {
  Response &r = *active_;
  send(event("response.output_audio.delta")
           .str("response_id", r.id)
           .str("item_id", r.item_id)
           .num("output_index", 0)
           .num("content_index", 0)
           .str("delta", encode_base64(chunk.data(), chunk.size())));
  r.audio_bytes_sent += chunk.size();
  items_[r.item_id].audio_bytes = r.audio_bytes_sent;
  srv_.record_sent_audio(chunk.data(), chunk.size());
  if (r.drop_after_first_audio)
    drop();
}

// Ends the assistant message: audio/text/part/item done events, as far as
// they were opened. Used by normal completion and by cancellation.
void Session::close_open_parts(bool complete) {
  Response &r = *active_;
  auto part_event = [&](const char *type) {
    JObj ev = event(type);
    ev.str("response_id", r.id).str("item_id", r.item_id).num("output_index", 0).num(
        "content_index", 0);
    return ev;
  };
  if (r.part_open) {
    if (r.audio)
      send(part_event("response.output_audio.done"));
    send(part_event("response.output_text.done").str("text", r.text_sent));
    JObj part;
    if (r.audio)
      part.str("type", "output_audio").str("transcript", r.text_sent);
    else
      part.str("type", "output_text").str("text", r.text_sent);
    send(part_event("response.content_part.done").obj("part", part));
  }
  if (r.item_open) {
    JObj item = assistant_item(complete ? "completed" : "incomplete");
    items_[r.item_id].json = item.text();
    r.output.push_back(item.text());
    send(event("response.output_item.done")
             .str("response_id", r.id)
             .num("output_index", 0)
             .obj("item", item));
  }
  r.part_open = r.item_open = false;
}

// Recorded before response.done goes out: a client may act on it at once.
void Session::finish_response() {
  JObj done = event("response.done");
  done.obj("response", response_object("completed").obj("usage", usage()));
  end_response("completed");
  send(done);
}

void Session::end_response(const char *status) {
  srv_.record_answer_end(index(), active_->id, status);
  active_.reset();
}

// The connection ends before response.done.
void Session::abandon_response() {
  if (active_)
    end_response("dropped");
}

void Session::cancel_response(const char *reason) {
  Response &r = *active_;
  r.stop_timer();
  r.steps.clear();
  close_open_parts(false);
  JObj resp = response_object("cancelled");
  json_object_remove_member(resp.get(), "status_details");
  resp.obj("status_details", JObj().str("type", "cancelled").str("reason", reason))
      .obj("usage", usage());
  JObj done = event("response.done");
  done.obj("response", resp);
  end_response("cancelled");
  send(done);
}

void Session::pump() {
  while (active_ && !active_->steps.empty() && !dead_) {
    Step &front = active_->steps.front();
    if (!active_->waited && (front.delay_ms > 0 || front.yield)) {
      arm_step_timer(front.delay_ms);
      return;
    }
    active_->waited = false;
    std::function<void()> run = std::move(front.run);
    active_->steps.pop_front();
    run();  // may finish, cancel or drop: re-check everything
  }
}

// An idle source for a plain yield: it runs after pending client frames,
// which is what lets a response.cancel land mid-answer even when unpaced.
void Session::arm_step_timer(guint delay_ms) {
  GSource *src = delay_ms ? g_timeout_source_new(delay_ms) : g_idle_source_new();
  g_source_set_priority(src, G_PRIORITY_DEFAULT);
  g_source_set_callback(src, on_step_timer, this, nullptr);
  g_source_attach(src, g_main_context_get_thread_default());
  active_->timer = src;
}

gboolean Session::on_step_timer(gpointer self) {
  auto *s = static_cast<Session *>(self);
  g_source_unref(s->active_->timer);
  s->active_->timer = nullptr;
  s->active_->waited = true;
  s->pump();
  return G_SOURCE_REMOVE;
}

}  // namespace yrt::emu
