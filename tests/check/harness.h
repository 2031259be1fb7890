/* Shared helpers of the element suites: a yandexrealtime in a GstHarness
 * or in a real pipeline, wired to an in-process emulator over a real
 * loopback WebSocket. */
#pragma once

/* Before gstcheck.h, whose macros break <ios>. */
#include "docs-table.h"
#include "emulator.h"
#include "tone.h"

#include <glib/gstdio.h>
#include <gst/audio/audio.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <json-glib/json-glib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace yrt::test {

constexpr const char *kLiveCaps =
    "audio/x-raw,format=S16LE,rate=24000,channels=1,layout=interleaved";

/* A harness around `element`'s "sink" and "src" that answers LATENCY
 * queries with `live` from the start: gst_harness_new_with_element() plays
 * an element with a sink pad at once, while it still says live (the
 * default), and the element takes a live upstream at its word then. */
inline GstHarness *harness_for (GstElement *element, bool live)
{
  static GstStaticPadTemplate src = GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC,
      GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
  static GstStaticPadTemplate sink = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK,
      GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
  GstHarness *h = gst_harness_new_empty ();
  gst_harness_set_live (h, live);
  gst_harness_add_element_full (h, element, &src, "sink", &sink, "src");
  return h;
}

/* Loud enough for the emulator's VAD at any threshold below 0.8. */
constexpr gint16 kSpeechAmplitude = 12000;

inline std::vector<gint16> tone (guint rate, guint ms, gint16 amplitude = kSpeechAmplitude,
    double freq = 300.0)
{
  std::vector<gint16> out ((gsize) rate * ms / 1000);
  for (gsize i = 0; i < out.size (); i++)
    out[i] = (gint16) (amplitude * std::sin (2 * G_PI * freq * i / rate));
  return out;
}

inline std::vector<gint16> silence (guint rate, guint ms)
{
  return std::vector<gint16> ((gsize) rate * ms / 1000, 0);
}

inline std::vector<gint16> operator+ (std::vector<gint16> a, const std::vector<gint16> &b)
{
  a.insert (a.end (), b.begin (), b.end ());
  return a;
}

/* A spoken turn: speech, then enough silence for the default VAD. */
inline std::vector<gint16> turn (guint rate, guint speech_ms = 800, guint silence_ms = 800)
{
  return tone (rate, speech_ms) + silence (rate, silence_ms);
}

/* The next buffer from a harness; fails, rather than handing on NULL, when
 * none comes within the harness's timeout (60 s). */
/* One guint64 field of the element's `stats`. */
inline guint64 stat_of (GstElement *element, const char *field)
{
  GstStructure *s = nullptr;
  g_object_get (element, "stats", &s, nullptr);
  guint64 v = 0;
  fail_unless (gst_structure_get_uint64 (s, field, &v), "no %s in stats", field);
  gst_structure_free (s);
  return v;
}

inline GstBuffer *pull_buffer (GstHarness *h)
{
  GstBuffer *buf = gst_harness_pull (h);
  fail_unless (buf != nullptr, "no buffer came out of the harness");
  return buf;
}

/* Every buffer up to EOS from a harness, in order. */
inline std::vector<GstBuffer *> pull_all (GstHarness *h)
{
  std::vector<GstBuffer *> out;
  GstBuffer *buf = nullptr;
  while (gst_harness_pull_until_eos (h, &buf) && buf) {
    out.push_back (buf);
    buf = nullptr;
  }
  return out;
}

struct Fixture {
  explicit Fixture (emu::Config config = {}) : server (std::move (config))
  {
    fail_unless (server.start () != 0, "emulator did not start");
  }
  ~Fixture ()
  {
    {
      std::lock_guard<std::mutex> guard (undocumented_lock);
      fail_unless (undocumented.empty (), "not as docs/yandexrealtime.md says: %s",
          undocumented.c_str ());
    }
    if (h)
      gst_harness_teardown (h);
    for (GstMessage *m : seen)
      gst_message_unref (m);
    if (bus) {
      gst_bus_set_flushing (bus, TRUE);
      gst_object_unref (bus);
    }
    server.stop ();
  }

