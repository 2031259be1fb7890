/* Unit tests of the settings (yrt-settings): every check a setting gets,
 * called directly, no element.  The verdicts carry the very messages the
 * element posts (tests/check/reach.cpp and tls.cpp see them as an element
 * does). */
#include "yrt-settings.h"

#include <gst/check/gstcheck.h>
#include <glib/gstdio.h>

#include <string>
#include <utility>
#include <vector>

using namespace yrt;

namespace yrt {
void debug_init ();  /* yrt-debug.h, whose GST_CAT_DEFAULT is not the test's */
}

namespace {

/* A self-signed CA certificate (no key): any PEM certificate will do. */
const char kCertificate[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBljCCATugAwIBAgIUMshri+W7eeKIhtjlWIzofuGujxIwCgYIKoZIzj0EAwIw\n"
    "HzEdMBsGA1UEAwwUeXJ0IHNldHRpbmdzIHRlc3QgQ0EwIBcNMjYxMjAzMTA1MzAy\n"
    "WhgPMjEyNjExMDkxMDUzMDJaMB8xHTAbBgNVBAMMFHlydCBzZXR0aW5ncyB0ZXN0\n"
    "IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7TpzX1ub6bl+R7XM/NdLGXWp\n"
    "Z2EjZULAJ3zY+khBrE0hsFmcprsp3bTdE7roSg6si1fI/NqbXj7kgUgUS+dwd6NT\n"
    "MFEwHQYDVR0OBBYEFILobikg1Qp6uQrcZb3Yq3WCV5lKMB8GA1UdIwQYMBaAFILo\n"
    "bikg1Qp6uQrcZb3Yq3WCV5lKMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID\n"
    "SQAwRgIhAMrX9YW9ks1l97S260HduXUbNAkEUp0tzrAbPudcWSBXAiEAiTFadBMK\n"
    "B5wq1ZYBPHZdNNBclDivtcp4hDdNoMZIf+I=\n"
    "-----END CERTIFICATE-----\n";

/* Texts compared whole (fail_unless_equals_string would outlive a
 * temporary std::string). */
#define expect_text(got, want) G_STMT_START { \
  std::string got_ = (got), want_ = (want); \
  fail_unless (got_ == want_, "'%s' is not '%s'", got_.c_str (), want_.c_str ()); \
} G_STMT_END

bool contains (const std::string &text, const std::string &part)
{
  return text.find (part) != std::string::npos;
}

void expect_refused (const Verdict &v, GstResourceError code, const char *message)
{
  fail_unless (!v.ok (), "expected \"%s\"", message);
  fail_unless_equals_int (v.code, code);
  fail_unless_equals_string (v.message.c_str (), message);
}

/* Sets or clears the three variables the element reads, restoring them at
 * the end of the test. */
struct Environment {
  Environment () { clear (); }
  ~Environment () { clear (); }
  static void clear ()
  {
    for (const char *v : {"YANDEX_CLOUD_API_KEY", "YANDEX_CLOUD_IAM_TOKEN",
             "YANDEX_CLOUD_FOLDER_ID"})
      g_unsetenv (v);
  }
};

/* Sets property `id` of `s` to a string; returns why it was refused. */
std::string set_string (Settings &s, guint id, const char *text)
{
  GValue value = G_VALUE_INIT;
  g_value_init (&value, G_TYPE_STRING);
  g_value_set_string (&value, text);
  std::string refused;
  fail_unless (set_property (s, id, &value, refused, nullptr));
  g_value_unset (&value);
  return refused;
}

/* Settings with an API key, for `location`. */
Settings keyed (const char *key, const char *location)
{
  Settings s;
  s.api_key = key;
  s.location = location;
  return s;
}

std::string get_string (const Settings &s, guint id)
{
  GValue value = G_VALUE_INIT;
  g_value_init (&value, G_TYPE_STRING);
  fail_unless (get_property (s, id, &value));
  std::string text = g_value_get_string (&value) ? g_value_get_string (&value) : "";
  g_value_unset (&value);
  return text;
}

/* The headers of `description` (a GstStructure as text), or why not. */
std::string headers_of (const char *description,
    std::vector<std::pair<std::string, std::string>> &headers)
{
  GstStructure *structure = gst_structure_from_string (description, nullptr);
  fail_unless (structure != nullptr, "%s", description);
  std::string why = headers_from_structure (structure, headers);
  gst_structure_free (structure);
  return why;
}

}  // namespace

