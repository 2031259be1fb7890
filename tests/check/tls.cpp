/* TLS and proxies against the emulator serving wss:// with a certificate of
 * a CA made by the test (openssl, at test time): whole turns trusted through
 * ssl-ca-file, ssl-use-system-ca-file=false, tls-database and ssl-strict=false;
 * an untrusted certificate fails at once with a clear error; turns through a
 * CONNECT proxy on loopback (written here), with and without proxy
 * authentication. */
#include "harness.h"

#include <glib/gstdio.h>
#include <poll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <atomic>
#include <thread>

using namespace yrt::test;
namespace emu = yrt::emu;

namespace {

/* A CA and a server certificate for 127.0.0.1 it signed, in a temporary
 * directory that goes with it. */
struct TestCa {
  TestCa ()
  {
    dir = g_dir_make_tmp ("yrt-tls-XXXXXX", nullptr);
    fail_unless (dir != nullptr);
    std::string ext = path ("server.ext");
    fail_unless (g_file_set_contents (ext.c_str (),
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n", -1, nullptr));
    openssl ({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", path ("ca.key"), "-out", path ("ca.pem"), "-days", "2",
        "-subj", "/CN=yandexrealtime test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
    openssl ({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", path ("server.key"), "-out", path ("server.csr"), "-subj", "/CN=127.0.0.1"});
    openssl ({"x509", "-req", "-in", path ("server.csr"), "-CA", path ("ca.pem"),
        "-CAkey", path ("ca.key"), "-CAcreateserial", "-out", path ("server.pem"),
        "-days", "2", "-extfile", ext});
    GError *error = nullptr;
    GTlsCertificate *cert = g_tls_certificate_new_from_files (path ("server.pem").c_str (),
        path ("server.key").c_str (), &error);
    fail_unless (cert != nullptr, "%s", error ? error->message : "?");
    certificate = std::shared_ptr<GTlsCertificate> (cert, g_object_unref);
  }
  ~TestCa ()
  {
    for (const char *name : {"ca.key", "ca.pem", "ca.srl", "server.key", "server.csr",
             "server.pem", "server.ext"})
      g_remove (path (name).c_str ());
    g_rmdir (dir);
    g_free (dir);
  }
  std::string path (const char *name) const { return std::string (dir) + "/" + name; }

  static void openssl (std::vector<std::string> args)
  {
    args.insert (args.begin (), "openssl");
    std::vector<char *> argv;
    for (std::string &a : args)
      argv.push_back (&a[0]);
    argv.push_back (nullptr);
    gchar *err = nullptr;
    gint status = 0;
    GError *error = nullptr;
    gboolean ran = g_spawn_sync (nullptr, argv.data (), nullptr, G_SPAWN_SEARCH_PATH,
        nullptr, nullptr, nullptr, &err, &status, &error);
    fail_unless (ran, "cannot run openssl (tests/install-packages.sh installs it): %s",
        error ? error->message : "?");
    fail_unless (g_spawn_check_wait_status (status, nullptr), "openssl %s failed: %s",
        args[1].c_str (), err);
    g_free (err);
  }

  gchar *dir = nullptr;
  std::shared_ptr<GTlsCertificate> certificate;
};

/* An HTTP CONNECT proxy on 127.0.0.1: records each request line (and its
 * Proxy-Authorization), asks for `required_auth` when set, then relays
 * bytes both ways. */
struct ConnectProxy {
  explicit ConnectProxy (std::string auth = "") : required_auth (std::move (auth))
  {
    listener = socket (AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    fail_unless (bind (listener, (sockaddr *) &addr, sizeof (addr)) == 0);
    fail_unless (listen (listener, 8) == 0);
    socklen_t len = sizeof (addr);
    getsockname (listener, (sockaddr *) &addr, &len);
    port = ntohs (addr.sin_port);
    acceptor = std::thread ([this] { accept_loop (); });
  }
  ~ConnectProxy ()
  {
    stop = true;
    acceptor.join ();
    for (std::thread &t : relays)
      t.join ();
    close (listener);
  }
  std::string url () const { return "http://127.0.0.1:" + std::to_string (port); }
  std::vector<std::string> seen ()
  {
    std::lock_guard<std::mutex> guard (lock);
    return requests;
  }

 private:
  bool readable (int fd)
  {
    pollfd p {fd, POLLIN, 0};
    return poll (&p, 1, 50) > 0;
  }
  void accept_loop ()
  {
    while (!stop) {
      if (!readable (listener))
        continue;
      int fd = accept (listener, nullptr, nullptr);
      if (fd >= 0)
        relays.emplace_back ([this, fd] { serve (fd); });
    }
  }
  /* One request head, or "" when the peer went away. */
  std::string read_head (int fd)
  {
    std::string head;
    char c;
    while (!stop && head.find ("\r\n\r\n") == std::string::npos && head.size () < 16384) {
      if (!readable (fd))
        continue;
      if (recv (fd, &c, 1, 0) != 1)
        return "";
      head += c;
    }
    return head;
  }
  static void send_all (int fd, const std::string &text)
  {
    send (fd, text.data (), text.size (), MSG_NOSIGNAL);
  }
  void serve (int fd)
  {
    std::string target;
    for (;;) {
      std::string head = read_head (fd);
      if (head.empty ()) {
        close (fd);
        return;
      }
      std::string line = head.substr (0, head.find ("\r\n"));
      std::string auth;
      size_t at = head.find ("\r\nProxy-Authorization: ");
      if (at != std::string::npos) {
        size_t start = at + 23;
        auth = head.substr (start, head.find ("\r\n", start) - start);
      }
      {
        std::lock_guard<std::mutex> guard (lock);
        requests.push_back (line + (auth.empty () ? "" : " | " + auth));
      }
      if (!required_auth.empty () && auth != required_auth) {
        send_all (fd, "HTTP/1.1 407 Proxy Authentication Required\r\n"
            "Proxy-Authenticate: Basic realm=\"yrt\"\r\nContent-Length: 0\r\n\r\n");
        continue;
      }
      if (line.rfind ("CONNECT ", 0) != 0) {
        send_all (fd, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
        close (fd);
        return;
      }
      target = line.substr (8, line.find (' ', 8) - 8);
      break;
    }
    int upstream = socket (AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    addr.sin_port = htons ((uint16_t) atoi (target.substr (target.rfind (':') + 1).c_str ()));
    if (target.rfind ("127.0.0.1:", 0) != 0 ||
        connect (upstream, (sockaddr *) &addr, sizeof (addr)) != 0) {
      send_all (fd, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
      close (upstream);
      close (fd);
      return;
    }
    send_all (fd, "HTTP/1.1 200 Connection established\r\n\r\n");
    relay (fd, upstream);
    close (upstream);
    close (fd);
  }
  void relay (int a, int b)
  {
    char buf[16384];
    while (!stop) {
      pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (poll (p, 2, 50) <= 0)
        continue;
      for (int i = 0; i < 2; i++) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
          continue;
        ssize_t n = recv (p[i].fd, buf, sizeof (buf), 0);
        if (n <= 0)
          return;
        int to = i == 0 ? b : a;
        for (ssize_t off = 0; off < n;) {
          ssize_t w = send (to, buf + off, n - off, MSG_NOSIGNAL);
          if (w <= 0)
            return;
          off += w;
        }
      }
    }
  }

  int listener = -1;
  guint16 port = 0;
  std::string required_auth;
  std::atomic<bool> stop {false};
  std::thread acceptor;
  std::vector<std::thread> relays;  /* joined at the end: the acceptor alone adds */
  std::mutex lock;
  std::vector<std::string> requests;
};

emu::Config tls_config (const TestCa &ca)
{
  emu::Config cfg;
  cfg.tls_certificate = ca.certificate;
  return cfg;
}

/* One whole turn: the answer's samples are those the server sent. */
void expect_turn (Fixture &f)
{
  f.start ();
  f.push (turn (24000));
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless_equals_int (samples_in (out), 44100);
  fail_unless (concat (out) == f.server.sent_audio ());
  unref_all (out);
  fail_unless_equals_int (f.server.sessions_opened (), 1);
}

bool contains (const std::string &text, const char *part)
{
  return text.find (part) != std::string::npos;
}

}  // namespace

/* The server's certificate is trusted through ssl-ca-file (besides the
 * system's), through it alone, and through a tls-database. */
GST_START_TEST (test_turn_over_tls)
{
  TestCa ca;
  const std::string ca_file = ca.path ("ca.pem");
  {
    Fixture f (tls_config (ca));
    fail_unless (g_str_has_prefix (f.server.url ().c_str (), "wss://"));
    f.make ("folder-id=b1gfolder ssl-ca-file=" + ca_file);
    expect_turn (f);
  }
  {
    Fixture f (tls_config (ca));
    f.make ("folder-id=b1gfolder ssl-use-system-ca-file=false ssl-ca-file=" + ca_file);
    expect_turn (f);
  }
  {
    Fixture f (tls_config (ca));
    f.make ("folder-id=b1gfolder");
    GTlsDatabase *database = g_tls_file_database_new (ca_file.c_str (), nullptr);
    fail_unless (database != nullptr);
    g_object_set (f.element, "tls-database", database, nullptr);
    g_object_unref (database);
    expect_turn (f);
  }
}
GST_END_TEST;

/* Without the CA: a clear certificate error on the first handshake, not
 * retried. */
GST_START_TEST (test_untrusted_certificate_fails_at_once)
{
  TestCa ca;
  Fixture f (tls_config (ca));
  f.make ("folder-id=b1gfolder max-reconnects=5 reconnect-backoff-ms=0");
  f.start ();
  /* Everything up to the connection's end: one error, no reconnection. */
  GstMessage *error = nullptr;
  std::vector<std::string> states;
  while (states.empty () || states.back () != "closed") {
    GstMessage *m = gst_bus_timed_pop (f.bus, 20 * GST_SECOND);
    fail_unless (m != nullptr, "the connection never closed");
    const GstStructure *s = gst_message_get_structure (m);
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR) {
      fail_unless (error == nullptr, "two errors");
      error = m;
      continue;
    }
    if (s && gst_structure_has_name (s, "yandexrealtime/connection"))
      states.push_back (gst_structure_get_string (s, "state"));
    gst_message_unref (m);
  }
  fail_unless (states == std::vector<std::string> ({"connecting", "closed"}),
      "%zu connection states", states.size ());
  std::string debug = expect_gerror (error, GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_OPEN_READ_WRITE, "TLS certificate was refused");
  fail_unless (contains (debug, "not signed by a trusted certificate authority"), "%s",
      debug.c_str ());
  fail_unless (contains (debug, "ssl-ca-file"), "%s", debug.c_str ());
  gst_message_unref (error);
  fail_unless_equals_int (f.server.sessions_opened (), 0);
}
GST_END_TEST;

/* ssl-strict=false accepts the certificate, with a warning saying so. */
GST_START_TEST (test_not_strict_warns)
{
  TestCa ca;
  Fixture f (tls_config (ca));
  f.make ("folder-id=b1gfolder ssl-strict=false");
  f.start ();
  GstMessage *warning = gst_bus_timed_pop_filtered (f.bus, 20 * GST_SECOND,
      GST_MESSAGE_WARNING);
  expect_gerror (warning, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS, "ssl-ca-file");
  gst_message_unref (warning);
  f.push (turn (24000));
  std::vector<GstBuffer *> out = f.end_input ();
  fail_unless_equals_int (samples_in (out), 44100);
  unref_all (out);
}
GST_END_TEST;

/* Bad TLS and proxy settings fail NULL→READY, saying which. */
GST_START_TEST (test_bad_settings_fail_ready)
{
  struct Case {
    const char *properties;
    const char *says;
  } cases[] = {
    {"proxy=ftp://127.0.0.1:9", "proxy is not an http:// URL"},
    {"proxy=garbage", "proxy is not an http:// URL"},
    {"ssl-ca-file=/nonexistent/ca.pem", "ssl-ca-file"},
    {"ssl-use-system-ca-file=false", "leaves no trusted certificate"},
  };
  for (const Case &c : cases) {
    Fixture f;
    f.make (c.properties);
    fail_unless_equals_int (gst_element_set_state (f.element, GST_STATE_READY),
        GST_STATE_CHANGE_FAILURE);
    GstMessage *error = gst_bus_pop_filtered (f.bus, GST_MESSAGE_ERROR);
    fail_unless (error != nullptr, "%s: no error", c.properties);
    GError *err = nullptr;
    gst_message_parse_error (error, &err, nullptr);
    fail_unless (g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS));
    fail_unless (contains (err->message, c.says), "%s: %s", c.properties, err->message);
    g_error_free (err);
    gst_message_unref (error);
    gst_element_set_state (f.element, GST_STATE_NULL);
    gst_object_unref (gst_object_ref_sink (f.element));  /* no harness took it */
  }
}
GST_END_TEST;

/* wss:// through a CONNECT proxy: the proxy sees the CONNECT to the
 * emulator, the turn goes through it. */
GST_START_TEST (test_turn_through_proxy)
{
  TestCa ca;
  ConnectProxy proxy;
  Fixture f (tls_config (ca));
  f.make ("folder-id=b1gfolder ssl-ca-file=" + ca.path ("ca.pem") + " proxy=" + proxy.url ());
  expect_turn (f);
  std::vector<std::string> seen = proxy.seen ();
  fail_unless_equals_int (seen.size (), 1);
  std::string expected = "CONNECT " + f.server.url ().substr (6, f.server.url ().find ('/', 6) - 6);
  fail_unless (g_str_has_prefix (seen[0].c_str (), expected.c_str ()), "%s", seen[0].c_str ());
}
GST_END_TEST;

/* A proxy that wants Basic authentication gets proxy-id and proxy-pw. */
GST_START_TEST (test_proxy_authentication)
{
  TestCa ca;
  gchar *basic = g_base64_encode ((const guchar *) "agent:pr0xy-secret", 18);
  ConnectProxy proxy (std::string ("Basic ") + basic);
  g_free (basic);
  Fixture f (tls_config (ca));
  f.make ("folder-id=b1gfolder proxy-id=agent ssl-ca-file=" + ca.path ("ca.pem") + " proxy=" +
      proxy.url ());
  g_object_set (f.element, "proxy-pw", "pr0xy-secret", nullptr);
  /* The password is in no debug line, at any level. */
  static std::atomic<bool> leaked {false};
  static std::atomic<guint> lines {0};
  GstLogFunction scan = [] (GstDebugCategory *, GstDebugLevel, const gchar *, const gchar *,
      gint, GObject *, GstDebugMessage *message, gpointer) {
    lines++;
    if (strstr (gst_debug_message_get (message), "pr0xy-secret"))
      leaked = true;
  };
  gst_debug_remove_log_function (gst_debug_log_default);  /* not onto stderr */
  gst_debug_add_log_function (scan, nullptr, nullptr);
  gst_debug_set_default_threshold (GST_LEVEL_MEMDUMP);
  expect_turn (f);
  gst_debug_set_default_threshold (GST_LEVEL_NONE);
  gst_debug_remove_log_function (scan);
  gst_debug_add_log_function (gst_debug_log_default, nullptr, nullptr);
  fail_if (leaked.load (), "proxy-pw in the debug log");
  fail_unless (lines.load () > 100, "the debug log was not seen (%u lines)", lines.load ());
  fail_if (g_object_class_find_property (G_OBJECT_GET_CLASS (f.element), "proxy-pw")->flags &
      G_PARAM_READABLE);
  std::vector<std::string> seen = proxy.seen ();
  fail_unless (seen.size () >= 2, "%zu requests", seen.size ());
  fail_if (contains (seen[0], "Basic"), "%s", seen[0].c_str ());
  fail_unless (contains (seen.back (), "CONNECT ") && contains (seen.back (), " | Basic "),
      "%s", seen.back ().c_str ());
}
GST_END_TEST;

static Suite *tls_suite (void)
{
  Suite *s = suite_create ("yandexrealtime-tls");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_turn_over_tls);
  tcase_add_test (tc, test_untrusted_certificate_fails_at_once);
  tcase_add_test (tc, test_not_strict_warns);
  tcase_add_test (tc, test_bad_settings_fail_ready);
  tcase_add_test (tc, test_turn_through_proxy);
  tcase_add_test (tc, test_proxy_authentication);
  return s;
}

GST_CHECK_MAIN (tls);