  /* Creates the element with `properties` (gst-launch syntax) aimed at the
   * emulator, non-live unless `live`; does not start it. */
  GstElement *make (const std::string &properties = "")
  {
    /* The emulator, like the service, wants some credential. */
    std::string desc = "yandexrealtime name=rt api-key=test-key location=" + server.url () + " " + properties;
    GError *error = nullptr;
    element = gst_parse_launch (desc.c_str (), &error);
    fail_unless (element != nullptr, "%s", error ? error->message : "?");
    bus = gst_bus_new ();
    gst_bus_set_sync_handler (bus, check_against_docs, this, nullptr);
    gst_element_set_bus (element, bus);
    return element;
  }

  /* Bus sync handler (any thread): every message the element posts must be
   * in the docs' table of messages, with every field it carries. */
  static GstBusSyncReply check_against_docs (GstBus *, GstMessage *msg, gpointer data)
  {
    static const auto documented =
        docs_table (docs_text (), "| name | fields | posted when |");
    const GstStructure *s = gst_message_get_structure (msg);
    if (GST_MESSAGE_TYPE (msg) != GST_MESSAGE_ELEMENT || !s ||
        !g_str_has_prefix (gst_structure_get_name (s), "yandexrealtime/"))
      return GST_BUS_PASS;
    std::string problem;
    auto row = documented.find (gst_structure_get_name (s));
    if (row == documented.end ()) {
      problem = std::string (gst_structure_get_name (s)) + " is not in the table; ";
    } else if (row->second.size () < 3) {
      problem = row->first + ": its row in the table is too short; ";
    } else {
      std::vector<std::string> fields = quoted (row->second[1]);
      for (gint i = 0; i < gst_structure_n_fields (s); i++) {
        std::string field = gst_structure_nth_field_name (s, i);
        if (std::find (fields.begin (), fields.end (), field) == fields.end ())
          problem += row->first + " has the undocumented field " + field + "; ";
      }
    }
    auto *self = static_cast<Fixture *> (data);
    std::lock_guard<std::mutex> guard (self->undocumented_lock);
    if (!problem.empty () && self->undocumented.find (problem) == std::string::npos)
      self->undocumented += problem;
    return GST_BUS_PASS;
  }

  GstHarness *start (const char *caps = "audio/x-raw,format=S16LE,rate=24000,channels=1,layout=interleaved",
      bool live = false)
  {
    if (!element)
      make ();
    h = harness_for (element, live);
    gst_object_unref (element);  /* the harness holds it */
    gst_harness_play (h);
    gst_harness_set_src_caps_str (h, caps);
    return h;
  }

  /* A harness around yandexrealtime `properties` ! capsfilter `sink_caps`
   * (element is the bin; rt() the element), started like start(). */
  GstHarness *start_with_sink_caps (const char *sink_caps, const std::string &properties = "",
      const char *caps = kLiveCaps, bool live = false)
  {
    std::string desc = "yandexrealtime name=rt api-key=test-key location=" + server.url () +
        " " + properties + " ! capsfilter caps=\"" + sink_caps + "\"";
    GError *error = nullptr;
    element = gst_parse_bin_from_description (desc.c_str (), TRUE, &error);
    fail_unless (element != nullptr, "%s", error ? error->message : "?");
    bus = gst_bus_new ();
    gst_bus_set_sync_handler (bus, check_against_docs, this, nullptr);
    gst_element_set_bus (element, bus);
    h = harness_for (element, live);
    gst_object_unref (element);
    gst_harness_play (h);
    gst_harness_set_src_caps_str (h, caps);
    return h;
  }

  /* The yandexrealtime element (inside the bin of start_with_sink_caps). */
  GstElement *rt ()
  {
    if (!GST_IS_BIN (element))
      return element;
    GstElement *e = gst_bin_get_by_name (GST_BIN (element), "rt");
    gst_object_unref (e);  /* the bin holds it */
    return e;
  }

  /* The warnings posted so far (message: debug), keeping every message in
   * `seen`. */
  std::vector<std::string> warnings ()
  {
    while (GstMessage *m = gst_bus_pop (bus))
      seen.push_back (m);
    std::vector<std::string> out;
    for (GstMessage *m : seen) {
      if (GST_MESSAGE_TYPE (m) != GST_MESSAGE_WARNING)
        continue;
      GError *error = nullptr;
      gchar *debug = nullptr;
      gst_message_parse_warning (m, &error, &debug);
      out.push_back (std::string (error->message) + ": " + (debug ? debug : ""));
      g_clear_error (&error);
      g_free (debug);
    }
    return out;
  }