/* The location is parsed before anything else: ws:// or wss:// with a host. */
GST_START_TEST (test_location_forms)
{
  for (const char *good : {"wss://ai.api.cloud.yandex.net/v1/realtime",
           "ws://127.0.0.1:8080/v1/realtime", "WSS://example.com", "ws://[::1]:9/x?a=b"})
    fail_unless (check_location (good).ok (), "%s", good);
  for (const char *bad : {"", "http://example.com/", "wss://", "ws:///path", "garbage",
           "example.com:443", "file:///tmp/x"})
    expect_refused (check_location (bad), GST_RESOURCE_ERROR_SETTINGS,
        "The location is not a ws:// or wss:// URL with a host");
  expect_text (check_location ("http://example.com/").debug,
      "location is \"http://example.com/\"; expected e.g. "
      "wss://ai.api.cloud.yandex.net/v1/realtime");
  fail_unless (is_secure ("WSS://x") && !is_secure ("ws://x"));
}
GST_END_TEST;

/* Credentials in the clear only to this machine, unless allow-insecure. */
GST_START_TEST (test_plain_ws)
{
  Environment env;
  Settings s = keyed ("secret-key", "ws://example.com/v1/realtime");
  Credentials c = resolve_credentials (s);
  Verdict v = check_credentials (s, c);
  expect_refused (v, GST_RESOURCE_ERROR_SETTINGS,
      "Refusing to send credentials over an unencrypted connection");
  fail_unless_equals_string (v.debug.c_str (), "location ws://example.com/v1/realtime is "
      "plain ws:// to another machine; use wss:// or set allow-insecure=true");
  fail_unless (!contains (v.message + v.debug, "secret-key"));
  s.allow_insecure = true;
  fail_unless (check_credentials (s, c).ok ());
  s.allow_insecure = false;

  for (const char *local : {"ws://127.0.0.1:1/", "ws://127.3.2.1/", "ws://localhost/",
           "ws://LocalHost:80/", "ws://[::1]:80/"}) {
    s.location = local;
    fail_unless (check_credentials (s, c).ok (), "%s", local);
  }
  /* Nothing to leak: any host. */
  s.location = "ws://example.com/";
  s.api_key.clear ();
  c = resolve_credentials (s);
  fail_unless (c.authorization.empty ());
  fail_unless (check_credentials (s, c).ok ());

  fail_unless (is_loopback ("127.0.0.1") && is_loopback ("::1") && is_loopback ("localhost"));
  fail_unless (!is_loopback ("10.0.0.1") && !is_loopback ("example.com") &&
      !is_loopback (nullptr));
}
GST_END_TEST;

