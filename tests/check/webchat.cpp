/* examples/webchat in a real browser: Debian's headless Chromium, driven by
 * tests/webchat/drive.mjs (puppeteer-core), talks to the webchat server over
 * WebRTC with a fake microphone playing a spoken question (espeak-ng); the
 * server's pipelines talk to the emulator, which this program runs and
 * questions for the driver ("? <question>" lines on its stdout, one answer
 * line back on its stdin).  The emulator answers with its 440 Hz tone, and
 * the driver listens to what the page plays for a break inside an answer.
 *
 * Skipped (exit 77, with the reason printed) only when something it needs
 * is not installed: tests/run.sh installs all of it. */
#include "harness.h"

#include <gio/gio.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace yrt::test;
namespace emu = yrt::emu;

namespace {

const char *const kKey = "webchat-test-key-never-on-the-page";
const char *const kQuestion = "What is the weather like in Moscow today?";
const char *const kAnswer = "It is sunny and warm in Moscow today.";
const char *const kTypedAnswer = "A little rain is likely in the evening.";
const char *const kLongAnswer = "Here is a long answer about the weather in Moscow: the morning is cool "
    "and cloudy, by noon the sun comes out, the afternoon is warm with a light breeze, and in the "
    "evening a little rain may fall, so take an umbrella with you.";
const guint kDefaultAnswerMs = 1010;
const guint kBytesPerMs = 48;  /* the emulator records 24 kHz mono S16 */

std::string driver_dir () { return std::string (YRT_SOURCE_ROOT) + "/tests/webchat"; }

const char *chromium ()
{
  const char *c = g_getenv ("CHROMIUM");
  return c && *c ? c : "/usr/bin/chromium";
}

/* What is missing, or "" when the test can run. */
std::string missing ()
{
  std::string why;
  if (!*YRT_WEBCHAT)
    why += " the webchat server (examples/webchat: needs libgstreamer-plugins-bad1.0-dev at setup);";
  if (!g_file_test (chromium (), G_FILE_TEST_IS_EXECUTABLE))
    why += std::string (" ") + chromium () + " (Debian package chromium);";
  gchar *node = g_find_program_in_path ("node");
  if (!node)
    why += " node (Debian package nodejs);";
  g_free (node);
  if (!g_file_test ((driver_dir () + "/node_modules/puppeteer-core/package.json").c_str (), G_FILE_TEST_EXISTS))
    why += " puppeteer-core (npm ci --prefix tests/webchat);";
  gchar *espeak = g_find_program_in_path ("espeak-ng");
  if (!espeak)
    why += " espeak-ng (Debian package espeak-ng);";
  g_free (espeak);
  for (const char *f : {"webrtcbin", "nicesrc", "opusenc", "opusdec", "rtpopuspay", "rtpopusdepay", "clocksync"}) {
    GstElementFactory *factory = gst_element_factory_find (f);
    if (!factory)
      why += std::string (" the GStreamer element ") + f +
             " (gstreamer1.0-plugins-bad, gstreamer1.0-nice, gstreamer1.0-plugins-base/-good);";
    else
      gst_object_unref (factory);
  }
  return why;
}

/* The fake microphone's file: the question spoken by espeak-ng, then 2.7 s
 * of silence; Chromium plays it in a loop. */
std::string make_question (const std::string &dir)
{
  std::string speech = dir + "/speech.wav", question = dir + "/question.wav";
  gchar *argv[] = {(gchar *) "espeak-ng", (gchar *) "-v", (gchar *) "en", (gchar *) "-s", (gchar *) "150",
      (gchar *) "-w", (gchar *) speech.c_str (), (gchar *) kQuestion, nullptr};
  gint status = -1;
  GError *error = nullptr;
  fail_unless (g_spawn_sync (nullptr, argv, nullptr, G_SPAWN_SEARCH_PATH, nullptr, nullptr, nullptr, nullptr,
      &status, &error) && status == 0, "espeak-ng failed: %s", error ? error->message : "exit status");
  gchar *wav = nullptr;
  gsize size = 0;
  fail_unless (g_file_get_contents (speech.c_str (), &wav, &size, nullptr));
  /* espeak-ng writes 16-bit mono: find "fmt " and "data" */
  guint32 rate = 0;
  std::vector<guint8> pcm;
  for (gsize pos = 12; pos + 8 <= size;) {
    guint32 len;
    memcpy (&len, wav + pos + 4, 4);
    if (memcmp (wav + pos, "fmt ", 4) == 0 && pos + 16 <= size)  /* its rate, if it is there */
      memcpy (&rate, wav + pos + 12, 4);
    if (memcmp (wav + pos, "data", 4) == 0) {
      len = (guint32) std::min<gsize> (len, size - pos - 8);
      pcm.assign (wav + pos + 8, wav + pos + 8 + len);
      break;
    }
    pos += 8 + len + (len & 1);
  }
  g_free (wav);
  fail_unless (rate > 0 && pcm.size () > rate, "espeak-ng wrote no speech");
  pcm.resize (pcm.size () + rate * 2 * 27 / 10, 0);
  std::string out ("RIFF....WAVEfmt ", 16);
  auto u32 = [&out] (guint32 v) { out.append ((const char *) &v, 4); };
  auto u16 = [&out] (guint16 v) { out.append ((const char *) &v, 2); };
  u32 (16), u16 (1), u16 (1), u32 (rate), u32 (rate * 2), u16 (2), u16 (16);
  out += "data";
  u32 ((guint32) pcm.size ());
  out.append ((const char *) pcm.data (), pcm.size ());
  guint32 riff = (guint32) out.size () - 8;
  memcpy (&out[4], &riff, 4);
  fail_unless (g_file_set_contents (question.c_str (), out.data (), (gssize) out.size (), nullptr));
  return question;
}

/* A test that fails half-way leaves no server or browser behind: the
 * children get SIGTERM when the test process goes. */
void die_with_parent (gpointer)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

/* The webchat server as a user starts it; its output goes to a log file. */
struct WebchatServer {
  GSubprocess *proc = nullptr;
  std::string dir, log, url;
  int port = 0;
  int runs = 0;

