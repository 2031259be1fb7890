/* Settings: the property table, the settings it fills, and every check a
 * setting gets (see yrt-settings.h). */
#include "yrt-settings.h"

#include "gstyandexrealtime.h"
#include "yrt-debug.h"
#include "yrt-dialog.h"

#include <gst/audio/audio.h>

#define DEFAULT_VOICE "marina"
#define DEFAULT_USER_AGENT "gst-yandexrealtime/" PACKAGE_VERSION
#define DEFAULT_EOS_TIMEOUT_MS 60000
#define ENV_API_KEY "YANDEX_CLOUD_API_KEY"
#define ENV_IAM_TOKEN "YANDEX_CLOUD_IAM_TOKEN"
#define ENV_FOLDER_ID "YANDEX_CLOUD_FOLDER_ID"

using yrt::Modalities;
using yrt::TurnDetection;

/* Registers `name` once; `type` keeps it. */
static GType enum_type (gsize *type, const char *name, const GEnumValue *values)
{
  if (g_once_init_enter (type))
    g_once_init_leave (type, g_enum_register_static (name, values));
  return *type;
}

GType gst_yandex_realtime_turn_detection_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    {(gint) TurnDetection::ServerVad, "The server detects turns by voice activity", "server-vad"},
    {(gint) TurnDetection::None, "Manual turns: commit by signal or at EOS", "none"},
    {0, nullptr, nullptr},
  };
  return enum_type (&type, "GstYandexRealtimeTurnDetection", values);
}

GType gst_yandex_realtime_modalities_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    {(gint) Modalities::AudioText, "Spoken answer and its text", "audio+text"},
    {(gint) Modalities::Audio, "Spoken answer only", "audio"},
    {(gint) Modalities::Text, "Text answer only", "text"},
    {0, nullptr, nullptr},
  };
  return enum_type (&type, "GstYandexRealtimeModalities", values);
}

