/* yrt-bench micro / verify: the element's hot paths in-process, no network.
 *
 *   micro  [--seconds S | --iterations N]   time per call of each hot path
 *   verify                                  the fast paths against references
 *   resampler [--seconds S]                 the uplink's resampler: quality and
 *                                           cost at each resample-quality
 *
 * `micro --iterations N` runs a fixed amount of work, for callgrind:
 *   valgrind --tool=callgrind yrt-bench micro --iterations 2000
 *
 * `verify` compares
 *  - parse_server_event() with its audio-delta fast path against the same
 *    source built without it (slow-protocol.cpp: json-glib only), on
 *    hand-made edge cases and thousands of mutated frames;
 *  - base64 against GLib's encoder and the original strict decoder;
 *  - Uplink's stereo mixdown against GstAudioConverter doing it all.
 * Its random inputs come from a seed it prints on stderr (VERIFY_SEED=<n>);
 * VERIFY_SEED=<n> in the environment repeats them (or tries others). */
#include "micro.h"

#include "yrt-playout.h"
#include "yrt-protocol.h"
#include "yrt-uplink.h"

#include <gst/audio/audio.h>

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace {

double now_s ()
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Deterministic pseudo-random numbers (xorshift64; any seed but 0). */
struct Rng {
  explicit Rng (guint64 seed = 0x9e3779b97f4a7c15ull) : s (seed ? seed : 1) {}
  guint64 s;
  guint32 next ()
  {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return (guint32) s;
  }
  guint32 below (guint32 n) { return n ? next () % n : 0; }
};

/* Speech-like PCM (mono, `rate`): a few harmonics under a slow envelope. */
std::vector<gint16> voice (guint rate, gsize samples, double gain = 0.3)
{
  std::vector<gint16> pcm (samples);
  double phase = 0;
  for (gsize i = 0; i < samples; i++) {
    double t = (double) i / rate;
    phase += 2 * G_PI * (140 + 30 * std::sin (2 * G_PI * 0.7 * t)) / rate;
    double s = 0;
    for (int k = 1; k <= 6; k++)
      s += std::sin (k * phase) / k;
    double env = 0.4 + 0.6 * std::fabs (std::sin (2 * G_PI * 2.2 * t));
    pcm[i] = (gint16) std::lround (gain * env * s / 1.8 * 32767);
  }
  return pcm;
}

/* What the emulator (and the service) sends for one audio delta. */
std::string delta_event (const std::vector<guint8> &pcm, int n)
{
  std::string b64;
  yrt::base64_encode_append (pcm.data (), pcm.size (), b64);
  return "{\"type\":\"response.output_audio.delta\",\"event_id\":\"event_" + std::to_string (n) +
      "\",\"response_id\":\"resp_1\",\"item_id\":\"item_2\",\"output_index\":0,"
      "\"content_index\":0,\"delta\":\"" + b64 + "\"}";
}

std::vector<guint8> as_bytes (const std::vector<gint16> &pcm)
{
  const auto *p = reinterpret_cast<const guint8 *> (pcm.data ());
  return std::vector<guint8> (p, p + pcm.size () * 2);  /* no memcpy from an empty one's NULL */
}

/* ------------------------------------------------------------------ micro -- */

struct Case {
  const char *name;
  const char *unit;  /* what one call handles, for the throughput column */
  double bytes;      /* per call */
  std::function<void ()> run;
};

GstBuffer *wrap_static (const void *data, gsize size)
{
  return gst_buffer_new_wrapped_full (GST_MEMORY_FLAG_READONLY, const_cast<void *> (data), size,
      0, size, nullptr, nullptr);
}

struct UplinkCase {
  yrt::Uplink uplink;
  std::vector<guint8> input;
  gsize frames_per_buffer;
  gsize bpf;
  gsize pos = 0;
  guint64 sink = 0;
  UplinkCase (GstAudioFormat format, guint rate, guint channels, gsize frames,
      guint quality = GST_AUDIO_RESAMPLER_QUALITY_DEFAULT)
      : frames_per_buffer (frames)
  {
    GstAudioInfo info;
    gst_audio_info_set_format (&info, format, rate, channels, nullptr);
    bpf = GST_AUDIO_INFO_BPF (&info);
    uplink.set_output (24000, 40);
    uplink.set_quality (quality);
    std::string why;
    if (!uplink.set_input (info, why))
      g_error ("uplink: %s", why.c_str ());
    /* 10 s of voice in the requested format, converted once here. */
    auto mono = voice (rate, rate * 10);
    GstAudioInfo s16;
    gst_audio_info_set_format (&s16, GST_AUDIO_FORMAT_S16, rate, 1, nullptr);
    GstAudioConverter *c = gst_audio_converter_new (GST_AUDIO_CONVERTER_FLAG_NONE, &s16, &info,
        nullptr);
    input.resize (mono.size () * bpf);
    gpointer in[] = {mono.data ()};
    gpointer out[] = {input.data ()};
    gst_audio_converter_samples (c, GST_AUDIO_CONVERTER_FLAG_NONE, in, mono.size (), out,
        mono.size ());
    gst_audio_converter_free (c);
  }
  void run ()
  {
    gsize size = frames_per_buffer * bpf;
    if (pos + size > input.size ())
      pos = 0;
    GstBuffer *b = wrap_static (input.data () + pos, size);
    pos += size;
    uplink.push (b, [this] (const guint8 *pcm, gsize n) { sink += n + (n ? pcm[0] : 0); });
    gst_buffer_unref (b);
  }
};

/* One 100 ms answer delta through Playout (queued, then popped as the src
 * task would): as is when the service serves the src pad's rate, else
 * through the answer resampler. */
struct PlayoutCase {
  yrt::Playout playout;
  std::vector<guint8> delta;
  guint64 sink = 0;
  PlayoutCase (guint served, guint pad)
  {
    playout.configure (pad, true);
    playout.set_source_rate (served);
    delta = as_bytes (voice (served, served / 10));
  }
  void run ()
  {
    playout.push_audio ("resp_1", "item_1", delta.data (), delta.size (), GST_CLOCK_TIME_NONE);
    yrt::PlayoutItem item = playout.pop ([] { return GST_CLOCK_TIME_NONE; });
    if (item.buffer) {
      sink += gst_buffer_get_size (item.buffer);
      gst_buffer_unref (item.buffer);
    }
  }
};

}  // namespace

