"""How the `pasture` command line is parsed: commands declared as data, argparse per command.

`pasture.cli.main` declares every command (`Command`: names, arguments, the function it
runs); `run` picks the one the first word names and builds only that command's parser,
as building all twenty would cost every start about 30 ms (issue 23). A group (`pasture`
itself, `pasture engine`) answers `--help` with an overview written from the declarations,
without building any parser. Help reads as Ollama's (cobra's) does: `Usage:`,
`Available Commands:`, `Flags:`.

Usage errors end as the other failures do (`pasture.cli.failures`): one `Error:` line on
stderr, then a hint, with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from pasture.cli.failures import Exit, exit_status, fail

F = TypeVar("F", bound=Callable[..., Any])
Argument = tuple[tuple[str, ...], dict[str, Any]]
HELP = ("-h", "--help")


def arg(*names: str, **settings: Any) -> Argument:
    """One argument (`model`) or option (`--verbose`), as for argparse's `add_argument`.
    A positional one is shown by its name in capitals (`MODEL`); one that may be left out
    (`nargs="*"`) needs its empty default said, or `parse_intermixed_args` calls it
    required."""
    if not names[0].startswith("-"):
        settings.setdefault("metavar", names[0].upper())
        if settings.get("nargs") == "*":
            settings.setdefault("default", [])
    return names, settings


def flag(*names: str, help: str) -> Argument:
    """An option that takes no value: True when given."""
    return names, {"action": "store_true", "help": help}


class UsageError(Exception):
    """A command's `prepare` found its words wrong: exit status 2, as argparse's errors."""


class Command:
    """A command, or a group of them (`pasture`, `pasture engine`) when it has `commands`.

    `names` are the name and its aliases, which a group's overview does not list. A
    group's members named with dashes (`--version`) are its flags. `run` gets the parsed
    arguments as keywords (their `dest`, e.g. `think_level`); `prepare` may rewrite the
    words first. (A plain class: a dataclass would import `inspect`, 15 ms of
    `pasture --help`.)
    """

    def __init__(self, names: tuple[str, ...], run: Callable[..., object] | None = None,
                 arguments: tuple[Argument, ...] = (), help: str = "",
                 prepare: Callable[[list[str]], list[str]] | None = None) -> None:
        self.names = names
        self.run = run
        self.arguments = arguments
        self.help = help
        self.prepare = prepare
        self.commands: list[Command] = []

    @property
    def name(self) -> str:
        return self.names[0]

    @property
    def description(self) -> str:
        """All of the help: the given text, else the function's docstring, its lines
        stripped of their indentation."""
        text = self.help or (self.run.__doc__ if self.run else "") or ""
        return "\n".join(line.strip() for line in text.strip().splitlines())

    @property
    def summary(self) -> str:
        """The first paragraph of the help, on one line: for a group's overview."""
        return " ".join(self.description.split("\n\n")[0].split())

    def command(self, name: str, *arguments: Argument, aliases: tuple[str, ...] = (),
                help: str = "", prepare: Callable[[list[str]], list[str]] | None = None
                ) -> Callable[[F], F]:
        """Declare a member of this group that runs the decorated function."""

        def register(func: F) -> F:
            self.commands.append(Command((name, *aliases), func, arguments, help, prepare))
            return func

        return register

    def group(self, name: str, help: str) -> Command:
        """Declare a group of commands inside this one (`pasture engine`)."""
        group = Command((name,), help=help)
        self.commands.append(group)
        return group

    def find(self, word: str) -> Command | None:
        return next((command for command in self.commands if word in command.names), None)


def run(group: Command, words: Sequence[str], prog: str) -> int:
    """Run the member of `group` that the first of `words` names; return its exit status.
    With no words, or `--help`, show the group's overview."""
    if not words or words[0] in HELP:
        sys.stdout.write(overview(group, prog))
        return 0
    command = group.find(words[0])
    if command is None:
        kind = "flag" if words[0].startswith("-") else "command"
        return usage_error(f'unknown {kind} "{words[0]}" for "{prog}"', prog)
    if command.commands:
        return run(command, words[1:], f"{prog} {command.name}")
    function = command.run
    assert function is not None  # a command that is not a group runs a function
    if command.name.startswith("-"):  # a group's flag (`--version`): nothing may follow it
        if len(words) > 1:
            return usage_error(f'unexpected argument "{words[1]}" after {words[0]}', prog)
        return exit_status(function)
    parser = _parser(command, f"{prog} {command.name}")
    try:
        rest = command.prepare(list(words[1:])) if command.prepare else list(words[1:])
        options = parser.parse_intermixed_args(rest)
    except UsageError as exc:
        return usage_error(str(exc), parser.prog)
    except Exit as exc:  # --help, or a usage error the parser reported
        return exc.code
    return exit_status(lambda: function(**vars(options)))


