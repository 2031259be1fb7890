/* What the phone test programs share (phone-calls.h). */
#include "phone-calls.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace emu = yrt::emu;

namespace yrt::phone {

using namespace yrt::test;

const char *const kKey = "phone-test-key";

/* A fresh directory for one test, in the build directory: a failed run's
 * logs and recordings stay there for a look. */
std::string test_dir (const char *name)
{
  std::string dir = std::string (YRT_PHONE_TMP) + "/" + name;
  gchar *rm[] = {(gchar *) "rm", (gchar *) "-rf", (gchar *) dir.c_str (), nullptr};
  g_spawn_sync (nullptr, rm, nullptr, G_SPAWN_SEARCH_PATH, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
  fail_unless (g_mkdir_with_parents (dir.c_str (), 0700) == 0);
  return dir;
}

/* The caller's question: a chirp from 300 to 1300 Hz, loud enough for the
 * emulator's VAD, between silences; baresip hangs up at the file's end. */
std::vector<gint16> chirp (guint rate, guint ms)
{
  std::vector<gint16> out ((gsize) rate * ms / 1000);
  double seconds = ms / 1000.0;
  for (gsize i = 0; i < out.size (); i++) {
    double t = (double) i / rate;
    out[i] = (gint16) (12000 * std::sin (2 * G_PI * (300 * t + 1000 * t * t / (2 * seconds))));
  }
  return out;
}

std::string make_question (const std::string &dir, guint tail_ms, guint rate, guint channels)
{
  std::string wav = dir + "/question.wav";
  write_wav (wav, silence (rate, kQuestionStartMs) + chirp (rate, kQuestionMs) + silence (rate, tail_ms), rate,
      channels);
  return wav;
}

/* The best normalised correlation of `ref` (8 kHz) with the received 24 kHz
 * audio, around where their first loud samples line up. */
double question_correlation (const std::vector<guint8> &received24, const std::vector<gint16> &ref)
{
  std::vector<gint16> rec (received24.size () / 2);
  memcpy (rec.data (), received24.data (), rec.size () * 2);
  auto onset = [] (const std::vector<gint16> &v, gsize step) {
    for (gsize i = 0; i < v.size (); i += step)
      if (std::abs (v[i]) > 3000)
        return (gssize) i;
    return (gssize) -1;
  };
  gssize rec_on = onset (rec, 1), ref_on = onset (ref, 1);
  fail_unless (rec_on >= 0, "the emulator received nothing loud (%zu samples)", rec.size ());
  double best = 0;
  for (int phase = 0; phase < 3; phase++)
    for (gssize lag = -40; lag <= 40; lag++) {
      /* rec (decimated by 3: the element's 24 kHz holds nothing above 4 kHz) at ref index i */
      double xy = 0, xx = 0, yy = 0;
      for (gsize i = 0; i < ref.size (); i++) {
        gssize j = (rec_on / 3 - ref_on + lag + (gssize) i) * 3 + phase;
        double x = ref[i], y = j >= 0 && j < (gssize) rec.size () ? rec[(gsize) j] : 0;
        xy += x * y, xx += x * x, yy += y * y;
      }
      if (xx > 0 && yy > 0)
        best = std::max (best, xy / std::sqrt (xx * yy));
    }
  return best;
}

/* The loud stretch of a recording: [first, last] loud sample (|x| > 2000). */
std::pair<gsize, gsize> loud_span (const std::vector<gint16> &pcm)
{
  gsize first = pcm.size (), last = 0;
  for (gsize i = 0; i < pcm.size (); i++)
    if (std::abs (pcm[i]) > 2000) {
      first = std::min (first, i);
      last = i;
    }
  return {first, last};
}

/* The loud stretches of a recording, split where it is quiet for 100 ms. */
std::vector<std::pair<gsize, gsize>> loud_runs (const std::vector<gint16> &pcm, guint rate)
{
  std::vector<std::pair<gsize, gsize>> runs;
  for (gsize i = 0; i < pcm.size (); i++) {
    if (std::abs (pcm[i]) <= 2000)
      continue;
    if (!runs.empty () && i - runs.back ().second < rate / 10)
      runs.back ().second = i;
    else
      runs.push_back ({i, i});
  }
  return runs;
}

/* Where the phone sends each call's RTP, in the order the calls were answered. */
std::vector<guint16> caller_rtp_ports (const Phone &phone)
{
  std::string log = phone.text ();
  std::vector<guint16> ports;
  for (gsize at = log.find ("RTP 127.0.0.1:"); at != std::string::npos; at = log.find ("RTP 127.0.0.1:", at + 1))
    ports.push_back ((guint16) atoi (log.c_str () + at + 14));
  return ports;
}

guint16 caller_rtp_port (const Phone &phone)
{
  std::string log = phone.text ();
  gsize at = log.find ("RTP 127.0.0.1:");
  fail_unless (at != std::string::npos, "the phone did not say where the call's RTP goes:\n%s", log.c_str ());
  return (guint16) atoi (log.c_str () + at + 14);
}

emu::Config config ()
{
  emu::Config cfg;
  cfg.api_key = kKey;
  return cfg;
}

/* The lines of a --record JSON-lines file, parsed (the caller unrefs). */
std::vector<JsonObject *> record_lines (const std::string &path)
{
  gchar *text = nullptr;
  fail_unless (g_file_get_contents (path.c_str (), &text, nullptr, nullptr), "no %s", path.c_str ());
  std::vector<JsonObject *> out;
  gchar **lines = g_strsplit (text, "\n", -1);
  for (gchar **l = lines; *l; l++) {
    if (!**l)
      continue;
    JsonParser *p = json_parser_new ();
    fail_unless (json_parser_load_from_data (p, *l, -1, nullptr) && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p)),
        "not a JSON object: %s", *l);
    out.push_back (json_object_ref (json_node_get_object (json_parser_get_root (p))));
    g_object_unref (p);
  }
  g_strfreev (lines);
  g_free (text);
  return out;
}