  /* Pushes S16 samples in 20 ms buffers with contiguous timestamps. */
  void push (const std::vector<gint16> &samples, guint rate = 24000, guint channels = 1)
  {
    push_bytes (samples.data (), samples.size () * 2, rate, channels * 2);
  }

  void push_bytes (const void *data, gsize size, guint rate, guint bpf)
  {
    gsize step = (gsize) rate / 50 * bpf;
    for (gsize pos = 0; pos < size; pos += step) {
      gsize n = MIN (step, size - pos);
      GstBuffer *buf = gst_buffer_new_memdup ((const guint8 *) data + pos, n);
      GST_BUFFER_PTS (buf) = gst_util_uint64_scale (pushed_frames, GST_SECOND, rate);
      pushed_frames += n / bpf;
      GST_BUFFER_DURATION (buf) =
          gst_util_uint64_scale (pushed_frames, GST_SECOND, rate) - GST_BUFFER_PTS (buf);
      fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_OK);
    }
  }

  /* EOS on the input, then every buffer up to the EOS on the output. */
  std::vector<GstBuffer *> end_input ()
  {
    fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
    return pull_until_eos ();
  }

  /* Every buffer up to EOS, in order. */
  std::vector<GstBuffer *> pull_until_eos () { return pull_all (h); }

  /* Skips events up to the EOS (buffers stay queued). */
  void wait_for_eos_event ()
  {
    for (;;) {
      GstEvent *ev = gst_harness_pull_event (h);
      fail_unless (ev != nullptr, "no EOS");
      bool eos = GST_EVENT_TYPE (ev) == GST_EVENT_EOS;
      gst_event_unref (ev);
      if (eos)
        return;
    }
  }

  /* The next element message named yandexrealtime/<name>, or nullptr after
   * `timeout_ms`.  Other messages are skipped (and kept in `seen`). */
  GstMessage *wait_message (const std::string &name, guint timeout_ms = 20000)
  {
    std::string full = "yandexrealtime/" + name;
    gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
    for (;;) {
      gint64 left = deadline - g_get_monotonic_time ();
      if (left <= 0)
        return nullptr;
      GstMessage *msg = gst_bus_timed_pop (bus, left * GST_USECOND);
      if (!msg)
        return nullptr;
      const GstStructure *s = gst_message_get_structure (msg);
      if (s && gst_structure_has_name (s, full.c_str ()))
        return msg;
      seen.push_back (msg);
    }
  }

  Fixture (const Fixture &) = delete;
  Fixture &operator= (const Fixture &) = delete;

  emu::Server server;
  GstElement *element = nullptr;
  GstHarness *h = nullptr;
  GstBus *bus = nullptr;
  guint64 pushed_frames = 0;
  std::vector<GstMessage *> seen;
  std::mutex undocumented_lock;
  std::string undocumented;  /* what check_against_docs found */
};

inline std::vector<guint8> concat (const std::vector<GstBuffer *> &buffers)
{
  std::vector<guint8> out;
  for (GstBuffer *b : buffers) {
    gsize size = gst_buffer_get_size (b);
    if (size == 0)
      continue;  /* out.data () may still be NULL, which gst_buffer_extract refuses */
    gsize pos = out.size ();
    out.resize (pos + size);
    gst_buffer_extract (b, 0, out.data () + pos, size);
  }
  return out;
}

/* The samples of `buffers`, S16 native. */
inline std::vector<gint16> pcm_of (const std::vector<GstBuffer *> &buffers)
{
  std::vector<guint8> bytes = concat (buffers);
  std::vector<gint16> out (bytes.size () / 2);
  if (!out.empty ())
    memcpy (out.data (), bytes.data (), out.size () * 2);
  return out;
}

/* appsrc (live caps, TIME) ! yandexrealtime ! fakesink sync=false, linked,
 * with a probe on the sink's buffers.  The element is named "rt". */
struct AppPipeline {
  GstElement *pipeline, *src, *rt, *sink;
};