def usage_error(message: str, prog: str) -> int:
    """Say what is wrong with the command line and where help is; return status 2."""
    code = fail(message, 2).code
    print(f"Run '{prog} --help' for usage.", file=sys.stderr)
    return code


def overview(group: Command, prog: str) -> str:
    """A group's help: its commands and flags, from their declarations alone."""
    commands = [(c.name, c.summary) for c in group.commands if not c.name.startswith("-")]
    flags = [("-h, --help", "Show this help")]
    flags += [(", ".join(sorted(c.names, key=len)), c.summary)
              for c in group.commands if c.name.startswith("-")]
    return (f"{group.description}\n\nUsage:\n  {prog} [flags]\n  {prog} [command]\n\n"
            f"Available Commands:\n{_columns(commands)}\nFlags:\n{_columns(flags)}\n"
            f'Use "{prog} [command] --help" for more information about a command.\n')


def _columns(rows: list[tuple[str, str]]) -> str:
    """Names and their help in two columns, the help wrapped to the terminal."""
    import shutil  # only help needs these (shutil loads bz2 and lzma): not every command
    import textwrap

    indent = 2 + max(len(name) for name, _ in rows) + 3
    width = max(shutil.get_terminal_size().columns - 2, indent + 20)
    return "".join(textwrap.fill(text, width, initial_indent=f"  {name:<{indent - 2}}",
                                 subsequent_indent=" " * indent) + "\n"
                   for name, text in rows)


class _Parser(argparse.ArgumentParser):
    """argparse with Pasture's endings (`Exit` instead of `sys.exit`, `Error:` lines)
    and cobra's help layout."""

    def __init__(self, command: Command, prog: str) -> None:
        super().__init__(prog=prog, description=command.description, add_help=False,
                         allow_abbrev=False,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
        self.names = command.names

    def error(self, message: str) -> NoReturn:
        raise Exit(usage_error(message, self.prog))

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        """After `--help`: end as a command does, with `Exit`, not `sys.exit`."""
        if message:
            sys.stderr.write(message)
        raise Exit(status)

    def format_help(self) -> str:
        formatter = self.formatter_class(prog=self.prog)
        formatter.add_text(self.description)
        aliases = ", ".join(self.names) if len(self.names) > 1 else None
        for title, text in (("Usage", self.usage), ("Aliases", aliases)):
            formatter.start_section(title)
            formatter.add_text(text)
            formatter.end_section()
        for group in self._action_groups:
            formatter.start_section(group.title)
            formatter.add_arguments(group._group_actions)
            formatter.end_section()
        return formatter.format_help()


def _parser(command: Command, prog: str) -> _Parser:
    """The parser of one command: its arguments, then its flags."""
    parser = _Parser(command, prog)
    arguments = parser.add_argument_group("Arguments")
    flags = parser.add_argument_group("Flags")
    flags.add_argument(*HELP, action="help", help="Show this help")
    usage = [prog]
    for names, settings in command.arguments:
        if names[0].startswith("-"):
            flags.add_argument(*names, **settings)
        else:
            arguments.add_argument(*names, **settings)
            usage.append(_usage_word(settings["metavar"], settings.get("nargs")))
    parser.usage = " ".join([*usage, "[flags]"])
    return parser


def _usage_word(metavar: str, nargs: str | None) -> str:
    """How a positional argument reads in `Usage:` (`MODEL`, `[PROMPT ...]`)."""
    return {"?": f"[{metavar}]", "*": f"[{metavar} ...]",
            "+": f"{metavar} [{metavar} ...]"}.get(nargs or "", metavar)