std::string member (JsonObject *o, const char *name)
{
  return json_object_get_string_member_with_default (o, name, "");
}

std::string record_path (const Phone &phone, guint call)
{
  std::string log = phone.text (), what = "call " + std::to_string (call) + ": recording to ";
  gsize at = log.find (what);
  fail_unless (at != std::string::npos, "the phone did not say where it records call %u:\n%s", call, log.c_str ());
  return log.substr (at + what.size (), log.find ('\n', at) - at - what.size ());
}

std::string record_events (const Phone &phone, guint call)
{
  std::string wav = record_path (phone, call), out;
  for (JsonObject *o : record_lines (wav.substr (0, wav.size () - 4) + ".jsonl")) {
    out += member (o, "event") + "(";
    GList *names = json_object_get_members (o);
    bool first = true;
    for (GList *l = names; l; l = l->next) {
      std::string name = (const char *) l->data;
      if (name == "t_ms" || name == "event")
        continue;
      JsonNode *v = json_object_get_member (o, name.c_str ());
      std::string value = json_node_get_value_type (v) == G_TYPE_STRING ? json_node_get_string (v) :
          std::to_string (json_node_get_int (v));
      out += (first ? "" : ",") + name + "=" + value;
      first = false;
    }
    g_list_free (names);
    out += ") ";
    json_object_unref (o);
  }
  return out;
}

void fail_in_order (const std::string &text, const std::vector<std::string> &parts)
{
  gsize at = 0;
  for (auto &part : parts) {
    gsize found = text.find (part, at);
    fail_unless (found != std::string::npos, "no \"%s\" (in order) in: %s", part.c_str (), text.c_str ());
    at = found + part.size ();
  }
}

int run_phone_suite (int *argc, char ***argv, Suite *(*make) (), const char *name, const char *file)
{
  gst_check_init (argc, argv);
  std::string why;
  if (!*YRT_PHONE)
    why += " the phone (examples/phone: needs libsofia-sip-ua-glib-dev at setup);";
  gchar *baresip = g_find_program_in_path ("baresip");
  if (!baresip)
    why += " baresip (Debian package baresip);";
  g_free (baresip);
  if (!why.empty ()) {
    g_print ("SKIP: the phone tests need:%s install them with tests/install-packages.sh --phone "
        "(tests/run.sh does)\n", why.c_str ());
    return 77;
  }
  Suite *s = make ();
  return gst_check_run_suite (s, name, file);
}

}  // namespace yrt::phone
