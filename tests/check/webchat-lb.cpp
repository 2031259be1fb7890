/* Scale-out of examples/webchat, proven: two webchat instances behind nginx,
 * run from examples/webchat/nginx.conf as it is (only its addresses
 * replaced), unprivileged, with its prefix, pid, logs and temporary files
 * in this test's directory, on 127.0.0.1.  Real headless Chromium tabs talk
 * to it (tests/webchat/lb.mjs, which says what it checks); the instances'
 * pipelines talk to the emulator this program runs.  This program starts
 * and stops the processes and answers the driver's questions ("? term a",
 * "? exit a", "? udp-ports a|b").
 *
 * Skipped (exit 77, saying why) only when something it needs is not
 * installed: tests/run.sh installs all of it. */
#include "webchat-common.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

using namespace yrt::test;
namespace emu = yrt::emu;

namespace {

const char *const kKey = "webchat-lb-test-key";
const char *const kQuestion = "Will it rain in Moscow tomorrow?";
const char *const kNginx = "/usr/sbin/nginx";
const char *const kPython = "/usr/bin/python3";  /* Debian's, where python3-prometheus-client is */
const int kDrainSeconds = 40;  /* long enough for the checks that need A alive, on a loaded machine */
const int kMaxSessions = 4;

std::string missing_here ()
{
  std::string why = missing ();
  if (!g_file_test (kNginx, G_FILE_TEST_IS_EXECUTABLE))
    why += " nginx (Debian package nginx);";
  gchar *argv[] = {(gchar *) kPython, (gchar *) "-c", (gchar *) "import prometheus_client.parser", nullptr};
  gint status = -1;
  if (!g_spawn_sync (nullptr, argv, nullptr, G_SPAWN_STDERR_TO_DEV_NULL, nullptr, nullptr, nullptr, nullptr,
      &status, nullptr) || status != 0)
    why += " the Prometheus text parser (Debian package python3-prometheus-client);";
  return why;
}

std::string read_text (const std::string &path)
{
  gchar *text = nullptr;
  fail_unless (g_file_get_contents (path.c_str (), &text, nullptr, nullptr), "cannot read %s", path.c_str ());
  std::string out (text);
  g_free (text);
  return out;
}

/* `text` with `from` replaced by `to`: `from` must be there, once. */
std::string replace_once (std::string text, const std::string &from, const std::string &to)
{
  gsize at = text.find (from);
  fail_unless (at != std::string::npos && text.find (from, at + 1) == std::string::npos,
      "examples/webchat/nginx.conf no longer has \"%s\" once: update this test", from.c_str ());
  return text.replace (at, from.size (), to);
}

/* A TCP port on 127.0.0.1 that nothing listens on now. */
int free_port ()
{
  GSocketListener *l = g_socket_listener_new ();
  guint16 port = g_socket_listener_add_any_inet_port (l, nullptr, nullptr);
  g_socket_listener_close (l);
  g_object_unref (l);
  fail_unless (port != 0);
  return port;
}

/* nginx runs as nobody when the test runs as root: it needs no privilege. */
uid_t nobody_uid = 0;
gid_t nobody_gid = 0;

void nginx_child_setup (gpointer)
{
  if (nobody_uid != 0 && (setgroups (0, nullptr) != 0 || setgid (nobody_gid) != 0 || setuid (nobody_uid) != 0))
    _exit (126);
  die_with_parent (nullptr);  /* after setuid, which clears it */
}

struct Nginx {
  GSubprocess *proc = nullptr;
  std::string prefix;
  int port = 0;

