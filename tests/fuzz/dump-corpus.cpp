/* Writes the seed corpus of fuzz-server-event: one file per kind of server
 * event, exactly as the emulator sends it over a real WebSocket.
 *
 *   ninja -C build-fuzz tests/fuzz/dump-corpus
 *   build-fuzz/tests/fuzz/dump-corpus tests/fuzz/corpus
 *
 * One session drives every event the element handles: a spoken turn under
 * server VAD with a short spoken answer (and, after its transcript, the GA
 * events the emulator sends only on request), a truncation of that answer, a typed
 * turn answered by a function call, a deletion, a clear and an error.  Files
 * are named after the event type (plus the item type for output items and
 * response.done). */
#include "emulator.h"
#include "json-util.h"

#include <libsoup/soup.h>

#include <cmath>
#include <cstdio>
#include <deque>
#include <set>
#include <string>
#include <vector>

using namespace yrt::emu;

namespace {

constexpr guint kTimeoutMs = 10000;
constexpr guint kInRate = 24000;

/* Iterates the default context until `done()` or the timeout. */
template <typename Pred>
bool spin_until (Pred done, guint timeout_ms)
{
  const gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  while (!done ()) {
    if (g_get_monotonic_time () >= deadline)
      return false;
    GSource *tick = g_timeout_source_new (10);
    g_source_set_callback (tick, [] (gpointer) -> gboolean { return G_SOURCE_REMOVE; },
        nullptr, nullptr);
    g_source_attach (tick, nullptr);
    g_main_context_iteration (nullptr, TRUE);
    g_source_destroy (tick);
    g_source_unref (tick);
  }
  return true;
}

struct Frame {
  std::string text;
  std::string type;
  std::string item_type;  /* item.type, or response.output[0].type */
  std::string item_id;    /* item.id or item_id */
};

struct Client {
  SoupSession *session = soup_session_new ();
  SoupWebsocketConnection *ws = nullptr;
  std::deque<Frame> frames;

  ~Client ()
  {
    if (ws) {
      g_signal_handlers_disconnect_by_data (ws, this);
      if (soup_websocket_connection_get_state (ws) == SOUP_WEBSOCKET_STATE_OPEN) {
        soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
        spin_until ([this] {
              return soup_websocket_connection_get_state (ws) == SOUP_WEBSOCKET_STATE_CLOSED;
            }, 1000);
      }
      g_object_unref (ws);
    }
    g_object_unref (session);
  }

  bool connect (const std::string &url)
  {
    SoupMessage *msg = soup_message_new ("GET", url.c_str ());
    soup_message_headers_append (soup_message_get_request_headers (msg), "Authorization",
        "Api-Key corpus-key");
    bool done = false;
    struct Ctx { Client *self; bool *done; } ctx {this, &done};
    soup_session_websocket_connect_async (session, msg, nullptr, nullptr,
        G_PRIORITY_DEFAULT, nullptr,
        [] (GObject *src, GAsyncResult *res, gpointer data) {
          auto *c = static_cast<Ctx *> (data);
          c->self->ws = soup_session_websocket_connect_finish (SOUP_SESSION (src), res, nullptr);
          *c->done = true;
        }, &ctx);
    spin_until ([&] { return done; }, kTimeoutMs);
    g_object_unref (msg);
    if (!ws)
      return false;
    soup_websocket_connection_set_max_incoming_payload_size (ws, 64 * 1024 * 1024);
    g_signal_connect (ws, "message", G_CALLBACK (on_message), this);
    return true;
  }

  static void on_message (SoupWebsocketConnection *, gint type, GBytes *bytes, gpointer data)
  {
    if (type != SOUP_WEBSOCKET_DATA_TEXT)
      return;
    gsize size = 0;
    const char *text = static_cast<const char *> (g_bytes_get_data (bytes, &size));
    Frame f;
    f.text.assign (text, size);
    JsonNode *node = json_parse_any (f.text);
    if (node && JSON_NODE_HOLDS_OBJECT (node)) {
      JsonObject *o = json_node_get_object (node);
      f.type = str_or (o, "type", "");
      JsonObject *item = get_obj (o, "item");
      f.item_type = str_or (item, "type", "");
      /* response.done: the type of its first output item. */
      JsonArray *output = get_arr (get_obj (o, "response"), "output");
      if (f.type == "response.done" && output && json_array_get_length (output) > 0 &&
          JSON_NODE_HOLDS_OBJECT (json_array_get_element (output, 0)))
        f.item_type = str_or (json_array_get_object_element (output, 0), "type", "");
      f.item_id = str_or (item, "id", str_or (o, "item_id", ""));
    }
    if (node)
      json_node_unref (node);
    static_cast<Client *> (data)->frames.push_back (std::move (f));
  }

  void send (const JObj &ev) { soup_websocket_connection_send_text (ws, ev.text ().c_str ()); }

  void append (const std::vector<gint16> &pcm)
  {
    gchar *b64 = g_base64_encode (reinterpret_cast<const guchar *> (pcm.data ()), pcm.size () * 2);
    send (JObj ().str ("type", "input_audio_buffer.append").str ("audio", b64));
    g_free (b64);
  }
};

class Dumper {
 public:
  Dumper (Client &c, std::string dir) : c_ (c), dir_ (std::move (dir)) {}

