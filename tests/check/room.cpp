/* Hands-free on speakers, in a simulated room (room.h): the agent must not
 * answer itself.  Real time against the emulator (espeak-ng answers, server
 * VAD, interrupt-response on):
 *  - without echo cancellation the echo interrupts the answers;
 *  - with the documented webrtcdsp/webrtcechoprobe pipeline it never does,
 *    over ten answers each heard whole;
 *  - the user's voice still barges in, and how fast is measured;
 *  - half-duplex=true without echo cancellation: no self-interruption, and
 *    the user's next turn reaches the service whole. */
#include "room.h"

using namespace yrt;
using namespace yrt::test;

namespace {

/* The documented hands-free settings (docs/yandexrealtime.md, "Hands-free on
 * speakers"), with the microphone and the speaker at 48 kHz already;
 * ROOM_CANCELLER="webrtcdsp probe=echo ..." tries others. */
std::string kCanceller ()
{
  const char *other = g_getenv ("ROOM_CANCELLER");
  return other ? std::string (other) + " ! " :
      "webrtcdsp probe=echo delay-agnostic=false echo-suppression-level=high noise-suppression=true gain-control=true ! ";
}
/* Half-duplex until the canceller has heard the first answer. */
const char *kHandsFree = "half-duplex=true";
const char *kProbe = "webrtcechoprobe name=echo ! ";

const char *kQuestions[] = {
  "Привет.", "Какая погода?", "Что нового?", "Который час?", "Спасибо.",
  "Расскажи ещё.", "А завтра?", "Хорошо.", "Понятно.", "Пока.",
};

/* Short answers (~1.5 s) for the counting tests, long ones to talk over. */
const char *kAnswers[] = {
  "Здравствуйте, чем помочь?", "Сегодня солнечно, тепло.", "Новостей пока нет.",
  "Сейчас полдень.", "Пожалуйста, обращайтесь.", "Больше ничего не знаю.",
  "Завтра будет дождь.", "Отлично, продолжим.", "Рада помочь вам.", "До свидания.",
};
const char *kLongAnswer =
    "Сегодня в Москве солнечно, около двадцати градусов тепла, ветер слабый, "
    "а вечером возможен небольшой дождь.";

emu::Config room_config ()
{
  emu::Config c;
  c.speak = true;
  c.audio_delta_ms = 100;
  c.pace_ms = 50;  /* the answer streams at twice real time, as a service would */
  return c;
}

GstClockTime ms (guint64 v)
{
  return v * GST_MSECOND;
}

/* fail_unless, printing first what happened in the room (Room::story ());
 * under the room's lock, the microphone stopped. */
#define room_check(room, expr, ...) G_STMT_START {                        \
    if (!(expr)) {                                                         \
      g_printerr ("%s", (room).story ().c_str ());                         \
      ck_abort_msg (__VA_ARGS__);                                          \
    }                                                                      \
  } G_STMT_END

/* Sum of audio-duration over the completed answers (under the lock). */
GstClockTime answered (const Room &room, guint *completed = nullptr)
{
  GstClockTime total = 0;
  guint n = 0;
  for (const RoomMessage &m : room.messages ()) {
    if (m.name != "response-done")
      continue;
    guint64 d = 0;
    gst_structure_get_uint64 (m.s, "audio-duration", &d);
    total += d;
    if (g_strcmp0 (gst_structure_get_string (m.s, "status"), "completed") == 0)
      n++;
  }
  if (completed)
    *completed = n;
  return total;
}

/* `n` answers are done and all their audio has been played (under the
 * lock). */
bool heard_out (Room &room, guint n)
{
  if (room.count ("response-done") < n)
    return false;
  GstClockTime played = gst_util_uint64_scale (room.played_samples (), GST_SECOND, kRoomRate);
  return played + ms (5) * n >= answered (room) &&
      !room.playing_at (room.now () - ms (300));
}

/* Waits until `done` (under the room's lock); after `timeout_ms` stops the
 * microphone and fails with `what` and the room's story. */
void expect (Room &room, const std::function<bool ()> &done, guint timeout_ms,
    const std::string &what)
{
  if (room.wait (done, timeout_ms))
    return;
  room.stop_mic ();
  std::lock_guard<std::mutex> guard (room.lock ());
  room_check (room, false, "%s (the room's story above)", what.c_str ());
}

/* The user asks; returns once the answer has been played out. */
void turn (Room &room, guint i, guint answers_before)
{
  room.say (speech (kQuestions[i % G_N_ELEMENTS (kQuestions)]), room.now () + ms (300));
  expect (room, [&] { return heard_out (room, answers_before + 1); }, 15000,
      "answer " + std::to_string (answers_before + 1) + " was not played out");
}

