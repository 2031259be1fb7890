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
#include "webchat-common.h"

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
  std::string wav = make_question (dir, kQuestion);

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
  webchat.key = kKey;
  /* A restart closes the open tab at once, with the message the page shows
   * (the drain itself: webchat-lb.cpp). */
  webchat.args = {"--drain-seconds", "0"};
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
