#!/usr/bin/env python3
"""A live voice agent on the yandexrealtime element (Python twin of agent.c).

    microphone ! audioconvert ! yandexrealtime ! audioconvert ! audioresample ! speakers

With --speakers, hands-free (docs/yandexrealtime.md, "Hands-free on speakers"):

    microphone ! ... 48 kHz ! webrtcdsp ! yandexrealtime ! webrtcechoprobe ! ... speakers

with half-duplex on until the first answer has been played, while the
echo canceller adapts to the room.

It prints what the user said and streams the agent's answers, answers the
model's get_weather function calls with made-up weather (the same for the
same city every time, and the same as agent.c), and reads commands from stdin:

    Enter        toggle the microphone (push-to-talk; --ptt starts muted)
    /commit      end the user's turn by hand (needed with --manual)
    /cancel      cancel the answer in progress
    /clear       forget the conversation so far
    /quit        finish: wait for the outstanding answers, then exit
                 (end of input and Ctrl+C do the same; Ctrl+C twice exits at once)
    other text   sent to the agent as a typed user message

Credentials come from the environment, read by the element itself:
YANDEX_CLOUD_API_KEY (or YANDEX_CLOUD_IAM_TOKEN) and YANDEX_CLOUD_FOLDER_ID.
VECTOR_STORE_ID, when set, adds Yandex's file_search tool over that index.

Needs PyGObject and GStreamer's introspection data (Debian: python3-gi
gir1.2-gstreamer-1.0), and the plugin on GST_PLUGIN_PATH:

    GST_PLUGIN_PATH=build/gst python3 examples/agent.py
    GST_PLUGIN_PATH=build/gst YANDEX_CLOUD_API_KEY=demo python3 examples/agent.py \\
        --location ws://127.0.0.1:PORT/v1/realtime \\
        --source "audiotestsrc is-live=true wave=silence" --sink fakesink
"""
import argparse
import json
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

ASCII_SPACE = " \t\n\v\f\r"


def str_hash(text):
    """GLib's g_str_hash() (djb2 over signed chars), as agent.c seeds with."""
    h = 5381
    for b in text.encode("utf-8"):
        h = (h * 33 + (b - 256 if b > 127 else b)) & 0xFFFFFFFF
    return h


def fake_weather(city):
    """Made-up but stable weather: seeded by the city (xorshift32, bit for bit
    as in agent.c), so the same city always gets the same answer; no snow in
    the heat, and advice that fits."""
    state = str_hash(city) or 1

    def next_random():
        nonlocal state
        x = state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        state = x
        return x

    conditions = ["ясно", "облачно", "дождь", "снег", "гроза", "туман"]
    temperature = -10 + next_random() % 46
    condition = conditions[next_random() % len(conditions)]
    wind = 5 + next_random() % 96  # tenths of m/s
    if temperature > 2 and condition == "снег":
        condition = "дождь"
    elif temperature <= 0 and condition in ("дождь", "гроза"):
        condition = "снег"

    if condition in ("дождь", "гроза"):
        advice = "Зонт пригодится."
    elif temperature <= 0:
        advice = "На дорогах скользко — будь аккуратнее."
    elif temperature >= 25:
        advice = "Пей воду и избегай солнца."
    elif wind >= 70:
        advice = "Ветрено, капюшон не помешает."
    else:
        advice = "Возьми легкую куртку."
    weather = {"city": city, "temperature_c": temperature, "condition": condition,
               "wind_m_s": wind / 10, "advice": advice}
    return json.dumps(weather, ensure_ascii=False)


def make_tools(vector_store_id):
    tools = [
        {"type": "function", "name": "get_weather",
         "description": "Получить краткую сводку погоды по городу.",
         "parameters": {"type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"], "additionalProperties": False}},
        # Yandex built-ins: declared as functions with these names, run by the
        # service.  file_search takes the search index ID as its description.
        {"type": "function", "name": "web_search",
         "description": "Поиск в интернете", "parameters": "{}"},
    ]
    if vector_store_id:
        tools.append({"type": "function", "name": "file_search",
                      "description": vector_store_id, "parameters": "{}"})
    return json.dumps(tools, ensure_ascii=False)


