/* yandexrealtime-agent: a live voice agent on the yandexrealtime element.
 *
 *   microphone ! audioconvert ! yandexrealtime ! audioconvert ! audioresample ! speakers
 *
 * With --speakers, hands-free (docs/yandexrealtime.md, "Hands-free on speakers"):
 *
 *   microphone ! ... 48 kHz ! webrtcdsp ! yandexrealtime ! webrtcechoprobe ! ... speakers
 *
 * with half-duplex on until the first answer has been played, while the
 * echo canceller adapts to the room.
 *
 * It prints what the user said and streams the agent's answers, answers the
 * model's get_weather function calls with made-up weather (the same for the
 * same city every time), and reads commands from stdin:
 *
 *   Enter        toggle the microphone (push-to-talk; --ptt starts muted)
 *   /commit      end the user's turn by hand (needed with --manual)
 *   /cancel      cancel the answer in progress
 *   /clear       forget the conversation so far
 *   /quit        finish: wait for the outstanding answers, then exit
 *                (end of input and Ctrl+C do the same; Ctrl+C twice exits at once)
 *   other text   sent to the agent as a typed user message
 *
 * Credentials come from the environment, read by the element itself:
 * YANDEX_CLOUD_API_KEY (or YANDEX_CLOUD_IAM_TOKEN) and YANDEX_CLOUD_FOLDER_ID.
 * VECTOR_STORE_ID, when set, adds Yandex's file_search tool over that index.
 *
 * Headless, against the bundled emulator:
 *   yandexrealtime-emulator --port 0 --api-key demo     # prints ws://127.0.0.1:PORT/v1/realtime
 *   YANDEX_CLOUD_API_KEY=demo GST_PLUGIN_PATH=build/gst \
 *     build/examples/yandexrealtime-agent --location ws://127.0.0.1:PORT/v1/realtime \
 *       --source "audiotestsrc is-live=true wave=silence" --sink fakesink
 *
 * Only the public GStreamer API is used: the element is found at run time,
 * configured through properties and controlled through action signals.
 * examples/agent.py is the same program in Python. */
#include <gst/gst.h>
#include <glib-unix.h>

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  GMainLoop *loop;
  GstElement *pipeline;
  GstElement *rt;            /* the yandexrealtime element */
  gboolean manual;           /* turn-detection=none: Enter after talking also commits */
  gboolean adapting;         /* --speakers: half-duplex until the first answer is done */
  gboolean ready;            /* the session message arrived */
  GQueue typed;              /* lines typed before that, still to send */
  guint retry_id;            /* source that sends them */
  gboolean quitting;         /* /quit, Ctrl+C or end of input seen */
  gboolean eos_sent;         /* waiting for the last answers */
  int status;                /* exit status */
  /* An answer being streamed: its id and whether its line is still open. */
  gchar *text_response_id;
  gboolean text_streamed;
  gboolean line_open;
} Agent;

/* ---- printing ---- */

/* Ends a streamed answer's line before anything else is printed. */
static void
end_line (Agent *agent)
{
  if (agent->line_open) {
    putchar ('\n');
    agent->line_open = FALSE;
  }
}

static void G_GNUC_PRINTF (2, 3)
say (Agent *agent, const char *format, ...)
{
  va_list args;

  end_line (agent);
  va_start (args, format);
  vprintf (format, args);
  va_end (args);
  putchar ('\n');
  fflush (stdout);
}

/* ---- a little JSON, without a JSON library ---- */

/* Appends `s` as a JSON string literal (escaped like Python's json.dumps
 * with ensure_ascii=False, so agent.py produces the same bytes). */
static void
json_append_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (; *s; s++) {
    guchar c = (guchar) *s;
    switch (c) {
      case '"': g_string_append (out, "\\\""); break;
      case '\\': g_string_append (out, "\\\\"); break;
      case '\b': g_string_append (out, "\\b"); break;
      case '\f': g_string_append (out, "\\f"); break;
      case '\n': g_string_append (out, "\\n"); break;
      case '\r': g_string_append (out, "\\r"); break;
      case '\t': g_string_append (out, "\\t"); break;
      default:
        if (c < 0x20)
          g_string_append_printf (out, "\\u%04x", c);
        else
          g_string_append_c (out, (gchar) c);
    }
  }
  g_string_append_c (out, '"');
}

