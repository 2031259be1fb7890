#include "yrt-playout.h"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace yrt {

namespace {
/* Live idle time shorter than this is not worth a GAP event. */
constexpr GstClockTime kMinGap = 20 * GST_MSECOND;
/* Arriving audio wakes the task at once; the poll only paces GAPs, and each
 * wake-up costs CPU for every session of a process (docs/performance.md,
 * scale). */
constexpr auto kIdlePoll = std::chrono::milliseconds (kIdlePollMs);
constexpr auto kIdleHeartbeat = std::chrono::milliseconds (kIdleHeartbeatMs);
/* Enough to recognise late deltas and answer duration queries. */
constexpr gsize kRemembered = 32;
}  // namespace

GstClockTime Playout::max_lateness ()
{
  return kMinGap + std::chrono::duration_cast<std::chrono::nanoseconds> (kIdlePoll).count ();
}

bool idle_gap (GstClockTime &end, bool &owed, GstClockTime now, PlayoutItem &gap,
    GstClockTime limit)
{
  if (GST_CLOCK_TIME_IS_VALID (limit) && GST_CLOCK_TIME_IS_VALID (now))
    now = std::min (now, limit);
  bool due = GST_CLOCK_TIME_IS_VALID (now) && now >= end + kMinGap;
  if (!owed && !due)
    return false;
  owed = false;
  if (!GST_CLOCK_TIME_IS_VALID (now) || now < end)
    now = end;
  gap = PlayoutItem {PlayoutItem::Kind::Gap};
  gap.gap_start = end;
  gap.gap_duration = now - end;
  end = now;
  return true;
}

Playout::~Playout ()
{
  clear_queue ();
}

void Playout::configure (guint rate, bool live)
{
  std::lock_guard<std::mutex> guard (lock_);
  rate_ = rate;
  live_ = live;
  reconfigure_resampler_locked ();
  /* Live sinks wait for preroll: a GAP at once lets them reach PLAYING. */
  gap_owed_ = live && offset_ == 0 && next_ts_ == 0;
  wake_.notify_all ();
}

void Playout::set_source_rate (guint source_rate, guint quality)
{
  std::lock_guard<std::mutex> guard (lock_);
  if (source_rate == source_rate_ && quality == quality_)
    return;
  /* An answer in progress keeps what it had at the old rate. */
  if (!resampler_.passthrough ())
    end_audio_locked (resampler_.current ());
  source_rate_ = source_rate;
  quality_ = quality;
  reconfigure_resampler_locked ();
}

void Playout::reconfigure_resampler_locked ()
{
  guint from = source_rate_ ? source_rate_ : rate_;
  if (from != resampler_.in_rate () || rate_ != resampler_.out_rate ())
    resampler_.configure (from, rate_, quality_);
}

Playout::Answer *Playout::find_answer (const std::string &response_id)
{
  for (Answer &a : answers_)
    if (a.response_id == response_id)
      return &a;
  return nullptr;
}

const Playout::Answer *Playout::find_answer (const std::string &response_id) const
{
  return const_cast<Playout *> (this)->find_answer (response_id);
}

gsize Playout::push_audio (const std::string &response_id,
    const std::string &item_id, const guint8 *data, gsize size,
    GstClockTime arrival)
{
  std::lock_guard<std::mutex> guard (lock_);
  if (std::find (ignored_.begin (), ignored_.end (), response_id) != ignored_.end ())
    return 0;
  Answer *answer = &remember (response_id, item_id);
  if (!GST_CLOCK_TIME_IS_VALID (answer->planned_start)) {
    answer->planned_start = planned_end_locked ();
    if (live_ && GST_CLOCK_TIME_IS_VALID (arrival))
      answer->planned_start = std::max (answer->planned_start, arrival);
  }

  /* A sample split across two deltas is joined, never lost or padded. */
  gsize total = size + (answer->has_odd_byte ? 1 : 0);
  gsize even = total & ~(gsize) 1;
  if (!resampler_.passthrough ())
    return convert_locked (response_id, data, size, arrival);
  if (even > 0) {
    GstBuffer *buffer = gst_buffer_new_allocate (nullptr, even, nullptr);
    GstMapInfo map;
    gst_buffer_map (buffer, &map, GST_MAP_WRITE);
    guint8 *out = map.data;
    if (answer->has_odd_byte)
      *out++ = answer->odd_byte;
    memcpy (out, data, even - (answer->has_odd_byte ? 1 : 0));
    gst_buffer_unmap (buffer, &map);
    queue_.push_back (Chunk {response_id, item_id, buffer, arrival});
    wake_.notify_one ();
  }
  answer->has_odd_byte = total % 2 == 1;
  if (answer->has_odd_byte)
    answer->odd_byte = data[size - 1];
  answer->received += even / 2;
  return even / 2;
}

