"""The interactive chat of `pasture run MODEL`, with Ollama's slash commands.

`Repl.handle(text)` does everything for one input (a message or a command) and is used
by the tests directly; `Repl.run()` adds the prompt_toolkit line editor around it:
history in `~/.pasture/history`, `\"\"\"` for multi-line input, Ctrl+C to stop an answer
or clear the line, Ctrl+D to leave.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from pasture.cli.chat import Session, message, stream_answer
from pasture.cli.render import show_info
from pasture.client.errors import ResponseError
from pasture.client.light import LightClient
from pasture.environment import env
from pasture.errors import BadRequestError
from pasture.options import THINK_LEVELS, parse_parameter

HISTORY_FILE = Path.home() / ".pasture" / "history"
PROMPT = ">>> "
CONTINUATION = "... "
PLACEHOLDER = "Send a message (/? for help)"
EXIT_HINT = "Use Ctrl + d or /bye to exit."

HELP = """Available Commands:
  /set            Set session variables
  /show           Show model information
  /clear          Clear session context
  /bye            Exit
  /?, /help       Help for a command
  /? shortcuts    Help for keyboard shortcuts

Use \"\"\" to begin a multi-line message.
"""

HELP_SET = """Available Commands:
  /set parameter ...     Set a parameter
  /set system <string>   Set system message
  /set wordwrap          Enable wordwrap
  /set nowordwrap        Disable wordwrap
  /set format json       Enable JSON mode
  /set noformat          Disable formatting
  /set verbose           Show LLM stats
  /set quiet             Disable LLM stats
  /set think [level]     Enable thinking (level: low, medium, high or max)
  /set nothink           Disable thinking
"""

HELP_PARAMETERS = """Available Parameters:
  /set parameter seed <int>             Random number seed
  /set parameter num_predict <int>      Max number of tokens to predict
  /set parameter top_k <int>            Pick from top k num of tokens
  /set parameter top_p <float>          Pick token based on sum of probabilities
  /set parameter min_p <float>          Pick token based on top token probability * min_p
  /set parameter num_ctx <int>          Set the context size
  /set parameter temperature <float>    Set creativity level
  /set parameter repeat_penalty <float> How strongly to penalize repetitions
  /set parameter repeat_last_n <int>    Set how far back to look for repetitions
  /set parameter num_gpu <int>          The number of layers to send to the GPU
  /set parameter stop <string> <string> ...   Set the stop parameters
"""

HELP_SHOW = """Available Commands:
  /show info         Show details for this model
  /show license      Show model license
  /show modelfile    Show Modelfile for this model
  /show parameters   Show parameters for this model
  /show system       Show system message
  /show template     Show prompt template
"""

HELP_SHORTCUTS = """Available keyboard shortcuts:
  Ctrl + a            Move to the beginning of the line (Home)
  Ctrl + e            Move to the end of the line (End)
  Alt + b             Move back (left) one word
  Alt + f             Move forward (right) one word
  Ctrl + k            Delete the sentence after the cursor
  Ctrl + u            Delete the sentence before the cursor
  Ctrl + w            Delete the word before the cursor

  Ctrl + l            Clear the screen
  Ctrl + c            Stop the model from responding
  Ctrl + d            Exit pasture (/bye)
"""


def unquote(text: str) -> str:
    """The text inside `\"\"\"…\"\"\"` (or a lone opening `\"\"\"`), else the text itself."""
    text = text.strip()
    if text.startswith('"""'):
        text = text[3:]
        if text.endswith('"""'):
            text = text[:-3]
    return text


def read_input(prompt: Callable[[str], str]) -> str:
    """One input, following `\"\"\"` across lines until the closing `\"\"\"`."""
    lines = [prompt(PROMPT)]
    if lines[0].count('"""') % 2 == 1:
        while True:
            line = prompt(CONTINUATION)
            lines.append(line)
            if '"""' in line:
                break
    return "\n".join(lines)


