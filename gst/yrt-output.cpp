#include "yrt-output.h"

namespace yrt::output {

namespace {

GstStructure *named (const char *name)
{
  std::string full = std::string ("yandexrealtime/") + name;
  return gst_structure_new_empty (full.c_str ());
}

void set_string (GstStructure *s, const char *field, const std::string &value)
{
  gst_structure_set (s, field, G_TYPE_STRING, value.c_str (), nullptr);
}

GstStructure *build (const Connection &e)
{
  GstStructure *s = named ("connection");
  set_string (s, "state", e.state);
  set_string (s, "url", e.url);
  if (e.state == "reconnecting") {
    gst_structure_set (s, "attempt", G_TYPE_UINT, e.attempt,
        "delay-ms", G_TYPE_UINT, e.delay_ms, nullptr);
    set_string (s, "reason", e.reason);
  }
  return s;
}

GstStructure *build (const Session &e)
{
  GstStructure *s = named ("session");
  set_string (s, "session-id", e.session_id);
  set_string (s, "model", e.model);
  return s;
}

GstStructure *build (const SpeechStarted &e)
{
  GstStructure *s = named ("speech-started");
  set_string (s, "item-id", e.item_id);
  gst_structure_set (s, "audio-start-ms", G_TYPE_UINT64, e.audio_start_ms, nullptr);
  return s;
}

GstStructure *build (const SpeechStopped &e)
{
  GstStructure *s = named ("speech-stopped");
  set_string (s, "item-id", e.item_id);
  gst_structure_set (s, "audio-end-ms", G_TYPE_UINT64, e.audio_end_ms, nullptr);
  return s;
}

GstStructure *build (const Transcript &e)
{
  GstStructure *s = named ("transcript");
  set_string (s, "item-id", e.item_id);
  set_string (s, "text", e.text);
  gst_structure_set (s, "final", G_TYPE_BOOLEAN, e.final, nullptr);
  return s;
}

GstStructure *build (const AnswerText &e)
{
  GstStructure *s = named ("response-text");
  set_string (s, "response-id", e.response_id);
  set_string (s, "text", e.text);
  gst_structure_set (s, "final", G_TYPE_BOOLEAN, e.final, nullptr);
  return s;
}

GstStructure *build (const ResponseDone &e)
{
  GstStructure *s = named ("response-done");
  set_string (s, "response-id", e.response_id);
  set_string (s, "status", e.status);
  gst_structure_set (s, "audio-duration", G_TYPE_UINT64, e.audio_duration, nullptr);
  if (e.input_tokens >= 0)
    gst_structure_set (s, "input-tokens", G_TYPE_UINT64, (guint64) e.input_tokens, nullptr);
  if (e.output_tokens >= 0)
    gst_structure_set (s, "output-tokens", G_TYPE_UINT64, (guint64) e.output_tokens, nullptr);
  if (e.total_tokens >= 0)
    gst_structure_set (s, "total-tokens", G_TYPE_UINT64, (guint64) e.total_tokens, nullptr);
  if (GST_CLOCK_TIME_IS_VALID (e.first_audio_latency))
    gst_structure_set (s, "first-audio-latency", G_TYPE_UINT64, e.first_audio_latency, nullptr);
  return s;
}

GstStructure *build (const FunctionCall &e)
{
  GstStructure *s = named ("function-call");
  set_string (s, "call-id", e.call_id);
  set_string (s, "name", e.name);
  set_string (s, "arguments", e.arguments);
  set_string (s, "response-id", e.response_id);
  return s;
}

GstStructure *build (const ServerError &e)
{
  GstStructure *s = named ("server-error");
  set_string (s, "code", e.code);
  set_string (s, "message", e.message);
  set_string (s, "event-id", e.event_id);
  return s;
}

GstStructure *build (const Interrupted &e)
{
  GstStructure *s = named ("interrupted");
  set_string (s, "response-id", e.response_id);
  set_string (s, "item-id", e.item_id);
  gst_structure_set (s, "played-ms", G_TYPE_UINT64, e.played_ms, nullptr);
  return s;
}

}  // namespace

GstStructure *to_message (const Event &event)
{
  return std::visit ([] (const auto &e) { return build (e); }, event);
}

}  // namespace yrt::output