  void start (const std::string &dir, int a_port, int b_port)
  {
    prefix = dir + "/nginx";
    fail_unless (g_mkdir_with_parents ((prefix + "/logs").c_str (), 0755) == 0);
    std::string conf = read_text (std::string (YRT_SOURCE_ROOT) + "/examples/webchat/nginx.conf");
    port = free_port ();
    conf = replace_once (conf, "server 127.0.0.1:8081 ", "server 127.0.0.1:" + std::to_string (a_port) + " ");
    conf = replace_once (conf, "server 127.0.0.1:8082 ", "server 127.0.0.1:" + std::to_string (b_port) + " ");
    conf = replace_once (conf, "listen 127.0.0.1:8080;", "listen 127.0.0.1:" + std::to_string (port) + ";");
    fail_unless (g_file_set_contents ((prefix + "/nginx.conf").c_str (), conf.c_str (), -1, nullptr));
    if (geteuid () == 0) {
      struct passwd *pw = getpwnam ("nobody");
      fail_unless (pw != nullptr, "no user nobody to run nginx as");
      nobody_uid = pw->pw_uid;
      nobody_gid = pw->pw_gid;
      for (const std::string &p : {prefix, prefix + "/logs", prefix + "/nginx.conf"})
        fail_unless (chown (p.c_str (), nobody_uid, nobody_gid) == 0);
    }
    GSubprocessLauncher *launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
    g_subprocess_launcher_set_stdout_file_path (launcher, (prefix + "/nginx.out").c_str ());
    g_subprocess_launcher_set_child_setup (launcher, nginx_child_setup, nullptr, nullptr);
    GError *error = nullptr;
    /* -e stderr: not Debian's /var/log/nginx/error.log before the
     * configuration is read; daemon off: a child of this test. */
    proc = g_subprocess_launcher_spawn (launcher, &error, kNginx, "-p", prefix.c_str (), "-c",
        (prefix + "/nginx.conf").c_str (), "-e", "stderr", "-g", "daemon off;", nullptr);
    g_object_unref (launcher);
    fail_unless (proc != nullptr, "%s", error ? error->message : "?");
    /* Up when its pid file is there and its port answers. */
    gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
    bool up = false;
    while (!up && g_get_monotonic_time () < end) {
      GSocketClient *c = g_socket_client_new ();
      GSocketConnection *conn = g_file_test ((prefix + "/nginx.pid").c_str (), G_FILE_TEST_EXISTS)
          ? g_socket_client_connect_to_host (c, "127.0.0.1", (guint16) port, nullptr, nullptr) : nullptr;
      up = conn != nullptr;
      g_clear_object (&conn);
      g_object_unref (c);
      if (!up)
        g_usleep (50 * 1000);
    }
    fail_unless (up, "nginx did not start: %s", read_text (prefix + "/nginx.out").c_str ());
  }

  void stop ()
  {
    if (!proc)
      return;
    g_subprocess_send_signal (proc, SIGTERM);  /* fast shutdown */
    fail_unless (g_subprocess_wait (proc, nullptr, nullptr));
    g_clear_object (&proc);
  }
};

/* Waits up to `ms` for the process to exit; its exit status, or -1. */
int wait_exit (GSubprocess *proc, guint ms)
{
  bool done = false;
  g_subprocess_wait_async (proc, nullptr, [] (GObject *, GAsyncResult *, gpointer d) { *(bool *) d = true; }, &done);
  gint64 end = g_get_monotonic_time () + (gint64) ms * 1000;
  while (!done && g_get_monotonic_time () < end) {
    if (!g_main_context_iteration (nullptr, FALSE))
      g_usleep (10 * 1000);
  }
  if (!done)
    return -1;
  return g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
}

/* The UDP ports the process has open: its sockets' inodes in /proc/<pid>/fd,
 * looked up in /proc/net/udp and udp6. */
std::string udp_ports (GSubprocess *proc)
{
  std::string fd_dir = std::string ("/proc/") + g_subprocess_get_identifier (proc) + "/fd";
  std::vector<std::string> inodes;
  GDir *d = g_dir_open (fd_dir.c_str (), 0, nullptr);
  fail_unless (d != nullptr);
  while (const gchar *name = g_dir_read_name (d)) {
    gchar *target = g_file_read_link ((fd_dir + "/" + name).c_str (), nullptr);
    if (target && g_str_has_prefix (target, "socket:["))
      inodes.emplace_back (target + 8, strlen (target) - 9);
    g_free (target);
  }
  g_dir_close (d);
  std::string ports;
  for (const char *table : {"/proc/net/udp", "/proc/net/udp6"}) {
    std::istringstream lines (read_text (table));
    std::string line;
    std::getline (lines, line);  /* the header */
    while (std::getline (lines, line)) {
      std::istringstream f (line);
      std::string sl, local, remote, st, queues, tr, retr, uid, timeout, inode;
      f >> sl >> local >> remote >> st >> queues >> tr >> retr >> uid >> timeout >> inode;
      if (std::find (inodes.begin (), inodes.end (), inode) != inodes.end ())
        ports += (ports.empty () ? "" : " ") + std::to_string (strtol (local.substr (local.find (':') + 1).c_str (),
            nullptr, 16));
    }
  }
  return ports;
}

struct Instances {
  WebchatServer a, b;
};

std::string answer (const std::string &question, Instances &in)
{
  if (question == "term a") {
    g_subprocess_send_signal (in.a.proc, SIGTERM);
    return "ok";
  }
  if (question == "exit a") {
    int status = wait_exit (in.a.proc, (kDrainSeconds + 15) * 1000);
    g_clear_object (&in.a.proc);
    return std::to_string (status);
  }
  if (question == "udp-ports a")
    return udp_ports (in.a.proc);
  if (question == "udp-ports b")
    return udp_ports (in.b.proc);
  fail ("the driver asked an unknown question: %s", question.c_str ());
  return "";
}

void print_log (const std::string &what, const std::string &path)
{
  gchar *text = nullptr;
  g_file_get_contents (path.c_str (), &text, nullptr, nullptr);
  g_printerr ("---- %s (%s) ----\n%s\n", what.c_str (), path.c_str (), text ? text : "");
  g_free (text);
}

}  // namespace

