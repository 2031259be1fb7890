#include "yrt-text.h"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace yrt {

namespace {
constexpr GstClockTime kMinReading = GST_SECOND;
constexpr GstClockTime kReadingPerChar = 50 * GST_MSECOND;
/* Speech times kept for transcripts still to come. */
constexpr gsize kRememberedSpeech = 16;
/* Anchors kept: one per discontinuity of the input. */
constexpr gsize kAnchors = 256;

GstBuffer *text_buffer (const std::string &text)
{
  return gst_buffer_new_memdup (text.data (), text.size ());
}
}  // namespace

GstClockTime reading_time (const std::string &text)
{
  return kMinReading + kReadingPerChar * g_utf8_strlen (text.c_str (), -1);
}

/* ---- TextTrack ---- */

TextTrack::~TextTrack ()
{
  reset ();
}

void TextTrack::configure (bool live)
{
  std::lock_guard<std::mutex> guard (lock_);
  live_ = live;
  gap_owed_ = live && end_ == 0 && queue_.empty ();
  wake_.notify_all ();
}

void TextTrack::push (const std::string &text, GstClockTime pts, GstClockTime duration)
{
  if (text.empty ())
    return;
  std::lock_guard<std::mutex> guard (lock_);
  GstClockTime floor = std::max (end_, queued_end_);
  if (!GST_CLOCK_TIME_IS_VALID (pts) || pts < floor) {
    GstClockTime late = GST_CLOCK_TIME_IS_VALID (pts) ? floor - pts : 0;
    if (GST_CLOCK_TIME_IS_VALID (duration))
      duration = duration > late ? duration - late : 0;
    pts = floor;
  }
  GstBuffer *buffer = text_buffer (text);
  GST_BUFFER_PTS (buffer) = pts;
  GST_BUFFER_DURATION (buffer) = duration;
  queued_end_ = GST_CLOCK_TIME_IS_VALID (duration) ? pts + duration : pts;
  queue_.push_back (buffer);
  wake_.notify_one ();
}

void TextTrack::hold_gaps (GstClockTime limit)
{
  std::lock_guard<std::mutex> guard (lock_);
  limit_ = limit;
  wake_.notify_one ();
}

void TextTrack::owe_gap ()
{
  std::lock_guard<std::mutex> guard (lock_);
  gap_owed_ = live_;
  wake_.notify_one ();
}

void TextTrack::finish ()
{
  std::lock_guard<std::mutex> guard (lock_);
  eos_ = true;
  wake_.notify_one ();
}

GstClockTime TextTrack::end () const
{
  std::lock_guard<std::mutex> guard (lock_);
  return std::max (end_, queued_end_);
}

PlayoutItem TextTrack::pop (const Playout::Clock &now)
{
  std::unique_lock<std::mutex> lock (lock_);
  for (;;) {
    if (flushing_)
      return PlayoutItem {PlayoutItem::Kind::Flushing};
    if (!queue_.empty () && gap_owed_ && GST_BUFFER_PTS (queue_.front ()) > end_) {
      /* The preroll GAP still goes first, up to the text. */
      PlayoutItem gap;
      idle_gap (end_, gap_owed_, GST_BUFFER_PTS (queue_.front ()), gap);
      return gap;
    }
    if (!queue_.empty ()) {
      PlayoutItem item {PlayoutItem::Kind::Buffer};
      item.buffer = queue_.front ();
      queue_.pop_front ();
      GstClockTime pts = GST_BUFFER_PTS (item.buffer);
      GstClockTime duration = GST_BUFFER_DURATION (item.buffer);
      end_ = std::max (end_, GST_CLOCK_TIME_IS_VALID (duration) ? pts + duration : pts);
      gap_owed_ = false;
      return item;
    }
    if (eos_)
      return PlayoutItem {PlayoutItem::Kind::Eos};
    if (!live_) {
      wake_.wait (lock);
      continue;
    }
    PlayoutItem gap;
    if (idle_gap (end_, gap_owed_, now (), gap, limit_))
      return gap;
    wake_.wait_for (lock, std::chrono::milliseconds (kIdlePollMs));
  }
}

void TextTrack::set_flushing (bool flushing)
{
  std::lock_guard<std::mutex> guard (lock_);
  flushing_ = flushing;
  wake_.notify_all ();
}

void TextTrack::reset ()
{
  std::lock_guard<std::mutex> guard (lock_);
  for (GstBuffer *b : queue_)
    gst_buffer_unref (b);
  queue_.clear ();
  eos_ = false;
  end_ = queued_end_ = 0;
  limit_ = GST_CLOCK_TIME_NONE;
  gap_owed_ = live_;
}

/* ---- Captions ---- */

void Captions::start (const std::string &response_id)
{
  if (response_id == response_id_)
    return;
  response_id_ = response_id;
  waiting_.clear ();
  any_piece_ = false;
  end_ = GST_CLOCK_TIME_NONE;
}

void Captions::stamp (GstClockTime pts, GstClockTime duration)
{
  if (live_)
    track_.push (waiting_, pts, duration);
  else
    stamped_.push_back (Piece {waiting_, pts, duration});
  waiting_.clear ();
  if (GST_CLOCK_TIME_IS_VALID (pts) && GST_CLOCK_TIME_IS_VALID (duration))
    end_ = pts + duration;
}

