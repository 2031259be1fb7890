/* A simulated room for the hands-free tests and the echo-canceller bench:
 * the agent's answer, as the loudspeaker plays it, comes back into its own
 * microphone, delayed, attenuated and smeared by a short reverb, mixed with
 * what the user says.  All of it in real time on the pipeline clock:
 *
 *   appsrc "mic" (live, 10 ms blocks) ! <front> yandexrealtime name=rt ...
 *     ! <back, or audioresample> ! queue (200 ms) ! appsink "speaker" (48 kHz, sync=true)
 *
 * The queue and the synchronised appsink are a sound card: a ring buffer
 * that takes audio up to 200 ms ahead, played on the clock, `latency` after
 * its timestamp (what the sink reports).
 *
 * The answer's samples are placed on the room's timeline when they enter
 * the ring buffer (the queue), at the running time they left src (their
 * PTS), or later when they came too late for the card (an underrun: the
 * element pushed them after their playing time), and taken off it again
 * when a flush empties the card before it played them.  When the appsink's
 * thread gets to render them does not matter, as the moment a real card's
 * buffer is refilled does not, within what it holds.  The microphone
 * thread wakes every 10 ms on the clock and captures
 * the block that has just ended: the user's speech plus the echo of what
 * left src `delay` ms before, through the reverb.  The sink plays it
 * `latency` after it left src, so `delay` - `latency` is what the echo path
 * adds after the sink: the device's unreported buffering and the air.
 *
 * ROOM_VERBOSE=1 prints the element's messages as they come, and what
 * happened (story ()) when the microphone stops, as a failure does;
 * ROOM_DUMP=<dir> writes what the microphone captured (room-mic.raw, 48 kHz),
 * the user's part of it (room-user.raw), the speaker's output on the
 * timeline (room-speaker.raw, by the time it left src) and what the service
 * received (room-sent.raw, 24 kHz), S16LE mono. */
#pragma once

#include "harness.h"
#include "synth.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/base/gstbasesink.h>

#include <algorithm>
#include <cstring>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace yrt::test {

constexpr guint kRoomRate = 48000;
constexpr guint kBlock = kRoomRate / 100;  /* the microphone's 10 ms */

/* The way from the loudspeaker to the microphone. */
struct Acoustics {
  guint delay_ms = 80;     /* 40 – 150, from leaving src; at least the sink's latency */
  double gain_db = -10;    /* -6 – -20, of the direct sound */
};

/* Espeak-ng speech (48 kHz) scaled to peak at `peak_dbfs`: the user. */
inline std::vector<gint16> speech (const std::string &text, double peak_dbfs = -6)
{
  std::vector<gint16> pcm = emu::speak (text, kRoomRate);
  fail_unless (!pcm.empty (), "espeak-ng is needed (libespeak-ng-dev, tests/install-packages.sh)");
  gint peak = 1;
  for (gint16 s : pcm)
    peak = std::max (peak, std::abs ((gint) s));
  double k = 32767.0 * std::pow (10.0, peak_dbfs / 20) / peak;
  for (gint16 &s : pcm)
    s = (gint16) std::lround (s * k);
  return pcm;
}

inline double rms_dbfs (const gint16 *pcm, gsize n)
{
  double sum = 0;
  for (gsize i = 0; i < n; i++)
    sum += (double) pcm[i] * pcm[i];
  return n && sum > 0 ? 20 * std::log10 (std::sqrt (sum / n) / 32768.0) : -120;
}

struct RoomMessage {
  std::string name;
  GstStructure *s;
  GstClockTime at;  /* running time when posted */
};