/* The properties win over the environment; an API key over an IAM token. */
GST_START_TEST (test_credentials_env_vs_properties)
{
  Environment env;
  Settings s;
  Credentials c = resolve_credentials (s);
  fail_unless (c.authorization.empty () && c.folder_id.empty () && c.source == nullptr);

  g_setenv ("YANDEX_CLOUD_API_KEY", "env-key", TRUE);
  g_setenv ("YANDEX_CLOUD_IAM_TOKEN", "env-token", TRUE);
  g_setenv ("YANDEX_CLOUD_FOLDER_ID", "env-folder", TRUE);
  c = resolve_credentials (s);
  fail_unless_equals_string (c.authorization.c_str (), "Api-Key env-key");
  fail_unless_equals_string (c.source, "YANDEX_CLOUD_API_KEY");
  fail_unless_equals_string (c.folder_id.c_str (), "env-folder");

  s.api_key = "prop-key";
  s.folder_id = "prop-folder";
  c = resolve_credentials (s);
  fail_unless_equals_string (c.authorization.c_str (), "Api-Key prop-key");
  fail_unless_equals_string (c.source, "api-key");
  fail_unless_equals_string (c.folder_id.c_str (), "prop-folder");

  s.api_key.clear ();
  g_unsetenv ("YANDEX_CLOUD_API_KEY");
  c = resolve_credentials (s);
  fail_unless_equals_string (c.authorization.c_str (), "Bearer env-token");
  fail_unless_equals_string (c.source, "YANDEX_CLOUD_IAM_TOKEN");
  s.iam_token = "prop-token";
  c = resolve_credentials (s);
  fail_unless_equals_string (c.authorization.c_str (), "Bearer prop-token");
  fail_unless_equals_string (c.source, "iam-token");

  /* An API key from the environment still wins over a token property. */
  g_setenv ("YANDEX_CLOUD_API_KEY", "env-key", TRUE);
  c = resolve_credentials (s);
  fail_unless_equals_string (c.authorization.c_str (), "Api-Key env-key");

  /* Empty counts as unset. */
  Environment::clear ();
  g_setenv ("YANDEX_CLOUD_API_KEY", "", TRUE);
  Settings empty;
  fail_unless (resolve_credentials (empty).authorization.empty ());
}
GST_END_TEST;

/* wss:// needs credentials and a folder (unless the URL names the model). */
GST_START_TEST (test_credentials_required)
{
  Environment env;
  Settings s;
  Credentials c;
  Verdict v = check_for_ready (s, c);
  expect_refused (v, GST_RESOURCE_ERROR_NOT_AUTHORIZED,
      "No credentials for the Yandex Cloud Realtime API");
  fail_unless (contains (v.debug, "YANDEX_CLOUD_API_KEY"));
  s.iam_token = "t";
  v = check_for_ready (s, c);
  expect_refused (v, GST_RESOURCE_ERROR_NOT_AUTHORIZED,
      "No folder for the Yandex Cloud Realtime API");
  fail_unless (contains (v.debug, "YANDEX_CLOUD_FOLDER_ID"));
  s.location = "wss://ai.api.cloud.yandex.net/v1/realtime?model=gpt://f/speech-realtime-250923";
  fail_unless (check_for_ready (s, c).ok ());
  fail_unless_equals_string (c.authorization.c_str (), "Bearer t");
  s.location = "wss://ai.api.cloud.yandex.net/v1/realtime";
  s.folder_id = "f";
  fail_unless (check_for_ready (s, c).ok ());
  /* A test server on this machine needs neither. */
  Settings local;
  local.location = "ws://127.0.0.1:9/";
  fail_unless (check_for_ready (local, c).ok ());
}
GST_END_TEST;

/* The checks go in order; credentials are resolved only after the others. */
GST_START_TEST (test_check_order)
{
  Environment env;
  Settings s = keyed ("k", "nowhere");
  s.refused["tools"] = "not valid JSON: x";
  s.connection.proxy = "ftp://proxy";
  Credentials c;
  expect_refused (check_for_ready (s, c), GST_RESOURCE_ERROR_SETTINGS,
      "The location is not a ws:// or wss:// URL with a host");
  fail_unless (c.authorization.empty ());
  s.location = "wss://example.com/";
  expect_refused (check_for_ready (s, c), GST_RESOURCE_ERROR_SETTINGS,
      "Invalid value of the tools property: not valid JSON: x");
  s.refused.clear ();
  expect_refused (check_for_ready (s, c), GST_RESOURCE_ERROR_SETTINGS,
      "The proxy is not an http:// URL with a host");
  s.connection.proxy.clear ();
  expect_refused (check_for_ready (s, c), GST_RESOURCE_ERROR_NOT_AUTHORIZED,
      "No folder for the Yandex Cloud Realtime API");
  fail_unless_equals_string (c.authorization.c_str (), "Api-Key k");
}
GST_END_TEST;