class Agent:
    def __init__(self, options):
        if options.speakers:  # the settings and why: docs/yandexrealtime.md
            description = (f"{options.source} ! audioconvert ! audioresample ! "
                           "audio/x-raw,format=S16LE,rate=48000,channels=1 ! webrtcdsp probe=echo "
                           "delay-agnostic=false echo-suppression-level=high noise-suppression=true gain-control=true ! "
                           "yandexrealtime name=rt half-duplex=true ! webrtcechoprobe name=echo ! "
                           f"audioconvert ! audioresample ! {options.sink}")
        else:
            description = (f"{options.source} ! audioconvert ! yandexrealtime name=rt ! "
                           f"audioconvert ! audioresample ! {options.sink}")
        self.pipeline = Gst.parse_launch(description)
        self.rt = self.pipeline.get_by_name("rt")
        self.manual = options.manual
        self.adapting = options.speakers  # half-duplex until the first answer is done
        self.loop = GLib.MainLoop()
        self.status = 0
        self.ready = False          # the session message arrived
        self.typed = []             # lines typed before that, still to send
        self.retry_id = 0
        self.attempts = 0
        self.quitting = False       # /quit, Ctrl+C or end of input seen
        self.eos_sent = False       # waiting for the last answers
        self.text_response_id = None
        self.text_streamed = False
        self.line_open = False
        self.stdin_buffer = b""

        store = os.environ.get("VECTOR_STORE_ID", "")
        instructions = options.instructions
        if instructions is None:
            instructions = ("Ты вежливый русскоязычный ассистент. Отвечай кратко. "
                            "Если просят рассказать новости, используй функцию web_search. "
                            "Если спрашивают о погоде, вызывай функцию get_weather.")
            if store:
                instructions += " Если спрашивают о документах, обращайся к функции file_search."
        # Credentials and folder: the element reads YANDEX_CLOUD_* itself.
        self.rt.set_property("tools", make_tools(store))
        self.rt.set_property("instructions", instructions)
        self.rt.set_property("mute", options.ptt)
        if options.location:
            self.rt.set_property("location", options.location)
        if options.voice:
            self.rt.set_property("voice", options.voice)
        if options.manual:
            Gst.util_set_object_arg(self.rt, "turn-detection", "none")

    # ---- printing ----

    def end_line(self):
        """Ends a streamed answer's line before anything else is printed."""
        if self.line_open:
            print()
            self.line_open = False

    def say(self, text):
        self.end_line()
        print(text, flush=True)

    # ---- function calls ----

    def on_function_call(self, s):
        call_id, name = s.get_string("call-id"), s.get_string("name")
        arguments = s.get_string("arguments")
        self.say(f"[function call {name} {arguments}]")
        if name == "get_weather":
            try:
                args = json.loads(arguments)
            except ValueError:
                args = {}
            city = args.get("city") if isinstance(args, dict) else None
            city = city.strip(ASCII_SPACE) if isinstance(city, str) else ""
            output = fake_weather(city or "Москва")
        else:
            # Every call must be answered before the model can go on.
            output = json.dumps({"error": f"unknown function {name}"}, ensure_ascii=False)
        # The element sends the output (with those of the other calls of the
        # same response) and asks for the follow-up answer itself.
        ok = self.rt.emit("send-function-output", call_id, output)
        self.say(f"[function output {output}{'' if ok else ' NOT SENT'}]")

    # ---- bus ----

    def on_response_text(self, s):
        response_id, text = s.get_string("response-id"), s.get_string("text")
        if response_id != self.text_response_id:
            self.text_response_id = response_id
            self.text_streamed = False
        if not s.get_value("final"):
            if not self.line_open:
                print("agent: ", end="")
                self.line_open = True
            print(text, end="", flush=True)
            self.text_streamed = True
        elif self.text_streamed:
            self.end_line()              # the deltas were the whole text
        else:
            self.say(f"agent: {text}")
        sys.stdout.flush()

    def on_element_message(self, msg):
        s = msg.get_structure()
        if msg.src != self.rt or not s.get_name().startswith("yandexrealtime/"):
            return
        name = s.get_name()[len("yandexrealtime/"):]
        if name == "connection":
            self.say(f"[{s.get_string('state')} {s.get_string('url')}]")
            if s.get_string("state") != "connected":
                self.ready = False  # until the next session message
        elif name == "session":
            self.say(f"[session {s.get_string('session-id')} ready]")
            self.ready = True
            if self.typed and not self.retry_id:
                self.retry_id = GLib.timeout_add(20, self.send_typed)
        elif name == "speech-started":
            self.say("[you are speaking]")
        elif name == "transcript":
            if s.get_value("final"):
                self.say(f"you: {s.get_string('text')}")
        elif name == "response-text":
            self.on_response_text(s)
        elif name == "function-call":
            self.on_function_call(s)
        elif name == "interrupted":
            self.say(f"[interrupted {s.get_string('response-id')} "
                     f"after {s.get_value('played-ms')} ms]")
        elif name == "server-error":
            self.say(f"[server error {s.get_string('code')}: {s.get_string('message')}]")
        elif name == "response-done":
            if self.adapting:  # the echo canceller has heard an answer now
                self.adapting = False
                self.rt.set_property("half-duplex", False)
            line = (f"[response {s.get_string('response-id')} {s.get_string('status')}, "
                    f"{s.get_value('audio-duration') / Gst.SECOND:.2f} s of audio")
            if s.has_field("first-audio-latency"):
                line += f", first audio after {s.get_value('first-audio-latency') // Gst.MSECOND} ms"
            self.say(line + "]")

    def on_bus_message(self, bus, msg):
        if msg.type == Gst.MessageType.ELEMENT:
            self.on_element_message(msg)
        elif msg.type == Gst.MessageType.WARNING:
            err, _ = msg.parse_warning()
            self.end_line()
            print(f"warning: {err.message}", file=sys.stderr)
        elif msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            self.end_line()
            print(f"error: {err.message}\n{debug or ''}", file=sys.stderr)
            self.status = 1
            self.loop.quit()
        elif msg.type == Gst.MessageType.EOS:
            self.say("[all answers played, bye]")
            self.loop.quit()
        return True

    # ---- keyboard ----

    def send_eos(self):
        """EOS ends the input; the element still waits for the answers it owes
        (bounded by eos-timeout-ms) before EOS reaches the sink and the bus."""
        self.eos_sent = True
        self.say("[finishing: waiting for the answers in progress; again to quit at once]")
        self.pipeline.send_event(Gst.Event.new_eos())

    def finish(self):
        if self.quitting:
            self.say("[quitting now]")
            self.loop.quit()
            return
        self.quitting = True
        if not self.typed:
            self.send_eos()
        # else send_typed() sends EOS after the last typed line

    def send_typed(self):
        """Lines typed while no session was ready (starting, reconnecting).
        A session lost again before they go out refuses them: retried."""
        while self.typed:
            ok = self.rt.emit("send-text", self.typed[0])
            if not ok:
                self.attempts += 1
                if self.attempts < 100:
                    return True
                self.say(f"[not sent: {self.typed[0]}]")
            self.attempts = 0
            self.typed.pop(0)
        self.retry_id = 0
        if self.quitting and not self.eos_sent:
            self.send_eos()
        return False

    def emit_simple(self, signal_name):
        ok = self.rt.emit(signal_name)
        why = ("" if ok else ": no session yet" if not self.ready else
               ": refused (GST_DEBUG=yandexrealtime:2 says why)")
        self.say(f"[{signal_name}{why}]")

    def toggle_mute(self):
        mute = not self.rt.get_property("mute")
        # Under server VAD, muting mid-speech ends the turn by itself.
        self.rt.set_property("mute", mute)
        if mute and self.manual:
            ok = self.rt.emit("commit")
            self.say(f"[microphone off, turn committed{'' if ok else ': refused'}]")
        else:
            self.say("[microphone off]" if mute else "[microphone on: talk, then Enter]")

    def on_line(self, line):
        if self.quitting:
            return
        if line == "":
            self.toggle_mute()
        elif line == "/quit":
            self.finish()
        elif line == "/clear":
            self.emit_simple("clear-conversation")
        elif line == "/cancel":
            self.emit_simple("cancel-response")
        elif line == "/commit":
            self.emit_simple("commit")
        elif not self.ready:
            self.typed.append(line)
            self.say("[sent once the session is ready]")
        else:
            # Becomes a user message; the element asks for the answer.
            if not self.rt.emit("send-text", line):
                self.say("[not sent: no open session]")

    def on_stdin(self, fd, condition):
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:                     # end of input (Ctrl+D) or error
            if not self.quitting:
                self.finish()
            return False
        self.stdin_buffer += data
        while b"\n" in self.stdin_buffer:
            line, self.stdin_buffer = self.stdin_buffer.split(b"\n", 1)
            # also a '\r' from a terminal or file
            self.on_line(line.decode("utf-8", "replace").rstrip(ASCII_SPACE))
        return True

    def on_sigint(self):
        self.finish()
        return True

    # ---- main ----

    def run(self, ptt):
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self.on_bus_message)
        stdin_watch = GLib.io_add_watch(0, GLib.PRIORITY_DEFAULT,
                                        GLib.IOCondition.IN | GLib.IOCondition.HUP |
                                        GLib.IOCondition.ERR, self.on_stdin)
        sigint_watch = GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, self.on_sigint)

        self.say("Talk (headphones!) or type a message. Enter: microphone "
                 f"{'on/off (now off)' if ptt else 'on/off'}. /commit /cancel /clear /quit.")
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            # The error on the bus says why (e.g. no credentials for wss://).
            msg = bus.pop_filtered(Gst.MessageType.ERROR)
            if msg:
                self.on_bus_message(bus, msg)
            self.status = 1
        else:
            self.loop.run()

        self.pipeline.set_state(Gst.State.NULL)
        bus.remove_signal_watch()
        for source in (stdin_watch, sigint_watch, self.retry_id):
            if source and GLib.MainContext.default().find_source_by_id(source):
                GLib.source_remove(source)
        return self.status


