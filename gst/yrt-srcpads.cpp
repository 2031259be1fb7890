/* Outputs: the element's output pads and their tasks (see yrt-srcpads.h). */
#include "yrt-srcpads.h"

#include "yrt-debug.h"
#include "yrt-settings.h"

namespace yrt {

Outputs::Outputs (OutputsHost &host, Playout &playout, GstElement *element)
    : host_ (host), playout_ (playout), element_ (element), rate_ (YRT_DEFAULT_OUTPUT_RATE)
{
  src_.pop = [this] (const Playout::Clock &now) { return playout_.pop (now); };
  src_.set_flushing = [this] (bool on) { playout_.set_flushing (on); };
  src_.reset = [this] { playout_.reset (); };
  src_.caps = [this] { return audio_caps (); };
  wire (text_, answer_text_);
  wire (transcript_, transcript_text_);
  for (Output *o : all ())
    o->outputs = this;
  flows_ = gst_flow_combiner_new ();
}

Outputs::~Outputs ()
{
  gst_flow_combiner_free (flows_);
}

void Outputs::wire (Output &o, TextTrack &track)
{
  o.pop = [&track] (const Playout::Clock &now) { return track.pop (now); };
  o.set_flushing = [&track] (bool on) { track.set_flushing (on); };
  o.reset = [&track] { track.reset (); };
  o.caps = [] { return gst_caps_from_string (YRT_TEXT_CAPS); };
  o.linked = [&track] { track.owe_gap (); };
}

Outputs::Held Outputs::held ()
{
  Held out;
  std::lock_guard<std::mutex> guard (lock_);
  for (Output *o : all ())
    if (GstPad *pad = o->pad.load ())
      out.emplace_back (o, GST_PAD (gst_object_ref (pad)));
  return out;
}

Output *Outputs::output_of (GstPad *pad)
{
  for (Output *o : all ())
    if (o->pad.load () == pad)
      return o;
  return nullptr;
}

/* ---- routing ---- */

/* Where text without audio goes: live, now; a file, after the question. */
GstClockTime Outputs::text_without_audio_pts (const TextTrack &track)
{
  if (host_.input_live ())
    return host_.running_time ();
  GstClockTime at = track.end ();
  return GST_CLOCK_TIME_IS_VALID (last_speech_end_) ? MAX (at, last_speech_end_) : at;
}

/* Text goes into a text pad's queue only while the pad exists. */
void Outputs::route (const output::Event &event)
{
  std::lock_guard<std::mutex> guard (text_lock_);
  if (text_.pad.load ()) {
    if (auto *e = std::get_if<output::AnswerText> (&event)) {
      if (e->final)
        captions_.whole (e->response_id, e->text);
      else
        captions_.piece (e->response_id, e->text, playout_.answer_span (e->response_id));
    } else if (auto *e = std::get_if<output::ResponseDone> (&event)) {
      captions_.done (e->response_id, e->status, playout_.answer_span (e->response_id),
          text_without_audio_pts (answer_text_));
    }
  }
  if (auto *e = std::get_if<output::SpeechStopped> (&event))
    last_speech_end_ = host_.input_time (e->input_position);
  if (!transcript_.pad.load ())
    return;
  if (auto *e = std::get_if<output::SpeechStarted> (&event)) {
    transcripts_.speech_started (e->item_id, host_.input_time (e->input_position));
  } else if (auto *e = std::get_if<output::SpeechStopped> (&event)) {
    transcripts_.speech_stopped (e->item_id, last_speech_end_);
  } else if (auto *e = std::get_if<output::Transcript> (&event)) {
    if (e->final)
      transcripts_.transcript (e->item_id, e->text, text_without_audio_pts (transcript_text_));
  } else if (std::holds_alternative<output::ResponseDone> (event)) {
    transcripts_.release ();
  }
}

/* ---- src's caps ---- */

static GstCaps *caps_at_rate (guint rate)
{
  return gst_caps_new_simple ("audio/x-raw", "format", G_TYPE_STRING, "S16LE",
      "channels", G_TYPE_INT, 1, "rate", G_TYPE_INT, (gint) rate,
      "layout", G_TYPE_STRING, "interleaved", nullptr);
}

GstCaps *Outputs::audio_caps ()
{
  return caps_at_rate (playout_.rate ());
}

gboolean Outputs::answer_caps_query (GstQuery *query, GstCaps *caps)
{
  GstCaps *filter;
  gst_query_parse_caps (query, &filter);
  if (filter) {
    GstCaps *both = gst_caps_intersect_full (filter, caps, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (caps);
    caps = both;
  }
  gst_query_set_caps_result (query, caps);
  gst_caps_unref (caps);
  return TRUE;
}

GstCaps *Outputs::src_caps (guint user_rate)
{
  GstPad *pad = src_.pad.load ();
  if (GstCaps *current = gst_pad_get_current_caps (pad))
    return current;
  if (user_rate)
    return caps_at_rate (user_rate);
  return gst_pad_get_pad_template_caps (pad);
}

bool Outputs::negotiate_rate (guint user_rate, guint asked_rate)
{
  GstPad *pad = src_.pad.load ();
  GstCaps *ours = src_caps (user_rate);
  GstCaps *allowed = gst_pad_peer_query_caps (pad, ours);
  bool linked = gst_pad_is_linked (pad);
  bool ok = true;
  if (linked && gst_caps_is_empty (allowed)) {
    if (user_rate)
      GST_ELEMENT_ERROR (element_, CORE, NEGOTIATION,
          ("Downstream does not take the output-rate of %u Hz", asked_rate),
          ("set output-rate to a rate downstream accepts, leave it unset to "
           "negotiate, or put audioresample after the element; downstream "
           "rejected %" GST_PTR_FORMAT, ours));
    else
      GST_ELEMENT_ERROR (element_, CORE, NEGOTIATION,
          ("Downstream takes no rate the element can produce"),
          ("the src pad produces %" GST_PTR_FORMAT "; put audioresample after "
           "the element", ours));
    ok = false;
  } else if (!user_rate) {
    GstCaps *preferred = caps_at_rate (YRT_DEFAULT_OUTPUT_RATE);
    guint rate = YRT_DEFAULT_OUTPUT_RATE;
    if (linked && !gst_caps_can_intersect (allowed, preferred)) {
      allowed = gst_caps_make_writable (allowed);
      allowed = gst_caps_truncate (allowed);
      GstStructure *st = gst_caps_get_structure (allowed, 0);
      gst_structure_fixate_field_nearest_int (st, "rate", YRT_DEFAULT_OUTPUT_RATE);
      gint r = YRT_DEFAULT_OUTPUT_RATE;
      gst_structure_get_int (st, "rate", &r);
      rate = (guint) r;
    }
    gst_caps_unref (preferred);
    rate_ = rate;
  }
  if (user_rate)
    rate_ = user_rate;
  GST_INFO_OBJECT (element_, "src at %u Hz (%s), the service asked for %u Hz", rate_.load (),
      user_rate ? "output-rate" : "negotiated", asked_rate);
  gst_caps_unref (allowed);
  gst_caps_unref (ours);
  return ok;
}

/* ---- the tasks ---- */

void Outputs::push_sticky_events (Output &o, GstPad *pad)
{
  if (o.need_stream_start) {
    gchar *id = gst_pad_create_stream_id (pad, element_, o.stream);
    GstEvent *start = gst_event_new_stream_start (id);
    gst_event_set_group_id (start, group_id_);  /* one group: the outputs */
    g_free (id);
    gst_pad_push_event (pad, start);
    GstCaps *caps = o.caps ();
    gst_pad_push_event (pad, gst_event_new_caps (caps));
    gst_caps_unref (caps);
    o.need_stream_start = false;
  }
  if (o.need_segment) {
    GstSegment segment;
    gst_segment_init (&segment, GST_FORMAT_TIME);
    gst_pad_push_event (pad, gst_event_new_segment (&segment));
    o.need_segment = false;
  }
}

/* What a pad's push returned, combined over the output pads: the chain
 * function returns that upstream.  An unlinked pad goes on (its output is
 * dropped) while another takes data; anything else stops it as a source
 * would: EOS pushed, after an error message for anything but EOS. */
void Outputs::handle_flow (GstPad *pad, GstFlowReturn ret)
{
  GstFlowReturn combined;
  {
    std::lock_guard<std::mutex> guard (flow_lock_);
    combined = gst_flow_combiner_update_pad_flow (flows_, pad, ret);
  }
  flow_ = combined;
  if (ret == GST_FLOW_OK || (ret == GST_FLOW_NOT_LINKED && combined != GST_FLOW_NOT_LINKED))
    return;
  GST_DEBUG_OBJECT (pad, "pausing task: %s", gst_flow_get_name (ret));
  if (ret == GST_FLOW_NOT_LINKED || ret < GST_FLOW_EOS)
    GST_ELEMENT_FLOW_ERROR (element_, ret);
  gst_pad_push_event (pad, gst_event_new_eos ());
  gst_pad_pause_task (pad);
}

/* The end of the answers is the end of their text too. */
void Outputs::on_eos (Output &o)
{
  if (&o != &src_)
    return;
  GST_INFO_OBJECT (element_, "all answers pushed, EOS");
  answer_text_.finish ();
  transcript_text_.finish ();
}

/* The task of every output pad. */
void Outputs::loop (gpointer data)
{
  Output &o = *static_cast<Output *> (data);
  Outputs &self = *o.outputs;
  GstPad *pad = o.pad.load ();
  PlayoutItem item = o.pop ([&self] { return self.host_.running_time (); });
  if (item.kind != PlayoutItem::Kind::Flushing)
    self.push_sticky_events (o, pad);

  switch (item.kind) {
    case PlayoutItem::Kind::Buffer:
      if (&o == &self.src_)
        YRT_TRACE ("downlink-out", self.trace_out_++, g_get_monotonic_time ());
    {
      GstFlowReturn ret = gst_pad_push (pad, item.buffer);
      if (ret == GST_FLOW_FLUSHING && &o == &self.src_ && self.src_flushing_)
        break;  /* cut by a barge-in: the task goes on */
      self.handle_flow (pad, ret);
      break;
    }
    case PlayoutItem::Kind::Flush:
      /* Barge-in: flush_src pushed FLUSH_START; downstream takes data again. */
      gst_pad_push_event (pad, gst_event_new_flush_stop (FALSE));
      self.src_flushing_ = false;
      o.need_segment = true;
      break;
    case PlayoutItem::Kind::Gap:
      gst_pad_push_event (pad, gst_event_new_gap (item.gap_start, item.gap_duration));
      break;
    case PlayoutItem::Kind::Eos:
      self.on_eos (o);
      gst_pad_push_event (pad, gst_event_new_eos ());
      gst_pad_pause_task (pad);
      break;
    case PlayoutItem::Kind::Flushing:
      gst_pad_pause_task (pad);
      break;
  }
}

/* ---- pads ---- */

void Outputs::set_src (GstPad *pad)
{
  src_.pad = pad;
  std::lock_guard<std::mutex> guard (flow_lock_);
  gst_flow_combiner_add_pad (flows_, pad);
}

GstPad *Outputs::request (GstPadTemplate *templ, void (*setup) (GstPad *))
{
  GstPad *pad = nullptr;
  {
    std::lock_guard<std::mutex> guard (lock_);
    for (Output *o : all ()) {
      if (g_strcmp0 (o->name, GST_PAD_TEMPLATE_NAME_TEMPLATE (templ)) != 0 || o->pad.load ())
        continue;
      pad = gst_pad_new_from_template (templ, o->name);
      setup (pad);
      o->need_stream_start = o->need_segment = true;
      o->pad = pad;
    }
  }
  if (!pad) {
    GST_WARNING_OBJECT (element_, "%s is already requested",
        GST_PAD_TEMPLATE_NAME_TEMPLATE (templ));
    return nullptr;
  }
  std::lock_guard<std::mutex> guard (flow_lock_);
  gst_flow_combiner_add_pad (flows_, pad);
  return pad;
}

bool Outputs::release (GstPad *pad)
{
  Output *o = output_of (pad);
  if (!o || o == &src_)
    return false;
  gst_pad_set_active (pad, FALSE);
  {
    std::lock_guard<std::mutex> guard (lock_);
    o->pad = nullptr;
  }
  {
    std::lock_guard<std::mutex> guard (flow_lock_);
    gst_flow_combiner_remove_pad (flows_, pad);
  }
  o->reset ();
  return true;
}

gboolean Outputs::activate (GstPad *pad, GstPadMode mode, gboolean active)
{
  Output *o = output_of (pad);
  if (mode != GST_PAD_MODE_PUSH || !o)
    return FALSE;
  if (active) {
    {
      std::lock_guard<std::mutex> guard (flow_lock_);
      gst_flow_combiner_reset (flows_);
    }
    flow_ = GST_FLOW_OK;
    o->set_flushing (false);
    return gst_pad_start_task (pad, loop, o, nullptr);
  }
  o->set_flushing (true);
  return gst_pad_stop_task (pad);
}

/* A text pad requested while running may have pushed its first GAP before
 * it was linked: its new peer gets one too. */
void Outputs::linked (GstPad *pad)
{
  Output *o = output_of (pad);
  if (o && o->linked)
    o->linked ();
}

/* ---- state ---- */

void Outputs::start ()
{
  answer_text_.configure (false);
  transcript_text_.configure (false);
  for (Output *o : all ()) {
    o->reset ();
    o->need_stream_start = o->need_segment = true;
  }
  {
    std::lock_guard<std::mutex> guard (text_lock_);
    captions_.configure (false);
    captions_.reset ();
    transcripts_.reset ();
    last_speech_end_ = GST_CLOCK_TIME_NONE;
  }
  group_id_ = gst_util_group_id_next ();
}

void Outputs::set_live (bool live)
{
  {
    std::lock_guard<std::mutex> guard (text_lock_);
    captions_.configure (live);
  }
  answer_text_.configure (live);
  transcript_text_.configure (live);
}

void Outputs::set_flushing (bool flushing)
{
  for (Output *o : all ())
    o->set_flushing (flushing);
}

void Outputs::reset ()
{
  for (Output *o : all ())
    o->reset ();
}

void Outputs::flush_src ()
{
  src_flushing_ = true;
  gst_pad_push_event (src_.pad.load (), gst_event_new_flush_start ());
  playout_.flush_downstream ();  /* after: its Flush brings FLUSH_STOP */
}

gboolean Outputs::flush_start (GstEvent *event)
{
  gboolean ok = TRUE;
  for (auto &[o, pad] : held ()) {
    o->set_flushing (true);
    ok &= gst_pad_push_event (pad, gst_event_ref (event));
    gst_object_unref (pad);
  }
  gst_event_unref (event);
  return ok;
}

Outputs::Held Outputs::stop_tasks ()
{
  Held pads = held ();
  for (auto &[o, pad] : pads)
    gst_pad_stop_task (pad);
  return pads;
}

/* The outputs start again from 0, each with a new segment. */
void Outputs::forget ()
{
  for (Output *o : all ()) {
    o->reset ();
    o->need_segment = true;
  }
  src_flushing_ = false;  /* a barge-in's Flush went with the playout */
  {
    std::lock_guard<std::mutex> guard (text_lock_);
    captions_.reset ();
    transcripts_.reset ();
    last_speech_end_ = GST_CLOCK_TIME_NONE;
  }
  {
    std::lock_guard<std::mutex> guard (flow_lock_);
    gst_flow_combiner_reset (flows_);
  }
  flow_ = GST_FLOW_OK;
}

gboolean Outputs::restart (Held &pads, GstEvent *event)
{
  gboolean ok = TRUE;
  for (auto &[o, pad] : pads) {
    o->set_flushing (false);
    ok &= gst_pad_push_event (pad, gst_event_ref (event));
    gst_pad_start_task (pad, loop, o, nullptr);
    gst_object_unref (pad);
  }
  pads.clear ();
  gst_event_unref (event);
  return ok;
}

}  // namespace yrt