/* What the user says over answer i, at the level of a turn: two questions
 * run together, one sentence.  The canceller's double-talk suppression lets
 * through only fragments of it; of a single short word, less than a server
 * VAD takes for speech. */
std::string barge_in (guint i)
{
  std::string first = kQuestions[(i + 2) % G_N_ELEMENTS (kQuestions)];
  first.pop_back ();  /* the final . or ?: no pause between the two */
  return first + " " + kQuestions[(i + 3) % G_N_ELEMENTS (kQuestions)];
}

void push_answers (Fixture &fx, guint n, bool long_ones = false)
{
  for (guint i = 0; i < n; i++) {
    emu::TurnScript t;
    t.answer_text = long_ones ? kLongAnswer : kAnswers[i % G_N_ELEMENTS (kAnswers)];
    fx.server.push_turn (t);
  }
}

}  // namespace

/* The fault: the agent's own answer, back through the room, is taken for
 * the user speaking, and barge-in cuts the answer. */
GST_START_TEST (test_echo_interrupts_without_cancellation)
{
  Fixture fx (room_config ());
  push_answers (fx, 4);
  Room room (fx, "", "", "", Acoustics {150, -10});
  room.start ();
  room.say (speech (kQuestions[1]), ms (500));
  /* The first answer starts; give the echo two seconds. */
  expect (room, [&] { return room.played_samples () > 0; }, 15000, "no answer was played");
  room.wait ([&] { return room.count ("interrupted") > 0; }, 3000);
  room.stop_mic ();
  std::lock_guard<std::mutex> guard (room.lock ());
  guint self_interruptions = room.count ("interrupted");
  g_print ("room, no echo cancellation: %u self-interruptions, %u speech-started for 1 turn\n",
      self_interruptions, room.count ("speech-started"));
  room_check (room, self_interruptions > 0, "the echo did not interrupt: the rig shows nothing");
  room_check (room, room.count ("speech-started") > 1, "the echo started no turn");
}
GST_END_TEST;

/* The documented pipeline: the echo canceller hears the answer through the
 * probe and takes it out of the microphone's signal. */
GST_START_TEST (test_echo_cancelled_over_ten_answers)
{
  Fixture fx (room_config ());
  push_answers (fx, 11);
  Room room (fx, kCanceller (), kHandsFree, kProbe, Acoustics {150, -10});
  room.start ();
  turn (room, 0, 0);
  g_object_set (room.rt (), "half-duplex", FALSE, nullptr);
  for (guint i = 1; i < 11; i++)
    turn (room, i, i);
  room.stop_mic ();
  std::lock_guard<std::mutex> guard (room.lock ());
  guint completed = 0;
  GstClockTime total = answered (room, &completed);
  GstClockTime played = gst_util_uint64_scale (room.played_samples (), GST_SECOND, kRoomRate);
  g_print ("room, echo cancelled: %u answers, %u speech-started, %u interrupted, "
      "%.3f s answered, %.3f s played\n", completed, room.count ("speech-started"),
      room.count ("interrupted"), total / 1e9, played / 1e9);
  room_check (room, room.count ("interrupted") == 0, "interrupted %u times",
      room.count ("interrupted"));
  room_check (room, room.flushes ().empty (), "%zu flushes", room.flushes ().size ());
  room_check (room, room.count ("speech-started") == 11, "%u speech-started for 11 turns",
      room.count ("speech-started"));
  room_check (room, completed == 11, "%u answers completed of 11", completed);
  /* Each answer heard whole: everything the service sent was played. */
  room_check (room, played + ms (2) * 11 >= total && played <= total + ms (2) * 11,
      "played %" GST_TIME_FORMAT " of %" GST_TIME_FORMAT, GST_TIME_ARGS (played),
      GST_TIME_ARGS (total));
}
GST_END_TEST;