void Captions::piece (const std::string &response_id, const std::string &text,
    const Span &audio)
{
  start (response_id);
  any_piece_ = true;
  GstClockTime from = GST_CLOCK_TIME_IS_VALID (end_) ? end_ : audio.start;
  if (!waiting_.empty () && GST_CLOCK_TIME_IS_VALID (audio.end) && audio.end > from)
    stamp (from, audio.end - from);
  waiting_ += text;
}

void Captions::whole (const std::string &response_id, const std::string &text)
{
  start (response_id);
  if (!any_piece_)
    waiting_ = text;
  any_piece_ = true;
}

void Captions::done (const std::string &response_id, const std::string &status,
    const Span &audio, GstClockTime no_audio_pts)
{
  if (response_id != response_id_)
    return;
  GstClockTime from = GST_CLOCK_TIME_IS_VALID (end_) ? end_ : audio.start;
  if (!waiting_.empty ()) {
    if (GST_CLOCK_TIME_IS_VALID (audio.end) && audio.end > from)
      stamp (from, audio.end - from);
    else if (!live_ && !stamped_.empty ())
      stamped_.back ().text += waiting_;  /* words after the audio ended */
    else if (GST_CLOCK_TIME_IS_VALID (end_))
      stamp (end_, 0);
    else
      stamp (no_audio_pts, reading_time (waiting_));
  }
  /* A file drops the text of answers whose audio it drops. */
  if (status != "cancelled" && status != "failed")
    for (Piece &p : stamped_)
      track_.push (p.text, p.pts, p.duration);
  reset ();
}

void Captions::reset ()
{
  response_id_.clear ();
  waiting_.clear ();
  stamped_.clear ();
  any_piece_ = false;
  end_ = GST_CLOCK_TIME_NONE;
}

/* ---- Transcripts ---- */

void Transcripts::speech_started (const std::string &item_id, GstClockTime at)
{
  if (speech_.find (item_id) == speech_.end ()) {
    order_.push_back (item_id);
    if (order_.size () > kRememberedSpeech) {
      speech_.erase (order_.front ());
      order_.pop_front ();
    }
  }
  speech_[item_id] = Speech {at, GST_CLOCK_TIME_NONE, false};
  hold ();
}

void Transcripts::speech_stopped (const std::string &item_id, GstClockTime at)
{
  auto it = speech_.find (item_id);
  if (it != speech_.end ())
    it->second.end = at;
}

void Transcripts::transcript (const std::string &item_id, const std::string &text,
    GstClockTime fallback_pts)
{
  auto it = speech_.find (item_id);
  if (it == speech_.end () || !GST_CLOCK_TIME_IS_VALID (it->second.start) ||
      !GST_CLOCK_TIME_IS_VALID (it->second.end) || it->second.end <= it->second.start) {
    track_.push (text, fallback_pts, reading_time (text));
    return;
  }
  Speech &s = it->second;
  s.settled = true;
  /* Audio sent again to a new session is transcribed again: said once. */
  if (!GST_CLOCK_TIME_IS_VALID (transcribed_end_) || s.end > transcribed_end_) {
    track_.push (text, s.start, s.end - s.start);
    transcribed_end_ = s.end;
  }
  hold ();
}

void Transcripts::release ()
{
  for (auto &[id, s] : speech_)
    if (GST_CLOCK_TIME_IS_VALID (s.end))
      s.settled = true;
  hold ();
}

void Transcripts::hold ()
{
  GstClockTime limit = GST_CLOCK_TIME_NONE;
  for (auto &[id, s] : speech_)
    if (!s.settled && GST_CLOCK_TIME_IS_VALID (s.start))
      limit = GST_CLOCK_TIME_IS_VALID (limit) ? MIN (limit, s.start) : s.start;
  track_.hold_gaps (limit);
}

void Transcripts::reset ()
{
  speech_.clear ();
  order_.clear ();
  transcribed_end_ = GST_CLOCK_TIME_NONE;
}

/* ---- InputClock ---- */

void InputClock::configure (guint rate)
{
  std::lock_guard<std::mutex> guard (lock_);
  rate_ = rate;
  anchors_.clear ();
}

void InputClock::anchor (guint64 position, GstClockTime at)
{
  if (!GST_CLOCK_TIME_IS_VALID (at))
    return;
  std::lock_guard<std::mutex> guard (lock_);
  if (!anchors_.empty () && anchors_.back ().position >= position)
    anchors_.pop_back ();  /* nothing was sent since: the newer one holds */
  anchors_.push_back (Anchor {position, at});
  if (anchors_.size () > kAnchors)
    anchors_.pop_front ();
}

GstClockTime InputClock::time_of (guint64 position) const
{
  std::lock_guard<std::mutex> guard (lock_);
  if (anchors_.empty ())
    return GST_CLOCK_TIME_NONE;
  auto it = std::find_if (anchors_.rbegin (), anchors_.rend (),
      [position] (const Anchor &a) { return a.position <= position; });
  const Anchor &a = it != anchors_.rend () ? *it : anchors_.front ();
  if (position < a.position)
    return a.at;
  return a.at + gst_util_uint64_scale (position - a.position, GST_SECOND, rate_);
}

void InputClock::reset ()
{
  std::lock_guard<std::mutex> guard (lock_);
  anchors_.clear ();
}

}  // namespace yrt