/* Values refused in NULL: NULL→READY names the first, counts them all. */
GST_START_TEST (test_refused)
{
  fail_unless (check_refused ({}).ok ());
  Verdict v = check_refused ({{"tools", "not a JSON array of tool objects"},
      {"extra-headers", "header Host is not allowed: the WebSocket handshake sets it"}});
  expect_refused (v, GST_RESOURCE_ERROR_SETTINGS, "Invalid value of the extra-headers "
      "property: header Host is not allowed: the WebSocket handshake sets it");
  fail_unless_equals_string (v.debug.c_str (), "2 property value(s) refused while the "
      "element was in NULL; set a valid value or leave the property unset");
}
GST_END_TEST;

/* extra-headers: one header per field, one per value of a list; never the
 * handshake's own, the credential's, a value that is not text or breaks
 * the line. */
GST_START_TEST (test_headers)
{
  std::vector<std::pair<std::string, std::string>> h;
  expect_text (headers_of ("h, X-Trace=abc, X-Flag=true, X-Count=5, "
      "X-Many=<a, b>, X-Set={ c }", h), "");
  std::vector<std::pair<std::string, std::string>> expected = {{"X-Trace", "abc"},
      {"X-Flag", "true"}, {"X-Count", "5"}, {"X-Many", "a"}, {"X-Many", "b"}, {"X-Set", "c"}};
  fail_unless (h == expected);

  struct {
    const char *description, *why;
  } refused[] = {
    {"h, Authorization=x", "header Authorization is not allowed: it carries the credential: "
        "use api-key or iam-token"},
    {"h, user-agent=x", "header user-agent is not allowed: use the user-agent property"},
    {"h, Host=x", "header Host is not allowed: the WebSocket handshake sets it"},
    {"h, Upgrade=x", "header Upgrade is not allowed: the WebSocket handshake sets it"},
    {"h, Sec-WebSocket-Protocol=x", "header Sec-WebSocket-Protocol is not allowed: the "
        "WebSocket handshake sets it"},
  };
  for (const auto &r : refused) {
    h.clear ();
    expect_text (headers_of (r.description, h), r.why);
  }

  GstStructure *structure = gst_structure_new ("h", "X-Pointer", G_TYPE_POINTER, &h, nullptr);
  h.clear ();
  expect_text (headers_from_structure (structure, h),
      "header X-Pointer has a value of type gpointer, which is not text");
  gst_structure_free (structure);

  structure = gst_structure_new ("h", "X-Break", G_TYPE_STRING, "a\r\nInjected: 1", nullptr);
  h.clear ();
  expect_text (headers_from_structure (structure, h),
      "header X-Break has a control character (a line break?) in its value");
  gst_structure_free (structure);

  /* A tab is fine; no structure is no headers. */
  structure = gst_structure_new ("h", "X-Tab", G_TYPE_STRING, "a\tb", nullptr);
  h.clear ();
  expect_text (headers_from_structure (structure, h), "");
  fail_unless_equals_int (h.size (), 1);
  gst_structure_free (structure);
  h.clear ();
  expect_text (headers_from_structure (nullptr, h), "");
  fail_unless (h.empty ());
}
GST_END_TEST;

/* tools: a JSON array; session-extra: a JSON object; empty: none. */
GST_START_TEST (test_json_settings)
{
  for (const char *ok : {"", "[]", "[{\"type\": \"function\", \"name\": \"f\"}]"})
    expect_text (check_tools (ok), "");
  expect_text (check_tools (nullptr), "");
  expect_text (check_tools ("{}"), "not a JSON array of tool objects");
  fail_unless (g_str_has_prefix (check_tools ("[{").c_str (), "not valid JSON: "));

  for (const char *ok : {"", "{}", "{\"audio\": {\"output\": {\"speed\": 1.2}}}"})
    expect_text (check_session_extra (ok), "");
  expect_text (check_session_extra ("[]"), "not a JSON object");
  expect_text (check_session_extra ("42"), "not a JSON object");
  fail_unless (g_str_has_prefix (check_session_extra ("{").c_str (), "not valid JSON: "));
}
GST_END_TEST;

