/* The output side as a GStreamer element: preroll of live pipelines, flow
 * returns, caps negotiation, text pads. */
#include "harness.h"

#include <glib/gstdio.h>

#include <algorithm>

using namespace yrt::test;
namespace emu = yrt::emu;

namespace {

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
    fail_unless (pipeline != nullptr, "%s", error ? error->message : "?");
    g_clear_error (&error);
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

/* The first EOS or ERROR on the pipeline's bus within `timeout`, or nullptr. */
GstMessage *wait_end (GstElement *pipeline, GstClockTime timeout)
{
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, timeout,
      (GstMessageType) (GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  gst_object_unref (bus);
  return msg;
}

/* Buffers a pad passed, counted from any streaming thread. */
GstPadProbeReturn count_buffer (GstPad *, GstPadProbeInfo *, gpointer data)
{
  g_atomic_int_inc (static_cast<gint *> (data));
  return GST_PAD_PROBE_OK;
}

/* Downstream that takes one buffer, then says EOS. */
GstPadProbeReturn eos_after_one (GstPad *, GstPadProbeInfo *info, gpointer data)
{
  if (g_atomic_int_add (static_cast<gint *> (data), 1) == 0)
    return GST_PAD_PROBE_OK;
  gst_buffer_unref (GST_PAD_PROBE_INFO_BUFFER (info));
  GST_PAD_PROBE_INFO_DATA (info) = nullptr;
  GST_PAD_PROBE_INFO_FLOW_RETURN (info) = GST_FLOW_EOS;
  return GST_PAD_PROBE_HANDLED;
}

}  // namespace

/* Defect: nothing left src until the first answer, so a live sink never
 * prerolled and the pipeline stayed ASYNC on its way to PLAYING. */
GST_START_TEST (test_silent_live_pipeline_plays)
{
  emu::Server server;
  fail_unless (server.start () != 0);
  {
    Pipeline p (server, "audiotestsrc is-live=true wave=silence ! yandexrealtime name=rt "
        "! fakesink name=sink sync=true");
    Gaps gaps;
    gaps.watch (p.get ("sink"), "sink");
    fail_unless (gst_element_set_state (p.pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    GstState state;
    fail_unless_equals_int (gst_element_get_state (p.pipeline, &state, nullptr, 3 * GST_SECOND),
        GST_STATE_CHANGE_SUCCESS);
    fail_unless_equals_int (state, GST_STATE_PLAYING);

    /* Idle: GAPs from 0 keep up with the clock. */
    gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
    while (gaps.covered () < 500 * GST_MSECOND && g_get_monotonic_time () < deadline)
      g_usleep (10000);
    GstClockTime covered = gaps.covered ();
    GstClockTime now = p.running_time ();
    fail_unless (covered >= 500 * GST_MSECOND, "GAPs cover only %" GST_TIME_FORMAT,
        GST_TIME_ARGS (covered));
    fail_unless (covered <= now && now - covered < 300 * GST_MSECOND,
        "GAPs end at %" GST_TIME_FORMAT ", running time %" GST_TIME_FORMAT,
        GST_TIME_ARGS (covered), GST_TIME_ARGS (now));
  }
  server.stop ();
}
GST_END_TEST;

/* Defect: a GST_FLOW_EOS from downstream paused the src task and nothing
 * else: no EOS went on, and upstream kept feeding the element. */
GST_START_TEST (test_downstream_eos_reaches_upstream)
{
  Fixture f;
  f.start ();
  gint buffers = 0;
  GstPad *src = gst_element_get_static_pad (f.element, "src");
  gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER, eos_after_one, &buffers, nullptr);
  gst_object_unref (src);
  f.push (turn (24000));

  /* The src task ends the stream like a source would... */
  bool eos = false;
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (!eos && g_get_monotonic_time () < deadline) {
    GstEvent *ev = gst_harness_try_pull_event (f.h);
    if (!ev) {
      g_usleep (10000);
      continue;
    }
    eos = GST_EVENT_TYPE (ev) == GST_EVENT_EOS;
    gst_event_unref (ev);
  }
  fail_unless (eos, "no EOS after downstream returned EOS");
  fail_unless_equals_int (g_atomic_int_get (&buffers), 2);
  fail_unless_equals_int (gst_harness_buffers_in_queue (f.h), 1);

  /* ...and upstream hears it at its next buffer. */
  GstBuffer *more = gst_buffer_new_allocate (nullptr, 960, nullptr);
  gst_buffer_memset (more, 0, 0, 960);
  fail_unless_equals_int (gst_harness_push (f.h, more), GST_FLOW_EOS);
}
GST_END_TEST;

/* The pipeline: filesrc ! wavparse ! yandexrealtime ! identity
 * eos-after=N ! fakesink ends at once, as with audioconvert in its place. */
GST_START_TEST (test_downstream_eos_ends_a_file_pipeline)
{
  emu::Server server;
  fail_unless (server.start () != 0);
  {
    std::vector<gint16> six_turns;
    for (int i = 0; i < 6; i++)
      six_turns = six_turns + turn (24000);
    WavFile wav (six_turns, 24000);
    Pipeline p (server, "filesrc location=" + wav.path + " ! wavparse ! yandexrealtime name=rt "
        "! identity eos-after=5 ! fakesink name=sink sync=false");
    gint buffers = 0;
    GstPad *pad = gst_element_get_static_pad (p.get ("sink"), "sink");
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, count_buffer, &buffers, nullptr);
    gst_object_unref (pad);
    fail_unless (gst_element_set_state (p.pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    GstMessage *end = wait_end (p.pipeline, 20 * GST_SECOND);
    fail_unless (end != nullptr, "the pipeline did not end");
    fail_unless_equals_int (GST_MESSAGE_TYPE (end), GST_MESSAGE_EOS);
    gst_message_unref (end);
    fail_unless (g_atomic_int_get (&buffers) < 5, "%d buffers", buffers);
  }
  server.stop ();
}
GST_END_TEST;

/* A harness around yandexrealtime ! `sink_caps` (a capsfilter), started like
 * Fixture::start. */
static void start_with_sink_caps (Fixture &f, const char *sink_caps)
{
  std::string desc = "yandexrealtime name=rt api-key=test-key location=" + f.server.url () +
      " ! capsfilter caps=\"" + sink_caps + "\"";
  GError *error = nullptr;
  f.element = gst_parse_bin_from_description (desc.c_str (), TRUE, &error);
  fail_unless (f.element != nullptr, "%s", error ? error->message : "?");
  f.bus = gst_bus_new ();
  gst_bus_set_sync_handler (f.bus, Fixture::check_against_docs, &f, nullptr);
  gst_element_set_bus (f.element, f.bus);
  f.h = gst_harness_new_with_element (f.element, "sink", "src");
  gst_object_unref (f.element);
  gst_harness_play (f.h);
  gst_harness_set_src_caps_str (f.h, kLiveCaps);
}

static guint output_rate_asked (const emu::Server &server)
{
  JsonNode *node = json_from_string (server.session_update_json (0).c_str (), nullptr);
  fail_unless (node != nullptr);
  JsonObject *format = json_object_get_object_member (json_object_get_object_member (
          json_object_get_object_member (json_node_get_object (node), "audio"), "output"), "format");
  guint rate = (guint) json_object_get_int_member (format, "rate");
  json_node_unref (node);
  return rate;
}

/* Defect: src offered 8000-48000 whatever it would push, so a mismatch
 * linked and failed later with a bare not-negotiated.  Unset, output-rate
 * follows downstream: the service is asked for the rate downstream takes. */
GST_START_TEST (test_output_rate_follows_downstream)
{
  struct Case { const char *sink_caps; guint rate; } cases[] = {
    {"audio/x-raw,rate=48000", 48000},
    {"audio/x-raw,rate=(int){16000,22050}", 22050},  /* the nearest to 44100 */
    {"audio/x-raw,rate=(int)[8000,96000]", 44100},   /* the default when it fits */
  };
  for (const Case &c : cases) {
    Fixture f;
    start_with_sink_caps (f, c.sink_caps);
    f.push (turn (24000));
    std::vector<GstBuffer *> out = f.end_input ();
    fail_unless_equals_int (output_rate_asked (f.server), c.rate);
    fail_unless_equals_int (samples_in (out), c.rate);  /* the 1 s answer */
    GstCaps *caps = gst_pad_get_current_caps (f.h->sinkpad);
    gint rate = 0;
    gst_structure_get_int (gst_caps_get_structure (caps, 0), "rate", &rate);
    fail_unless_equals_int (rate, c.rate);
    gst_caps_unref (caps);
    unref_all (out);
  }
}
GST_END_TEST;

/* Set, output-rate is all src offers: a mismatch fails when linking, and
 * where linking could not tell (the capsfilter changed after it), at
 * READY→PAUSED with an error naming output-rate. */
GST_START_TEST (test_output_rate_mismatch_fails_early)
{
  GError *error = nullptr;
  GstElement *p = gst_parse_launch ("yandexrealtime output-rate=44100 "
      "! audio/x-raw,rate=48000 ! fakesink", &error);
  fail_unless (error != nullptr, "linked a 44100 Hz src to a 48000 Hz sink");
  fail_unless (g_error_matches (error, GST_PARSE_ERROR, GST_PARSE_ERROR_LINK), "%s", error->message);
  g_clear_error (&error);
  if (p)
    gst_object_unref (p);

  emu::Server server;
  fail_unless (server.start () != 0);
  {
    Pipeline pipeline (server, "yandexrealtime name=rt output-rate=44100 ! capsfilter name=cf "
        "! fakesink");
    GstCaps *caps = gst_caps_from_string ("audio/x-raw,rate=48000");
    g_object_set (pipeline.get ("cf"), "caps", caps, nullptr);
    gst_caps_unref (caps);
    fail_unless_equals_int (gst_element_set_state (pipeline.pipeline, GST_STATE_PAUSED),
        GST_STATE_CHANGE_FAILURE);
    GstMessage *msg = wait_end (pipeline.pipeline, 0);
    fail_unless (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR);
    GError *err = nullptr;
    gst_message_parse_error (msg, &err, nullptr);
    fail_unless (g_error_matches (err, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION));
    fail_unless (strstr (err->message, "output-rate") != nullptr, "%s", err->message);
    g_error_free (err);
    gst_message_unref (msg);
  }
  server.stop ();
}
GST_END_TEST;

static Suite *outputs_suite (void)
{
  Suite *s = suite_create ("yandexrealtime-outputs");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_silent_live_pipeline_plays);
  tcase_add_test (tc, test_downstream_eos_reaches_upstream);
  tcase_add_test (tc, test_downstream_eos_ends_a_file_pipeline);
  tcase_add_test (tc, test_output_rate_follows_downstream);
  tcase_add_test (tc, test_output_rate_mismatch_fails_early);
  return s;
}

GST_CHECK_MAIN (outputs);