static const char *
skip_ws (const char *p)
{
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
    p++;
  return p;
}

static gboolean
read_hex4 (const char *p, gunichar *out)
{
  gunichar u = 0;
  for (int i = 0; i < 4; i++) {
    int d = g_ascii_xdigit_value (p[i]);
    if (d < 0)
      return FALSE;
    u = u * 16 + (gunichar) d;
  }
  *out = u;
  return TRUE;
}

/* Reads the JSON string starting at the quote `p`, decoded into `out` (may be
 * NULL); returns what follows the closing quote, or NULL if malformed. */
static const char *
read_string (const char *p, GString *out)
{
  if (*p != '"')
    return NULL;
  for (p++; *p != '"'; p++) {
    char c = *p;
    if (c == '\0' || (guchar) c < 0x20)
      return NULL;
    if (c == '\\') {
      p++;
      switch (*p) {
        case '"': case '\\': case '/': c = *p; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
          gunichar u, low;
          if (!read_hex4 (p + 1, &u))
            return NULL;
          p += 4;
          if (u >= 0xD800 && u < 0xDC00 && p[1] == '\\' && p[2] == 'u' &&
              read_hex4 (p + 3, &low) && low >= 0xDC00 && low < 0xE000) {
            u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00);
            p += 6;
          }
          if (out)
            g_string_append_unichar (out, g_unichar_validate (u) ? u : 0xFFFD);
          continue;
        }
        default:
          return NULL;
      }
    }
    if (out)
      g_string_append_c (out, c);
  }
  return p + 1;
}

/* Skips one JSON value; returns what follows it, or NULL if malformed. */
static const char *
skip_value (const char *p)
{
  const char *start;

  if (*p == '"')
    return read_string (p, NULL);
  if (*p == '{' || *p == '[') {
    int depth = 0;
    while (*p) {
      if (*p == '"') {
        if (!(p = read_string (p, NULL)))
          return NULL;
        continue;
      }
      if (*p == '{' || *p == '[')
        depth++;
      else if ((*p == '}' || *p == ']') && --depth == 0)
        return p + 1;
      p++;
    }
    return NULL;
  }
  for (start = p; *p && !strchr (",]} \t\r\n", *p); p++)
    ;
  return p == start ? NULL : p;
}

/* The string member `name` of the JSON object `json`, or NULL. */
static gchar *
json_get_string_member (const char *json, const char *name)
{
  GString *key = g_string_new (NULL);
  gchar *value = NULL;
  const char *p = skip_ws (json);

  if (*p++ != '{')
    goto out;
  for (;;) {
    p = skip_ws (p);
    g_string_truncate (key, 0);
    if (!(p = read_string (p, key)))
      goto out;
    p = skip_ws (p);
    if (*p++ != ':')
      goto out;
    p = skip_ws (p);
    if (strcmp (key->str, name) == 0 && *p == '"') {
      GString *s = g_string_new (NULL);
      if (read_string (p, s)) {
        value = g_string_free (s, FALSE);
      } else {
        g_string_free (s, TRUE);
      }
      goto out;
    }
    if (!(p = skip_value (p)))
      goto out;
    p = skip_ws (p);
    if (*p++ != ',')
      goto out;
  }
out:
  g_string_free (key, TRUE);
  return value;
}

/* ---- the tools ---- */