  void start (const std::string &location)
  {
    log = dir + "/server-" + std::to_string (++runs) + ".log";
    GSubprocessLauncher *launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
    g_subprocess_launcher_set_stdout_file_path (launcher, log.c_str ());
    g_subprocess_launcher_set_child_setup (launcher, die_with_parent, nullptr, nullptr);
    g_subprocess_launcher_setenv (launcher, "YANDEX_CLOUD_API_KEY", kKey, TRUE);
    gchar *port_text = g_strdup_printf ("%d", port);
    GError *error = nullptr;
    proc = g_subprocess_launcher_spawn (launcher, &error, YRT_WEBCHAT, "--port", port_text,
        "--location", location.c_str (), nullptr);
    g_free (port_text);
    g_object_unref (launcher);
    fail_unless (proc != nullptr, "%s", error ? error->message : "?");
    /* The first line is the URL. */
    for (int i = 0; i < 200 && url.empty (); i++) {
      gchar *text = nullptr;
      if (g_file_get_contents (log.c_str (), &text, nullptr, nullptr) && strchr (text, '\n'))
        url.assign (text, strchr (text, '\n'));
      g_free (text);
      if (url.empty ())
        g_usleep (50 * 1000);
    }
    fail_unless (g_str_has_prefix (url.c_str (), "http://127.0.0.1:"), "the server printed no URL (log: %s)",
        log.c_str ());
    port = atoi (strrchr (url.c_str (), ':') + 1);
  }

  void stop ()
  {
    if (!proc)
      return;
    g_subprocess_send_signal (proc, SIGTERM);
    fail_unless (g_subprocess_wait (proc, nullptr, nullptr));
    fail_unless (g_subprocess_get_if_exited (proc) && g_subprocess_get_exit_status (proc) == 0,
        "the server did not stop cleanly (log: %s)", log.c_str ());
    g_clear_object (&proc);
    url.clear ();
  }
};

/* The rate the first session asked its answers in (audio.output.format.rate
 * of its session.update): what the element negotiated downstream. */
guint output_rate (emu::Server &server)
{
  std::string json = server.session_update_json (0);
  gsize output = json.find ("\"output\"");
  gsize rate = output == std::string::npos ? output : json.find ("\"rate\"", output);
  gsize colon = rate == std::string::npos ? rate : json.find (':', rate);
  guint hz = colon == std::string::npos ? 0 : (guint) atoi (json.c_str () + colon + 1);
  fail_unless (hz >= 8000, "no output rate in the session.update: %s", json.c_str ());
  return hz;
}

std::string answer (const std::string &question, emu::Server &server, WebchatServer &webchat,
    const std::string &location)
{
  if (question == "audio-ms")
    return std::to_string (server.received_audio ().size () / kBytesPerMs);
  if (g_str_has_prefix (question.c_str (), "peak-since ")) {
    std::vector<guint8> pcm = server.received_audio ();
    gsize from = std::stoul (question.substr (11)) * kBytesPerMs;
    int peak = 0;
    for (gsize i = from; i + 1 < pcm.size (); i += 2)
      peak = std::max (peak, std::abs ((int) (gint16) (pcm[i] | (pcm[i + 1] << 8))));
    return std::to_string (peak);
  }
  if (question == "question-transcript")
    return kQuestion;
  if (question == "answer-text")
    return kAnswer;
  if (question == "typed-answer")
    return kTypedAnswer;
  if (question == "answer-ms")  /* all the answer audio sent so far (mono S16) */
    return std::to_string (server.sent_audio ().size () / 2 * 1000 / output_rate (server));
  if (question == "default-answer-ms")
    return std::to_string (kDefaultAnswerMs);
  if (question == "sessions-active")
    return std::to_string (server.sessions_active ());
  if (g_str_has_prefix (question.c_str (), "count ")) {
    std::vector<std::string> types = server.client_event_types ();
    return std::to_string (std::count (types.begin (), types.end (), question.substr (6)));
  }
  if (question == "long-answers") {  /* longer than the microphone's loop: barge-in */
    for (int i = 0; i < 4; i++) {
      emu::TurnScript turn;
      turn.answer_text = kLongAnswer;
      turn.answer_ms = 12000;
      server.push_turn (turn);
    }
    return "ok";
  }
  if (question == "restart-server") {
    webchat.stop ();
    webchat.start (location);
    return "ok";
  }
  fail ("the driver asked an unknown question: %s", question.c_str ());
  return "";
}

}  // namespace

