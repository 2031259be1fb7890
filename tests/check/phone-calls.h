/* What the phone test programs share (phone.cpp, phone-line.cpp,
 * phone-sip.cpp): one call's parts (the emulator, the phone, a baresip),
 * the caller's question, and reading what the recordings hold. */
#pragma once

#include "harness.h"
#include "phone-harness.h"

#include <string>
#include <utility>
#include <vector>

namespace yrt::phone {

extern const char *const kKey;  /* the API key the emulator wants (the phone's environment) */
constexpr guint kLineRate = 8000;
constexpr guint kQuestionStartMs = 500, kQuestionMs = 1200;

/* A fresh directory for one test, in the build directory: a failed run's
 * logs and recordings stay there for a look. */
std::string test_dir (const char *name);

/* The caller's question: a chirp from 300 to 1300 Hz, loud enough for the
 * emulator's VAD. */
std::vector<gint16> chirp (guint rate, guint ms);
/* dir/question.wav: kQuestionStartMs of silence, the chirp, tail_ms of
 * silence (baresip hangs up at the file's end). */
std::string make_question (const std::string &dir, guint tail_ms, guint rate = kLineRate, guint channels = 1);

/* The best normalised correlation of `ref` (8 kHz) with the received 24 kHz
 * audio, around where their first loud samples line up. */
double question_correlation (const std::vector<guint8> &received24, const std::vector<gint16> &ref);

/* The loud stretch of a recording: [first, last] loud sample (|x| > 2000). */
std::pair<gsize, gsize> loud_span (const std::vector<gint16> &pcm);
/* The loud stretches of a recording, split where it is quiet for 100 ms. */
std::vector<std::pair<gsize, gsize>> loud_runs (const std::vector<gint16> &pcm, guint rate);

/* Where the phone sends each call's RTP, in the order the calls were answered. */
std::vector<guint16> caller_rtp_ports (const Phone &phone);
guint16 caller_rtp_port (const Phone &phone);

/* --record: the lines of a JSON-lines file, parsed (the caller unrefs);
 * a string member of one ("" when absent). */
std::vector<JsonObject *> record_lines (const std::string &path);
std::string member (JsonObject *o, const char *name);
/* The WAV the phone said it records call `call` to. */
std::string record_path (const Phone &phone, guint call);
/* That call's JSON lines in short: "event(name=value,…) " each, without
 * t_ms. */
std::string record_events (const Phone &phone, guint call);

/* Fails unless `text` holds each of `parts`, in that order. */
void fail_in_order (const std::string &text, const std::vector<std::string> &parts);

/* An emulator (started), a phone and a caller. */
struct Call {
  yrt::emu::Server server;
  Phone phone;
  Baresip caller;
  explicit Call (yrt::emu::Config cfg) : server (std::move (cfg)) { fail_unless (server.start () != 0); }
};

/* The emulator's configuration for the phone: the key. */
yrt::emu::Config config ();

/* main: runs the suite `make` builds, or skips (exit 77, saying why) when
 * baresip or the phone (sofia-sip) is missing. */
int run_phone_suite (int *argc, char ***argv, Suite *(*make) (), const char *name, const char *file);

}  // namespace yrt::phone