namespace yrt {

ConnectionOptions default_connection ()
{
  ConnectionOptions options;
  options.user_agent = DEFAULT_USER_AGENT;
  return options;
}

/* Properties that go into session.update: changing one while a session is
 * open sends an update (one per g_object_set() batch). */
static const guint session_properties[] = {
  PROP_VOICE, PROP_INSTRUCTIONS, PROP_TURN_DETECTION, PROP_VAD_THRESHOLD,
  PROP_SILENCE_DURATION_MS, PROP_PREFIX_PADDING_MS, PROP_CREATE_RESPONSE,
  PROP_INTERRUPT_RESPONSE, PROP_OUTPUT_MODALITIES, PROP_TOOLS, PROP_TOOL_CHOICE,
  PROP_LANGUAGES, PROP_VOICE_ROLE, PROP_SESSION_EXTRA,
};

bool is_session_property (guint id)
{
  for (guint session_id : session_properties)
    if (id == session_id)
      return true;
  return false;
}

/* ---- checks ---- */

bool is_secure (const std::string &location)
{
  return g_ascii_strncasecmp (location.c_str (), "wss://", 6) == 0;
}

static std::string from_env (const std::string &value, const char *variable)
{
  if (!value.empty ())
    return value;
  const char *env = g_getenv (variable);
  return env ? env : "";
}

bool is_loopback (const char *host)
{
  if (!host)
    return false;
  if (g_ascii_strcasecmp (host, "localhost") == 0)
    return true;
  GInetAddress *address = g_inet_address_new_from_string (host);
  bool loopback = address && g_inet_address_get_is_loopback (address);
  if (address)
    g_object_unref (address);
  return loopback;
}

/* The scheme and host of a location ("" for what it lacks or cannot be
 * parsed). */
struct LocationParts {
  std::string scheme, host;
};

static LocationParts location_parts (const std::string &location)
{
  LocationParts parts;
  GUri *uri = g_uri_parse (location.c_str (), G_URI_FLAGS_NONE, nullptr);
  if (!uri)
    return parts;
  parts.scheme = g_uri_get_scheme (uri) ? g_uri_get_scheme (uri) : "";
  parts.host = g_uri_get_host (uri) ? g_uri_get_host (uri) : "";
  g_uri_unref (uri);
  return parts;
}

static Verdict refuse (GstResourceError code, std::string message, std::string debug)
{
  return Verdict {code, std::move (message), std::move (debug)};
}

/* Credentials in the clear may only go to this machine (test servers). */
static Verdict check_plain_ws (const Settings &s, const Credentials &c)
{
  if (c.authorization.empty () || s.allow_insecure)
    return {};
  if (is_loopback (location_parts (s.location).host.c_str ()))
    return {};
  return refuse (GST_RESOURCE_ERROR_SETTINGS,
      "Refusing to send credentials over an unencrypted connection",
      "location " + s.location + " is plain ws:// to another machine; use wss:// or set "
      "allow-insecure=true");
}

Verdict check_location (const std::string &location)
{
  LocationParts parts = location_parts (location);
  bool ws = g_ascii_strcasecmp (parts.scheme.c_str (), "ws") == 0 ||
      g_ascii_strcasecmp (parts.scheme.c_str (), "wss") == 0;
  if (ws && !parts.host.empty ())
    return {};
  return refuse (GST_RESOURCE_ERROR_SETTINGS,
      "The location is not a ws:// or wss:// URL with a host",
      "location is \"" + location + "\"; expected e.g. " YRT_DEFAULT_LOCATION);
}

Verdict check_refused (const std::map<std::string, std::string> &refused)
{
  if (refused.empty ())
    return {};
  const auto &first = *refused.begin ();
  return refuse (GST_RESOURCE_ERROR_SETTINGS,
      "Invalid value of the " + first.first + " property: " + first.second,
      std::to_string (refused.size ()) + " property value(s) refused while the element "
      "was in NULL; set a valid value or leave the property unset");
}

Verdict check_connection (const ConnectionOptions &o)
{
  if (!o.proxy.empty ()) {
    GUri *uri = g_uri_parse (o.proxy.c_str (), G_URI_FLAGS_NONE, nullptr);
    bool valid = uri && g_ascii_strcasecmp (g_uri_get_scheme (uri), "http") == 0 &&
        g_uri_get_host (uri) && *g_uri_get_host (uri);
    if (uri)
      g_uri_unref (uri);
    if (!valid)
      return refuse (GST_RESOURCE_ERROR_SETTINGS,
          "The proxy is not an http:// URL with a host",
          "proxy is \"" +
          /* user information may hold a password */
          (o.proxy.find ('@') == std::string::npos ? o.proxy : std::string ("(not shown)")) +
          "\"; expected e.g. http://proxy.example.com:3128");
  }
  if (!o.ca_file.empty ()) {
    GError *error = nullptr;
    GList *cas = g_tls_certificate_list_new_from_file (o.ca_file.c_str (), &error);
    std::string why = error ? error->message : cas ? "" : "it holds no PEM certificate";
    g_clear_error (&error);
    g_list_free_full (cas, g_object_unref);
    if (!why.empty ())
      return refuse (GST_RESOURCE_ERROR_SETTINGS,
          "Cannot read the CA certificates of ssl-ca-file: " + why,
          "ssl-ca-file is " + o.ca_file);
  }
  if (!o.use_system_ca && o.ca_file.empty () && !o.tls_database && o.strict)
    return refuse (GST_RESOURCE_ERROR_SETTINGS,
        "ssl-use-system-ca-file=false leaves no trusted certificate",
        "set ssl-ca-file or tls-database as well");
  return {};
}

Credentials resolve_credentials (const Settings &s)
{
  Credentials c;
  std::string api_key = from_env (s.api_key, ENV_API_KEY);
  std::string iam_token = from_env (s.iam_token, ENV_IAM_TOKEN);
  if (!api_key.empty ()) {
    c.authorization = "Api-Key " + api_key;
    c.source = s.api_key.empty () ? ENV_API_KEY : "api-key";
  } else if (!iam_token.empty ()) {
    c.authorization = "Bearer " + iam_token;
    c.source = s.iam_token.empty () ? ENV_IAM_TOKEN : "iam-token";
  }
  c.folder_id = from_env (s.folder_id, ENV_FOLDER_ID);
  return c;
}

Verdict check_credentials (const Settings &s, const Credentials &c)
{
  if (!is_secure (s.location))
    return check_plain_ws (s, c);
  if (c.authorization.empty ())
    return refuse (GST_RESOURCE_ERROR_NOT_AUTHORIZED,
        "No credentials for the Yandex Cloud Realtime API",
        "Set the api-key property (or " ENV_API_KEY ") to a service account's "
        "API key, or iam-token (or " ENV_IAM_TOKEN ").");
  bool model_in_url = endpoint_url (s.location, "", s.model) == s.location;
  if (c.folder_id.empty () && !model_in_url)
    return refuse (GST_RESOURCE_ERROR_NOT_AUTHORIZED,
        "No folder for the Yandex Cloud Realtime API",
        "Set the folder-id property (or " ENV_FOLDER_ID ") to the folder "
        "the service account works in.");
  return {};
}

Verdict check_for_ready (const Settings &s, Credentials &c)
{
  Verdict v = check_location (s.location);
  if (v.ok ())
    v = check_refused (s.refused);
  if (v.ok ())
    v = check_connection (s.connection);
  if (!v.ok ())
    return v;
  c = resolve_credentials (s);
  return check_credentials (s, c);
}

/* Tools reach session.tools as given, so they must be a JSON array. */
std::string check_tools (const char *json)
{
  return json && *json ? check_json (json, true, "a JSON array of tool objects") : "";
}

std::string check_session_extra (const char *json)
{
  return json && *json ? check_json (json, false, "a JSON object") : "";
}

void log_extra_overrides (GstObject *log_object, const SessionConfig &config)
{
  if (config.extra_json.empty ())
    return;
  for (const std::string &path : client::session_extra_overrides (config))
    GST_DEBUG_OBJECT (log_object, "session-extra sets session.%s, which the element sets too: "
        "the session-extra value wins", path.c_str ());
}

/* Header values as they go on the wire: booleans as JSON/HTTP spell them. */
static bool header_value (const GValue *value, std::string &out)
{
  if (G_VALUE_HOLDS_BOOLEAN (value)) {
    out = g_value_get_boolean (value) ? "true" : "false";
    return true;
  }
  GValue text = G_VALUE_INIT;
  g_value_init (&text, G_TYPE_STRING);
  bool ok = g_value_transform (value, &text);
  if (ok)
    out = g_value_get_string (&text) ? g_value_get_string (&text) : "";
  g_value_unset (&text);
  return ok;
}

/* Headers the handshake itself sets, or the credentials do. */
static const char *reserved_header (const char *name)
{
  if (g_ascii_strcasecmp (name, "Authorization") == 0)
    return "it carries the credential: use api-key or iam-token";
  for (const char *own : {"Host", "Connection", "Upgrade", "Content-Length", "User-Agent"})
    if (g_ascii_strcasecmp (name, own) == 0)
      return g_ascii_strcasecmp (name, "User-Agent") == 0 ? "use the user-agent property" :
          "the WebSocket handshake sets it";
  if (g_ascii_strncasecmp (name, "Sec-WebSocket-", 14) == 0)
    return "the WebSocket handshake sets it";
  return nullptr;
}

std::string headers_from_structure (const GstStructure *structure,
    std::vector<std::pair<std::string, std::string>> &headers)
{
  for (gint i = 0; structure && i < gst_structure_n_fields (structure); i++) {
    const char *name = gst_structure_nth_field_name (structure, i);
    if (const char *why = reserved_header (name))
      return std::string ("header ") + name + " is not allowed: " + why;
    const GValue *value = gst_structure_get_value (structure, name);
    bool many = GST_VALUE_HOLDS_ARRAY (value) || GST_VALUE_HOLDS_LIST (value);
    guint n = !many ? 1 : GST_VALUE_HOLDS_ARRAY (value) ? gst_value_array_get_size (value) :
        gst_value_list_get_size (value);
    for (guint k = 0; k < n; k++) {
      const GValue *one = !many ? value : GST_VALUE_HOLDS_ARRAY (value) ?
          gst_value_array_get_value (value, k) : gst_value_list_get_value (value, k);
      std::string text;
      if (!header_value (one, text))
        return std::string ("header ") + name + " has a value of type " +
            G_VALUE_TYPE_NAME (one) + ", which is not text";
      for (char c : text)
        if ((guchar) c < 0x20 && c != '\t')
          return std::string ("header ") + name + " has a control character (a line break?) "
              "in its value";
      headers.emplace_back (name, text);
    }
  }
  return "";
}

/* ---- setting and getting ---- */

static void set_string (std::string &field, const GValue *value, const char *fallback = "")
{
  const char *s = g_value_get_string (value);
  /* Empty means the default: never sent as "" (voice) or built into the
   * model URI (model). */
  field = s && *s ? s : fallback;
}

/* The properties whose values are checked: a bad value is refused and the
 * previous one stays. */
static bool set_checked (Settings &s, guint id, const GValue *value, std::string &refused,
    GstObject *log_object)
{
  const char *name;
  switch (id) {
    case PROP_TOOLS: {
      const char *json = g_value_get_string (value);
      refused = check_tools (json);
      if (refused.empty ())
        s.session.tools_json = json ? json : "";
      name = "tools";
      break;
    }
    case PROP_SESSION_EXTRA: {
      const char *json = g_value_get_string (value);
      refused = check_session_extra (json);
      if (refused.empty ()) {
        s.session.extra_json = json ? json : "";
        log_extra_overrides (log_object, s.session);
      }
      name = "session-extra";
      break;
    }
    case PROP_EXTRA_HEADERS: {
      std::vector<std::pair<std::string, std::string>> headers;
      refused = headers_from_structure ((const GstStructure *) g_value_get_boxed (value),
          headers);
      if (refused.empty ()) {
        for (const auto &header : headers)
          GST_DEBUG_OBJECT (log_object, "extra header %s (value not logged)",
              header.first.c_str ());
        s.connection.headers = std::move (headers);
      }
      name = "extra-headers";
      break;
    }
    default:
      return false;
  }
  if (refused.empty ())
    s.refused.erase (name);
  return true;
}

bool set_property (Settings &s, guint id, const GValue *value, std::string &refused,
    GstObject *log_object)
{
  SessionConfig &c = s.session;
  refused.clear ();
  switch (id) {
    case PROP_LOCATION: set_string (s.location, value); break;
    case PROP_API_KEY: set_string (s.api_key, value); break;
    case PROP_IAM_TOKEN: set_string (s.iam_token, value); break;
    case PROP_FOLDER_ID: set_string (s.folder_id, value); break;
    case PROP_MODEL: set_string (s.model, value, YRT_DEFAULT_MODEL); break;
    case PROP_VOICE: set_string (c.voice, value, DEFAULT_VOICE); break;
    case PROP_INSTRUCTIONS: set_string (c.instructions, value); break;
    case PROP_TOOL_CHOICE: set_string (c.tool_choice, value); break;
    case PROP_LANGUAGES: {
      const char *list = g_value_get_string (value);
      c.languages = split_languages (list ? list : "");
      break;
    }
    case PROP_VOICE_ROLE: set_string (c.voice_role, value); break;
    case PROP_USER_AGENT: set_string (s.connection.user_agent, value); break;
    case PROP_SSL_CA_FILE: set_string (s.connection.ca_file, value); break;
    case PROP_PROXY: set_string (s.connection.proxy, value); break;
    case PROP_PROXY_ID: set_string (s.connection.proxy_id, value); break;
    case PROP_PROXY_PW: set_string (s.connection.proxy_pw, value); break;
    case PROP_BARGE_IN: s.barge_in = g_value_get_boolean (value); break;
    case PROP_TURN_DETECTION: c.turn_detection = (TurnDetection) g_value_get_enum (value); break;
    case PROP_VAD_THRESHOLD: c.vad_threshold = g_value_get_double (value); break;
    case PROP_SILENCE_DURATION_MS: c.silence_duration_ms = g_value_get_uint (value); break;
    case PROP_PREFIX_PADDING_MS: c.prefix_padding_ms = g_value_get_uint (value); break;
    case PROP_CREATE_RESPONSE: c.create_response = g_value_get_boolean (value); break;
    case PROP_INTERRUPT_RESPONSE: c.interrupt_response = g_value_get_boolean (value); break;
    case PROP_OUTPUT_MODALITIES: c.modalities = (Modalities) g_value_get_enum (value); break;
    case PROP_INPUT_RATE: c.input_rate = g_value_get_uint (value); break;
    case PROP_OUTPUT_RATE:
      c.output_rate = g_value_get_uint (value);
      s.output_rate_set = true;
      break;
    case PROP_CHUNK_MS: s.chunk_ms = g_value_get_uint (value); break;
    case PROP_RESAMPLE_QUALITY: s.resample_quality = g_value_get_uint (value); break;
    case PROP_EOS_TIMEOUT_MS: s.dialog.eos_timeout_ms = g_value_get_uint (value); break;
    case PROP_MAX_RECONNECTS: s.dialog.max_reconnects = g_value_get_uint (value); break;
    case PROP_RECONNECT_BACKOFF_MS: s.dialog.reconnect_backoff_ms = g_value_get_uint (value); break;
    case PROP_MAX_BUFFER_MS: s.dialog.max_buffer_ms = g_value_get_uint (value); break;
    case PROP_SESSION_LIFETIME_MS: s.dialog.session_lifetime_ms = g_value_get_uint (value); break;
    case PROP_ALLOW_INSECURE: s.allow_insecure = g_value_get_boolean (value); break;
    case PROP_CONNECT_TIMEOUT_MS: s.dialog.connect_timeout_ms = g_value_get_uint (value); break;
    case PROP_SESSIONS_PER_THREAD: s.connection.sessions_per_thread = g_value_get_uint (value); break;
    case PROP_MUTE: s.mute = g_value_get_boolean (value); break;
    case PROP_HALF_DUPLEX: s.half_duplex = g_value_get_boolean (value); break;
    case PROP_SSL_USE_SYSTEM_CA_FILE: s.connection.use_system_ca = g_value_get_boolean (value); break;
    case PROP_SSL_STRICT: s.connection.strict = g_value_get_boolean (value); break;
    case PROP_TLS_DATABASE:
      s.connection.tls_database = share_object ((GTlsDatabase *) g_value_get_object (value));
      break;
    default: return set_checked (s, id, value, refused, log_object);
  }
  return true;
}

bool get_property (const Settings &s, guint id, GValue *value)
{
  const SessionConfig &c = s.session;
  switch (id) {
    case PROP_LOCATION: g_value_set_string (value, s.location.c_str ()); break;
    case PROP_FOLDER_ID: g_value_set_string (value, s.folder_id.c_str ()); break;
    case PROP_MODEL: g_value_set_string (value, s.model.c_str ()); break;
    case PROP_VOICE: g_value_set_string (value, c.voice.c_str ()); break;
    case PROP_INSTRUCTIONS: g_value_set_string (value, c.instructions.c_str ()); break;
    case PROP_TURN_DETECTION: g_value_set_enum (value, (gint) c.turn_detection); break;
    case PROP_VAD_THRESHOLD: g_value_set_double (value, c.vad_threshold); break;
    case PROP_SILENCE_DURATION_MS: g_value_set_uint (value, c.silence_duration_ms); break;
    case PROP_PREFIX_PADDING_MS: g_value_set_uint (value, c.prefix_padding_ms); break;
    case PROP_CREATE_RESPONSE: g_value_set_boolean (value, c.create_response); break;
    case PROP_INTERRUPT_RESPONSE: g_value_set_boolean (value, c.interrupt_response); break;
    case PROP_OUTPUT_MODALITIES: g_value_set_enum (value, (gint) c.modalities); break;
    case PROP_INPUT_RATE: g_value_set_uint (value, c.input_rate); break;
    case PROP_OUTPUT_RATE: g_value_set_uint (value, c.output_rate); break;
    case PROP_CHUNK_MS: g_value_set_uint (value, s.chunk_ms); break;
    case PROP_RESAMPLE_QUALITY: g_value_set_uint (value, s.resample_quality); break;
    case PROP_EOS_TIMEOUT_MS: g_value_set_uint (value, s.dialog.eos_timeout_ms); break;
    case PROP_MAX_RECONNECTS: g_value_set_uint (value, s.dialog.max_reconnects); break;
    case PROP_RECONNECT_BACKOFF_MS: g_value_set_uint (value, s.dialog.reconnect_backoff_ms); break;
    case PROP_MAX_BUFFER_MS: g_value_set_uint (value, s.dialog.max_buffer_ms); break;
    case PROP_SESSION_LIFETIME_MS: g_value_set_uint (value, s.dialog.session_lifetime_ms); break;
    case PROP_ALLOW_INSECURE: g_value_set_boolean (value, s.allow_insecure); break;
    case PROP_CONNECT_TIMEOUT_MS: g_value_set_uint (value, s.dialog.connect_timeout_ms); break;
    case PROP_SESSIONS_PER_THREAD: g_value_set_uint (value, s.connection.sessions_per_thread); break;
    case PROP_TOOLS: g_value_set_string (value, c.tools_json.c_str ()); break;
    case PROP_TOOL_CHOICE: g_value_set_string (value, c.tool_choice.c_str ()); break;
    case PROP_MUTE: g_value_set_boolean (value, s.mute); break;
    case PROP_BARGE_IN: g_value_set_boolean (value, s.barge_in); break;
    case PROP_HALF_DUPLEX: g_value_set_boolean (value, s.half_duplex); break;
    case PROP_LANGUAGES: {
      std::string list;
      for (const std::string &language : c.languages)
        list += (list.empty () ? "" : ",") + language;
      g_value_set_string (value, list.c_str ());
      break;
    }
    case PROP_VOICE_ROLE: g_value_set_string (value, c.voice_role.c_str ()); break;
    case PROP_SESSION_EXTRA: g_value_set_string (value, c.extra_json.c_str ()); break;
    case PROP_USER_AGENT: g_value_set_string (value, s.connection.user_agent.c_str ()); break;
    case PROP_SSL_CA_FILE: g_value_set_string (value, s.connection.ca_file.c_str ()); break;
    case PROP_SSL_USE_SYSTEM_CA_FILE: g_value_set_boolean (value, s.connection.use_system_ca); break;
    case PROP_TLS_DATABASE: g_value_set_object (value, s.connection.tls_database.get ()); break;
    case PROP_SSL_STRICT: g_value_set_boolean (value, s.connection.strict); break;
    case PROP_PROXY: g_value_set_string (value, s.connection.proxy.c_str ()); break;
    case PROP_PROXY_ID: g_value_set_string (value, s.connection.proxy_id.c_str ()); break;
    default: return false;
  }
  return true;
}

/* The stats property: `st` with the audio in time (samples at `in_rate`). */
GstStructure *stats_structure (const DialogStats &st, guint in_rate)
{
  return gst_structure_new ("application/x-yandexrealtime-stats",
      "bytes-sent", G_TYPE_UINT64, st.bytes_sent,
      "bytes-received", G_TYPE_UINT64, st.bytes_received,
      "queued-bytes", G_TYPE_UINT64, st.bytes_queued,
      "audio-sent", G_TYPE_UINT64, gst_util_uint64_scale (st.audio_samples_sent, GST_SECOND, in_rate),
      "audio-received", G_TYPE_UINT64, st.audio_received,
      "answers", G_TYPE_UINT, st.answers,
      "reconnects", G_TYPE_UINT, st.reconnects,
      "dropped-input", G_TYPE_UINT64,
      gst_util_uint64_scale (st.dropped_input_samples, GST_SECOND, in_rate),
      "bad-events", G_TYPE_UINT, st.bad_events,
      "last-error", G_TYPE_STRING, st.last_error.c_str (),
      "output-rate-served", G_TYPE_UINT, st.output_rate_served,
      "input-rate-accepted", G_TYPE_UINT, st.input_rate_accepted, nullptr);
}

/* ---- the table ---- */

void install_properties (GObjectClass *gobject_class)
{
  const auto rw = (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
      GST_PARAM_MUTABLE_READY);
  /* Sent again with session.update when changed during a session. */
  const auto live = (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
      GST_PARAM_MUTABLE_PLAYING);
  /* Write-only and never notified: secrets stay out of gst-launch -v. */
  const auto secret = (GParamFlags) (G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS |
      GST_PARAM_MUTABLE_READY);

  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location",
          "Realtime API endpoint (ws:// or wss://); model=gpt://<folder-id>/<model> "
          "is added unless the URL has a model parameter", YRT_DEFAULT_LOCATION, rw));
  g_object_class_install_property (gobject_class, PROP_API_KEY,
      g_param_spec_string ("api-key", "API key",
          "Service account API key, sent as 'Authorization: Api-Key'; "
          "default from $" ENV_API_KEY " (write-only)", nullptr, secret));
  g_object_class_install_property (gobject_class, PROP_IAM_TOKEN,
      g_param_spec_string ("iam-token", "IAM token",
          "IAM token, sent as 'Authorization: Bearer' when no API key is set; "
          "default from $" ENV_IAM_TOKEN " (write-only)", nullptr, secret));
  g_object_class_install_property (gobject_class, PROP_FOLDER_ID,
      g_param_spec_string ("folder-id", "Folder ID",
          "Yandex Cloud folder of the model; default from $" ENV_FOLDER_ID,
          nullptr, rw));
  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model", "Realtime model name; empty means the default",
          YRT_DEFAULT_MODEL, rw));
  g_object_class_install_property (gobject_class, PROP_VOICE,
      g_param_spec_string ("voice", "Voice", "Voice of the answers (marina, dasha, ...); "
          "empty means the default", DEFAULT_VOICE, live));
  g_object_class_install_property (gobject_class, PROP_INSTRUCTIONS,
      g_param_spec_string ("instructions", "Instructions",
          "System instructions for the model", "", live));
  g_object_class_install_property (gobject_class, PROP_TURN_DETECTION,
      g_param_spec_enum ("turn-detection", "Turn detection",
          "Who decides when the user's turn ends",
          GST_TYPE_YANDEX_REALTIME_TURN_DETECTION, (gint) TurnDetection::ServerVad, live));
  g_object_class_install_property (gobject_class, PROP_VAD_THRESHOLD,
      g_param_spec_double ("vad-threshold", "VAD threshold",
          "Server VAD sensitivity (higher needs louder speech)", 0.0, 1.0, 0.5, live));
  g_object_class_install_property (gobject_class, PROP_SILENCE_DURATION_MS,
      g_param_spec_uint ("silence-duration-ms", "Silence duration",
          "Silence that ends a turn under server VAD, in ms", 0, 10000, 400, live));
  g_object_class_install_property (gobject_class, PROP_PREFIX_PADDING_MS,
      g_param_spec_uint ("prefix-padding-ms", "Prefix padding",
          "Audio kept before detected speech, in ms", 0, 10000, 300, live));
  g_object_class_install_property (gobject_class, PROP_CREATE_RESPONSE,
      g_param_spec_boolean ("create-response", "Create response",
          "The server answers each detected turn by itself; when false the "
          "element sends response.create after each committed turn", TRUE, live));
  g_object_class_install_property (gobject_class, PROP_INTERRUPT_RESPONSE,
      g_param_spec_boolean ("interrupt-response", "Interrupt response",
          "The server cancels its answer when the user starts speaking", TRUE, live));
  g_object_class_install_property (gobject_class, PROP_OUTPUT_MODALITIES,
      g_param_spec_enum ("output-modalities", "Output modalities",
          "What the answers consist of", GST_TYPE_YANDEX_REALTIME_MODALITIES,
          (gint) Modalities::AudioText, live));
  g_object_class_install_property (gobject_class, PROP_INPUT_RATE,
      g_param_spec_uint ("input-rate", "Input rate",
          "Sample rate of the audio sent to the service, in Hz", 8000, 48000, 24000, rw));
  g_object_class_install_property (gobject_class, PROP_OUTPUT_RATE,
      g_param_spec_uint ("output-rate", "Output rate",
          "Sample rate of src, and asked of the service, in Hz; unset, the service is "
          "asked for 44100 and src takes the rate downstream prefers (44100 when it takes "
          "it); the answers are converted from the rate the service serves",
          YRT_MIN_OUTPUT_RATE, YRT_MAX_OUTPUT_RATE, YRT_DEFAULT_OUTPUT_RATE, rw));
  g_object_class_install_property (gobject_class, PROP_CHUNK_MS,
      g_param_spec_uint ("chunk-ms", "Chunk duration",
          "Duration of audio in each input_audio_buffer.append, in ms", 10, 1000,
          YRT_DEFAULT_CHUNK_MS, rw));
  g_object_class_install_property (gobject_class, PROP_RESAMPLE_QUALITY,
      g_param_spec_uint ("resample-quality", "Resample quality",
          "Quality of the resamplers (the input to input-rate, the answers to src's rate), as "
          "audioresample's (0 = fastest, 10 = best)",
          GST_AUDIO_RESAMPLER_QUALITY_MIN, GST_AUDIO_RESAMPLER_QUALITY_MAX,
          YRT_DEFAULT_RESAMPLE_QUALITY, rw));
  g_object_class_install_property (gobject_class, PROP_EOS_TIMEOUT_MS,
      g_param_spec_uint ("eos-timeout-ms", "EOS timeout",
          "How long EOS waits for outstanding answers, in ms (0 = forever)", 0,
          G_MAXUINT, DEFAULT_EOS_TIMEOUT_MS, rw));
  g_object_class_install_property (gobject_class, PROP_MAX_RECONNECTS,
      g_param_spec_uint ("max-reconnects", "Max reconnects",
          "Reconnection attempts in a row after the session is lost (0 = never)",
          0, G_MAXUINT, 5, rw));
  g_object_class_install_property (gobject_class, PROP_RECONNECT_BACKOFF_MS,
      g_param_spec_uint ("reconnect-backoff-ms", "Reconnect backoff",
          "Mean delay before the first reconnection attempt, in ms: attempt n waits "
          "a random time below min (30 s, this x 2^n), plus any Retry-After",
          0, 60000, 500, rw));
  g_object_class_install_property (gobject_class, PROP_MAX_BUFFER_MS,
      g_param_spec_uint ("max-buffer-ms", "Max buffer",
          "Input held while no session can take it, in ms: non-live input waits "
          "beyond it, live input loses its oldest part", 100, 600000, 10000, rw));
  g_object_class_install_property (gobject_class, PROP_SESSION_LIFETIME_MS,
      g_param_spec_uint ("session-lifetime-ms", "Session lifetime",
          "Roll over to a fresh session after this long, between turns "
          "(0 = only when the server ends it)", 0, G_MAXUINT, 0, rw));
  g_object_class_install_property (gobject_class, PROP_CONNECT_TIMEOUT_MS,
      g_param_spec_uint ("connect-timeout-ms", "Connect timeout",
          "How long the WebSocket handshake may take, in ms (0 = no limit)",
          0, G_MAXUINT, 20000, rw));
  g_object_class_install_property (gobject_class, PROP_SESSIONS_PER_THREAD,
      g_param_spec_uint ("sessions-per-thread", "Sessions per thread",
          "Up to this many elements of the process that set the same value share "
          "one network thread (1 = a thread of its own; 0 = automatic: a thread "
          "each for the first 16 elements, shared by up to 25 beyond)", 0, 10000, 0, rw));
  g_object_class_install_property (gobject_class, PROP_ALLOW_INSECURE,
      g_param_spec_boolean ("allow-insecure", "Allow insecure",
          "Allow credentials over plain ws:// to hosts other than this machine",
          FALSE, rw));
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "Bytes and audio sent and received, answers, reconnects, dropped "
          "input, malformed server events and the last error",
          GST_TYPE_STRUCTURE, (GParamFlags) (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property (gobject_class, PROP_TOOLS,
      g_param_spec_string ("tools", "Tools",
          "JSON array of tools passed to session.tools as given (function tools, "
          "Yandex's web_search and file_search, mcp); invalid JSON is refused",
          "", (GParamFlags) (live | G_PARAM_EXPLICIT_NOTIFY)));
  g_object_class_install_property (gobject_class, PROP_TOOL_CHOICE,
      g_param_spec_string ("tool-choice", "Tool choice",
          "auto, none, required, the name of the one function to call, or a JSON "
          "tool_choice object", "auto", live));
  g_object_class_install_property (gobject_class, PROP_LANGUAGES,
      g_param_spec_string ("languages", "Languages",
          "Comma-separated recognition languages (e.g. ru-RU,en-US), sent as "
          "session.audio.input.languages; empty leaves it to the service", "", live));
  g_object_class_install_property (gobject_class, PROP_VOICE_ROLE,
      g_param_spec_string ("voice-role", "Voice role",
          "Manner of the voice (good, friendly, neutral, strict, whisper, ... "
          "depending on the voice), sent as session.audio.output.role; empty "
          "means the voice's default", "", live));
  g_object_class_install_property (gobject_class, PROP_SESSION_EXTRA,
      g_param_spec_string ("session-extra", "Session extra",
          "JSON object deep-merged into the session of every session.update, "
          "after the element's own fields (its values win): any session field "
          "the element does not model; anything but a JSON object is refused",
          "", (GParamFlags) (live | G_PARAM_EXPLICIT_NOTIFY)));
  g_object_class_install_property (gobject_class, PROP_EXTRA_HEADERS,
      g_param_spec_boxed ("extra-headers", "Extra headers",
          "Extra headers for the WebSocket handshake, one per field (an array "
          "or list field gives one per value); the values are never logged "
          "(write-only)", GST_TYPE_STRUCTURE, secret));
  g_object_class_install_property (gobject_class, PROP_USER_AGENT,
      g_param_spec_string ("user-agent", "User-Agent",
          "User-Agent header of the WebSocket handshake (empty: none)",
          DEFAULT_USER_AGENT, rw));
  g_object_class_install_property (gobject_class, PROP_SSL_CA_FILE,
      g_param_spec_string ("ssl-ca-file", "SSL CA file",
          "PEM file of certificate authorities to trust for wss://, besides the "
          "system's (unless ssl-use-system-ca-file is false)", "", rw));
  g_object_class_install_property (gobject_class, PROP_SSL_USE_SYSTEM_CA_FILE,
      g_param_spec_boolean ("ssl-use-system-ca-file", "Use system CA file",
          "Trust the system's certificate authorities", TRUE, rw));
  g_object_class_install_property (gobject_class, PROP_TLS_DATABASE,
      g_param_spec_object ("tls-database", "TLS database",
          "TLS database that verifies the server's certificate; when set, "
          "ssl-ca-file and ssl-use-system-ca-file are not used",
          G_TYPE_TLS_DATABASE, rw));
  g_object_class_install_property (gobject_class, PROP_SSL_STRICT,
      g_param_spec_boolean ("ssl-strict", "SSL strict",
          "Refuse servers whose certificate does not verify; false accepts any "
          "certificate (with a warning): for tests only", TRUE, rw));
  g_object_class_install_property (gobject_class, PROP_PROXY,
      g_param_spec_string ("proxy", "Proxy",
          "HTTP proxy for the connection (http://host:port); empty uses the "
          "environment's (https_proxy, no_proxy, the desktop's settings)", "", rw));
  g_object_class_install_property (gobject_class, PROP_PROXY_ID,
      g_param_spec_string ("proxy-id", "Proxy user",
          "User name for the proxy's authentication", "", rw));
  g_object_class_install_property (gobject_class, PROP_PROXY_PW,
      g_param_spec_string ("proxy-pw", "Proxy password",
          "Password for the proxy's authentication (write-only)", nullptr, secret));
  g_object_class_install_property (gobject_class, PROP_MUTE,
      g_param_spec_boolean ("mute", "Mute",
          "Send no input audio (push-to-talk); muting mid-speech closes the turn",
          FALSE, live));
  g_object_class_install_property (gobject_class, PROP_BARGE_IN,
      g_param_spec_boolean ("barge-in", "Barge-in",
          "Stop the answer when the user starts speaking over it (live input)",
          TRUE, live));
  g_object_class_install_property (gobject_class, PROP_HALF_DUPLEX,
      g_param_spec_boolean ("half-duplex", "Half duplex",
          "For speakers without echo cancellation: send silence instead of the "
          "input while an answer plays (live input; no barge-in by voice)",
          FALSE, live));
}

}  // namespace yrt
