/* Every field of a parsed ServerEvent as one string, so two parsers' results
 * compare with ==.  A template: the reference parser's ServerEvent lives in
 * another namespace (see reference-parser.cpp). */
#pragma once

#include <string>

template <typename Event>
std::string describe_event (const Event &ev)
{
  std::string d;
  auto add = [&d] (const char *name, const std::string &value) {
    d += name;
    d += '=';
    d += std::to_string (value.size ());
    d += ':';
    d += value;
    d += '\n';
  };
  add ("type", std::to_string ((int) ev.type));
  add ("type_name", ev.type_name);
  add ("event_id", ev.event_id);
  add ("session_id", ev.session_id);
  add ("model", ev.model);
  add ("item_id", ev.item_id);
  add ("previous_item_id", ev.previous_item_id);
  add ("response_id", ev.response_id);
  add ("status", ev.status);
  add ("text", ev.text);
  add ("audio", std::string (ev.audio.begin (), ev.audio.end ()));
  add ("audio_ms", std::to_string (ev.audio_ms));
  add ("audio_end_ms", std::to_string (ev.audio_end_ms));
  for (const auto &c : ev.calls) {
    add ("call_id", c.call_id);
    add ("call_name", c.name);
    add ("call_arguments", c.arguments);
    add ("call_item_id", c.item_id);
  }
  add ("input_tokens", std::to_string (ev.usage.input_tokens));
  add ("output_tokens", std::to_string (ev.usage.output_tokens));
  add ("total_tokens", std::to_string (ev.usage.total_tokens));
  add ("error_type", ev.error.type);
  add ("error_code", ev.error.code);
  add ("error_message", ev.error.message);
  add ("error_event_id", ev.error.event_id);
  return d;
}