/* Setting a property: a refused value keeps the previous one; a value
 * taken clears the refusal kept from NULL. */
GST_START_TEST (test_set_property)
{
  Settings s;
  s.refused["tools"] = "earlier";
  expect_text (set_string (s, PROP_TOOLS, "[{\"type\": \"function\"}]"), "");
  fail_unless (s.refused.empty ());
  expect_text (set_string (s, PROP_TOOLS, "{").substr (0, 14), "not valid JSON");
  expect_text (get_string (s, PROP_TOOLS), "[{\"type\": \"function\"}]");

  expect_text (set_string (s, PROP_SESSION_EXTRA, "[]"), "not a JSON object");
  expect_text (get_string (s, PROP_SESSION_EXTRA), "");
  expect_text (set_string (s, PROP_SESSION_EXTRA, "{\"a\": 1}"), "");
  fail_unless_equals_string (s.session.extra_json.c_str (), "{\"a\": 1}");

  GValue value = G_VALUE_INIT;
  g_value_init (&value, GST_TYPE_STRUCTURE);
  GstStructure *headers = gst_structure_from_string ("h, X-A=1", nullptr);
  g_value_take_boxed (&value, headers);
  std::string refused;
  fail_unless (set_property (s, PROP_EXTRA_HEADERS, &value, refused, nullptr));
  fail_unless (refused.empty () && s.connection.headers.size () == 1);
  gst_structure_set (headers, "Authorization", G_TYPE_STRING, "Bearer x", nullptr);
  fail_unless (set_property (s, PROP_EXTRA_HEADERS, &value, refused, nullptr));
  fail_unless (!refused.empty ());
  fail_unless_equals_int (s.connection.headers.size (), 1);  /* kept */
  g_value_unset (&value);

  /* Empty: the default. */
  set_string (s, PROP_MODEL, "");
  fail_unless_equals_string (s.model.c_str (), YRT_DEFAULT_MODEL);
  set_string (s, PROP_VOICE, nullptr);
  fail_unless_equals_string (s.session.voice.c_str (), "marina");
  set_string (s, PROP_LANGUAGES, " ru-RU, en-US ,");
  expect_text (get_string (s, PROP_LANGUAGES), "ru-RU,en-US");

  g_value_init (&value, G_TYPE_UINT);
  g_value_set_uint (&value, 16000);
  fail_unless (!s.output_rate_set);
  fail_unless (set_property (s, PROP_OUTPUT_RATE, &value, refused, nullptr));
  fail_unless (s.output_rate_set && s.session.output_rate == 16000);
  g_value_unset (&value);

  /* Not settings: the stats; write-only: the secrets. */
  g_value_init (&value, GST_TYPE_STRUCTURE);
  fail_unless (!get_property (s, PROP_STATS, &value));
  g_value_unset (&value);
  g_value_init (&value, G_TYPE_STRING);
  fail_unless (!get_property (s, PROP_API_KEY, &value));
  fail_unless (!get_property (s, PROP_PROXY_PW, &value));
  g_value_unset (&value);

  fail_unless (is_session_property (PROP_VOICE) && is_session_property (PROP_SESSION_EXTRA));
  fail_unless (!is_session_property (PROP_LOCATION) && !is_session_property (PROP_MUTE));
}
GST_END_TEST;

