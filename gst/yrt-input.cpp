/* Input: the sink pad's audio on its way to the dialog (see yrt-input.h). */
#include "yrt-input.h"

#include "yrt-debug.h"

#include <functional>
#include <optional>

namespace yrt {

InputSwitches InputSwitches::of (const Settings &s)
{
  InputSwitches now;
  now.mute = s.mute;
  now.half_duplex = s.half_duplex;
  const SessionConfig &c = s.session;
  now.trailing_silence_ms =
      c.turn_detection == TurnDetection::ServerVad ? c.silence_duration_ms + 300 : 0;
  return now;
}

/* Hands the uplink's chunks to the dialog, stopping at the first refusal. */
struct Input::ToDialog {
  explicit ToDialog (InputHost &h) : host (h) {}
  void operator() (const guint8 *pcm, gsize size)
  {
    if (result == Dialog::SendResult::Ok)
      result = host.send_audio (pcm, size);
  }
  GstFlowReturn flow () const
  {
    switch (result) {
      case Dialog::SendResult::Ok: return GST_FLOW_OK;
      case Dialog::SendResult::Flushing: return GST_FLOW_FLUSHING;
      default: return GST_FLOW_ERROR;  /* the dialog posted the error */
    }
  }
  InputHost &host;
  Dialog::SendResult result = Dialog::SendResult::Ok;
};

void Input::configure (guint rate, guint chunk_ms, guint quality)
{
  uplink_.set_output (rate, chunk_ms);
  uplink_.set_quality (quality);
  clock_.configure (rate);
  gst_segment_init (&segment_, GST_FORMAT_TIME);
  live_checked_ = false;
  live_ = false;
}

/* Upstream's answer to a LATENCY query; nullopt when it gave none. */
static std::optional<bool> upstream_live (GstPad *sinkpad)
{
  GstQuery *query = gst_query_new_latency ();
  gboolean live = FALSE;
  bool answered = gst_pad_peer_query (sinkpad, query);
  if (answered)
    gst_query_parse_latency (query, &live, nullptr, nullptr);
  gst_query_unref (query);
  return answered ? std::optional<bool> (live) : std::nullopt;
}

bool Input::check_live (GstPad *sinkpad)
{
  if (live_checked_)
    return false;
  live_checked_ = true;
  live_ = upstream_live (sinkpad).value_or (false);
  GST_INFO_OBJECT (element_, "input is %s", live_ ? "live" : "not live");
  return true;
}

bool Input::check_live_early (GstPad *sinkpad)
{
  if (live_checked_ || !upstream_live (sinkpad).value_or (false))
    return false;
  live_checked_ = true;
  live_ = true;
  GST_INFO_OBJECT (element_, "input is live (upstream said so before streaming)");
  return true;
}

/* Sends what is held and, under server VAD, enough silence for the server to
 * close the turn: the end of the input (EOS) or of talking (mute). */
void Input::close_turn (ToDialog &send, guint silence_ms)
{
  uplink_.flush (std::ref (send));
  if (silence_ms > 0 && uplink_.samples_emitted () > 0) {
    uplink_.push_silence (silence_ms, std::ref (send));
    uplink_.flush (std::ref (send));
  }
}

/* `commit` asked for since the last buffer: what came before it goes first. */
void Input::commit_if_asked (ToDialog &send)
{
  if (!host_.take_commit_request ())
    return;
  uplink_.flush (std::ref (send));
  host_.commit_now ();
}

/* Returns whether input is muted; on muting, ends the turn in progress. */
bool Input::update_mute (ToDialog &send, const InputSwitches &now)
{
  if (now.mute && !muted_) {
    GST_DEBUG_OBJECT (element_, "muted: closing the turn in progress");
    close_turn (send, now.trailing_silence_ms);
  }
  muted_ = now.mute;
  return now.mute;
}

/* ---- half-duplex ---- */

/* Running time at which `buffer` was captured; the clock's now without a
 * timestamp. */
GstClockTime Input::running_time_of (GstBuffer *buffer)
{
  GstClockTime pts = GST_BUFFER_PTS (buffer);
  if (GST_CLOCK_TIME_IS_VALID (pts) && segment_.format == GST_FORMAT_TIME) {
    GstClockTime t = gst_segment_to_running_time (&segment_, GST_FORMAT_TIME, pts);
    if (GST_CLOCK_TIME_IS_VALID (t))
      return t;
  }
  return host_.running_time ();
}

EchoGate::Windows EchoGate::update (GstClockTime start, GstClockTime end,
    GstClockTime latency, GstClockTime t0, bool unmuted)
{
  if (start != start_) {
    prev_start_ = GST_CLOCK_TIME_IS_VALID (start_) ? start_ : 0;
    prev_until_ = until_;
    start_ = start;
  }
  until_ = end + latency + kTail;
  Windows w;
  if (unmuted && t0 < until_) {
    w.released = true;
    released_ = start_;
    prev_until_ = 0;
  }
  if (released_ != start_)
    w.answer = {start_, until_};
  w.previous = {prev_start_, prev_until_};
  return w;
}

GstBuffer *silence_between (const GstAudioInfo &info, GstBuffer *buffer, GstClockTime t0,
    GstClockTime from, GstClockTime to)
{
  gsize frames = gst_buffer_get_size (buffer) / info.bpf;
  guint64 first = from > t0 ? gst_util_uint64_scale_ceil (from - t0, info.rate, GST_SECOND) : 0;
  guint64 last = to > t0 ? gst_util_uint64_scale_ceil (to - t0, info.rate, GST_SECOND) : 0;
  last = MIN (last, frames);
  if (first >= last)
    return buffer;
  buffer = gst_buffer_make_writable (buffer);
  GstMapInfo map;
  if (gst_buffer_map (buffer, &map, GST_MAP_WRITE)) {
    gst_audio_format_info_fill_silence (info.finfo, map.data + first * info.bpf,
        (last - first) * info.bpf);
    gst_buffer_unmap (buffer, &map);
  }
  return buffer;
}

/* half-duplex: the service gets silence instead of the answer's echo. */
GstBuffer *Input::gate_echo (GstBuffer *buffer, bool unmuted, const InputSwitches &now)
{
  if (!now.half_duplex)
    return buffer;
  GstClockTime start, end;
  if (!live_ || !host_.pushed_span (start, end))
    return buffer;  /* a file is not played while it is read */
  GstClockTime t0 = running_time_of (buffer);
  EchoGate::Windows w = echo_gate_.update (start, end, host_.downstream_latency (), t0,
      unmuted);
  if (w.released)
    GST_DEBUG_OBJECT (element_, "half-duplex: unmuted during the answer, letting the user talk");
  buffer = silence_between (info_, buffer, t0, w.answer.from, w.answer.to);
  return silence_between (info_, buffer, t0, w.previous.from, w.previous.to);
}

/* Ties the position this buffer's audio gets among the samples sent (what
 * the ledger counts) to its running time, when the two drift apart: at the
 * first buffer and after a discontinuity or mute. */
void Input::anchor (GstBuffer *buffer)
{
  if (!GST_BUFFER_PTS_IS_VALID (buffer))
    return;
  GstClockTime at = gst_segment_to_running_time (&segment_, GST_FORMAT_TIME,
      GST_BUFFER_PTS (buffer));
  guint64 position = uplink_.samples_emitted () + uplink_.samples_held ();
  GstClockTime predicted = clock_.time_of (position);
  if (!GST_CLOCK_TIME_IS_VALID (at))
    return;
  if (!GST_CLOCK_TIME_IS_VALID (predicted) ||
      (at > predicted ? at - predicted : predicted - at) > 10 * GST_MSECOND)
    clock_.anchor (position, at);
}

GstFlowReturn Input::chain (GstBuffer *buffer, GstFlowReturn downstream,
    const InputSwitches &now)
{
  YRT_TRACE ("uplink-in", trace_in_++, g_get_monotonic_time ());
  if (!uplink_.has_input ()) {
    gst_buffer_unref (buffer);
    GST_ELEMENT_ERROR (element_, CORE, NEGOTIATION, ("Audio arrived before its caps"),
        ("upstream must send a CAPS event before the first buffer"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  if (downstream != GST_FLOW_OK) {
    GST_DEBUG_OBJECT (element_, "refusing input: downstream returned %s",
        gst_flow_get_name (downstream));
    gst_buffer_unref (buffer);
    return downstream;
  }
  ToDialog send (host_);
  commit_if_asked (send);
  bool was_muted = muted_;
  if (update_mute (send, now)) {
    gst_buffer_unref (buffer);  /* push-to-talk: nothing goes up while muted */
    return send.flow ();
  }
  anchor (buffer);
  buffer = gate_echo (buffer, was_muted, now);
  bool converted = uplink_.push (buffer, std::ref (send));
  gst_buffer_unref (buffer);
  if (!converted) {
    GST_ELEMENT_ERROR (element_, STREAM, FORMAT, ("Could not convert the input audio"),
        ("mapping or converting an input buffer failed"));
    return GST_FLOW_ERROR;
  }
  return send.flow ();
}

/* More than two channels without a channel-mask are taken as unpositioned
 * (channel-mask=0), as audioconvert takes them, and mixed down equally. */
static gboolean audio_info_from_caps (GstAudioInfo *info, GstCaps *caps)
{
  if (gst_audio_info_from_caps (info, caps))
    return TRUE;
  const GstStructure *s = gst_caps_get_structure (caps, 0);
  gint channels = 0;
  if (!s || !gst_structure_get_int (s, "channels", &channels) || channels <= 2 ||
      gst_structure_has_field (s, "channel-mask"))
    return FALSE;
  GstCaps *unpositioned = gst_caps_copy (caps);
  gst_caps_set_simple (unpositioned, "channel-mask", GST_TYPE_BITMASK, (guint64) 0, nullptr);
  gboolean ok = gst_audio_info_from_caps (info, unpositioned);
  gst_caps_unref (unpositioned);
  return ok;
}

bool Input::set_caps (GstCaps *caps)
{
  GstAudioInfo info;
  std::string why;
  /* What the old converter still holds belongs to the old caps. */
  ToDialog send (host_);
  uplink_.drain_converter (std::ref (send));
  if (!audio_info_from_caps (&info, caps)) {
    GST_ELEMENT_ERROR (element_, STREAM, FORMAT, ("Unusable input caps"),
        ("%" GST_PTR_FORMAT " is not raw interleaved audio", caps));
    return false;
  }
  if (!uplink_.set_input (info, why)) {
    GST_ELEMENT_ERROR (element_, STREAM, FORMAT, ("Unusable input format"),
        ("%s: %" GST_PTR_FORMAT, why.c_str (), caps));
    return false;
  }
  info_ = info;
  GST_INFO_OBJECT (element_, "input %" GST_PTR_FORMAT " (%s)", caps,
      uplink_.passthrough () ? "sent as is" : "converted");
  return true;
}

/* EOS on sink: send what is left (and, under server VAD, enough silence for
 * the server to close the turn); the dialog then waits for the answers. */
void Input::drain (const InputSwitches &now)
{
  ToDialog send (host_);
  commit_if_asked (send);
  if (!muted_)
    close_turn (send, now.trailing_silence_ms);
}

void Input::flush ()
{
  uplink_.reset ();
  echo_gate_ = EchoGate ();
  clock_.reset ();
}

}  // namespace yrt
