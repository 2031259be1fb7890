/* The output side as a GStreamer element: preroll of live pipelines, flow
 * returns, caps negotiation, text pads. */
#include "harness.h"

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

static Suite *outputs_suite (void)
{
  Suite *s = suite_create ("yandexrealtime-outputs");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_silent_live_pipeline_plays);
  return s;
}

GST_CHECK_MAIN (outputs);