GST_START_TEST (test_webchat_in_chromium)
{
  /* In the build directory, made afresh: a failed run's files stay there
   * for a look (the server's logs, the question). */
  gchar *dir = g_strdup (YRT_WEBCHAT_TMP);
  gchar *rm[] = {(gchar *) "rm", (gchar *) "-rf", dir, nullptr};
  g_spawn_sync (nullptr, rm, nullptr, G_SPAWN_SEARCH_PATH, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
  fail_unless (g_mkdir_with_parents (dir, 0700) == 0);
  std::string wav = make_question (dir);

  /* The answers are the emulator's 440 Hz tone (not speak=true), so the
   * driver can tell whether the page played each one whole.  Their lengths
   * are not whole 20 ms Opus frames: the end of each answer leaves part of
   * a frame in the encoder, as a real answer does. */
  emu::Config cfg;
  cfg.api_key = kKey;
  cfg.default_turn.answer_ms = kDefaultAnswerMs;  /* push-to-talk by the space bar and a touch */
  emu::Server server (cfg);
  fail_unless (server.start () != 0);
  emu::TurnScript first;
  first.transcript = kQuestion;
  first.answer_text = kAnswer;
  first.answer_ms = 2010;
  server.push_turn (first);
  emu::TurnScript typed;  /* the typed message that follows */
  typed.answer_text = kTypedAnswer;
  typed.answer_ms = 1510;
  server.push_turn (typed);

  WebchatServer webchat;
  webchat.dir = dir;
  webchat.start (server.url ());

  GSubprocessLauncher *launcher = g_subprocess_launcher_new ((GSubprocessFlags) (
      G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE));
  g_subprocess_launcher_set_cwd (launcher, driver_dir ().c_str ());
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, nullptr, nullptr);
  GError *error = nullptr;
  std::string windows = std::string (dir) + "/tone-windows.json";
  GSubprocess *driver = g_subprocess_launcher_spawn (launcher, &error, "node", "drive.mjs",
      "--url", webchat.url.c_str (), "--wav", wav.c_str (), "--key", kKey, "--shot", YRT_WEBCHAT_SHOT,
      "--chromium", chromium (), "--windows", windows.c_str (), nullptr);
  g_object_unref (launcher);
  fail_unless (driver != nullptr, "%s", error ? error->message : "?");

  GDataInputStream *out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (driver));
  GOutputStream *in = g_subprocess_get_stdin_pipe (driver);
  std::string transcript;
  for (;;) {
    gchar *line = g_data_input_stream_read_line_utf8 (out, nullptr, nullptr, nullptr);
    if (!line)
      break;
    if (g_str_has_prefix (line, "? ")) {
      std::string reply = answer (line + 2, server, webchat, server.url ()) + "\n";
      fail_unless (g_output_stream_write_all (in, reply.data (), reply.size (), nullptr, nullptr, nullptr));
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

  webchat.stop ();
  if (!passed) {
    gchar *log = nullptr;
    g_file_get_contents (webchat.log.c_str (), &log, nullptr, nullptr);
    g_printerr ("---- webchat server log ----\n%s\n", log ? log : "");
    g_free (log);
  }
  fail_unless (passed, "the browser test failed:\n%s", transcript.c_str ());
  server.stop ();
  g_free (dir);
}
GST_END_TEST;

static Suite *webchat_suite ()
{
  Suite *s = suite_create ("webchat");
  TCase *tc = tcase_create ("chromium");
  tcase_set_timeout (tc, 240);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_webchat_in_chromium);
  return s;
}

int main (int argc, char **argv)
{
  gst_check_init (&argc, &argv);
  std::string why = missing ();
  if (!why.empty ()) {
    /* Printed where meson shows it; tests/run.sh installs all of these. */
    std::printf ("SKIP: the webchat browser test needs:%s install them with tests/install-packages.sh --webchat "
                 "(tests/run.sh does)\n", why.c_str ());
    return 77;
  }
  return gst_check_run_suite (webchat_suite (), "webchat", __FILE__);
}
