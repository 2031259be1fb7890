/* The example programs as a user runs them: examples/agent.c, headless
 * (silent live source, fakesink), typed input on stdin, against the
 * emulator over loopback. */
#include "harness.h"

#include <gio/gio.h>

#include <string>
#include <vector>

using namespace yrt::test;
namespace emu = yrt::emu;

namespace {

/* What the agent printed, and how it exited, after `input` on its stdin. */
struct Run {
  std::string out;
  int status = -1;
};

Run run_agent (const std::string &url, const char *input, bool speakers = false)
{
  GSubprocessLauncher *launcher = g_subprocess_launcher_new ((GSubprocessFlags) (
          G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
          G_SUBPROCESS_FLAGS_STDERR_MERGE));
  g_subprocess_launcher_setenv (launcher, "YANDEX_CLOUD_API_KEY", "agent-key", TRUE);
  GError *error = nullptr;
  GSubprocess *agent = g_subprocess_launcher_spawn (launcher, &error, YRT_AGENT,
      "--location", url.c_str (), "--source", "audiotestsrc is-live=true wave=silence",
      "--sink", "fakesink", speakers ? "--speakers" : nullptr, nullptr);
  fail_unless (agent != nullptr, "%s", error ? error->message : "?");
  char *out = nullptr;
  fail_unless (g_subprocess_communicate_utf8 (agent, input, nullptr, &out, nullptr, &error),
      "%s", error ? error->message : "?");
  Run run;
  run.out = out ? out : "";
  run.status = g_subprocess_get_if_exited (agent) ? g_subprocess_get_exit_status (agent) : -1;
  g_free (out);
  g_object_unref (agent);
  g_object_unref (launcher);
  return run;
}

/* The function_call_output items the server received, in order. */
std::vector<std::string> function_outputs (const emu::Server &server)
{
  std::vector<std::string> outputs;
  std::vector<JsonNode *> creates = events_of (server, "conversation.item.create");
  for (JsonNode *root : creates) {
    JsonObject *item = json_object_get_object_member (json_node_get_object (root), "item");
    if (g_strcmp0 (json_object_get_string_member_with_default (item, "type", ""),
            "function_call_output") == 0)
      outputs.push_back (json_object_get_string_member (item, "output"));
  }
  free_nodes (creates);
  return outputs;
}

/* The emulator, started, taking the agent's key. */
struct AgentServer : emu::Server {
  AgentServer () : emu::Server (config ())
  {
    fail_unless (start () != 0, "emulator did not start");
  }
  static emu::Config config ()
  {
    emu::Config c;
    c.api_key = "agent-key";
    return c;
  }
};

bool has (const std::string &text, const std::string &part)
{
  return text.find (part) != std::string::npos;
}

}  // namespace

/* A typed question that makes the model call get_weather: the agent answers
 * the call with its made-up weather for that city, the model's follow-up is
 * printed, and /quit waits for it before the agent exits with 0. */
GST_START_TEST (test_agent_answers_a_weather_call)
{
  AgentServer server;
  emu::TurnScript call;
  call.calls = {{"get_weather", R"({"city":"Казань"})"}};
  server.push_turn (call);
  emu::TurnScript answer;
  answer.answer_text = "В Казани солнечно.";
  server.push_turn (answer);

  Run run = run_agent (server.url (), "Какая погода в Казани?\n/quit\n");
  const char *out = run.out.c_str ();
  fail_unless_equals_int (run.status, 0);
  fail_unless (has (run.out, "[function call get_weather {\"city\":\"Казань\"}]"), "%s", out);
  fail_unless (has (run.out, "agent: В Казани солнечно."), "%s", out);

  std::vector<std::string> outputs = function_outputs (server);
  fail_unless_equals_int (outputs.size (), 1);
  fail_unless (has (outputs[0], "\"city\": \"Казань\""), "%s", outputs[0].c_str ());
  fail_unless (has (run.out, "[function output " + outputs[0] + "]"), "%s", out);
  server.stop ();
}
GST_END_TEST;

/* --speakers: the hands-free pipeline (webrtcdsp, webrtcechoprobe) builds,
 * negotiates and carries a conversation. */
GST_START_TEST (test_agent_on_speakers)
{
  AgentServer server;
  emu::TurnScript answer;
  answer.answer_text = "Я вас слышу.";
  server.push_turn (answer);

  Run run = run_agent (server.url (), "Ты меня слышишь?\n/quit\n", true);
  fail_unless_equals_int (run.status, 0);
  fail_unless (has (run.out, "agent: Я вас слышу."), "%s", run.out.c_str ());
  fail_unless (has (run.out, "completed"), "%s", run.out.c_str ());
  /* The microphone reached the service through the canceller. */
  fail_unless (!server.received_audio ().empty ());
  server.stop ();
}
GST_END_TEST;

static Suite *examples_suite ()
{
  Suite *s = suite_create ("examples");
  TCase *tc = tcase_create ("general");
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_agent_answers_a_weather_call);
  tcase_add_test (tc, test_agent_on_speakers);
  return s;
}

GST_CHECK_MAIN (examples);
