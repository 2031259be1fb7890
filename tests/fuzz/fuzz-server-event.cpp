/* libFuzzer target: one WebSocket text frame from the server, as the element's
 * network thread hands it to the protocol parser (Session::on_text).
 *
 *   tests/fuzz/run.sh                 build with clang and fuzz for 60 s
 *   FUZZ_SECONDS=600 tests/fuzz/run.sh
 *
 * The parser must never crash, hang, leak or hit undefined behaviour, whatever
 * the bytes; a frame it accepts must hold consistent values; and its fast
 * path for audio deltas must agree with json-glib on every input: same
 * verdict, same event, same reason for a refusal (reference-parser.cpp). */
#include "yrt-base64.h"
#include "yrt-server-events.h"

#include "describe-event.h"
#include "reference-parser.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

/* Reads every byte of a string, so ASan sees an out-of-bounds or freed one. */
guint32 touch (const std::string &s)
{
  guint32 h = 0;
  for (unsigned char c : s)
    h = h * 31 + c;
  return h;
}

[[noreturn]] void bug (const char *what)
{
  fprintf (stderr, "fuzz-server-event: %s\n", what);
  abort ();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  yrt::ServerEvent ev;
  std::string why;
  /* Frames are not NUL-terminated: the parser gets (data, size) only. */
  bool ok = yrt::parse_server_event ((const char *) data, size, ev, why);

  std::string reference, reference_why;
  bool reference_ok = reference_parse ((const char *) data, size, reference, reference_why);
  if (ok != reference_ok) {
    fprintf (stderr, "fast path: %s (%s); json-glib: %s (%s)\n", ok ? "ok" : "refused",
        why.c_str (), reference_ok ? "ok" : "refused", reference_why.c_str ());
    bug ("the fast path and json-glib disagree on accepting the frame");
  }
  if (ok && describe_event (ev) != reference) {
    fprintf (stderr, "fast path:\n%s\njson-glib:\n%s\n", describe_event (ev).c_str (),
        reference.c_str ());
    bug ("the fast path and json-glib parse the frame differently");
  }
  if (!ok && why != reference_why) {
    fprintf (stderr, "fast path: %s\njson-glib: %s\n", why.c_str (), reference_why.c_str ());
    bug ("the fast path and json-glib refuse the frame for different reasons");
  }

  volatile guint32 sink = 0;
  if (!ok) {
    if (why.empty ())
      bug ("refused a frame without saying why");
    sink = sink + touch (why);
    return 0;
  }
  if (ev.type_name.empty () && ev.type != yrt::EventType::Unknown)
    bug ("known event type without a type name");
  sink = sink + touch (ev.type_name) + touch (ev.event_id) + touch (ev.session_id) +
      touch (ev.model) + touch (ev.item_id) + touch (ev.previous_item_id) +
      touch (ev.response_id) + touch (ev.status) + touch (ev.text) +
      touch (ev.error.type) + touch (ev.error.code) + touch (ev.error.message) +
      touch (ev.error.event_id);
  for (const yrt::FunctionCall &c : ev.calls)
    sink = sink + touch (c.call_id) + touch (c.name) + touch (c.arguments) + touch (c.item_id);
  if (ev.type == yrt::EventType::AudioDelta) {
    /* The decoded bytes go to Playout as they are: read them all, and check
     * that they re-encode to valid base64 of the right length. */
    guint32 h = 0;
    for (guint8 b : ev.audio)
      h = h * 31 + b;
    sink = sink + h;
    std::string b64;
    yrt::base64_encode_append (ev.audio.data (), ev.audio.size (), b64);
    std::vector<guint8> again;
    if (!yrt::base64_decode (b64.data (), b64.size (), again) || again != ev.audio)
      bug ("decoded audio does not survive a base64 round trip");
  } else if (!ev.audio.empty ()) {
    bug ("audio bytes on an event that is not an audio delta");
  }
  (void) sink;
  return 0;
}