int cmd_micro (double seconds, guint64 iterations)
{
  std::vector<Case> cases;
  auto chunk = as_bytes (voice (24000, 960));     /* 40 ms at 24 kHz: one append */
  auto answer = as_bytes (voice (44100, 4410));   /* 100 ms at 44.1 kHz: one delta */
  std::string chunk_b64, answer_b64;
  yrt::base64_encode_append (chunk.data (), chunk.size (), chunk_b64);
  yrt::base64_encode_append (answer.data (), answer.size (), answer_b64);
  const std::string delta = delta_event (answer, 7);
  const std::string done =
      R"({"type":"response.done","event_id":"event_9","response":{"object":"realtime.response",)"
      R"("id":"resp_1","status":"completed","output":[{"id":"item_2","object":"realtime.item",)"
      R"("type":"message","status":"completed","role":"assistant","content":[{"type":)"
      R"("output_audio","transcript":"answer 1"}]}],"usage":{"total_tokens":30,)"
      R"("input_tokens":10,"output_tokens":20}}})";
  const std::string text_delta =
      R"({"type":"response.output_text.delta","event_id":"event_8","response_id":"resp_1",)"
      R"("item_id":"item_2","output_index":0,"content_index":0,"delta":"answer "})";
  std::string sink;
  std::vector<guint8> bytes;
  yrt::ServerEvent ev;
  std::string why;

  cases.push_back ({"base64 encode, 40 ms @24k", "in", (double) chunk.size (), [&] {
                      sink.clear ();
                      yrt::base64_encode_append (chunk.data (), chunk.size (), sink);
                    }});
  cases.push_back ({"audio_append, 40 ms @24k", "in", (double) chunk.size (), [&] {
                      sink = yrt::client::audio_append (chunk.data (), chunk.size ());
                    }});
  cases.push_back ({"base64 decode, 100 ms @44.1k", "out", (double) answer.size (), [&] {
                      if (!yrt::base64_decode (answer_b64.data (), answer_b64.size (), bytes))
                        g_error ("decode");
                    }});
  cases.push_back ({"parse audio delta, 100 ms @44.1k", "out", (double) answer.size (), [&] {
                      if (!yrt::parse_server_event (delta.data (), delta.size (), ev, why))
                        g_error ("parse: %s", why.c_str ());
                    }});
  cases.push_back ({"parse response.done", "in", (double) done.size (), [&] {
                      if (!yrt::parse_server_event (done.data (), done.size (), ev, why))
                        g_error ("parse: %s", why.c_str ());
                    }});
  cases.push_back ({"parse output_text.delta", "in", (double) text_delta.size (), [&] {
                      if (!yrt::parse_server_event (text_delta.data (), text_delta.size (), ev, why))
                        g_error ("parse: %s", why.c_str ());
                    }});
  UplinkCase stereo (GST_AUDIO_FORMAT_S16, 44100, 2, 1024);
  UplinkCase mono24 (GST_AUDIO_FORMAT_S16, 24000, 1, 960);
  UplinkCase f32 (GST_AUDIO_FORMAT_F32, 48000, 2, 960);
  UplinkCase mono16 (GST_AUDIO_FORMAT_S16, 16000, 1, 320);
  cases.push_back ({"uplink S16 stereo 44.1k, 1024 frames", "in", 1024.0 * 4, [&] { stereo.run (); }});
  cases.push_back ({"uplink S16 mono 24k (as is), 960 frames", "in", 960.0 * 2, [&] { mono24.run (); }});
  cases.push_back ({"uplink F32 stereo 48k, 960 frames", "in", 960.0 * 8, [&] { f32.run (); }});
  cases.push_back ({"uplink S16 mono 16k, 320 frames", "in", 320.0 * 2, [&] { mono16.run (); }});
  PlayoutCase same (44100, 44100), up (44100, 48000), down (44100, 16000);
  cases.push_back ({"playout 100 ms delta @44.1k, src 44.1k (as is)", "in", 8820.0,
                    [&] { same.run (); }});
  cases.push_back ({"playout 100 ms delta @44.1k, src 48k", "in", 8820.0, [&] { up.run (); }});
  cases.push_back ({"playout 100 ms delta @44.1k, src 16k", "in", 8820.0, [&] { down.run (); }});

  printf ("| hot path | ns per call | MB/s (%s) |\n|---|---:|---:|\n", "bytes in or out");
  for (Case &c : cases) {
    for (int i = 0; i < 20; i++)
      c.run ();  /* warm up */
    guint64 n = 0;
    double t0 = now_s (), t = t0;
    if (iterations) {
      for (; n < iterations; n++)
        c.run ();
      t = now_s ();
    } else {
      while (t - t0 < seconds) {
        for (int i = 0; i < 64; i++)
          c.run ();
        n += 64;
        t = now_s ();
      }
    }
    double ns = (t - t0) * 1e9 / n;
    printf ("| %s | %.0f | %.0f %s |\n", c.name, ns, c.bytes / ns * 1e3, c.unit);
  }
  return 0;
}