class Repl:
    """One interactive session with one model."""

    def __init__(
        self, client: LightClient, session: Session, out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.client = client
        self.session = session
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def say(self, text: str) -> None:
        self.out.write(text if text.endswith("\n") else text + "\n")
        self.out.flush()

    # ----- one input ----------------------------------------------------------------------

    def handle(self, text: str) -> bool:
        """Act on one input; False when the session should end."""
        stripped = text.strip()
        if not stripped:
            return True
        if stripped.startswith("/"):
            return self.command(stripped)
        self.chat(unquote(stripped))
        return True

    def chat(self, prompt: str) -> None:
        """Send `prompt` with the history; on Ctrl+C or an error the turn is forgotten."""
        user = message("user", prompt)
        self.session.messages.append(user)
        try:
            answer = stream_answer(self.client, self.session, self.session.messages,
                                   self.out, self.err)
        except KeyboardInterrupt:
            self.session.messages.pop()
            self.say("")
            return
        except ResponseError as exc:
            self.session.messages.pop()
            self.err.write(f"Error: {exc.error}\n")
            return
        self.session.messages.append(answer)
        self.say("")

    def command(self, line: str) -> bool:
        words = line.split()
        name, args = words[0].lower(), words[1:]
        if name in ("/bye", "/exit"):
            return False
        if name in ("/?", "/help"):
            topic = args[0].lower() if args else ""
            self.say({"set": HELP_SET, "show": HELP_SHOW, "shortcut": HELP_SHORTCUTS,
                      "shortcuts": HELP_SHORTCUTS}.get(topic, HELP))
        elif name == "/clear":
            self.session.messages.clear()
            self.say("Cleared session context")
        elif name == "/set":
            self.set(line, args)
        elif name == "/show":
            self.show(args)
        else:
            self.say(f"Unknown command '{words[0]}'. Type /? for help")
        return True

    # ----- /set ---------------------------------------------------------------------------

    def set(self, line: str, args: list[str]) -> None:
        if not args:
            self.say(HELP_SET)
            return
        what = args[0].lower()
        session = self.session
        simple = {
            "verbose": ("verbose", True, "Set 'verbose' mode."),
            "quiet": ("verbose", False, "Set 'quiet' mode."),
            "wordwrap": ("word_wrap", True, "Set 'wordwrap' mode."),
            "nowordwrap": ("word_wrap", False, "Set 'nowordwrap' mode."),
            "noformat": ("format", None, "Disabled format."),
            "think": ("think", True, "Set 'think' mode."),
            "nothink": ("think", False, "Set 'nothink' mode."),
        }
        if what == "think" and args[1:]:
            self.set_think_level(args[1])
        elif what in simple:
            attribute, value, message = simple[what]
            setattr(session, attribute, value)
            self.say(message)
        elif what == "format":
            if args[1:] != ["json"]:
                self.say("Invalid or missing format. For 'json' mode use '/set format json'")
                return
            session.format = "json"
            self.say("Set format to 'json' mode.")
        elif what == "system":
            self.set_system(line)
        elif what == "parameter":
            self.set_parameter(args[1:])
        else:
            self.say(f"Unknown command '/set {args[0]}'. Type /? for help")

    def set_think_level(self, level: str) -> None:
        """`/set think LEVEL`, as Ollama's REPL takes it (`/set think max`)."""
        if level.lower() not in THINK_LEVELS:
            self.say(f"Invalid thinking level '{level}': use low, medium, high or max")
            return
        self.session.think = level.lower()
        self.say(f"Set 'think' mode to '{level.lower()}'.")

    def set_system(self, line: str) -> None:
        text = unquote(line.split(None, 2)[2] if len(line.split(None, 2)) > 2 else "")
        if len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1]
        self.session.system = text
        messages = self.session.messages
        system = message("system", text)
        # As in Ollama: a new system message replaces one just set, else joins the history.
        if messages and messages[-1]["role"] == "system":
            messages[-1] = system
        else:
            messages.append(system)
        self.say("Set system message.")

    def set_parameter(self, args: list[str]) -> None:
        if len(args) < 2:
            self.say(HELP_PARAMETERS)
            return
        name, values = args[0].lower(), args[1:]
        try:
            if name == "stop":
                parsed: object = [parse_parameter(name, value) for value in values]
            else:
                parsed = parse_parameter(name, " ".join(values))
        except BadRequestError as exc:
            self.say(f"Couldn't set parameter: {exc.message}")
            return
        if parsed is None:
            self.say(f"Parameter '{name}' is no longer supported and was ignored.")
            return
        self.session.options[name] = parsed
        self.say(f"Set parameter '{name}' to '{', '.join(values)}'")

    # ----- /show --------------------------------------------------------------------------

    def show(self, args: list[str]) -> None:
        if not args:
            self.say(HELP_SHOW)
            return
        what = args[0].lower()
        if what not in ("info", "license", "modelfile", "parameters", "system", "template"):
            self.say(f"Unknown command '/show {args[0]}'. Type /? for help")
            return
        try:
            info = self.client.show(self.session.model)
        except ResponseError as exc:
            self.err.write(f"Error: {exc.error}\n")
            return
        if what == "info":
            self.say(show_info(info))
        elif what == "license":
            self.say(info.get("license") or "No license was specified for this model.")
        elif what == "modelfile":
            self.say(info.get("modelfile") or "")
        elif what == "parameters":
            self.show_parameters(info.get("parameters"))
        elif what == "system":
            system = self.session.system or info.get("system")
            self.say(system or "No system message was specified for this model.")
        else:
            self.say(info.get("template") or "No prompt template was specified for this model.")

    def show_parameters(self, model_parameters: str | None) -> None:
        if model_parameters:
            self.say("Model defined parameters:\n" + model_parameters)
        else:
            self.say("No parameters were specified for this model.")
        if self.session.options:
            lines = [f"{name:<30} {value!r}" for name, value in self.session.options.items()]
            self.say("User defined parameters:\n" + "\n".join(lines))

    # ----- the line editor ----------------------------------------------------------------

    def run(self) -> None:
        """Read and answer inputs until /bye, /exit or Ctrl+D."""
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory
        from prompt_toolkit.key_binding import KeyBindings

        bindings = KeyBindings()

        @bindings.add("c-c")
        def _interrupt(event):  # type: ignore[no-untyped-def]
            # Ctrl+C clears a line being typed; on an empty line it shows the exit hint.
            buffer = event.app.current_buffer
            if buffer.text:
                buffer.reset()
            else:
                event.app.exit(exception=KeyboardInterrupt())

        history: FileHistory | InMemoryHistory = InMemoryHistory()
        if env("NOHISTORY") in (None, "0", "false", "False"):
            try:
                HISTORY_FILE.parent.mkdir(parents=True, exist_ok=True)
                history = FileHistory(str(HISTORY_FILE))
            except OSError:
                pass
        prompt_session: PromptSession[str] = PromptSession(
            history=history, key_bindings=bindings
        )

        def prompt(text: str) -> str:
            placeholder = PLACEHOLDER if text == PROMPT else None
            return prompt_session.prompt(text, placeholder=placeholder)

        while True:
            try:
                text = read_input(prompt)
            except KeyboardInterrupt:
                self.say(EXIT_HINT)
                continue
            except EOFError:
                return
            if not self.handle(text):
                return
