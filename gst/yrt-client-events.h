/* Client events: what the element sends the service (session.update from a
 * SessionConfig, audio appends and commits, responses, conversation items),
 * built as JSON text; and the checks of the values a session.update carries.
 * No I/O and no GStreamer here, so it can be unit-tested on its own. */
#pragma once

#include <glib.h>

#include <string>
#include <vector>

namespace yrt {

enum class TurnDetection { ServerVad, None };
enum class Modalities { AudioText, Audio, Text };

/* Everything `session.update` carries. */
struct SessionConfig {
  std::string voice = "marina";
  std::string instructions;
  TurnDetection turn_detection = TurnDetection::ServerVad;
  double vad_threshold = 0.5;
  guint silence_duration_ms = 400;
  guint prefix_padding_ms = 300;
  bool create_response = true;
  bool interrupt_response = true;
  Modalities modalities = Modalities::AudioText;
  guint input_rate = 24000;
  guint output_rate = 44100;
  std::string tools_json;  /* JSON array as given by the user; empty = none */
  std::string tool_choice = "auto";
  std::vector<std::string> languages;  /* audio.input.languages; empty = the service's */
  std::string voice_role;              /* audio.output.role; empty = the voice's default */
  /* A JSON object deep-merged into `session` after the fields above (the
   * user's value wins); empty = none. */
  std::string extra_json;
};

namespace client {
/* `event_id`, when given, comes back in an error that refuses the update. */
std::string session_update (const SessionConfig &config, const std::string &event_id = {});
/* The members of `session` (dotted paths, e.g. "audio.output.voice") that
 * config.extra_json sets where the element sets a value of its own. */
std::vector<std::string> session_extra_overrides (const SessionConfig &config);
/* Built by hand, not through a JSON tree: this is the hot path. */
std::string audio_append (const guint8 *pcm, gsize size);
std::string audio_commit ();
std::string audio_clear ();
std::string response_create (const char *instructions = nullptr);
std::string response_cancel (const std::string &response_id = {});
std::string item_truncate (const std::string &item_id, guint content_index,
    guint64 audio_end_ms);
std::string item_delete (const std::string &item_id);
/* `event_id`, when given, comes back in an error about this event. */
std::string user_text (const std::string &text, const std::string &event_id = {});
/* What the assistant said, as text: replayed into a new session. */
std::string assistant_text (const std::string &text, const std::string &event_id = {});
std::string function_call_output (const std::string &call_id,
    const std::string &output);
}  // namespace client

/* "ru-RU, en-US" → {"ru-RU", "en-US"}: trimmed, empty entries dropped. */
std::vector<std::string> split_languages (const std::string &list);
/* Empty when `json` is a JSON array (or object), else why not: "not valid
 * JSON: …" or "not <expected>". */
std::string check_json (const std::string &json, bool array, const char *expected);

}  // namespace yrt