inline AppPipeline make_app_pipeline (const char *name, GstPadProbeCallback on_buffer,
    gpointer data)
{
  AppPipeline p;
  p.pipeline = gst_pipeline_new (name);
  p.src = gst_element_factory_make ("appsrc", "src");
  p.rt = gst_element_factory_make ("yandexrealtime", "rt");
  p.sink = gst_element_factory_make ("fakesink", "sink");
  fail_unless (p.pipeline && p.src && p.rt && p.sink);
  GstCaps *caps = gst_caps_from_string (kLiveCaps);
  g_object_set (p.src, "format", GST_FORMAT_TIME, "caps", caps, nullptr);
  gst_caps_unref (caps);
  g_object_set (p.sink, "sync", FALSE, nullptr);
  gst_bin_add_many (GST_BIN (p.pipeline), p.src, p.rt, p.sink, nullptr);
  fail_unless (gst_element_link_many (p.src, p.rt, p.sink, nullptr));
  GstPad *sinkpad = gst_element_get_static_pad (p.sink, "sink");
  gst_pad_add_probe (sinkpad, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, data, nullptr);
  gst_object_unref (sinkpad);
  return p;
}

inline guint64 samples_in (const std::vector<GstBuffer *> &buffers)
{
  guint64 n = 0;
  for (GstBuffer *b : buffers)
    n += gst_buffer_get_size (b) / 2;
  return n;
}

inline const GstStructure *structure (GstMessage *msg)
{
  fail_unless (msg != nullptr, "message not posted");
  return gst_message_get_structure (msg);
}

/* Client events of one type, parsed; free with free_nodes(). */
inline std::vector<JsonNode *> events_of (const emu::Server &server, const char *type)
{
  std::vector<JsonNode *> out;
  for (const emu::ClientEvent &ev : server.client_events ())
    if (ev.type == type)
      out.push_back (json_from_string (ev.json.c_str (), nullptr));
  return out;
}

inline void free_nodes (std::vector<JsonNode *> &nodes)
{
  for (JsonNode *n : nodes)
    json_node_unref (n);
  nodes.clear ();
}

/* Checks an ERROR or WARNING message's domain and code, and that its debug
 * text names `hint`; returns the debug text. */
inline std::string expect_gerror (GstMessage *msg, GQuark domain, gint code, const char *hint)
{
  fail_unless (msg != nullptr, "no error or warning posted");
  GError *err = nullptr;
  gchar *debug = nullptr;
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR)
    gst_message_parse_error (msg, &err, &debug);
  else
    gst_message_parse_warning (msg, &err, &debug);
  std::string text = debug ? debug : "";
  fail_unless (g_error_matches (err, domain, code), "got %s", err->message);
  fail_unless (text.find (hint) != std::string::npos, "'%s' not in: %s", hint, text.c_str ());
  g_error_free (err);
  g_free (debug);
  return text;
}

inline void unref_all (std::vector<GstBuffer *> &buffers)
{
  for (GstBuffer *b : buffers)
    gst_buffer_unref (b);
  buffers.clear ();
}

/* A real pipeline (gst-launch syntax) with `rt` aimed at the emulator. */
struct Pipeline {
  Pipeline (emu::Server &server, const std::string &description)
  {
    std::string desc = description;
    std::string at = "yandexrealtime name=rt";
    auto pos = desc.find (at);
    fail_unless (pos != std::string::npos, "no yandexrealtime name=rt in %s", desc.c_str ());
    desc.insert (pos + at.size (), " api-key=test-key location=" + server.url ());
    GError *error = nullptr;
    pipeline = gst_parse_launch (desc.c_str (), &error);
    /* A missing element is a recoverable error: a pipeline without it. */
    fail_unless (pipeline != nullptr && error == nullptr, "%s", error ? error->message : "?");
  }
  ~Pipeline ()
  {
    gst_element_set_state (pipeline, GST_STATE_NULL);
    gst_object_unref (pipeline);
  }
  GstElement *get (const char *name) const
  {
    GstElement *e = gst_bin_get_by_name (GST_BIN (pipeline), name);
    fail_unless (e != nullptr, "no element %s", name);
    gst_object_unref (e);  /* the pipeline keeps it */
    return e;
  }
  /* A live pipeline must reach PLAYING promptly, whatever it waits for. */
  void play_live () const
  {
    fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    GstState state;
    fail_unless_equals_int (gst_element_get_state (pipeline, &state, nullptr, 3 * GST_SECOND),
        GST_STATE_CHANGE_SUCCESS);
    fail_unless_equals_int (state, GST_STATE_PLAYING);
  }
  GstClockTime running_time () const
  {
    GstClock *clock = gst_element_get_clock (pipeline);
    fail_unless (clock != nullptr);
    GstClockTime now = gst_clock_get_time (clock) - gst_element_get_base_time (pipeline);
    gst_object_unref (clock);
    return now;
  }
  GstElement *pipeline = nullptr;
};

