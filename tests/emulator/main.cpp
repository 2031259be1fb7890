// yandexrealtime-emulator: runs the protocol emulator until SIGINT/SIGTERM.
// The first line on stdout is the WebSocket URL to connect to.
#include <glib-unix.h>
#include <glib.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include "emulator.h"

namespace {

struct Options {
  gint port = 0;
  gchar *api_key = nullptr;
  gchar *iam_token = nullptr;
  gchar *answer_text = nullptr;
  gchar *transcript = nullptr;
  gint answer_ms = 1000;
  gint pace_ms = 0;
  gint audio_delta_ms = 100;
  gint first_audio_delay_ms = 0;
  gdouble read_speed = 0;
  gboolean speak = FALSE;
  gboolean verbose = FALSE;
  gchar *vad_model = nullptr;
  gchar *input_rate_policy = nullptr;
  gchar *output_rate_policy = nullptr;
  yrt::emu::RateRule input_rule, output_rule;
};

// "accept", "serve:44100", "refuse:24000" (a rate of 8000..192000; without
// one, the direction's default rate).
bool parse_rate_rule(const char *text, yrt::emu::RateRule *rule) {
  if (!text)
    return true;
  const std::string s = text;
  const std::string name = s.substr(0, s.find(':'));
  if (name == "accept" && name.size() == s.size()) {
    *rule = {};
    return true;
  }
  if (name == "serve")
    rule->policy = yrt::emu::RatePolicy::Serve;
  else if (name == "refuse")
    rule->policy = yrt::emu::RatePolicy::Refuse;
  else
    return false;
  rule->rate = 0;
  if (name.size() == s.size())
    return true;
  gchar *end = nullptr;
  const guint64 rate = g_ascii_strtoull(s.c_str() + name.size() + 1, &end, 10);
  if (!end || *end || end == s.c_str() + name.size() + 1 || rate < 8000 || rate > 192000)
    return false;
  rule->rate = static_cast<guint>(rate);
  return true;
}

bool parse(int argc, char **argv, Options *o) {
  const GOptionEntry entries[] = {
      {"port", 0, 0, G_OPTION_ARG_INT, &o->port, "Port on 127.0.0.1 (0 = any free port)", "N"},
      {"api-key", 0, 0, G_OPTION_ARG_STRING, &o->api_key,
       "Accept only \"Api-Key K\" (default: any non-empty credential)", "K"},
      {"iam-token", 0, 0, G_OPTION_ARG_STRING, &o->iam_token, "Accept \"Bearer T\"", "T"},
      {"answer-text", 0, 0, G_OPTION_ARG_STRING, &o->answer_text,
       "Text of every answer (default \"answer <n>\")", "TEXT"},
      {"transcript", 0, 0, G_OPTION_ARG_STRING, &o->transcript,
       "Transcript of every user turn (default \"turn <n>\")", "TEXT"},
      {"answer-ms", 0, 0, G_OPTION_ARG_INT, &o->answer_ms, "Duration of each answer's audio",
       "MS"},
      {"pace-ms", 0, 0, G_OPTION_ARG_INT, &o->pace_ms,
       "Delay between audio deltas (0 = as fast as possible)", "MS"},
      {"audio-delta-ms", 0, 0, G_OPTION_ARG_INT, &o->audio_delta_ms,
       "Duration of each audio delta", "MS"},
      {"first-audio-delay-ms", 0, 0, G_OPTION_ARG_INT, &o->first_audio_delay_ms,
       "Delay before the first audio delta of each answer", "MS"},
      {"read-speed", 0, 0, G_OPTION_ARG_DOUBLE, &o->read_speed,
       "Read input audio at S x real time, like a real service (0 = as fast as sent)", "S"},
      {"speak", 0, 0, G_OPTION_ARG_NONE, &o->speak,
       "Speak answers with espeak-ng if built with it (a tone otherwise)", nullptr},
      {"vad-model", 0, 0, G_OPTION_ARG_STRING, &o->vad_model,
       "Server VAD: realistic (default: smoothed, 250 ms of speech before a turn starts) or "
       "energy (the old one: any loud 10 ms frame starts a turn)",
       "MODEL"},
      {"output-rate-policy", 0, 0, G_OPTION_ARG_STRING, &o->output_rate_policy,
       "What a session does with the output rate a session.update asks for: accept (default), "
       "serve:RATE (ignore it, serve RATE and report it) or refuse:RATE (refuse the update with "
       "an error; no input audio until a valid update)",
       "POLICY"},
      {"input-rate-policy", 0, 0, G_OPTION_ARG_STRING, &o->input_rate_policy,
       "Same for the input rate: accept (default), serve:RATE or refuse:RATE", "POLICY"},
      {"verbose", 'v', 0, G_OPTION_ARG_NONE, &o->verbose,
       "Print each client event type to stderr", nullptr},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr},
  };
  GOptionContext *ctx = g_option_context_new("- Yandex Realtime API emulator");
  g_option_context_add_main_entries(ctx, entries, nullptr);
  GError *error = nullptr;
  bool ok = g_option_context_parse(ctx, &argc, &argv, &error);
  if (!ok) {
    std::cerr << error->message << "\n";
    g_error_free(error);
  } else if (o->port < 0 || o->port > 65535 || o->answer_ms < 0 || o->pace_ms < 0 ||
             o->audio_delta_ms <= 0 || o->first_audio_delay_ms < 0 || o->read_speed < 0) {
    std::cerr << "invalid numeric option\n";
    ok = false;
  } else if (!parse_rate_rule(o->output_rate_policy, &o->output_rule) ||
             !parse_rate_rule(o->input_rate_policy, &o->input_rule)) {
    std::cerr << "invalid rate policy (accept, serve:RATE or refuse:RATE)\n";
    ok = false;
  } else if (o->vad_model && g_strcmp0(o->vad_model, "realistic") != 0 &&
             g_strcmp0(o->vad_model, "energy") != 0) {
    std::cerr << "invalid VAD model (realistic or energy)\n";
    ok = false;
  }
  g_option_context_free(ctx);
  return ok;
}