class Room {
 public:
  /* `front`: elements between the microphone and the agent (each ending in
   * " ! "), `back`: between the agent and the 48 kHz speaker (an
   * audioresample when empty). */
  Room (Fixture &fx, const std::string &front, const std::string &props,
      const std::string &back, Acoustics acoustics)
      : fx_ (fx)
  {
    std::string desc = "appsrc name=mic ! " + front +
        "yandexrealtime name=rt api-key=test-key location=" + fx.server.url () + " " + props +
        " ! " + (back.empty () ? "audioresample ! " : back) +
        "queue name=card max-size-time=200000000 max-size-buffers=0 max-size-bytes=0 ! "
        "appsink name=speaker sync=true "
        "caps=audio/x-raw,format=S16LE,rate=48000,channels=1";
    GError *error = nullptr;
    pipeline_ = gst_parse_launch (desc.c_str (), &error);
    fail_unless (pipeline_ != nullptr, "%s: %s", desc.c_str (), error ? error->message : "?");
    mic_ = gst_bin_get_by_name (GST_BIN (pipeline_), "mic");
    speaker_ = gst_bin_get_by_name (GST_BIN (pipeline_), "speaker");
    rt_ = gst_bin_get_by_name (GST_BIN (pipeline_), "rt");
    GstCaps *caps = gst_caps_new_simple ("audio/x-raw", "format", G_TYPE_STRING, "S16LE",
        "rate", G_TYPE_INT, kRoomRate, "channels", G_TYPE_INT, 1,
        "layout", G_TYPE_STRING, "interleaved", nullptr);
    g_object_set (mic_, "is-live", TRUE, "format", GST_FORMAT_TIME, "caps", caps,
        "min-latency", (gint64) (10 * GST_MSECOND), "max-latency", (gint64) (10 * GST_MSECOND),
        nullptr);
    gst_caps_unref (caps);
    GstAppSinkCallbacks callbacks = {};
    callbacks.new_sample = on_sample;
    gst_app_sink_set_callbacks (GST_APP_SINK (speaker_), &callbacks, this, nullptr);
    GstPad *src = gst_element_get_static_pad (rt_, "src");
    gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, on_src_event, this, nullptr);
    gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER, on_src_buffer, this, nullptr);
    gst_object_unref (src);
    GstElement *card = gst_bin_get_by_name (GST_BIN (pipeline_), "card");
    GstPad *card_in = gst_element_get_static_pad (card, "sink");
    gst_pad_add_probe (card_in, GST_PAD_PROBE_TYPE_BUFFER, on_card_buffer, this, nullptr);
    gst_object_unref (card_in);
    gst_object_unref (card);

    /* The direct sound and reflections over ~80 ms, decaying (RT60 ~ 0.3 s). */
    const double direct = std::pow (10.0, acoustics.gain_db / 20);
    const guint reflections_ms[] = {7, 13, 19, 26, 31, 38, 47, 55, 64, 79};
    taps_.push_back ({(gsize) acoustics.delay_ms * kRoomRate / 1000, (float) direct});
    for (guint i = 0; i < G_N_ELEMENTS (reflections_ms); i++) {
      double g = direct * 0.45 * std::exp (-(double) reflections_ms[i] / 45.0) * (i % 2 ? -1 : 1);
      taps_.push_back ({(gsize) (acoustics.delay_ms + reflections_ms[i]) * kRoomRate / 1000,
          (float) g});
    }

    bus_ = gst_pipeline_get_bus (GST_PIPELINE (pipeline_));
    gst_bus_set_sync_handler (bus_, on_message, this, nullptr);
  }

  ~Room ()
  {
    running_ = false;
    if (mic_thread_.joinable ())
      mic_thread_.join ();
    gst_element_set_state (pipeline_, GST_STATE_NULL);
    gst_bus_set_sync_handler (bus_, nullptr, nullptr, nullptr);
    gst_object_unref (bus_);
    gst_object_unref (mic_);
    gst_object_unref (speaker_);
    gst_object_unref (rt_);
    gst_object_unref (pipeline_);
    if (clock_)
      gst_object_unref (clock_);
    for (RoomMessage &m : messages_)
      gst_structure_free (m.s);
  }

  /* PLAYING, then the microphone starts capturing at running time 0. */
  void start ()
  {
    gst_element_set_state (pipeline_, GST_STATE_PLAYING);
    /* The live source is PLAYING (and the base time set) at once; the sink
     * may still wait for its first buffer. */
    fail_unless (gst_element_get_state (mic_, nullptr, nullptr, 5 * GST_SECOND) ==
        GST_STATE_CHANGE_SUCCESS);
    clock_ = gst_pipeline_get_clock (GST_PIPELINE (pipeline_));
    base_ = gst_element_get_base_time (pipeline_);
    running_ = true;
    mic_thread_ = std::thread ([this] { capture (); });
  }

  GstElement *rt () const { return rt_; }

  /* The latency the sink plays with (once playing). */
  GstClockTime latency () const { return latency_; }

  GstClockTime now () const
  {
    GstClockTime t = gst_clock_get_time (clock_);
    return t > base_ ? t - base_ : 0;
  }

  /* The user says `pcm` from running time `at` (or the next block, if that
   * is already captured); returns when it starts. */
  GstClockTime say (const std::vector<gint16> &pcm, GstClockTime at)
  {
    std::lock_guard<std::mutex> guard (lock_);
    gsize first = gst_util_uint64_scale (at, kRoomRate, GST_SECOND);
    first = std::max (first, captured_ + kBlock);
    said_.push_back ({first, pcm});
    return gst_util_uint64_scale (first, GST_SECOND, kRoomRate);
  }

  /* Waits until `done` (called under the room's lock) or `timeout_ms`. */
  bool wait (const std::function<bool ()> &done, guint timeout_ms)
  {
    std::unique_lock<std::mutex> lock (lock_);
    return changed_.wait_for (lock, std::chrono::milliseconds (timeout_ms), done);
  }

  /* Under the lock (in wait predicates) or after stop(). */
  guint count (const char *name, GstClockTime after = 0) const
  {
    guint n = 0;
    for (const RoomMessage &m : messages_)
      if (m.name == name && m.at >= after)
        n++;
    return n;
  }
  const std::vector<RoomMessage> &messages () const { return messages_; }

  /* Runs of speaker output: [start, end) in samples of the room's timeline
   * (when they left src; the card plays them latency() later).  They hold
   * what the card took, which it plays within the 200 ms it holds (or drops
   * at a flush, and then they lose it). */
  const std::vector<std::pair<gsize, gsize>> &played () const { return runs_; }
  guint64 played_samples () const { return played_; }
  /* Downstream flushes on rt's src (barge-in), running time. */
  const std::vector<GstClockTime> &flushes () const { return flushes_; }
  /* What the microphone captured, from running time 0. */
  const std::vector<gint16> &mic () const { return mic_pcm_; }
  bool playing_at (GstClockTime t) const
  {
    gsize i = gst_util_uint64_scale (t - MIN (t, latency_), kRoomRate, GST_SECOND);
    return !runs_.empty () && runs_.back ().second > i;
  }
  std::mutex &lock () { return lock_; }

  /* Stops the microphone (the pipeline runs on); the books are then stable. */
  void stop_mic ()
  {
    running_ = false;
    if (!mic_thread_.joinable ())
      return;
    mic_thread_.join ();
    if (g_getenv ("ROOM_VERBOSE")) {
      g_print ("base time then %" G_GUINT64_FORMAT " now %" G_GUINT64_FORMAT "\n", base_,
          gst_element_get_base_time (pipeline_));
      std::lock_guard<std::mutex> guard (lock_);
      g_print ("%s", story ().c_str ());
    }
    if (const char *dir = g_getenv ("ROOM_DUMP")) {  /* raw S16LE: mic 48 kHz, sent 24 kHz */
      std::string base = std::string (dir) + "/room-";
      std::vector<guint8> sent = fx_.server.received_audio ();
      g_file_set_contents ((base + "mic.raw").c_str (), (const gchar *) mic_pcm_.data (),
          mic_pcm_.size () * 2, nullptr);
      g_file_set_contents ((base + "user.raw").c_str (), (const gchar *) user_pcm_.data (),
          user_pcm_.size () * 2, nullptr);
      g_file_set_contents ((base + "sent.raw").c_str (), (const gchar *) sent.data (),
          sent.size (), nullptr);
      std::lock_guard<std::mutex> guard (lock_);
      g_file_set_contents ((base + "speaker.raw").c_str (), (const gchar *) speaker_pcm_.data (),
          speaker_pcm_.size () * 2, nullptr);
    }
  }

  /* What happened, for a failure message (under the lock, the microphone
   * stopped): in order of running time what the user said, the element's
   * messages, the flushes on src and the runs of speaker output (when they
   * left src); after each run its echo, from the run's first sample back at
   * the microphone to its last reflection, in the 10 ms frames where the
   * user was silent (from 10 ms before to 30 ms after): the loudest frame
   * of the microphone and of what the service received (sample j of the
   * session at running time j / 24 kHz), and the frames the emulator's VAD
   * counts as loud (p = (dBFS + 60) / 50 above vad-threshold, so above
   * -35 dBFS by default): the longest run of them, and the longest sound
   * (loud frames less than 200 ms apart), which the realistic VAD takes for
   * speech from 250 ms. */
  std::string story () const
  {
    struct Line {
      GstClockTime at;
      std::string text;
    };
    std::vector<Line> lines;
    auto add = [&lines] (GstClockTime at, gchar *text) {
      lines.push_back ({at, text});
      g_free (text);
    };
    auto secs = [] (gsize samples, guint rate) { return (double) samples / rate; };
    for (const RoomMessage &m : messages_) {
      if (m.name == "response-text")
        continue;  /* the text, word by word */
      gchar *text = gst_structure_to_string (m.s);
      add (m.at, g_strdup_printf ("%s", text + strlen ("yandexrealtime/")));
      g_free (text);
    }
    for (GstClockTime t : flushes_)
      add (t, g_strdup ("flush on rt's src (barge-in): the card drops what it has not played"));
    for (const auto &l : late_pushes_)
      add (l.first, g_strdup_printf ("answer audio left rt's src %.0f ms after its timestamp "
          "(the canceller's probe wants it within ~30 ms)", l.second / 1e6));
    for (const auto &u : underruns_)
      add (u.first, g_strdup_printf ("underrun: audio reached the card %.0f ms after its "
          "playing time, and plays from here", u.second / 1e6));

    gdouble threshold = 0.5;
    g_object_get (rt_, "vad-threshold", &threshold, nullptr);
    const double vad_dbfs = -60 + 50 * threshold;
    const std::vector<guint8> sent_bytes = fx_.server.received_audio ();
    const auto *sent = reinterpret_cast<const gint16 *> (sent_bytes.data ());
    const gsize sent_n = sent_bytes.size () / 2;
    const gsize sent_block = 24000 / 100;
    /* What the user said, and how it reached the service: its voiced 10 ms
     * frames (the user's part above -60 dBFS), in what the service got. */
    for (const Said &s : said_) {
      gsize voiced = 0, loud = 0;
      double loudest = -120;
      gint64 first_loud = -1;
      for (gsize f = s.first / kBlock; f * kBlock < s.first + s.pcm.size () &&
          (f + 1) * kBlock <= user_pcm_.size (); f++) {
        if (rms_dbfs (user_pcm_.data () + f * kBlock, kBlock) <= -60)
          continue;
        voiced++;
        double got = (f + 1) * sent_block <= sent_n ?
            rms_dbfs (sent + f * sent_block, sent_block) : -120;
        loudest = std::max (loudest, got);
        if (got > vad_dbfs && loud++ == 0)
          first_loud = (gint64) (f * kBlock) - (gint64) s.first;
      }
      gchar *text = g_strdup_printf ("user speaks for %.3f s (to %.3f s)%s; the service got %"
          G_GSIZE_FORMAT " of its %" G_GSIZE_FORMAT " voiced 10 ms frames above the VAD's "
          "%.1f dBFS, the loudest at %.1f dBFS", secs (s.pcm.size (), kRoomRate),
          secs (s.first + s.pcm.size (), kRoomRate),
          plays_during (s.first, s.first + s.pcm.size ()) ? ", over the answer" : "", loud,
          voiced, vad_dbfs, loudest);
      std::string line = text;
      g_free (text);
      if (loud)
        line += " (the first " + std::to_string (first_loud * 1000 / kRoomRate) + " ms in)";
      lines.push_back ({gst_util_uint64_scale (s.first, GST_SECOND, kRoomRate), line});
    }
    for (const auto &run : runs_) {
      add (gst_util_uint64_scale (run.first, GST_SECOND, kRoomRate),
          g_strdup_printf ("speaker: %.3f s of answer left src (to %.3f s; played %.0f ms later)",
              secs (run.second - run.first, kRoomRate), secs (run.second, kRoomRate),
              latency_ / 1e6));
      const gsize from = (run.first + taps_.front ().delay) / kBlock;
      const gsize to = (run.second + taps_.back ().delay + kBlock - 1) / kBlock;
      double mic_max = -120, sent_max = -120;
      gsize sent_max_at = 0, silent = 0, loud = 0, loud_run = 0, longest = 0, first_loud = 0;
      /* Loud frames less than 200 ms apart, as one sound: what a VAD with a
       * minimum speech duration (the emulator's realistic one: 250 ms)
       * weighs. */
      gsize sound_from = 0, last_loud = 0, longest_sound = 0;
      /* The user's voice reaches the service up to ~30 ms late (the
       * canceller's frames, the noise suppressor). */
      auto user_speaks = [this] (gsize f) {
        for (gsize g = f > 3 ? f - 3 : 0; g <= f + 1 && (g + 1) * kBlock <= user_pcm_.size (); g++)
          if (rms_dbfs (user_pcm_.data () + g * kBlock, kBlock) > -60)
            return true;
        return false;
      };
      for (gsize f = from; f < to && (f + 1) * kBlock <= mic_pcm_.size (); f++) {
        if (user_speaks (f)) {
          loud_run = 0;
          continue;  /* not echo alone */
        }
        silent++;
        mic_max = std::max (mic_max, rms_dbfs (mic_pcm_.data () + f * kBlock, kBlock));
        double s = (f + 1) * sent_block <= sent_n ? rms_dbfs (sent + f * sent_block, sent_block)
            : -120;
        if (s > sent_max) {
          sent_max = s;
          sent_max_at = f;
        }
        if (s > vad_dbfs) {
          if (loud++ == 0)
            first_loud = f;
          else if (f - last_loud >= 20)
            sound_from = f;
          if (loud == 1)
            sound_from = f;
          last_loud = f;
          longest_sound = std::max (longest_sound, f + 1 - sound_from);
          longest = std::max (longest, ++loud_run);
        } else {
          loud_run = 0;
        }
      }
      gchar *text = g_strdup_printf ("  its echo %.3f - %.3f s, %" G_GSIZE_FORMAT " frames with "
          "the user silent: microphone up to %.1f dBFS; the service got up to %.1f dBFS (at "
          "%.3f s), %" G_GSIZE_FORMAT " frames above the VAD's %.1f dBFS",
          secs (from * kBlock, kRoomRate), secs (to * kBlock, kRoomRate), silent, mic_max,
          sent_max, secs (sent_max_at * kBlock, kRoomRate), loud, vad_dbfs);
      std::string line = text;
      g_free (text);
      if (loud)
        line += " (the first at " + std::to_string (first_loud * 10) + " ms, longest run " +
            std::to_string (longest * 10) + " ms, longest sound " +
            std::to_string (longest_sound * 10) + " ms)";
      lines.push_back ({gst_util_uint64_scale (run.first, GST_SECOND, kRoomRate) + 1, line});
    }
    std::stable_sort (lines.begin (), lines.end (),
        [] (const Line &a, const Line &b) { return a.at < b.at; });
    std::string out = "room: what happened (running time; " +
        std::to_string (sent_n * 1000 / 24000) + " ms of input reached the service; " +
        std::to_string (dropped_ * 1000 / kRoomRate) + " ms of answer dropped by flushes " +
        "before it was played; the appsink's thread rendered " + std::to_string (late_renders_) +
        " buffers over 20 ms late, at worst " + std::to_string (worst_render_ / GST_MSECOND) +
        " ms, which what the card holds covers):\n";
    for (const Line &l : lines) {
      gchar *at = g_strdup_printf ("%8.3f ", l.at / 1e9);
      out += std::string (at) + l.text + "\n";
      g_free (at);
    }
    return out;
  }

 private:
  struct Tap {
    gsize delay;
    float gain;
  };
  struct Said {
    gsize first;
    std::vector<gint16> pcm;
  };

  /* Whether the speaker plays during [from, to) (samples of the timeline,
   * by the time the microphone hears it). */
  bool plays_during (gsize from, gsize to) const
  {
    gsize lag = gst_util_uint64_scale (latency_, kRoomRate, GST_SECOND);
    for (const auto &run : runs_)
      if (run.first + lag < to && run.second + lag > from)
        return true;
    return false;
  }

  static GstBusSyncReply on_message (GstBus *bus, GstMessage *msg, gpointer data)
  {
    auto *self = static_cast<Room *> (data);
    Fixture::check_against_docs (bus, msg, &self->fx_);
    const GstStructure *s = gst_message_get_structure (msg);
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
      GError *err = nullptr;
      gst_message_parse_error (msg, &err, nullptr);
      g_printerr ("room: error from %s: %s\n", GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)),
          err->message);
      g_error_free (err);
    }
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ELEMENT && s &&
        g_str_has_prefix (gst_structure_get_name (s), "yandexrealtime/")) {
      std::lock_guard<std::mutex> guard (self->lock_);
      if (g_getenv ("ROOM_VERBOSE")) {
        gchar *text = gst_structure_to_string (s);
        g_print ("%8.3f %s\n", (self->clock_ ? self->now () : 0) / 1e9, text);
        g_free (text);
      }
      self->messages_.push_back ({gst_structure_get_name (s) + strlen ("yandexrealtime/"),
          gst_structure_copy (s), self->clock_ ? self->now () : 0});
      self->changed_.notify_all ();
    }
    return GST_BUS_DROP;
  }

  static GstPadProbeReturn on_src_event (GstPad *, GstPadProbeInfo *info, gpointer data)
  {
    auto *self = static_cast<Room *> (data);
    if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) == GST_EVENT_FLUSH_START) {
      std::lock_guard<std::mutex> guard (self->lock_);
      GstClockTime now = self->now ();
      self->flushes_.push_back (now);
      /* The card drops what it has not played yet. */
      gsize cut = gst_util_uint64_scale_round (now - MIN (now, self->latency_), kRoomRate,
          GST_SECOND);
      while (!self->runs_.empty () && self->runs_.back ().second > cut) {
        auto &run = self->runs_.back ();
        gsize from = std::max (run.first, cut);
        std::fill (self->speaker_pcm_.begin () + from, self->speaker_pcm_.begin () + run.second, 0);
        self->played_ -= run.second - from;
        self->dropped_ += run.second - from;
        if (from == run.first)
          self->runs_.pop_back ();
        else
          run.second = from;
      }
      self->changed_.notify_all ();
    }
    return GST_PAD_PROBE_OK;
  }

  /* Answer audio leaves rt's src: how long after its timestamp.  The echo
   * canceller's probe lines the audio up by its timestamps: it must have a
   * sample before the microphone's block of the same running time (+ what
   * the sink's latency has over the probe's upstream latency) is processed,
   * else that part of the reference is lost and its echo goes through. */
  static GstPadProbeReturn on_src_buffer (GstPad *pad, GstPadProbeInfo *info, gpointer data)
  {
    auto *self = static_cast<Room *> (data);
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
    GstEvent *segment_event = gst_pad_get_sticky_event (pad, GST_EVENT_SEGMENT, 0);
    if (!segment_event || !GST_BUFFER_PTS_IS_VALID (buf) || !self->clock_) {
      if (segment_event)
        gst_event_unref (segment_event);
      return GST_PAD_PROBE_OK;
    }
    const GstSegment *seg = nullptr;
    gst_event_parse_segment (segment_event, &seg);
    GstClockTime rt = gst_segment_to_running_time (seg, GST_FORMAT_TIME, GST_BUFFER_PTS (buf));
    gst_event_unref (segment_event);
    std::lock_guard<std::mutex> guard (self->lock_);
    GstClockTime now = self->now ();
    if (GST_CLOCK_TIME_IS_VALID (rt) && now > rt + 20 * GST_MSECOND)
      self->late_pushes_.push_back ({rt, now - rt});
    return GST_PAD_PROBE_OK;
  }

  /* The appsink renders on the clock: it paces the card; what it plays was
   * put on the timeline when it entered the card (on_card_buffer).  How
   * late its thread woke is counted (the story tells). */
  static GstFlowReturn on_sample (GstAppSink *sink, gpointer data)
  {
    auto *self = static_cast<Room *> (data);
    GstSample *sample = gst_app_sink_pull_sample (sink);
    if (!sample)
      return GST_FLOW_FLUSHING;
    GstBuffer *buf = gst_sample_get_buffer (sample);
    GstClockTime rt = gst_segment_to_running_time (gst_sample_get_segment (sample),
        GST_FORMAT_TIME, GST_BUFFER_PTS (buf));
    {
      std::lock_guard<std::mutex> guard (self->lock_);
      GstClockTime now = self->now ();
      bool underrun = std::find (self->underrun_pts_.begin (), self->underrun_pts_.end (),
          GST_BUFFER_PTS (buf)) != self->underrun_pts_.end ();
      if (!underrun && GST_CLOCK_TIME_IS_VALID (rt) &&
          now > rt + self->latency_ + 20 * GST_MSECOND) {
        self->late_renders_++;
        self->worst_render_ = std::max (self->worst_render_, now - rt - self->latency_);
      }
    }
    gst_sample_unref (sample);
    return GST_FLOW_OK;
  }

  /* Audio enters the card: each sample goes on the timeline where it will
   * be played. */
  static GstPadProbeReturn on_card_buffer (GstPad *pad, GstPadProbeInfo *info, gpointer data)
  {
    auto *self = static_cast<Room *> (data);
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
    GstEvent *segment_event = gst_pad_get_sticky_event (pad, GST_EVENT_SEGMENT, 0);
    if (!segment_event)
      return GST_PAD_PROBE_OK;
    const GstSegment *seg = nullptr;
    gst_event_parse_segment (segment_event, &seg);
    GstClockTime rt = gst_segment_to_running_time (seg, GST_FORMAT_TIME, GST_BUFFER_PTS (buf));
    gst_event_unref (segment_event);
    GstClockTime latency = gst_base_sink_get_latency (GST_BASE_SINK (self->speaker_));
    {
      std::lock_guard<std::mutex> guard (self->lock_);
      /* The timeline is the running time the audio left src; the card plays
       * it `latency` later, on its own clock, unless it came too late for
       * that (then it plays when it comes). */
      GstClockTime now = self->now ();
      if (now > rt + latency + 20 * GST_MSECOND) {
        self->underruns_.push_back ({now - latency, now - latency - rt});
        self->underrun_pts_.push_back (GST_BUFFER_PTS (buf));
        rt = now - latency;
      }
      self->latency_ = latency;
      gsize at = gst_util_uint64_scale_round (rt, kRoomRate, GST_SECOND);
      gsize n = gst_buffer_get_size (buf) / 2;
      /* Contiguous output stays contiguous (rounding never opens a gap). */
      if (!self->runs_.empty () && at <= self->runs_.back ().second + kRoomRate / 1000)
        at = std::max (at, self->runs_.back ().second);
      if (self->speaker_pcm_.size () < at + n)
        self->speaker_pcm_.resize (at + n + kRoomRate, 0);
      gst_buffer_extract (buf, 0, self->speaker_pcm_.data () + at, n * 2);
      if (self->runs_.empty () || at != self->runs_.back ().second)
        self->runs_.push_back ({at, at + n});
      else
        self->runs_.back ().second = at + n;
      self->played_ += n;
      self->changed_.notify_all ();
    }
    return GST_PAD_PROBE_OK;
  }

  /* The microphone: at the end of each 10 ms block, the user's speech plus
   * the echo of what the speaker played, through the room. */
  void capture ()
  {
    std::vector<float> acc (kBlock);
    for (guint64 k = 0; running_; k++) {
      GstClockID id = gst_clock_new_single_shot_id (clock_, base_ + (k + 1) * 10 * GST_MSECOND);
      gst_clock_id_wait (id, nullptr);
      gst_clock_id_unref (id);
      const gsize first = k * kBlock;
      std::fill (acc.begin (), acc.end (), 0.f);
      GstBuffer *buf = gst_buffer_new_allocate (nullptr, kBlock * 2, nullptr);
      {
        std::lock_guard<std::mutex> guard (lock_);
        for (const Said &s : said_)
          for (gsize i = 0; i < kBlock; i++)
            if (first + i >= s.first && first + i - s.first < s.pcm.size ())
              acc[i] += s.pcm[first + i - s.first];
        for (gsize i = 0; i < kBlock; i++)
          user_pcm_.push_back ((gint16) std::lround (acc[i]));
        for (const Tap &t : taps_)
          for (gsize i = 0; i < kBlock; i++)
            if (first + i >= t.delay && first + i - t.delay < speaker_pcm_.size ())
              acc[i] += t.gain * speaker_pcm_[first + i - t.delay];
        GstMapInfo map;
        gst_buffer_map (buf, &map, GST_MAP_WRITE);
        auto *out = reinterpret_cast<gint16 *> (map.data);
        for (gsize i = 0; i < kBlock; i++)
          out[i] = (gint16) std::clamp (std::lround (acc[i]), -32768l, 32767l);
        mic_pcm_.insert (mic_pcm_.end (), out, out + kBlock);
        gst_buffer_unmap (buf, &map);
        captured_ = first + kBlock;
        changed_.notify_all ();  /* time passed: waits on it look again */
      }
      GST_BUFFER_PTS (buf) = k * 10 * GST_MSECOND;
      GST_BUFFER_DURATION (buf) = 10 * GST_MSECOND;
      gst_app_src_push_buffer (GST_APP_SRC (mic_), buf);
    }
  }

  Fixture &fx_;
  GstElement *pipeline_ = nullptr, *mic_ = nullptr, *speaker_ = nullptr, *rt_ = nullptr;
  GstBus *bus_ = nullptr;
  GstClock *clock_ = nullptr;
  GstClockTime base_ = 0;
  std::vector<Tap> taps_;
  std::atomic<bool> running_ {false};
  std::thread mic_thread_;

  std::mutex lock_;
  std::condition_variable changed_;
  std::vector<Said> said_;
  gsize captured_ = 0;
  std::vector<gint16> speaker_pcm_;
  std::vector<std::pair<gsize, gsize>> runs_;
  guint64 played_ = 0;
  guint64 dropped_ = 0;  /* taken off the timeline by flushes */
  guint late_renders_ = 0;  /* the appsink rendered a buffer > 20 ms after its time */
  GstClockTime worst_render_ = 0;
  /* Audio that entered the card after its playing time: where it went on
   * the timeline, how late. */
  std::vector<std::pair<GstClockTime, GstClockTime>> underruns_;
  std::vector<GstClockTime> underrun_pts_;  /* their buffers' PTS */
  /* Answer audio that left rt's src over 20 ms after its timestamp: when
   * (its running time), how late. */
  std::vector<std::pair<GstClockTime, GstClockTime>> late_pushes_;
  GstClockTime latency_ = 0;
  std::vector<gint16> mic_pcm_;
  std::vector<gint16> user_pcm_;  /* debugging: the user's part alone */
  std::vector<GstClockTime> flushes_;
  std::vector<RoomMessage> messages_;
};

}  // namespace yrt::test