/* -------------------------------------------------------------- resampler -- */

namespace {

/* Level in dB (re the input) of what the uplink makes of a pure tone at
 * `hz`, 44.1 kHz S16 mono in, 24 kHz out.  Above 12 kHz the tone cannot be
 * represented and what comes out is its alias: the leak. */
double tone_gain_db (guint quality, double hz)
{
  const guint in_rate = 44100;
  const double amplitude = 0.5 * 32767;
  std::vector<gint16> tone (in_rate);
  for (gsize i = 0; i < tone.size (); i++)
    tone[i] = (gint16) std::lround (amplitude * std::sin (2 * G_PI * hz * i / in_rate));
  yrt::Uplink uplink;
  uplink.set_output (24000, 40);
  uplink.set_quality (quality);
  GstAudioInfo info;
  gst_audio_info_set_format (&info, GST_AUDIO_FORMAT_S16, in_rate, 1, nullptr);
  std::string why;
  if (!uplink.set_input (info, why))
    g_error ("uplink: %s", why.c_str ());
  std::vector<gint16> out;
  auto collect = [&] (const guint8 *pcm, gsize n) {
    const gint16 *s = reinterpret_cast<const gint16 *> (pcm);
    out.insert (out.end (), s, s + n / 2);
  };
  GstBuffer *b = wrap_static (tone.data (), tone.size () * 2);
  uplink.push (b, collect);
  gst_buffer_unref (b);
  /* The middle 800 ms: no filter start-up, whole periods do not matter at
   * this length. */
  double sum = 0;
  gsize from = 2400, to = std::min<gsize> (out.size (), 21600);
  for (gsize i = from; i < to; i++)
    sum += (double) out[i] * out[i];
  double rms = std::sqrt (sum / std::max<gsize> (1, to - from));
  return 20 * std::log10 (std::max (rms, 1e-3) / (amplitude / std::sqrt (2.0)));
}

/* CPU of the element's usual job, S16 stereo 44.1 kHz in, 24 kHz mono out:
 * the fastest of five slices, the one least disturbed by other load. */
double convert_cost_ms_per_s (guint quality, double seconds)
{
  UplinkCase c (GST_AUDIO_FORMAT_S16, 44100, 2, 1024, quality);
  for (int i = 0; i < 20; i++)
    c.run ();
  double best = 1e9;
  for (int slice = 0; slice < 5; slice++) {
    guint64 n = 0;
    double t0 = now_s (), t = t0;
    while (t - t0 < seconds / 5) {
      for (int i = 0; i < 16; i++)
        c.run ();
      n += 16;
      t = now_s ();
    }
    best = std::min (best, (t - t0) * 1e3 / (n * 1024.0 / 44100));
  }
  return best;
}

}  // namespace

