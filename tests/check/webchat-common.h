/* What the browser tests of examples/webchat share (webchat.cpp,
 * webchat-lb.cpp): what they need installed, the spoken question the fake
 * microphone plays, and the webchat server as a child process. */
#pragma once

#include "harness.h"

#include <gio/gio.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace yrt::test {

inline std::string driver_dir () { return std::string (YRT_SOURCE_ROOT) + "/tests/webchat"; }

inline const char *chromium ()
{
  const char *c = g_getenv ("CHROMIUM");
  return c && *c ? c : "/usr/bin/chromium";
}

/* What is missing, or "" when the test can run. */
inline std::string missing ()
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
inline std::string make_question (const std::string &dir, const char *text)
{
  std::string speech = dir + "/speech.wav", question = dir + "/question.wav";
  gchar *argv[] = {(gchar *) "espeak-ng", (gchar *) "-v", (gchar *) "en", (gchar *) "-s", (gchar *) "150",
      (gchar *) "-w", (gchar *) speech.c_str (), (gchar *) text, nullptr};
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
inline void die_with_parent (gpointer)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

/* The webchat server as a user starts it; its output goes to a log file. */
struct WebchatServer {
  GSubprocess *proc = nullptr;
  std::string dir, log, url;
  std::string name = "server";      /* of its log files: <dir>/<name>-<run>.log */
  std::string key;                  /* its YANDEX_CLOUD_API_KEY */
  std::vector<std::string> args;    /* more options */
  int port = 0;
  int runs = 0;

  void start (const std::string &location)
  {
    log = dir + "/" + name + "-" + std::to_string (++runs) + ".log";
    GSubprocessLauncher *launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
    g_subprocess_launcher_set_stdout_file_path (launcher, log.c_str ());
    g_subprocess_launcher_set_child_setup (launcher, die_with_parent, nullptr, nullptr);
    g_subprocess_launcher_setenv (launcher, "YANDEX_CLOUD_API_KEY", key.c_str (), TRUE);
    std::string port_text = std::to_string (port);
    std::vector<const gchar *> argv = {YRT_WEBCHAT, "--port", port_text.c_str (), "--location", location.c_str ()};
    for (const std::string &a : args)
      argv.push_back (a.c_str ());
    argv.push_back (nullptr);
    GError *error = nullptr;
    proc = g_subprocess_launcher_spawnv (launcher, argv.data (), &error);
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

}  // namespace yrt::test
