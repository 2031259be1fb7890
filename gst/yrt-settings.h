/* Settings: what the user set (the Settings struct and its defaults), the
 * element's property table, and every check a setting gets before it is
 * used.  No element here: a check returns its verdict and the element posts
 * it, so each can be tested on its own (tests/check/settings.cpp). */
#pragma once

#include "yrt-connection.h"
#include "yrt-host.h"
#include "yrt-protocol.h"

#include <gst/gst.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#define YRT_DEFAULT_LOCATION "wss://ai.api.cloud.yandex.net/v1/realtime"
#define YRT_DEFAULT_MODEL "speech-realtime-250923"
#define YRT_DEFAULT_CHUNK_MS 40
/* Flat to 10 kHz with aliases at the S16 floor, like 4, for a fifth less
 * resampling CPU (docs/performance.md). */
#define YRT_DEFAULT_RESAMPLE_QUALITY 3
/* The rates src can produce (its pad template), and the one preferred: the
 * rate of the service's examples, asked for unless output-rate is set. */
#define YRT_DEFAULT_OUTPUT_RATE 44100
#define YRT_MIN_OUTPUT_RATE 8000
#define YRT_MAX_OUTPUT_RATE 48000

namespace yrt {

/* The element's properties, in the order gst-inspect lists them. */
enum Property {
  PROP_0,
  PROP_LOCATION,
  PROP_API_KEY,
  PROP_IAM_TOKEN,
  PROP_FOLDER_ID,
  PROP_MODEL,
  PROP_VOICE,
  PROP_INSTRUCTIONS,
  PROP_TURN_DETECTION,
  PROP_VAD_THRESHOLD,
  PROP_SILENCE_DURATION_MS,
  PROP_PREFIX_PADDING_MS,
  PROP_CREATE_RESPONSE,
  PROP_INTERRUPT_RESPONSE,
  PROP_OUTPUT_MODALITIES,
  PROP_INPUT_RATE,
  PROP_OUTPUT_RATE,
  PROP_CHUNK_MS,
  PROP_RESAMPLE_QUALITY,
  PROP_EOS_TIMEOUT_MS,
  PROP_TOOLS,
  PROP_TOOL_CHOICE,
  PROP_MUTE,
  PROP_BARGE_IN,
  PROP_HALF_DUPLEX,
  PROP_MAX_RECONNECTS,
  PROP_RECONNECT_BACKOFF_MS,
  PROP_MAX_BUFFER_MS,
  PROP_SESSION_LIFETIME_MS,
  PROP_ALLOW_INSECURE,
  PROP_CONNECT_TIMEOUT_MS,
  PROP_SESSIONS_PER_THREAD,
  PROP_STATS,
  PROP_LANGUAGES,
  PROP_VOICE_ROLE,
  PROP_SESSION_EXTRA,
  PROP_EXTRA_HEADERS,
  PROP_USER_AGENT,
  PROP_SSL_CA_FILE,
  PROP_SSL_USE_SYSTEM_CA_FILE,
  PROP_TLS_DATABASE,
  PROP_SSL_STRICT,
  PROP_PROXY,
  PROP_PROXY_ID,
  PROP_PROXY_PW,
  N_PROPERTIES
};

ConnectionOptions default_connection ();

/* What the user set; the element reads it under its settings lock. */
struct Settings {
  std::string location = YRT_DEFAULT_LOCATION;
  std::string api_key;
  std::string iam_token;
  std::string folder_id;
  std::string model = YRT_DEFAULT_MODEL;
  SessionConfig session;
  guint chunk_ms = YRT_DEFAULT_CHUNK_MS;
  guint resample_quality = YRT_DEFAULT_RESAMPLE_QUALITY;
  DialogOptions dialog;
  ConnectionOptions connection = default_connection ();
  bool allow_insecure = false;
  /* output-rate given by the user: the src pad offers only it and the
   * service is asked for it; otherwise the service is asked for its
   * documented 44100 Hz and src negotiates what downstream prefers. */
  bool output_rate_set = false;
  bool mute = false;
  bool barge_in = true;
  bool half_duplex = false;
  /* Values refused while the element was in NULL, by property name: with no
   * bus to carry the warning yet, NULL→READY fails with the reason. */
  std::map<std::string, std::string> refused;
};

/* Credentials resolved from properties, then the environment. */
struct Credentials {
  std::string authorization;
  std::string folder_id;
  const char *source = nullptr;  /* for error messages: which one was used */
};

/* A check's verdict: fine, or the error the element posts (a
 * GST_RESOURCE_ERROR with this code, message and debug text). */
struct Verdict {
  GstResourceError code = GST_RESOURCE_ERROR_SETTINGS;
  std::string message;  /* empty: fine */
  std::string debug;
  bool ok () const { return message.empty (); }
};

/* ---- the property table ---- */

void install_properties (GObjectClass *klass);
/* Properties that go into session.update: changing one while a session is
 * open sends an update. */
bool is_session_property (guint id);
/* Sets property `id` of `s` from `value` (the caller holds the settings
 * lock).  A value that cannot be used leaves the setting as it was and
 * says why in `refused`; a value taken clears the property's refusal.
 * `log_object` (the element) names the debug lines.  False for an id that
 * is not a setting. */
bool set_property (Settings &s, guint id, const GValue *value, std::string &refused,
    GstObject *log_object);
/* False for an id that is not a setting (e.g. stats). */
bool get_property (const Settings &s, guint id, GValue *value);
/* The value of the stats property: the dialog's counters, with the audio
 * sent (samples at `input_rate`) as time. */
GstStructure *stats_structure (const DialogStats &stats, guint input_rate);

/* ---- the checks ---- */

/* "" when `json` (empty: none) may be the tools property: a JSON array;
 * else why not. */
std::string check_tools (const char *json);
/* "" when `json` (empty: none) may be session-extra: a JSON object. */
std::string check_session_extra (const char *json);
/* One header per field; an array or list field gives one header per value.
 * Returns why not when a field cannot be sent (naming the field, never its
 * value). */
std::string headers_from_structure (const GstStructure *structure,
    std::vector<std::pair<std::string, std::string>> &headers);
/* Names only: the values may be secrets. */
void log_extra_overrides (GstObject *log_object, const SessionConfig &config);

bool is_secure (const std::string &location);
bool is_loopback (const char *host);

/* NULL→READY, before any credential is looked at: libsoup must never see a
 * location it would choke on. */
Verdict check_location (const std::string &location);
/* A value refused in NULL (gst-launch sets properties before the element
 * has a bus) fails NULL→READY, where the user sees it. */
Verdict check_refused (const std::map<std::string, std::string> &refused);
/* The proxy and the TLS trust are usable. */
Verdict check_connection (const ConnectionOptions &options);
/* From the properties, else the environment (YANDEX_CLOUD_API_KEY,
 * YANDEX_CLOUD_IAM_TOKEN, YANDEX_CLOUD_FOLDER_ID). */
Credentials resolve_credentials (const Settings &s);
/* A wss:// endpoint needs credentials and a folder up front, so the user
 * learns at once rather than after a refused handshake; credentials in the
 * clear may only go to this machine (test servers). */
Verdict check_credentials (const Settings &s, const Credentials &c);
/* Every NULL→READY check in turn, the first that fails; `c` gets the
 * credentials once the checks before them pass. */
Verdict check_for_ready (const Settings &s, Credentials &c);

}  // namespace yrt