static gchar *
make_tools (const char *vector_store_id)
{
  GString *tools = g_string_new ("[");

  g_string_append (tools,
      "{\"type\":\"function\",\"name\":\"get_weather\","
      "\"description\":\"Получить краткую сводку погоды по городу.\","
      "\"parameters\":{\"type\":\"object\","
      "\"properties\":{\"city\":{\"type\":\"string\"}},"
      "\"required\":[\"city\"],\"additionalProperties\":false}}");
  /* Yandex built-ins: declared as functions with these names, run by the
   * service. file_search takes the search index ID as its description. */
  g_string_append (tools,
      ",{\"type\":\"function\",\"name\":\"web_search\","
      "\"description\":\"Поиск в интернете\",\"parameters\":\"{}\"}");
  if (vector_store_id && *vector_store_id) {
    g_string_append (tools,
        ",{\"type\":\"function\",\"name\":\"file_search\",\"description\":");
    json_append_string (tools, vector_store_id);
    g_string_append (tools, ",\"parameters\":\"{}\"}");
  }
  g_string_append_c (tools, ']');
  return g_string_free (tools, FALSE);
}

/* xorshift32: a tiny PRNG that agent.py reproduces bit for bit. */
static guint32
next_random (guint32 *state)
{
  guint32 x = *state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *state = x;
}

/* Made-up but stable weather: seeded by the city, so the same city always
 * gets the same answer; no snow in the heat, and advice that fits. */
static gchar *
fake_weather (const char *city)
{
  static const char *const conditions[] =
      { "ясно", "облачно", "дождь", "снег", "гроза", "туман" };
  guint32 state = g_str_hash (city);
  GString *json = g_string_new ("{\"city\": ");
  const char *condition, *advice;
  int temperature;
  guint wind;

  if (state == 0)
    state = 1;
  temperature = -10 + (int) (next_random (&state) % 46);     /* -10 … 35 °C */
  condition = conditions[next_random (&state) % G_N_ELEMENTS (conditions)];
  wind = 5 + next_random (&state) % 96;                       /* 0.5 … 10.0 m/s */
  if (temperature > 2 && strcmp (condition, "снег") == 0)
    condition = "дождь";
  else if (temperature <= 0 && (strcmp (condition, "дождь") == 0 || strcmp (condition, "гроза") == 0))
    condition = "снег";

  if (strcmp (condition, "дождь") == 0 || strcmp (condition, "гроза") == 0)
    advice = "Зонт пригодится.";
  else if (temperature <= 0)
    advice = "На дорогах скользко — будь аккуратнее.";
  else if (temperature >= 25)
    advice = "Пей воду и избегай солнца.";
  else if (wind >= 70)
    advice = "Ветрено, капюшон не помешает.";
  else
    advice = "Возьми легкую куртку.";

  json_append_string (json, city);
  g_string_append_printf (json, ", \"temperature_c\": %d, \"condition\": ", temperature);
  json_append_string (json, condition);
  g_string_append_printf (json, ", \"wind_m_s\": %u.%u, \"advice\": ", wind / 10, wind % 10);
  json_append_string (json, advice);
  g_string_append_c (json, '}');
  return g_string_free (json, FALSE);
}

static void
on_function_call (Agent *agent, const GstStructure *s)
{
  const char *call_id = gst_structure_get_string (s, "call-id");
  const char *name = gst_structure_get_string (s, "name");
  const char *arguments = gst_structure_get_string (s, "arguments");
  gchar *output;
  gboolean ok = FALSE;

  say (agent, "[function call %s %s]", name, arguments);
  if (g_strcmp0 (name, "get_weather") == 0) {
    gchar *city = json_get_string_member (arguments, "city");
    if (!city || !*g_strstrip (city)) {
      g_free (city);
      city = g_strdup ("Москва");
    }
    output = fake_weather (city);
    g_free (city);
  } else {
    /* Every call must be answered before the model can go on. */
    GString *error = g_string_new ("{\"error\": ");
    gchar *text = g_strdup_printf ("unknown function %s", name);
    json_append_string (error, text);
    g_string_append_c (error, '}');
    g_free (text);
    output = g_string_free (error, FALSE);
  }
  /* The element sends the output (with those of the other calls of the same
   * response) and asks for the follow-up answer itself. */
  g_signal_emit_by_name (agent->rt, "send-function-output", call_id, output, &ok);
  say (agent, "[function output %s%s]", output, ok ? "" : " NOT SENT");
  g_free (output);
}