int cmd_resampler (double seconds)
{
  const double passband[] = {100, 300, 1000, 2000, 4000, 6000, 8000};
  const double edge[] = {9000, 10000, 11000};
  const double stopband[] = {12500, 13000, 14000, 16000, 18000, 20000, 22000};
  printf ("| resample-quality | CPU ms per s of 44.1 kHz stereo | passband ripple to 8 kHz dB |"
      " 9 / 10 / 11 kHz dB | worst alias 12.5-22 kHz dB | worst alias 14-22 kHz dB |\n"
      "|---:|---:|---:|---|---:|---:|\n");
  for (guint q = 0; q <= 10; q++) {
    double lo = 1e9, hi = -1e9;
    for (double hz : passband) {
      double g = tone_gain_db (q, hz);
      lo = std::min (lo, g);
      hi = std::max (hi, g);
    }
    char edges[64];
    snprintf (edges, sizeof edges, "%.1f / %.1f / %.1f", tone_gain_db (q, edge[0]),
        tone_gain_db (q, edge[1]), tone_gain_db (q, edge[2]));
    double worst = -1e9, worst14 = -1e9;
    for (double hz : stopband) {
      double g = tone_gain_db (q, hz);
      worst = std::max (worst, g);
      if (hz >= 14000)
        worst14 = std::max (worst14, g);
    }
    printf ("| %u | %.2f | %.2f | %s | %.1f | %.1f |\n", q, convert_cost_ms_per_s (q, seconds),
        hi - lo, edges, worst, worst14);
  }
  return 0;
}

/* ----------------------------------------------------------------- verify -- */