/* push_audio at another rate than the src pad's: whole samples through the
 * answer's resampler, its odd byte kept for the next delta. */
gsize Playout::convert_locked (const std::string &response_id, const guint8 *data, gsize size,
    GstClockTime arrival)
{
  Answer *answer = find_answer (response_id);
  std::vector<gint16> in;
  in.reserve ((size + 1) / 2);
  gsize pos = 0;
  if (answer->has_odd_byte && size > 0) {
    guint8 pair[2] = {answer->odd_byte, data[0]};
    gint16 v;
    memcpy (&v, pair, 2);
    in.push_back (GINT16_FROM_LE (v));
    pos = 1;
    answer->has_odd_byte = false;
  }
  for (; pos + 1 < size; pos += 2) {
    gint16 v;
    memcpy (&v, data + pos, 2);
    in.push_back (GINT16_FROM_LE (v));
  }
  if (pos < size) {
    answer->has_odd_byte = true;
    answer->odd_byte = data[pos];
  }
  std::vector<gint16> out, tail;
  std::string previous = resampler_.current ();
  resampler_.process (response_id, in.data (), in.size (), out, tail);
  /* The previous answer's last samples go before this one's. */
  enqueue_locked (previous, tail.data (), tail.size (), arrival);
  enqueue_locked (response_id, out.data (), out.size (), arrival);
  return out.size ();
}

void Playout::enqueue_locked (const std::string &response_id, const gint16 *pcm, gsize n,
    GstClockTime arrival)
{
  Answer *answer = find_answer (response_id);
  if (n == 0 || !answer)
    return;
  GstBuffer *buffer = gst_buffer_new_allocate (nullptr, n * 2, nullptr);
  GstMapInfo map;
  gst_buffer_map (buffer, &map, GST_MAP_WRITE);
  for (gsize i = 0; i < n; i++) {
    gint16 le = GINT16_TO_LE (pcm[i]);
    memcpy (map.data + 2 * i, &le, 2);
  }
  gst_buffer_unmap (buffer, &map);
  queue_.push_back (Chunk {response_id, answer->item_id, buffer, arrival});
  answer->received += n;
  wake_.notify_one ();
}

void Playout::end_audio (const std::string &response_id)
{
  std::lock_guard<std::mutex> guard (lock_);
  end_audio_locked (response_id);
}

void Playout::end_audio_locked (const std::string &response_id)
{
  std::vector<gint16> tail;
  resampler_.finish (response_id, tail);
  enqueue_locked (response_id, tail.data (), tail.size (), GST_CLOCK_TIME_NONE);
}

Playout::Answer &Playout::remember (const std::string &response_id,
    const std::string &item_id)
{
  if (Answer *answer = find_answer (response_id))
    return *answer;
  if (answers_.size () == kRemembered)
    answers_.pop_front ();
  answers_.push_back (Answer {response_id, item_id});
  return answers_.back ();
}

void Playout::complete_response (const std::string &response_id)
{
  std::lock_guard<std::mutex> guard (lock_);
  end_audio_locked (response_id);
  remember (response_id, {}).complete = true;
  wake_.notify_one ();
}

void Playout::new_session ()
{
  std::lock_guard<std::mutex> guard (lock_);
  ignored_.clear ();
  auto queued = [this] (const Answer &a) {
    return std::any_of (queue_.begin (), queue_.end (),
        [&a] (const Chunk &c) { return c.response_id == a.response_id; });
  };
  answers_.erase (std::remove_if (answers_.begin (), answers_.end (),
      [&] (const Answer &a) { return !queued (a); }), answers_.end ());
  playing_.clear ();
  resampler_.reset ();
}

bool Playout::may_go_out (const Chunk &chunk) const
{
  if (live_ || eos_)
    return true;
  const Answer *answer = find_answer (chunk.response_id);
  return answer && answer->complete;
}