  /* Saves and returns frames until one of `type` (which is returned). */
  Frame until (const std::string &type)
  {
    for (;;) {
      if (!spin_until ([this] { return !c_.frames.empty (); }, kTimeoutMs))
        g_error ("timed out waiting for %s", type.c_str ());
      Frame f = c_.frames.front ();
      c_.frames.pop_front ();
      save (f);
      seen_.push_back (f);
      if (f.type == type)
        return f;
    }
  }

  const std::vector<Frame> &seen () const { return seen_; }
  guint written () const { return (guint) names_.size (); }

 private:
  void save (const Frame &f)
  {
    if (f.type.empty ())
      return;
    std::string name = f.type;
    if (!f.item_type.empty () &&
        (f.type.rfind ("response.output_item.", 0) == 0 || f.type == "response.done"))
      name += "-" + f.item_type;
    if (!names_.insert (name).second)
      return;
    std::string path = dir_ + "/server-" + name + ".json";
    GError *error = nullptr;
    if (!g_file_set_contents (path.c_str (), f.text.data (), (gssize) f.text.size (), &error))
      g_error ("%s", error->message);
    printf ("%s (%zu bytes)\n", path.c_str (), f.text.size ());
  }

  Client &c_;
  std::string dir_;
  std::set<std::string> names_;
  std::vector<Frame> seen_;
};

std::vector<gint16> tone (guint ms)
{
  std::vector<gint16> pcm ((gsize) ms * kInRate / 1000);
  for (gsize i = 0; i < pcm.size (); i++)
    pcm[i] = (gint16) (12000 * std::sin (2 * G_PI * 300.0 * (double) i / kInRate));
  return pcm;
}

}  // namespace

int main (int argc, char **argv)
{
  if (argc != 2) {
    fprintf (stderr, "usage: %s <corpus directory>\n", argv[0]);
    return 2;
  }
  g_mkdir_with_parents (argv[1], 0755);

  Config cfg;
  cfg.audio_delta_ms = 20;           /* short deltas: small seeds */
  cfg.default_turn.answer_ms = 40;
  /* After the spoken turn's transcript: the GA events the emulator sends
   * only when asked (MCP progress, timeouts, transcription failures, ...). */
  cfg.faults.extra_events = {
    "input_audio_buffer.timeout_triggered",
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.failed",
    "output_audio_buffer.started", "output_audio_buffer.stopped", "output_audio_buffer.cleared",
    "mcp_list_tools.in_progress", "mcp_list_tools.completed", "mcp_list_tools.failed",
    "response.mcp_call_arguments.delta", "response.mcp_call_arguments.done",
    "response.mcp_call.in_progress", "response.mcp_call.completed", "response.mcp_call.failed",
  };
  Server server (cfg);
  if (!server.start ())
    g_error ("the emulator did not start");
  TurnScript spoken;                 /* turn 1: a spoken answer */
  spoken.answer_ms = 40;
  spoken.transcript = "What is the weather?";
  spoken.answer_text = "Let me see.";
  server.push_turn (spoken);
  TurnScript call;                   /* turn 2: a function call */
  call.calls.push_back ({"get_weather", "{\"city\":\"Moscow\"}"});
  server.push_turn (call);

  {
    Client c;
    if (!c.connect (server.url () + "?model=gpt://b1gfolder/speech-realtime-250923"))
      g_error ("could not connect to the emulator");
    Dumper d (c, argv[1]);
    d.until ("session.created");
    /* Output at 8 kHz keeps the audio deltas short (20 ms = 320 bytes). */
    c.send (JObj ().str ("type", "session.update").obj ("session",
        JObj ().obj ("audio", JObj ().obj ("output",
            JObj ().obj ("format", JObj ().str ("type", "audio/pcm").num ("rate", 8000))))));
    d.until ("session.updated");

    /* A spoken turn: speech_started ... response.done with usage. */
    std::vector<gint16> speech = tone (600), quiet ((gsize) kInRate * 800 / 1000, 0);
    for (const auto *pcm : {&speech, &quiet})
      for (gsize pos = 0; pos < pcm->size (); pos += kInRate / 25)
        c.append (std::vector<gint16> (pcm->begin () + pos,
            pcm->begin () + std::min (pcm->size (), pos + kInRate / 25)));
    d.until ("response.done");
    std::string user_item, answer_item;
    for (const Frame &f : d.seen ()) {
      if (f.type == "input_audio_buffer.committed")
        user_item = f.item_id;
      if (f.type == "response.output_item.added" && f.item_type == "message")
        answer_item = f.item_id;
    }

    /* Truncating the answer: conversation.item.truncated. */
    c.send (JObj ().str ("type", "conversation.item.truncate").str ("item_id", answer_item)
        .num ("content_index", 0).num ("audio_end_ms", 20));
    d.until ("conversation.item.truncated");

    /* A typed turn answered by a function call. */
    c.send (JObj ().str ("type", "conversation.item.create").obj ("item",
        JObj ().str ("type", "message").str ("role", "user").arr ("content",
            JArr ().add (JObj ().str ("type", "input_text").str ("text", "And tomorrow?")))));
    c.send (JObj ().str ("type", "response.create"));
    d.until ("response.done");

    c.send (JObj ().str ("type", "conversation.item.delete").str ("item_id", user_item));
    d.until ("conversation.item.deleted");
    c.send (JObj ().str ("type", "input_audio_buffer.clear"));
    d.until ("input_audio_buffer.cleared");
    c.send (JObj ().str ("type", "no.such.event"));
    d.until ("error");
    printf ("%u files\n", d.written ());
  }
  server.stop ();
  return 0;
}
