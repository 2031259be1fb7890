#include "yrt-output.h"

namespace yrt::output {

namespace {

/* A message structure, field by field. */
class Message {
 public:
  explicit Message (const char *name)
      : s_ (gst_structure_new_empty ((std::string ("yandexrealtime/") + name).c_str ()))
  {
  }
  Message &str (const char *field, const std::string &value)
  {
    gst_structure_set (s_, field, G_TYPE_STRING, value.c_str (), nullptr);
    return *this;
  }
  Message &u64 (const char *field, guint64 value)
  {
    gst_structure_set (s_, field, G_TYPE_UINT64, value, nullptr);
    return *this;
  }
  Message &uint (const char *field, guint value)
  {
    gst_structure_set (s_, field, G_TYPE_UINT, value, nullptr);
    return *this;
  }
  Message &boolean (const char *field, bool value)
  {
    gst_structure_set (s_, field, G_TYPE_BOOLEAN, value, nullptr);
    return *this;
  }
  /* Only when the service reported it (-1 or NONE otherwise). */
  Message &reported (const char *field, gint64 value)
  {
    return value >= 0 ? u64 (field, (guint64) value) : *this;
  }
  GstStructure *take () { return s_; }

 private:
  GstStructure *s_;
};

GstStructure *build (const Connection &e)
{
  Message m ("connection");
  m.str ("state", e.state).str ("url", e.url);
  if (e.state == "reconnecting")
    m.uint ("attempt", e.attempt).uint ("delay-ms", e.delay_ms).str ("reason", e.reason);
  return m.take ();
}

GstStructure *build (const Session &e)
{
  return Message ("session").str ("session-id", e.session_id).str ("model", e.model).take ();
}

GstStructure *build (const SpeechStarted &e)
{
  return Message ("speech-started").str ("item-id", e.item_id)
      .u64 ("audio-start-ms", e.audio_start_ms).take ();
}

GstStructure *build (const SpeechStopped &e)
{
  return Message ("speech-stopped").str ("item-id", e.item_id)
      .u64 ("audio-end-ms", e.audio_end_ms).take ();
}

GstStructure *build (const Transcript &e)
{
  return Message ("transcript").str ("item-id", e.item_id).str ("text", e.text)
      .boolean ("final", e.final).take ();
}

GstStructure *build (const AnswerText &e)
{
  return Message ("response-text").str ("response-id", e.response_id).str ("text", e.text)
      .boolean ("final", e.final).take ();
}

GstStructure *build (const ResponseDone &e)
{
  return Message ("response-done").str ("response-id", e.response_id).str ("status", e.status)
      .u64 ("audio-duration", e.audio_duration)
      .reported ("input-tokens", e.input_tokens)
      .reported ("output-tokens", e.output_tokens)
      .reported ("total-tokens", e.total_tokens)
      .reported ("first-audio-latency", GST_CLOCK_TIME_IS_VALID (e.first_audio_latency) ?
          (gint64) e.first_audio_latency : -1)
      .take ();
}

GstStructure *build (const FunctionCall &e)
{
  return Message ("function-call").str ("call-id", e.call_id).str ("name", e.name)
      .str ("arguments", e.arguments).str ("response-id", e.response_id).take ();
}

GstStructure *build (const ServerError &e)
{
  return Message ("server-error").str ("code", e.code).str ("message", e.message)
      .str ("event-id", e.event_id).take ();
}

GstStructure *build (const Interrupted &e)
{
  return Message ("interrupted").str ("response-id", e.response_id).str ("item-id", e.item_id)
      .u64 ("played-ms", e.played_ms).take ();
}

GstStructure *build (const TranscriptFailed &e)
{
  return Message ("transcript-failed").str ("item-id", e.item_id).str ("code", e.code)
      .str ("message", e.message).take ();
}

GstStructure *build (const InputTimeout &e)
{
  return Message ("input-timeout").str ("item-id", e.item_id)
      .u64 ("audio-start-ms", e.audio_start_ms).u64 ("audio-end-ms", e.audio_end_ms).take ();
}

GstStructure *build (const Mcp &e)
{
  return Message (e.call ? "mcp-call" : "mcp-list-tools").str ("item-id", e.item_id)
      .str ("status", e.status).take ();
}

}  // namespace

GstStructure *to_message (const Event &event)
{
  return std::visit ([] (const auto &e) { return build (e); }, event);
}

}  // namespace yrt::output