/* EOS ends the input; the element still waits for the answers it owes
 * (bounded by eos-timeout-ms) before EOS reaches the sink and the bus. */
static void
send_eos (Agent *agent)
{
  agent->eos_sent = TRUE;
  say (agent, "[finishing: waiting for the answers in progress; again to quit at once]");
  gst_element_send_event (agent->pipeline, gst_event_new_eos ());
}

/* Lines typed while no session was ready (starting, reconnecting).  A
 * session lost again before they go out refuses them: retried for a while. */
static gboolean
send_typed (gpointer data)
{
  Agent *agent = data;
  static guint attempts;

  while (!g_queue_is_empty (&agent->typed)) {
    gchar *text = g_queue_peek_head (&agent->typed);
    gboolean ok = FALSE;

    g_signal_emit_by_name (agent->rt, "send-text", text, &ok);
    if (!ok && ++attempts < 100)
      return G_SOURCE_CONTINUE;
    if (!ok)
      say (agent, "[not sent: %s]", text);
    attempts = 0;
    g_free (g_queue_pop_head (&agent->typed));
  }
  agent->retry_id = 0;
  if (agent->quitting && !agent->eos_sent)
    send_eos (agent);
  return G_SOURCE_REMOVE;
}

/* ---- bus ---- */

static void
on_response_text (Agent *agent, const GstStructure *s)
{
  const char *id = gst_structure_get_string (s, "response-id");
  const char *text = gst_structure_get_string (s, "text");
  gboolean final = FALSE;

  gst_structure_get_boolean (s, "final", &final);
  if (g_strcmp0 (id, agent->text_response_id) != 0) {
    g_free (agent->text_response_id);
    agent->text_response_id = g_strdup (id);
    agent->text_streamed = FALSE;
  }
  if (!final) {
    if (!agent->line_open) {
      fputs ("agent: ", stdout);
      agent->line_open = TRUE;
    }
    fputs (text, stdout);
    agent->text_streamed = TRUE;
  } else if (agent->text_streamed) {
    end_line (agent);             /* the deltas were the whole text */
  } else {
    say (agent, "agent: %s", text);
  }
  fflush (stdout);
}

static void
on_element_message (Agent *agent, GstMessage *msg)
{
  const GstStructure *s = gst_message_get_structure (msg);
  const char *name = gst_structure_get_name (s);
  gboolean final = FALSE;
  guint64 ms = 0, ns = 0;

  if (GST_MESSAGE_SRC (msg) != GST_OBJECT (agent->rt) ||
      !g_str_has_prefix (name, "yandexrealtime/"))
    return;
  name += strlen ("yandexrealtime/");

  if (strcmp (name, "connection") == 0) {
    say (agent, "[%s %s]", gst_structure_get_string (s, "state"),
        gst_structure_get_string (s, "url"));
    if (g_strcmp0 (gst_structure_get_string (s, "state"), "connected") != 0)
      agent->ready = FALSE;  /* until the next session message */
  } else if (strcmp (name, "session") == 0) {
    say (agent, "[session %s ready]", gst_structure_get_string (s, "session-id"));
    agent->ready = TRUE;
    if (!g_queue_is_empty (&agent->typed) && !agent->retry_id)
      agent->retry_id = g_timeout_add (20, send_typed, agent);
  } else if (strcmp (name, "speech-started") == 0) {
    say (agent, "[you are speaking]");
  } else if (strcmp (name, "transcript") == 0) {
    gst_structure_get_boolean (s, "final", &final);
    if (final)
      say (agent, "you: %s", gst_structure_get_string (s, "text"));
  } else if (strcmp (name, "response-text") == 0) {
    on_response_text (agent, s);
  } else if (strcmp (name, "function-call") == 0) {
    on_function_call (agent, s);
  } else if (strcmp (name, "interrupted") == 0) {
    gst_structure_get_uint64 (s, "played-ms", &ms);
    say (agent, "[interrupted %s after %" G_GUINT64_FORMAT " ms]",
        gst_structure_get_string (s, "response-id"), ms);
  } else if (strcmp (name, "server-error") == 0) {
    say (agent, "[server error %s: %s]", gst_structure_get_string (s, "code"),
        gst_structure_get_string (s, "message"));
  } else if (strcmp (name, "response-done") == 0) {
    GString *line = g_string_new (NULL);
    if (agent->adapting) {   /* the echo canceller has heard an answer now */
      agent->adapting = FALSE;
      g_object_set (agent->rt, "half-duplex", FALSE, NULL);
    }
    gst_structure_get_uint64 (s, "audio-duration", &ns);
    g_string_printf (line, "[response %s %s, %.2f s of audio",
        gst_structure_get_string (s, "response-id"),
        gst_structure_get_string (s, "status"), (double) ns / GST_SECOND);
    if (gst_structure_get_uint64 (s, "first-audio-latency", &ns))
      g_string_append_printf (line, ", first audio after %" G_GUINT64_FORMAT " ms",
          ns / GST_MSECOND);
    g_string_append_c (line, ']');
    say (agent, "%s", line->str);
    g_string_free (line, TRUE);
  }
}