/* With the canceller on, the user's voice over the answer still stops it. */
GST_START_TEST (test_barge_in_through_the_canceller)
{
  Fixture fx (room_config ());
  push_answers (fx, 1);
  push_answers (fx, 12, true);
  Room room (fx, kCanceller (), kHandsFree, kProbe, Acoustics {150, -10});
  room.start ();
  turn (room, 0, 0);
  g_object_set (room.rt (), "half-duplex", FALSE, nullptr);
  /* The next question; each answer is then talked over, and what the user
   * says is the next question. */
  GstClockTime since = room.say (speech (kQuestions[1]), room.now () + ms (300));
  std::vector<GstClockTime> delays;
  guint hits = 0, early = 0;
  for (guint i = 0; i < 10; i++) {
    gsize since_sample = gst_util_uint64_scale (since, kRoomRate, GST_SECOND);
    GstClockTime start = GST_CLOCK_TIME_NONE;
    expect (room, [&] {
      for (const auto &run : room.played ())
        if (run.first >= since_sample) {
          start = gst_util_uint64_scale (run.first, GST_SECOND, kRoomRate);
          return true;
        }
      return false;
    }, 15000, "answer " + std::to_string (i + 1) + " did not start");
    /* The user talks over it 0.7 s into the answer, at the level of a turn. */
    GstClockTime onset = room.say (speech (barge_in (i)), start + ms (700));
    bool hit = room.wait ([&] { return room.count ("interrupted", onset) > 0; }, 3000);
    {
      std::lock_guard<std::mutex> guard (room.lock ());
      early += room.count ("interrupted", start) - room.count ("interrupted", onset);
      if (hit) {
        hits++;
        /* src goes silent when the element stops the answer: its queue is
         * dropped and downstream flushed at that moment. */
        for (const RoomMessage &m : room.messages ())
          if (m.name == "interrupted" && m.at >= onset) {
            delays.push_back (m.at - onset);
            break;
          }
      }
    }
    since = onset + ms (100);
    if (!hit) {
      /* A barge-in the service did not hear is no question either: once
       * the answer has played out, the user asks again, so one miss is
       * counted as one, not as every answer after it. */
      expect (room, [&] { return !room.playing_at (room.now () - ms (300)); }, 15000,
          "answer " + std::to_string (i + 1) + " did not end");
      since = room.say (speech (kQuestions[(i + 4) % G_N_ELEMENTS (kQuestions)]),
          room.now () + ms (300));
    }
  }
  room.stop_mic ();
  std::lock_guard<std::mutex> guard (room.lock ());
  std::sort (delays.begin (), delays.end ());
  g_print ("room, barge-in through the canceller: %u of 10 interrupted (%u before the user "
      "spoke); speech onset to silence on src: min %.0f ms, median %.0f ms, max %.0f ms\n",
      hits, early, delays.empty () ? 0 : delays.front () / 1e6,
      delays.empty () ? 0 : delays[delays.size () / 2] / 1e6,
      delays.empty () ? 0 : delays.back () / 1e6);
  room_check (room, hits >= 9, "only %u of 10 barge-ins (the room's story above)", hits);
  room_check (room, early == 0, "%u interrupted before the user spoke (the room's story above)",
      early);
}
GST_END_TEST;

/* Per 10 ms frame of `pcm` (rate `rate`) from sample `first`: RMS in dBFS. */
static std::vector<double> frames_dbfs (const gint16 *pcm, gsize size, guint rate, gsize first,
    gsize count)
{
  std::vector<double> out;
  const gsize frame = rate / 100;
  for (gsize i = first; i + frame <= first + count && i + frame <= size; i += frame)
    out.push_back (rms_dbfs (pcm + i, frame));
  return out;
}

/* No canceller, half-duplex: the service hears silence while the answer
 * plays, and the user's next turn whole. */