GST_START_TEST (test_two_instances_behind_nginx)
{
  /* In the build directory, made afresh: a failed run's logs stay there. */
  gchar *rm[] = {(gchar *) "rm", (gchar *) "-rf", (gchar *) YRT_WEBCHAT_LB_TMP, nullptr};
  g_spawn_sync (nullptr, rm, nullptr, G_SPAWN_SEARCH_PATH, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
  std::string dir = YRT_WEBCHAT_LB_TMP;
  fail_unless (g_mkdir_with_parents (dir.c_str (), 0755) == 0);
  std::string wav = make_question (dir, kQuestion);

  emu::Config cfg;
  cfg.api_key = kKey;
  cfg.default_turn.answer_ms = 1010;
  emu::Server server (cfg);
  fail_unless (server.start () != 0);

  Instances in;
  for (auto [w, name] : {std::pair {&in.a, "a"}, std::pair {&in.b, "b"}}) {
    w->dir = dir;
    w->name = name;
    w->key = kKey;
    w->args = {"--drain-seconds", std::to_string (kDrainSeconds), "--max-sessions", std::to_string (kMaxSessions)};
    w->start (server.url ());
  }
  Nginx nginx;
  nginx.start (dir, in.a.port, in.b.port);
  std::string lb = "http://127.0.0.1:" + std::to_string (nginx.port) + "/";

  GSubprocessLauncher *launcher = g_subprocess_launcher_new ((GSubprocessFlags) (
      G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE));
  g_subprocess_launcher_set_cwd (launcher, driver_dir ().c_str ());
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, nullptr, nullptr);
  GError *error = nullptr;
  std::string drain = std::to_string (kDrainSeconds), max = std::to_string (kMaxSessions);
  std::string access_log = nginx.prefix + "/logs/access.log";
  GSubprocess *driver = g_subprocess_launcher_spawn (launcher, &error, "node", "lb.mjs", "--lb", lb.c_str (),
      "--a", in.a.url.c_str (), "--b", in.b.url.c_str (), "--wav", wav.c_str (), "--access-log", access_log.c_str (),
      "--drain-seconds", drain.c_str (), "--max-sessions", max.c_str (), "--chromium", chromium (), nullptr);
  g_object_unref (launcher);
  fail_unless (driver != nullptr, "%s", error ? error->message : "?");

  GDataInputStream *out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (driver));
  GOutputStream *to_driver = g_subprocess_get_stdin_pipe (driver);
  std::string transcript;
  while (gchar *line = g_data_input_stream_read_line_utf8 (out, nullptr, nullptr, nullptr)) {
    if (g_str_has_prefix (line, "? ")) {
      std::string reply = answer (line + 2, in) + "\n";
      fail_unless (g_output_stream_write_all (to_driver, reply.data (), reply.size (), nullptr, nullptr, nullptr));
    } else {
      g_print ("  %s\n", line);
      transcript += std::string (line) + "\n";
    }
    g_free (line);
  }
  g_object_unref (out);
  fail_unless (g_subprocess_wait (driver, nullptr, nullptr));
  gboolean passed = g_subprocess_get_if_exited (driver) && g_subprocess_get_exit_status (driver) == 0;
  g_object_unref (driver);

  if (!passed) {
    print_log ("instance A", in.a.log);
    print_log ("instance B", in.b.log);
    print_log ("nginx", nginx.prefix + "/logs/error.log");
    print_log ("nginx access", access_log);
  }
  fail_unless (passed, "the load-balancer test failed:\n%s", transcript.c_str ());
  in.b.stop ();  /* no tab left: it exits at once, with 0 */
  nginx.stop ();
  server.stop ();
}
GST_END_TEST;

static Suite *webchat_lb_suite ()
{
  Suite *s = suite_create ("webchat-lb");
  TCase *tc = tcase_create ("nginx");
  tcase_set_timeout (tc, 240);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_two_instances_behind_nginx);
  return s;
}

int main (int argc, char **argv)
{
  gst_check_init (&argc, &argv);
  std::string why = missing_here ();
  if (!why.empty ()) {
    std::printf ("SKIP: the webchat load-balancer test needs:%s install them with tests/install-packages.sh "
                 "--webchat (tests/run.sh does)\n", why.c_str ());
    return 77;
  }
  return gst_check_run_suite (webchat_lb_suite (), "webchat-lb", __FILE__);
}