void Playout::ignore_response (const std::string &response_id, bool drop_queued)
{
  std::lock_guard<std::mutex> guard (lock_);
  if (response_id.empty () || std::find (ignored_.begin (), ignored_.end (),
          response_id) != ignored_.end ())
    return;
  if (ignored_.size () == kRemembered)
    ignored_.pop_front ();
  ignored_.push_back (response_id);
  resampler_.forget (response_id);
  if (!drop_queued)
    return;
  for (auto it = queue_.begin (); it != queue_.end ();) {
    if (it->response_id == response_id) {
      gst_buffer_unref (it->buffer);
      it = queue_.erase (it);
    } else {
      ++it;
    }
  }
}

bool Playout::is_ignored (const std::string &response_id) const
{
  std::lock_guard<std::mutex> guard (lock_);
  return std::find (ignored_.begin (), ignored_.end (), response_id) != ignored_.end ();
}

bool Playout::interrupt (Interruption &out, GstClockTime now, GstClockTime latency)
{
  std::unique_lock<std::mutex> lock (lock_);
  bool heard_out = GST_CLOCK_TIME_IS_VALID (now) && now >= audio_end_ + latency;
  std::string victim = !queue_.empty () ? queue_.front ().response_id :
      heard_out ? std::string () : playing_;
  if (victim.empty ())
    return false;
  out = Interruption ();
  for (const Chunk &c : queue_)
    out.dropped_samples += gst_buffer_get_size (c.buffer) / 2;
  std::vector<std::string> victims {victim};
  for (const Chunk &c : queue_)
    if (std::find (victims.begin (), victims.end (), c.response_id) == victims.end ())
      victims.push_back (c.response_id);
  clear_queue ();
  if (const Answer *a = find_answer (victim)) {
    out.response_id = a->response_id;
    out.item_id = a->item_id;
    out.pushed_samples = a->pushed;
    out.first_pts = a->first_pts;
    out.received_samples = a->received;
  }
  playing_.clear ();
  lock.unlock ();
  for (const std::string &id : victims)
    ignore_response (id);
  return true;
}

void Playout::flush_downstream ()
{
  std::lock_guard<std::mutex> guard (lock_);
  flush_ = true;
  wake_.notify_one ();
}

void Playout::finish ()
{
  std::lock_guard<std::mutex> guard (lock_);
  eos_ = true;
  wake_.notify_one ();
}

guint64 Playout::received_samples (const std::string &response_id) const
{
  std::lock_guard<std::mutex> guard (lock_);
  const Answer *a = find_answer (response_id);
  return a ? a->received : 0;
}

bool Playout::pushed_span (GstClockTime &start, GstClockTime &end) const
{
  std::lock_guard<std::mutex> guard (lock_);
  start = span_start_;
  end = audio_end_;
  return GST_CLOCK_TIME_IS_VALID (span_start_);
}

GstClockTime Playout::planned_end_locked () const
{
  guint64 queued = 0;
  for (const Chunk &c : queue_)
    queued += gst_buffer_get_size (c.buffer) / 2;
  if (live_)
    return next_ts_ + gst_util_uint64_scale (queued, GST_SECOND, rate_);
  return gst_util_uint64_scale (offset_ + queued, GST_SECOND, rate_);
}

GstClockTime Playout::planned_end () const
{
  std::lock_guard<std::mutex> guard (lock_);
  return planned_end_locked ();
}

Span Playout::answer_span (const std::string &response_id) const
{
  std::lock_guard<std::mutex> guard (lock_);
  const Answer *a = find_answer (response_id);
  if (!a || a->received == 0)
    return Span ();
  /* Stamped audio is where it went; the rest follows it contiguously. */
  GstClockTime start = GST_CLOCK_TIME_IS_VALID (a->first_pts) ? a->first_pts : a->planned_start;
  return Span {start, start + gst_util_uint64_scale (a->received, GST_SECOND, rate_)};
}

PlayoutItem Playout::pop (const Clock &now)
{
  std::unique_lock<std::mutex> lock (lock_);
  for (;;) {
    if (flushing_)
      return PlayoutItem {PlayoutItem::Kind::Flushing};
    if (flush_) {
      flush_ = false;
      return PlayoutItem {PlayoutItem::Kind::Flush};
    }
    if (!queue_.empty () && may_go_out (queue_.front ())) {
      PlayoutItem gap;
      if (gap_before (queue_.front (), gap))
        return gap;
      Chunk chunk = std::move (queue_.front ());
      queue_.pop_front ();
      return stamp (std::move (chunk));
    }
    if (eos_ && queue_.empty ())
      return PlayoutItem {PlayoutItem::Kind::Eos};
    if (!live_) {
      wake_.wait (lock);
      continue;
    }
    PlayoutItem gap;
    if (idle_gap (next_ts_, gap_owed_, now (), gap)) {
      answer_start_ = GST_CLOCK_TIME_NONE;  /* what follows restarts on arrival */
      return gap;
    }
    /* Settled idle, a wake-up every kIdlePoll for every idle session of a
     * process would be most of its CPU (docs/performance.md, scale). */
    wake_.wait_for (lock, GST_CLOCK_TIME_IS_VALID (answer_start_) ? kIdlePoll : kIdleHeartbeat);
  }
}