static gboolean
on_bus_message (GstBus *bus, GstMessage *msg, gpointer data)
{
  Agent *agent = data;
  GError *err = NULL;
  gchar *debug = NULL;

  (void) bus;
  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ELEMENT:
      on_element_message (agent, msg);
      break;
    case GST_MESSAGE_WARNING:
      gst_message_parse_warning (msg, &err, &debug);
      end_line (agent);
      g_printerr ("warning: %s\n", err->message);
      break;
    case GST_MESSAGE_ERROR:
      gst_message_parse_error (msg, &err, &debug);
      end_line (agent);
      g_printerr ("error: %s\n%s\n", err->message, debug ? debug : "");
      agent->status = 1;
      g_main_loop_quit (agent->loop);
      break;
    case GST_MESSAGE_EOS:
      say (agent, "[all answers played, bye]");
      g_main_loop_quit (agent->loop);
      break;
    default:
      break;
  }
  g_clear_error (&err);
  g_free (debug);
  return G_SOURCE_CONTINUE;
}

/* ---- keyboard ---- */

static void
finish (Agent *agent)
{
  if (agent->quitting) {
    say (agent, "[quitting now]");
    g_main_loop_quit (agent->loop);
    return;
  }
  agent->quitting = TRUE;
  if (g_queue_is_empty (&agent->typed))
    send_eos (agent);
  /* else send_typed() sends EOS after the last typed line */
}

static void
emit_simple (Agent *agent, const char *signal)
{
  gboolean ok = FALSE;

  g_signal_emit_by_name (agent->rt, signal, &ok);
  say (agent, "[%s%s]", signal, ok ? "" : !agent->ready ? ": no session yet" :
      ": refused (GST_DEBUG=yandexrealtime:2 says why)");
}

static void
toggle_mute (Agent *agent)
{
  gboolean mute = FALSE, ok = FALSE;

  g_object_get (agent->rt, "mute", &mute, NULL);
  mute = !mute;
  /* Under server VAD, muting mid-speech ends the turn by itself. */
  g_object_set (agent->rt, "mute", mute, NULL);
  if (mute && agent->manual) {
    g_signal_emit_by_name (agent->rt, "commit", &ok);
    say (agent, "[microphone off, turn committed%s]", ok ? "" : ": refused");
  } else {
    say (agent, "%s", mute ? "[microphone off]" : "[microphone on: talk, then Enter]");
  }
}