GST_START_TEST (test_half_duplex_without_cancellation)
{
  Fixture fx (room_config ());
  push_answers (fx, 2);
  const Acoustics room_acoustics {150, -6};
  Room room (fx, "", "half-duplex=true", "", room_acoustics);
  room.start ();
  turn (room, 1, 0);
  std::pair<gsize, gsize> answer;
  {
    std::lock_guard<std::mutex> guard (room.lock ());
    room_check (room, !room.played ().empty (), "the first answer left no audio");
    answer = room.played ().front ();
  }
  std::vector<gint16> next = speech (kQuestions[2]);
  GstClockTime onset = room.say (next, room.now () + ms (300));
  expect (room, [&] { return heard_out (room, 2); }, 15000, "answer 2 was not played out");
  room.stop_mic ();
  std::lock_guard<std::mutex> guard (room.lock ());
  guint completed = 0;
  answered (room, &completed);
  room_check (room, room.count ("interrupted") == 0, "interrupted %u times",
      room.count ("interrupted"));
  room_check (room, room.count ("speech-started") == 2, "%u speech-started for 2 turns",
      room.count ("speech-started"));
  room_check (room, completed == 2, "%u answers completed of 2", completed);

  std::vector<guint8> bytes = fx.server.received_audio ();
  const auto *got = reinterpret_cast<const gint16 *> (bytes.data ());
  const gsize got_n = bytes.size () / 2;
  /* The echo of the answer was in the microphone, loud enough for the VAD
   * (-35 dBFS) ... */
  const gsize delay = (gsize) room_acoustics.delay_ms * kRoomRate / 1000;
  auto mic_echo = frames_dbfs (room.mic ().data (), room.mic ().size (), kRoomRate,
      answer.first + delay, answer.second - answer.first);
  room_check (room, !mic_echo.empty (), "the microphone stopped before the echo");
  double loudest = *std::max_element (mic_echo.begin (), mic_echo.end ());
  room_check (room, loudest > -35, "the echo peaked at %.1f dBFS", loudest);
  /* ... and the service got digital silence in its place, to its last
   * reflection (every frame of it: none missing). */
  const gsize echo_samples = (answer.second - answer.first + 80 * kRoomRate / 1000) / 2;
  auto sent = frames_dbfs (got, got_n, 24000, (answer.first + delay) / 2, echo_samples);
  room_check (room, sent.size () == echo_samples / 240, "the service got %zu of the echo's %zu "
      "frames", sent.size (), echo_samples / 240);
  for (gsize i = 0; i < sent.size (); i++)
    room_check (room, sent[i] <= -120, "frame %zu of the echo was sent at %.1f dBFS", i, sent[i]);
  /* The next turn, from its first frame, as the user said it. */
  gsize first = gst_util_uint64_scale (onset, kRoomRate, GST_SECOND);
  auto said = frames_dbfs (room.mic ().data (), room.mic ().size (), kRoomRate, first, next.size ());
  auto heard = frames_dbfs (got, got_n, 24000, first / 2, next.size () / 2);
  room_check (room, !said.empty () && said.size () == heard.size (),
      "the next turn: %zu frames said, %zu sent", said.size (), heard.size ());
  for (gsize i = 0; i < said.size (); i++)
    if (said[i] > -50)
      room_check (room, std::abs (said[i] - heard[i]) < 1.5,
          "frame %zu of the next turn: said %.1f dBFS, sent %.1f dBFS", i, said[i], heard[i]);
  g_print ("room, half-duplex: echo up to %.1f dBFS in the microphone, none sent; next turn "
      "sent whole (%zu frames)\n", loudest, said.size ());
}
GST_END_TEST;

/* Half-duplex with push-to-talk: pressing the button (unmute) while the
 * answer plays lets the user be heard over it, and the answer stops. */
GST_START_TEST (test_half_duplex_push_to_talk)
{
  Fixture fx (room_config ());
  push_answers (fx, 2, true);
  Room room (fx, "", "half-duplex=true mute=true", "", Acoustics {150, -10});
  room.start ();
  /* A turn: press, speak, release (muting ends the turn). */
  g_object_set (room.rt (), "mute", FALSE, nullptr);
  std::vector<gint16> question = speech (kQuestions[1]);
  GstClockTime said = room.say (question, room.now () + ms (200));
  expect (room, [&] {
    return room.now () > said + gst_util_uint64_scale (question.size (), GST_SECOND, kRoomRate) + ms (100);
  }, 10000, "the question was not said");
  g_object_set (room.rt (), "mute", TRUE, nullptr);
  /* The answer plays; 0.7 s in, the user presses and talks over it. */
  GstClockTime start = 0;
  expect (room, [&] {
    if (room.played ().empty ())
      return false;
    start = gst_util_uint64_scale (room.played ().front ().first, GST_SECOND, kRoomRate);
    return room.now () > start + ms (700);
  }, 15000, "the answer did not play");
  g_object_set (room.rt (), "mute", FALSE, nullptr);
  GstClockTime pressed = room.now ();
  room.say (speech (kQuestions[2]), pressed + ms (100));
  expect (room, [&] { return room.count ("interrupted", pressed) > 0; }, 5000,
      "the user was not heard over the answer");
  room.stop_mic ();
  std::lock_guard<std::mutex> guard (room.lock ());
  room_check (room, room.count ("interrupted") == room.count ("interrupted", pressed),
      "interrupted before the button was pressed");
}
GST_END_TEST;

static Suite *room_suite (void)
{
  Suite *s = suite_create ("room");
  TCase *tc = tcase_create ("room");
  tcase_set_timeout (tc, 120);
  tcase_add_test (tc, test_echo_interrupts_without_cancellation);
  tcase_add_test (tc, test_echo_cancelled_over_ten_answers);
  tcase_add_test (tc, test_barge_in_through_the_canceller);
  tcase_add_test (tc, test_half_duplex_without_cancellation);
  tcase_add_test (tc, test_half_duplex_push_to_talk);
  suite_add_tcase (s, tc);
  return s;
}

GST_CHECK_MAIN (room);