/* Live: whether `chunk` starts an answer on the timeline (a new one, or the
 * rest of one after an idle GAP). */
bool Playout::starts_answer (const Chunk &chunk) const
{
  return chunk.response_id != playing_ || !GST_CLOCK_TIME_IS_VALID (answer_start_);
}

/* Live: an answer starts when it arrives.  The idle time since the output
 * so far (less than a GAP poll, or a heartbeat once settled idle) goes out
 * as a GAP first, so the timeline has no hole and the answer no DISCONT (a
 * payloader resyncs on one). */
bool Playout::gap_before (const Chunk &chunk, PlayoutItem &gap)
{
  if (!live_ || !starts_answer (chunk) || !GST_CLOCK_TIME_IS_VALID (chunk.arrival) ||
      chunk.arrival <= next_ts_)
    return false;
  gap = PlayoutItem {PlayoutItem::Kind::Gap};
  gap.gap_start = next_ts_;
  gap.gap_duration = chunk.arrival - next_ts_;
  next_ts_ = chunk.arrival;
  return true;
}

PlayoutItem Playout::stamp (Chunk chunk)
{
  guint64 samples = gst_buffer_get_size (chunk.buffer) / 2;
  GstBuffer *buffer = chunk.buffer;
  GstClockTime pts, end;
  if (live_) {
    if (starts_answer (chunk)) {
      answer_start_ = GST_CLOCK_TIME_IS_VALID (chunk.arrival) ?
          std::max (chunk.arrival, next_ts_) : next_ts_;
      answer_offset_ = 0;
    }
    pts = answer_start_ + gst_util_uint64_scale (answer_offset_, GST_SECOND, rate_);
    answer_offset_ += samples;
    end = answer_start_ + gst_util_uint64_scale (answer_offset_, GST_SECOND, rate_);
  } else {
    pts = gst_util_uint64_scale (offset_, GST_SECOND, rate_);
    end = gst_util_uint64_scale (offset_ + samples, GST_SECOND, rate_);
  }
  GST_BUFFER_PTS (buffer) = pts;
  GST_BUFFER_DURATION (buffer) = end - pts;
  GST_BUFFER_OFFSET (buffer) = offset_;
  GST_BUFFER_OFFSET_END (buffer) = offset_ + samples;
  if (offset_ == 0 || pts != next_ts_)
    GST_BUFFER_FLAG_SET (buffer, GST_BUFFER_FLAG_DISCONT);
  if (!GST_CLOCK_TIME_IS_VALID (span_start_) || pts != audio_end_)
    span_start_ = pts;
  offset_ += samples;
  next_ts_ = audio_end_ = end;
  playing_ = chunk.response_id;
  if (Answer *a = find_answer (chunk.response_id)) {
    if (a->pushed == 0)
      a->first_pts = pts;
    a->pushed += samples;
  }
  PlayoutItem item {PlayoutItem::Kind::Buffer};
  item.buffer = buffer;
  return item;
}

void Playout::set_flushing (bool flushing)
{
  std::lock_guard<std::mutex> guard (lock_);
  flushing_ = flushing;
  wake_.notify_all ();
}

void Playout::clear_queue ()
{
  for (Chunk &c : queue_)
    gst_buffer_unref (c.buffer);
  queue_.clear ();
}

void Playout::reset ()
{
  std::lock_guard<std::mutex> guard (lock_);
  clear_queue ();
  answers_.clear ();
  ignored_.clear ();
  playing_.clear ();
  resampler_.reset ();
  eos_ = flush_ = false;
  gap_owed_ = live_;
  offset_ = 0;
  next_ts_ = audio_end_ = 0;
  span_start_ = GST_CLOCK_TIME_NONE;
  answer_start_ = GST_CLOCK_TIME_NONE;
  answer_offset_ = 0;
}

}  // namespace yrt