def main():
    argv = Gst.init(sys.argv)  # takes the --gst-* options
    parser = argparse.ArgumentParser(description="A voice agent on the yandexrealtime element")
    parser.add_argument("--location", metavar="URL",
                        help="Realtime API endpoint (default: the element's, Yandex Cloud)")
    parser.add_argument("--source", metavar="DESC", default="autoaudiosrc",
                        help="Input pipeline fragment (default: autoaudiosrc)")
    parser.add_argument("--sink", metavar="DESC", default="autoaudiosink",
                        help="Output pipeline fragment (default: autoaudiosink)")
    parser.add_argument("--voice", metavar="NAME", help="Voice of the answers")
    parser.add_argument("--instructions", metavar="TEXT",
                        help="System instructions (default: a short Russian assistant prompt)")
    parser.add_argument("--ptt", action="store_true",
                        help="Push-to-talk: start with the microphone off; Enter toggles it")
    parser.add_argument("--manual", action="store_true",
                        help="Manual turns (turn-detection=none): turns end with /commit, "
                             "or with Enter when the microphone goes off")
    parser.add_argument("--speakers", action="store_true",
                        help="Hands-free on speakers: echo cancellation (webrtcdsp, webrtcechoprobe)")
    options = parser.parse_args(argv[1:])

    try:
        agent = Agent(options)
    except GLib.Error as e:
        print(f"cannot build the pipeline: {e.message}", file=sys.stderr)
        if e.matches(Gst.ParseError.quark(), Gst.ParseError.NO_SUCH_ELEMENT):
            print("(is GST_PLUGIN_PATH set to the directory of libgstyandexrealtime.so?)",
                  file=sys.stderr)
        return 1
    return agent.run(options.ptt)


if __name__ == "__main__":
    sys.exit(main())