yrt::emu::Config make_config(const Options &o) {
  yrt::emu::Config cfg;
  cfg.port = static_cast<guint16>(o.port);
  cfg.api_key = o.api_key ? o.api_key : "";
  cfg.iam_token = o.iam_token ? o.iam_token : "";
  cfg.default_turn.answer_text = o.answer_text ? o.answer_text : "";
  cfg.default_turn.transcript = o.transcript ? o.transcript : "";
  cfg.default_turn.answer_ms = static_cast<guint>(o.answer_ms);
  cfg.pace_ms = static_cast<guint>(o.pace_ms);
  cfg.audio_delta_ms = static_cast<guint>(o.audio_delta_ms);
  cfg.faults.first_audio_delay_ms = static_cast<guint>(o.first_audio_delay_ms);
  cfg.faults.read_speed = o.read_speed;
  cfg.speak = o.speak;
  if (g_strcmp0(o.vad_model, "energy") == 0)
    cfg.vad_model = yrt::emu::VadModel::Energy;
  cfg.input_rate_rule = o.input_rule;
  cfg.output_rate_rule = o.output_rule;
  cfg.record_audio = false;  // runs for a long time: don't accumulate audio
  if (o.verbose)
    cfg.on_client_event = [](const yrt::emu::ClientEvent &ev) {
      std::fprintf(stderr, "%s\n", ev.type.c_str());
    };
  return cfg;
}

gboolean quit_loop(gpointer loop) {
  g_main_loop_quit(static_cast<GMainLoop *>(loop));
  return G_SOURCE_REMOVE;
}

}  // namespace

int main(int argc, char **argv) {
  Options opts;
  if (!parse(argc, argv, &opts))
    return 2;
  // Handlers first: once the URL is out, a signal must stop us cleanly.
  GMainLoop *loop = g_main_loop_new(nullptr, FALSE);
  g_unix_signal_add(SIGINT, quit_loop, loop);
  g_unix_signal_add(SIGTERM, quit_loop, loop);

  yrt::emu::Server server(make_config(opts));
  int status = 0;
  if (server.start() == 0) {
    std::cerr << "cannot start the emulator\n";
    status = 1;
  } else {
    std::cout << server.url() << std::endl;  // endl flushes: the caller waits for this line
    g_main_loop_run(loop);
    server.stop();
  }
  g_main_loop_unref(loop);
  g_free(opts.api_key);
  g_free(opts.iam_token);
  g_free(opts.answer_text);
  g_free(opts.transcript);
  g_free(opts.vad_model);
  g_free(opts.input_rate_policy);
  g_free(opts.output_rate_policy);
  return status;
}