static void
on_line (Agent *agent, const char *line)
{
  gboolean ok = FALSE;

  if (agent->quitting)
    return;
  if (*line == '\0') {
    toggle_mute (agent);
  } else if (strcmp (line, "/quit") == 0) {
    finish (agent);
  } else if (strcmp (line, "/clear") == 0) {
    emit_simple (agent, "clear-conversation");
  } else if (strcmp (line, "/cancel") == 0) {
    emit_simple (agent, "cancel-response");
  } else if (strcmp (line, "/commit") == 0) {
    emit_simple (agent, "commit");
  } else if (!agent->ready) {
    g_queue_push_tail (&agent->typed, g_strdup (line));
    say (agent, "[sent once the session is ready]");
  } else {
    /* Becomes a user message; the element asks for the answer. */
    g_signal_emit_by_name (agent->rt, "send-text", line, &ok);
    if (!ok)
      say (agent, "[not sent: no open session]");
  }
}

static gboolean
on_stdin (GIOChannel *channel, GIOCondition condition, gpointer data)
{
  Agent *agent = data;
  gchar *line = NULL, *valid;
  gsize terminator = 0;
  GIOStatus status;

  (void) condition;
  status = g_io_channel_read_line (channel, &line, NULL, &terminator, NULL);
  if (status == G_IO_STATUS_AGAIN)
    return G_SOURCE_CONTINUE;
  if (status != G_IO_STATUS_NORMAL) {     /* end of input (Ctrl+D) or error */
    if (!agent->quitting)
      finish (agent);
    return G_SOURCE_REMOVE;
  }
  line[terminator] = '\0';
  g_strchomp (line);                     /* also a '\r' from a terminal or file */
  valid = g_utf8_make_valid (line, -1);
  on_line (agent, valid);
  g_free (valid);
  g_free (line);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_sigint (gpointer data)
{
  finish (data);
  return G_SOURCE_CONTINUE;
}

/* ---- main ---- */

int
main (int argc, char **argv)
{
  gchar *location = NULL, *source = NULL, *sink = NULL, *voice = NULL;
  gchar *instructions = NULL;
  gboolean ptt = FALSE, manual = FALSE, speakers = FALSE;
  GOptionEntry entries[] = {
    { "location", 0, 0, G_OPTION_ARG_STRING, &location,
      "Realtime API endpoint (default: the element's, Yandex Cloud)", "URL" },
    { "source", 0, 0, G_OPTION_ARG_STRING, &source,
      "Input pipeline fragment (default: autoaudiosrc)", "DESC" },
    { "sink", 0, 0, G_OPTION_ARG_STRING, &sink,
      "Output pipeline fragment (default: autoaudiosink)", "DESC" },
    { "voice", 0, 0, G_OPTION_ARG_STRING, &voice, "Voice of the answers", "NAME" },
    { "instructions", 0, 0, G_OPTION_ARG_STRING, &instructions,
      "System instructions (default: a short Russian assistant prompt)", "TEXT" },
    { "ptt", 0, 0, G_OPTION_ARG_NONE, &ptt,
      "Push-to-talk: start with the microphone off; Enter toggles it", NULL },
    { "manual", 0, 0, G_OPTION_ARG_NONE, &manual,
      "Manual turns (turn-detection=none): turns end with /commit, or with "
      "Enter when the microphone goes off", NULL },
    { "speakers", 0, 0, G_OPTION_ARG_NONE, &speakers,
      "Hands-free on speakers: echo cancellation (webrtcdsp, webrtcechoprobe)", NULL },
    { NULL, 0, 0, G_OPTION_ARG_NONE, NULL, NULL, NULL },
  };
  GOptionContext *context;
  GError *error = NULL;
  Agent agent = { 0 };
  gchar *description, *tools;
  const char *store = g_getenv ("VECTOR_STORE_ID");
  GIOChannel *in;
  guint stdin_id, sigint_id;
  GstBus *bus;

  context = g_option_context_new ("- a voice agent on the yandexrealtime element");
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_add_group (context, gst_init_get_option_group ());
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 2;
  }
  g_option_context_free (context);
  gst_init (&argc, &argv);

  if (speakers)   /* the settings and why: docs/yandexrealtime.md */
    description = g_strdup_printf ("%s ! audioconvert ! audioresample ! "
        "audio/x-raw,format=S16LE,rate=48000,channels=1 ! webrtcdsp probe=echo "
        "delay-agnostic=false echo-suppression-level=high noise-suppression=true gain-control=true ! "
        "yandexrealtime name=rt half-duplex=true ! webrtcechoprobe name=echo ! "
        "audioconvert ! audioresample ! %s", source ? source : "autoaudiosrc",
        sink ? sink : "autoaudiosink");
  else
    description = g_strdup_printf ("%s ! audioconvert ! yandexrealtime name=rt ! "
        "audioconvert ! audioresample ! %s", source ? source : "autoaudiosrc",
        sink ? sink : "autoaudiosink");
  agent.pipeline = gst_parse_launch (description, &error);
  g_free (description);
  if (!agent.pipeline || error) {
    g_printerr ("cannot build the pipeline: %s\n", error ? error->message : "?");
    if (error && g_error_matches (error, GST_PARSE_ERROR, GST_PARSE_ERROR_NO_SUCH_ELEMENT))
      g_printerr ("(is GST_PLUGIN_PATH set to the directory of libgstyandexrealtime.so?)\n");
    return 1;
  }
  agent.rt = gst_bin_get_by_name (GST_BIN (agent.pipeline), "rt");
  agent.manual = manual;
  agent.adapting = speakers;

  if (!instructions)
    instructions = g_strconcat ("Ты вежливый русскоязычный ассистент. Отвечай кратко. "
        "Если просят рассказать новости, используй функцию web_search. "
        "Если спрашивают о погоде, вызывай функцию get_weather.",
        store && *store ? " Если спрашивают о документах, обращайся к функции file_search." : "",
        NULL);
  tools = make_tools (store);
  /* Credentials and folder: the element reads YANDEX_CLOUD_* itself. */
  g_object_set (agent.rt, "tools", tools, "instructions", instructions,
      "mute", ptt, NULL);
  if (location)
    g_object_set (agent.rt, "location", location, NULL);
  if (voice)
    g_object_set (agent.rt, "voice", voice, NULL);
  if (manual)
    gst_util_set_object_arg (G_OBJECT (agent.rt), "turn-detection", "none");
  g_free (tools);

  agent.loop = g_main_loop_new (NULL, FALSE);
  bus = gst_element_get_bus (agent.pipeline);
  gst_bus_add_watch (bus, on_bus_message, &agent);
  in = g_io_channel_unix_new (0);
  g_io_channel_set_encoding (in, NULL, NULL);   /* bytes; made valid UTF-8 per line */
  stdin_id = g_io_add_watch (in, G_IO_IN | G_IO_HUP | G_IO_ERR, on_stdin, &agent);
  sigint_id = g_unix_signal_add (SIGINT, on_sigint, &agent);

  say (&agent, "Talk (headphones!) or type a message. Enter: microphone %s. "
      "/commit /cancel /clear /quit.", ptt ? "on/off (now off)" : "on/off");
  if (gst_element_set_state (agent.pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    /* The error on the bus says why (e.g. no credentials for wss://). */
    GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    if (msg) {
      on_bus_message (bus, msg, &agent);
      gst_message_unref (msg);
    }
    agent.status = 1;
  } else {
    g_main_loop_run (agent.loop);
  }

  gst_element_set_state (agent.pipeline, GST_STATE_NULL);
  gst_bus_remove_watch (bus);
  gst_object_unref (bus);
  g_io_channel_unref (in);
  gst_object_unref (agent.rt);
  gst_object_unref (agent.pipeline);
  g_main_loop_unref (agent.loop);
  if (g_main_context_find_source_by_id (NULL, stdin_id))
    g_source_remove (stdin_id);   /* unless end of input removed it */
  g_source_remove (sigint_id);
  if (agent.retry_id)
    g_source_remove (agent.retry_id);
  g_queue_clear_full (&agent.typed, g_free);
  g_free (agent.text_response_id);
  g_free (location);
  g_free (source);
  g_free (sink);
  g_free (voice);
  g_free (instructions);
  return agent.status;
}