/* The proxy and the TLS trust, checked before any connection. */
GST_START_TEST (test_connection_checks)
{
  ConnectionOptions o;
  fail_unless (check_connection (o).ok ());
  o.proxy = "http://proxy.example.com:3128";
  fail_unless (check_connection (o).ok ());
  for (const char *bad : {"ftp://127.0.0.1:9", "garbage", "http://"}) {
    o.proxy = bad;
    Verdict v = check_connection (o);
    expect_refused (v, GST_RESOURCE_ERROR_SETTINGS, "The proxy is not an http:// URL with a host");
    expect_text (v.debug, std::string ("proxy is \"") + bad +
        "\"; expected e.g. http://proxy.example.com:3128");
  }
  /* User information may hold a password: not shown. */
  o.proxy = "socks5://user:hunter2@proxy:1080";
  Verdict v = check_connection (o);
  fail_unless (!v.ok ());
  fail_unless (contains (v.debug, "(not shown)") && !contains (v.debug, "hunter2"));
  o.proxy.clear ();

  gchar *dir = g_dir_make_tmp ("yrt-settings-XXXXXX", nullptr);
  std::string missing = std::string (dir) + "/missing.pem";
  std::string empty = std::string (dir) + "/empty.pem";
  std::string ca = std::string (dir) + "/ca.pem";
  fail_unless (g_file_set_contents (empty.c_str (), "", 0, nullptr));
  fail_unless (g_file_set_contents (ca.c_str (), kCertificate, -1, nullptr));
  o.ca_file = missing;
  v = check_connection (o);
  fail_unless (g_str_has_prefix (v.message.c_str (),
      "Cannot read the CA certificates of ssl-ca-file: "), "%s", v.message.c_str ());
  expect_text (v.debug, "ssl-ca-file is " + missing);
  o.ca_file = empty;
  expect_refused (check_connection (o), GST_RESOURCE_ERROR_SETTINGS,
      "Cannot read the CA certificates of ssl-ca-file: it holds no PEM certificate");
  o.ca_file = ca;
  fail_unless (check_connection (o).ok (), "%s", check_connection (o).message.c_str ());

  /* No CA at all is refused, unless nothing is checked. */
  o.use_system_ca = false;
  fail_unless (check_connection (o).ok ());
  o.ca_file.clear ();
  expect_refused (check_connection (o), GST_RESOURCE_ERROR_SETTINGS,
      "ssl-use-system-ca-file=false leaves no trusted certificate");
  o.strict = false;
  fail_unless (check_connection (o).ok ());

  for (const std::string &file : {empty, ca})
    g_unlink (file.c_str ());
  g_rmdir (dir);
  g_free (dir);
}
GST_END_TEST;

/* The stats property: counters as they are, audio sent as time. */
GST_START_TEST (test_stats)
{
  DialogStats st;
  st.audio_samples_sent = 48000;
  st.dropped_input_samples = 12000;
  st.answers = 3;
  st.last_error = "boom";
  GstStructure *s = stats_structure (st, 24000);
  guint64 sent = 0, dropped = 0;
  guint answers = 0;
  fail_unless (gst_structure_get_uint64 (s, "audio-sent", &sent));
  fail_unless (gst_structure_get_uint64 (s, "dropped-input", &dropped));
  fail_unless (gst_structure_get_uint (s, "answers", &answers));
  fail_unless_equals_uint64 (sent, 2 * GST_SECOND);
  fail_unless_equals_uint64 (dropped, GST_SECOND / 2);
  fail_unless_equals_int (answers, 3);
  fail_unless_equals_string (gst_structure_get_string (s, "last-error"), "boom");
  fail_unless_equals_int (gst_structure_n_fields (s), 12);
  gst_structure_free (s);
}
GST_END_TEST;

static Suite *settings_suite ()
{
  yrt::debug_init ();
  Suite *s = suite_create ("settings");
  TCase *tc = tcase_create ("settings");
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_location_forms);
  tcase_add_test (tc, test_plain_ws);
  tcase_add_test (tc, test_credentials_env_vs_properties);
  tcase_add_test (tc, test_credentials_required);
  tcase_add_test (tc, test_check_order);
  tcase_add_test (tc, test_refused);
  tcase_add_test (tc, test_headers);
  tcase_add_test (tc, test_json_settings);
  tcase_add_test (tc, test_set_property);
  tcase_add_test (tc, test_connection_checks);
  tcase_add_test (tc, test_stats);
  return s;
}

GST_CHECK_MAIN (settings);