namespace {

/* The decoder as it was before the fast rewrite: the reference. */
bool reference_decode (const char *text, gsize size, std::vector<guint8> &out)
{
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  gint8 value[256];
  memset (value, -1, sizeof (value));
  for (int i = 0; i < 64; i++)
    value[(guint8) alphabet[i]] = (gint8) i;
  out.clear ();
  if (size % 4 != 0)
    return false;
  for (gsize i = 0; i < size; i += 4) {
    const guint8 *q = (const guint8 *) text + i;
    bool last = i + 4 == size;
    int pad = last ? (q[3] == '=') + (q[2] == '=' && q[3] == '=') : 0;
    guint32 v = 0;
    for (int k = 0; k < 4 - pad; k++) {
      gint8 d = value[q[k]];
      if (d < 0)
        return false;
      v |= (guint32) d << (18 - 6 * k);
    }
    out.push_back ((guint8) (v >> 16));
    if (pad < 2)
      out.push_back ((guint8) (v >> 8));
    if (pad < 1)
      out.push_back ((guint8) v);
  }
  return true;
}

int failures = 0;

void expect (bool ok, const std::string &what)
{
  if (!ok && failures++ < 20)
    fprintf (stderr, "MISMATCH: %s\n", what.c_str ());
}

std::string printable (const std::string &s)
{
  std::string out;
  for (char c : s.substr (0, 160))
    out += (guint8) c >= 0x20 && (guint8) c < 0x7f ? std::string (1, c) : "\\x" +
        std::to_string ((guint8) c);
  return out + (s.size () > 160 ? "..." : "");
}

/* Both parsers on one frame: same verdict, same reason, same event. */
void compare_parse (const std::string &text, guint *fast_ok = nullptr)
{
  yrt::ServerEvent a;
  std::string why_a, why_b;
  bool ok_a = yrt::parse_server_event (text.data (), text.size (), a, why_a);
  SlowResult b = slow_parse (text);
  why_b = b.why;
  expect (ok_a == b.ok, "verdict differs for " + printable (text));
  if (ok_a != b.ok)
    return;
  if (!ok_a) {
    expect (why_a == why_b, "reason differs (" + why_a + " / " + why_b + ") for " + printable (text));
    return;
  }
  if (fast_ok)
    (*fast_ok)++;
  expect ((int) a.type == b.type && a.type_name == b.type_name && a.event_id == b.event_id &&
          a.item_id == b.item_id && a.previous_item_id == b.previous_item_id &&
          a.response_id == b.response_id && a.audio == b.audio && a.text == b.text &&
          a.status == b.status && a.audio_ms == b.audio_ms && a.session_id == b.session_id &&
          a.calls.size () == b.calls && a.error.code == b.error_code,
      "event differs for " + printable (text));
}

}  // namespace