/* GAP events seen by a pad, from any streaming thread. */
struct Gaps {
  std::mutex lock;
  std::vector<std::pair<GstClockTime, GstClockTime>> seen;  /* start, duration */

  static GstPadProbeReturn probe (GstPad *, GstPadProbeInfo *info, gpointer data)
  {
    GstEvent *ev = GST_PAD_PROBE_INFO_EVENT (info);
    if (GST_EVENT_TYPE (ev) == GST_EVENT_GAP) {
      auto *self = static_cast<Gaps *> (data);
      GstClockTime start, duration;
      gst_event_parse_gap (ev, &start, &duration);
      std::lock_guard<std::mutex> guard (self->lock);
      self->seen.emplace_back (start, duration);
    }
    return GST_PAD_PROBE_OK;
  }
  void watch (GstElement *element, const char *pad_name)
  {
    GstPad *pad = gst_element_get_static_pad (element, pad_name);
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, probe, this, nullptr);
    gst_object_unref (pad);
  }
  /* End of the GAPs so far, checking they are contiguous from 0. */
  GstClockTime covered ()
  {
    std::lock_guard<std::mutex> guard (lock);
    GstClockTime end = 0;
    for (auto &[start, duration] : seen) {
      fail_unless_equals_clocktime (start, end);
      fail_unless (GST_CLOCK_TIME_IS_VALID (duration));
      end = start + duration;
    }
    return end;
  }
};

/* A mono S16LE WAV file of `samples` in a fresh temporary directory;
 * removed with the object. */
struct WavFile {
  WavFile (const std::vector<gint16> &samples, guint rate)
  {
    dir = g_dir_make_tmp ("yrt-outputs-XXXXXX", nullptr);
    fail_unless (dir != nullptr);
    path = std::string (dir) + "/question.wav";
    guint32 data = samples.size () * 2;
    GByteArray *bytes = g_byte_array_new ();
    auto put = [bytes] (const void *p, guint n) { g_byte_array_append (bytes, (const guint8 *) p, n); };
    auto u32 = [&put] (guint32 v) { guint32 le = GUINT32_TO_LE (v); put (&le, 4); };
    auto u16 = [&put] (guint16 v) { guint16 le = GUINT16_TO_LE (v); put (&le, 2); };
    put ("RIFF", 4); u32 (36 + data); put ("WAVEfmt ", 8); u32 (16);
    u16 (1); u16 (1); u32 (rate); u32 (rate * 2); u16 (2); u16 (16);
    put ("data", 4); u32 (data);
    put (samples.data (), data);
    fail_unless (g_file_set_contents (path.c_str (), (const gchar *) bytes->data, bytes->len, nullptr));
    g_byte_array_unref (bytes);
  }
  ~WavFile ()
  {
    g_unlink (path.c_str ());
    g_rmdir (dir);
    g_free (dir);
  }
  gchar *dir;
  std::string path;
};

/* The first EOS or ERROR on the pipeline's bus within `timeout`, or nullptr;
 * the element messages before it go to `elements` when given. */
inline GstMessage *wait_end (GstElement *pipeline, GstClockTime timeout,
    std::vector<GstMessage *> *elements = nullptr)
{
  GstBus *bus = gst_element_get_bus (pipeline);
  gint64 deadline = g_get_monotonic_time () + (gint64) (timeout / GST_USECOND);
  GstMessage *msg = nullptr;
  while (!msg) {
    gint64 left = MAX (deadline - g_get_monotonic_time (), 0);
    msg = gst_bus_timed_pop_filtered (bus, left * GST_USECOND, (GstMessageType) (
        GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_ELEMENT));
    if (!msg)
      break;
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ELEMENT) {
      if (elements)
        elements->push_back (msg);
      else
        gst_message_unref (msg);
      msg = nullptr;
    }
  }
  gst_object_unref (bus);
  return msg;
}

/* Buffers a pad passed, counted from any streaming thread. */
inline GstPadProbeReturn count_buffer (GstPad *, GstPadProbeInfo *, gpointer data)
{
  g_atomic_int_inc (static_cast<gint *> (data));
  return GST_PAD_PROBE_OK;
}

}  // namespace yrt::test