int cmd_verify ()
{
  /* VERIFY_SEED=<n> repeats (or varies) the random inputs below. */
  const char *env = g_getenv ("VERIFY_SEED");
  const guint64 seed = env ? g_ascii_strtoull (env, nullptr, 10) : 0x9e3779b97f4a7c15ull;
  fprintf (stderr, "verify: VERIFY_SEED=%" G_GUINT64_FORMAT "\n", seed);
  Rng rng (seed);
  /* base64 against GLib and the original decoder. */
  for (gsize size = 0; size < 200; size++) {
    std::vector<guint8> in (size);
    for (auto &b : in)
      b = (guint8) rng.next ();
    std::string text;
    yrt::base64_encode_append (in.data (), size, text);
    gchar *reference = g_base64_encode (in.data (), size);
    expect (text == reference, "encode differs from GLib at size " + std::to_string (size));
    g_free (reference);
    std::vector<guint8> out;
    expect (yrt::base64_decode (text.data (), text.size (), out) && out == in,
        "round trip at size " + std::to_string (size));
  }
  const char pool[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=$ -\\\"\n";
  for (int i = 0; i < 200000; i++) {
    std::string s (rng.below (13), 'A');
    for (char &c : s)
      c = rng.below (8) ? pool[rng.below (65)] : pool[rng.below (sizeof (pool) - 1)];
    std::vector<guint8> a, b;
    bool ok_a = yrt::base64_decode (s.data (), s.size (), a);
    bool ok_b = reference_decode (s.data (), s.size (), b);
    expect (ok_a == ok_b && (!ok_a || a == b), "decode differs for \"" + s + "\"");
  }

  /* parse: hand-made cases, then mutations of real frames. */
  auto pcm = as_bytes (voice (44100, 441));
  const std::string delta = delta_event (pcm, 3);
  std::string b64;
  yrt::base64_encode_append (pcm.data (), pcm.size (), b64);
  std::string escaped = b64;
  for (gsize at = escaped.find ('/'); at != std::string::npos; at = escaped.find ('/', at + 2))
    escaped.replace (at, 1, "\\/");
  const std::vector<std::string> cases = {
    delta,
    "  \n" + delta + "\r\n\t ",
    R"({"delta":")" + b64 + R"(","type":"response.output_audio.delta"})",
    R"({"type":"response.audio.delta","response_id":"r","item_id":"i","delta":")" + b64 + R"("})",
    R"({"type":"response.output_audio.delta","delta":""})",
    R"({"type":"response.output_audio.delta","delta":"AQ=="})",
    R"({"type":"response.output_audio.delta","delta":"AQ="})",
    R"({"type":"response.output_audio.delta","delta":"A$=="})",
    R"({"type":"response.output_audio.delta","delta":")" + escaped + R"("})",
    R"({"type":"response.output_audio.delta","delta":"AQ\u003d\u003d"})",
    R"({"type":"response.output_audio.delta","delta":"AQ==\u0000"})",
    R"({"type":"response.output_audio.delta","delta":7})",
    R"({"type":"response.output_audio.delta","delta":null})",
    R"({"type":"response.output_audio.delta"})",
    R"({"type":"response.output_audio.delta","delta":"AQ==","delta":"AAAA"})",
    R"({"type":"response.output_audio.delta","delta":"AQ==","type":"response.done"})",
    R"({"type":"response.output_audio.delta","item_id":5,"response_id":true,"delta":"AQ=="})",
    R"({"type":"response.output_audio.delta","item_id":"a","item_id":"b","delta":"AQ=="})",
    R"({"type":"response.output_audio.delta","x":{"y":1},"delta":"AQ=="})",
    R"({"type":"response.output_audio.delta","x":[1,2],"delta":"AQ=="})",
    R"({"type":"response.output_audio.delta","":1,"delta":"AQ=="})",
    R"({"type":"response.output_audio.delta","n":-0.5e+3,"m":1E2,"k":false,"delta":"AQ=="})",
    R"({"type":"response.output_audio.delta","n":01,"delta":"AQ=="})",
    R"({"type":"response.output_audio.delta","n":1.,"delta":"AQ=="})",
    R"({"type":"response.output_audio.delta","n":.5,"delta":"AQ=="})",
    R"({"type":"response.output_audio.delta","n":+1,"delta":"AQ=="})",
    R"({"type":"response.output_audio.delta","n":123456789012345678901234567890,"delta":"AQ=="})",
    R"({"type":"response.output_audio.delta","n":tru,"delta":"AQ=="})",
    R"({"type":"response.output_audio.delta","n":nullx,"delta":"AQ=="})",
    R"({"type":"response.output_audio.delta","delta":"AQ==",})",
    R"({"type":"response.output_audio.delta",,"delta":"AQ=="})",
    R"({"type":"response.output_audio.delta" "delta":"AQ=="})",
    R"({"type":"response.output_audio.delta","delta":"AQ=="}})",
    R"({"type":"response.output_audio.delta","delta":"AQ=="} x)",
    R"({"type":"response.output_audio.delta","delta":"AQ=="}{})",
    R"({"type":"response.output_audio.delta","event_id":"caf\u00e9","delta":"AQ=="})",
    "{\"type\":\"response.output_audio.delta\",\"event_id\":\"caf\xc3\xa9\",\"delta\":\"AQ==\"}",
    "{\"type\":\"response.output_audio.delta\",\"event_id\":\"bad\xff\",\"delta\":\"AQ==\"}",
    "{\"type\":\"response.output_audio.delta\",\"event_id\":\"tab\there\",\"delta\":\"AQ==\"}",
    "{\"type\":\"response.output_audio.delta\",\"event_id\":\"nul\0x\",\"delta\":\"AQ==\"}",
    R"({"type":"response.output_audio.delta","event_id":"a\"b","delta":"AQ=="})",
    R"({"type":"response.output_audio.delt\u0061","delta":"AQ=="})",
    R"({"typ\u0065":"response.output_audio.delta","delta":"AQ=="})",
    R"({"type":"response.output_text.delta","delta":"hi"})",
    R"({"type":"response.output_audio_transcript.delta","delta":"AQ=="})",
    R"({"type":5,"delta":"AQ=="})",
    R"({"delta":"AQ=="})",
    R"([{"type":"response.output_audio.delta","delta":"AQ=="}])",
    R"("response.output_audio.delta")",
    "{}", "", " ", "{", "}", "nul", "null",
  };
  for (const std::string &c : cases)
    compare_parse (std::string (c.data (), c.size ()));
  /* The NUL case above lost its tail to the literal; add it whole. */
  const char nul_case[] = "{\"type\":\"response.output_audio.delta\",\"delta\":\"AQ==\"}\0";
  compare_parse (std::string (nul_case, sizeof (nul_case)));

  /* Mutations: every truncation, then random edits of real frames. */
  const std::string small = delta_event (as_bytes (voice (44100, 30)), 1);
  for (gsize n = 0; n <= small.size (); n++)
    compare_parse (small.substr (0, n));
  const std::string seeds[] = {
    small,
    R"({"type":"response.output_audio.delta","response_id":"r","item_id":"i","output_index":0,"content_index":-1.5e3,"flag":true,"none":null,"delta":"AAECAwQFBgc="})",
  };
  const char edits[] = "\"\\{}[],:= \t\nAz09+/-.eE\x01\x7f\xc3\xa9\xff";
  guint fast_ok = 0, total = 0;
  for (const std::string &seed : seeds) {
    for (int i = 0; i < 30000; i++) {
      std::string s = seed;
      int n = 1 + (int) rng.below (3);
      for (int k = 0; k < n; k++) {
        gsize at = rng.below ((guint32) s.size () + 1);
        char c = edits[rng.below (sizeof (edits) - 1)];
        switch (rng.below (3)) {
          case 0: if (at < s.size ()) s[at] = c; break;
          case 1: s.insert (at, 1, c); break;
          default: if (at < s.size ()) s.erase (at, 1); break;
        }
      }
      compare_parse (s, &fast_ok);
      total++;
    }
  }

  /* Uplink: stereo mixdown + resampler against GstAudioConverter alone. */
  int max_diff = 0;
  gsize new_samples = 0, ref_samples = 0;
  for (guint rate : {44100u, 48000u, 24000u, 16000u}) {
    GstAudioInfo info, out_info;
    gst_audio_info_set_format (&info, GST_AUDIO_FORMAT_S16, rate, 2, nullptr);
    gst_audio_info_set_format (&out_info, GST_AUDIO_FORMAT_S16, 24000, 1, nullptr);
    auto left = voice (rate, rate * 3, 0.45), right = voice (rate, rate * 3, 0.3);
    for (gsize i = 0; i < right.size (); i++)
      right[i] = (gint16) (right[i] + (i % 7) * 1000 - 3000);  /* channels differ */
    std::vector<gint16> inter (left.size () * 2);
    for (gsize i = 0; i < left.size (); i++) {
      inter[2 * i] = left[i];
      inter[2 * i + 1] = right[i];
    }
    yrt::Uplink uplink;
    uplink.set_output (24000, 40);
    std::string why;
    uplink.set_input (info, why);
    std::vector<gint16> got;
    auto emit = [&got] (const guint8 *pcm, gsize n) {
      const gint16 *s = reinterpret_cast<const gint16 *> (pcm);
      got.insert (got.end (), s, s + n / 2);
    };
    for (gsize pos = 0; pos < left.size (); pos += 1000) {
      gsize frames = std::min<gsize> (1000, left.size () - pos);
      GstBuffer *b = wrap_static (inter.data () + 2 * pos, frames * 4);
      uplink.push (b, emit);
      gst_buffer_unref (b);
    }
    uplink.flush (emit);
    /* The reference: what set_input() built before the mixdown existed. */
    GstStructure *config = gst_structure_new ("config",
        GST_AUDIO_CONVERTER_OPT_RESAMPLER_METHOD, GST_TYPE_AUDIO_RESAMPLER_METHOD,
        GST_AUDIO_RESAMPLER_METHOD_KAISER, nullptr);
    GstAudioConverter *c = gst_audio_converter_new (GST_AUDIO_CONVERTER_FLAG_NONE, &info,
        &out_info, config);
    std::vector<gint16> ref (gst_audio_converter_get_out_frames (c, left.size ()) + 4096);
    gpointer in[] = {inter.data ()};
    gpointer out[] = {ref.data ()};
    gsize out_frames = gst_audio_converter_get_out_frames (c, left.size ());
    gst_audio_converter_samples (c, GST_AUDIO_CONVERTER_FLAG_NONE, in, left.size (), out,
        out_frames);
    gsize latency = gst_audio_converter_get_max_latency (c);
    gsize tail = gst_audio_converter_get_out_frames (c, latency);
    gpointer out2[] = {ref.data () + out_frames};
    gst_audio_converter_samples (c, GST_AUDIO_CONVERTER_FLAG_NONE, nullptr, latency, out2, tail);
    ref.resize (out_frames + tail);
    gst_audio_converter_free (c);
    new_samples += got.size ();
    ref_samples += ref.size ();
    expect (got.size () == ref.size (), "uplink at " + std::to_string (rate) + " Hz: " +
        std::to_string (got.size ()) + " samples, reference " + std::to_string (ref.size ()));
    /* The last few samples come out of the drain, whose result already
     * depends on how the input was cut into buffers: compare the rest. */
    gsize steady = std::min (got.size (), ref.size ());
    steady = steady > 32 ? steady - 32 : 0;
    int rate_diff = 0;
    for (gsize i = 0; i < steady; i++)
      rate_diff = std::max (rate_diff, std::abs (got[i] - ref[i]));
    if (getenv ("VERIFY_DEBUG"))
      fprintf (stderr, "uplink at %u Hz: largest difference %d\n", rate, rate_diff);
    max_diff = std::max (max_diff, rate_diff);
  }
  expect (max_diff <= 1, "uplink differs from GstAudioConverter by " + std::to_string (max_diff));

  /* The copy really is the other path: json-glib is several times slower. */
  const std::string big = delta_event (as_bytes (voice (44100, 4410)), 5);
  auto per_call = [&big] (const std::function<void ()> &f) {
    double t0 = now_s ();
    for (int i = 0; i < 200; i++)
      f ();
    return (now_s () - t0) / 200 * 1e6;
  };
  yrt::ServerEvent ev;
  std::string why;
  double fast_us = per_call ([&] { yrt::parse_server_event (big.data (), big.size (), ev, why); });
  double slow_us = per_call ([&] { slow_parse (big); });
  expect (slow_us > 2 * fast_us, "the json-glib copy is not slower: is the fast path compiled out?");
  printf ("100 ms delta: %.1f us through the fast path, %.1f us through json-glib\n", fast_us,
      slow_us);
  printf ("base64: 200 round trips, 200000 decodes against the reference\n");
  printf ("parse: %zu edge cases, %zu truncations, %u mutations (%u parsed)\n", cases.size () + 1,
      small.size () + 1, total, fast_ok);
  printf ("uplink stereo mixdown: %zu samples, largest difference from GstAudioConverter %d LSB\n",
      new_samples, max_diff);
  printf ("RESULT verify failures=%d uplink_max_diff=%d\n", failures, max_diff);
  return failures ? 1 : 0;
}
