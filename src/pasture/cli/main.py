"""The `pasture` command: Ollama's CLI, talking to the server only through `pasture.client`.

Every command turns failures into `Error: <message>` on stderr and exit status 1 (130
after Ctrl+C), never a traceback. `serve` is the one command that starts the server
in this process instead of calling it.

This module decides what each command imports: only typer at start, and each command's
own modules inside its function. The commands people run many times a minute (`list`,
`ps`, `show`, `--version`, `run`) talk through `light_client()`, the standard library's
HTTP and plain JSON; the others through `client()`, the full httpx client with the
pydantic wire types. So `pasture --help` or `show` pay for neither httpx, pydantic,
rich, anyio, the engines nor the server; and `pasture list`, `ps` and `--version` not
even for typer, as `pasture.cli.entry` runs their functions (`pasture.cli.quick`) before
this module loads (`tests/unit/test_cli_imports.py` keeps it so).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

from pasture.cli import engine, quick, render
from pasture.cli.failures import Exit, exit_status, fail
from pasture.cli.quick import light_client, print_reply

if TYPE_CHECKING:
    from pasture.client import Client

F = TypeVar("F", bound=Callable[..., Any])


class _HelpOffByDefault:
    """Typer (0.29) checks each parameter's value with a pydantic TypeAdapter, built on
    first use, unless it is a bool flag already holding a bool. Its own `--help` option
    holds None when not given, so every command would import pydantic (about 70 ms)
    only to find that no help was asked for; a False default skips that."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None and option.default is None:
            option.default = False
        return option


class _Group(_HelpOffByDefault, TyperGroup):
    pass


class _Command(_HelpOffByDefault, TyperCommand):
    pass


class _RunCommand(_Command):
    """`run`, which also takes Ollama's `--think=LEVEL` spelling (`--think=max`) of
    `--think-level LEVEL` (`--think=true|false`: `--think` / `--nothink`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)  # a prompt after `--` is text
        flags = [part for arg in args[:end] for part in _think_flag(arg)]
        return super().parse_args(ctx, flags + args[end:])


def _think_flag(arg: str) -> list[str]:
    """One argument of `run`, Ollama's `--think=VALUE` rewritten as Pasture's flags."""
    if not arg.startswith("--think="):
        return [arg]
    from pasture.options import THINK_LEVELS

    value = arg.removeprefix("--think=").lower()
    if value in ("true", "false"):
        return ["--think" if value == "true" else "--nothink"]
    if value in THINK_LEVELS:
        return ["--think-level", value]
    raise typer.BadParameter(f"invalid value for --think: {value!r} (must be true, false, "
                             "high, medium, low, or max)")


app = typer.Typer(
    name="pasture",
    cls=_Group,
    help="Large language model runner",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def reports_errors(func: F) -> F:
    """Show expected failures as one `Error:` line instead of a traceback (`failures`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        status = exit_status(lambda: func(*args, **kwargs))
        if status:
            raise typer.Exit(status)

    return wrapper  # type: ignore[return-value]


def command(*names: str, hidden: bool = False, cls: type[_Command] = _Command,
            **kwargs: Any) -> Callable[[F], F]:
    """Register a command under one or more names, with error reporting."""

    def register(func: F) -> F:
        wrapped = reports_errors(func)
        for index, name in enumerate(names):
            app.command(name, cls=cls, hidden=hidden or index > 0, **kwargs)(wrapped)
        return func

    return register


def client() -> Client:
    """The full client: for commands that upload, stream progress or change the store."""
    from pasture.client import Client

    return Client()


def _version(value: bool) -> None:
    if value:
        raise typer.Exit(exit_status(quick.version))


def _flag(name: str, help: str, *aliases: str) -> Any:
    return typer.Option(name, *aliases, help=help)


Insecure = Annotated[bool, _flag("--insecure", "Use an insecure registry")]
ModelArg = Annotated[str, typer.Argument(help="Name of the model", show_default=False)]


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", "-v", is_eager=True, callback=_version,
                     help="Show version information"),
    ] = False,
) -> None:
    """Large language model runner."""


# ----- server -----------------------------------------------------------------------------


@command("serve", "start")
def serve() -> None:
    """Start the Pasture server (settings from PASTURE_* / OLLAMA_* variables)."""
    from pasture.config import Settings
    from pasture.server.app import serve as run_server

    run_server(Settings.from_env())


@command("worker")
def worker(
    host: Annotated[str, typer.Option(
        "--host", help="IPv4 address to listen on: the trusted network's, never a public one")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on")] = 50052,
    threads: Annotated[int | None, typer.Option(
        "--threads", "-t", help="CPU threads (default: every core)")] = None,
    cache_dir: Annotated[Path | None, typer.Option(
        "--cache-dir", help="Tensor cache (default: ~/.pasture/rpc-cache)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Keep no tensor cache")] = False,
    allow_wildcard: Annotated[bool, typer.Option(
        "--allow-wildcard", help="Allow 0.0.0.0 (every network here must be trusted)")]
    = False,
    engine: Annotated[str | None, typer.Option(
        "--engine", help="Engine build to serve with; a GPU build offers its GPUs "
        "(default: PASTURE_ENGINE, else the installed wheel, which offers the CPU)")] = None,
) -> None:
    """Offer this machine's CPU or GPUs to runners elsewhere (llama.cpp's RPC server).

    A server with PASTURE_RPC_SERVERS=HOST:PORT places some of a model's layers here.
    The RPC protocol trusts every message: listen only on a network you trust.
    """
    from pasture.rpc import worker as rpc_worker
    from pasture.rpc.endpoints import listen_address

    listen_address(host, allow_wildcard)
    cache = None if no_cache else (cache_dir or rpc_worker.default_cache())
    from pasture.config import pasture_only

    rpc_worker.run(host, port, threads, cache, engine or pasture_only("ENGINE"))


# ----- inference --------------------------------------------------------------------------


@command("run", cls=_RunCommand)
def run(
    model: ModelArg,
    prompt: Annotated[list[str] | None, typer.Argument(help="Prompt (else interactive)")] = None,
    verbose: Annotated[bool, _flag("--verbose", "Show timings for the response")] = False,
    keepalive: Annotated[
        str | None, _flag("--keepalive", "Duration to keep the model loaded (e.g. 5m)")
    ] = None,
    format: Annotated[str | None, _flag("--format", "Response format (json)")] = None,
    nowordwrap: Annotated[bool, _flag("--nowordwrap", "Don't wrap words")] = False,
    think: Annotated[
        bool | None, typer.Option("--think/--nothink", help="Turn thinking on or off")
    ] = None,
    think_level: Annotated[
        str | None, _flag("--think-level", "Thinking effort: low, medium, high or max")
    ] = None,
    hidethinking: Annotated[bool, _flag("--hidethinking", "Hide thinking output")] = False,
    insecure: Insecure = False,
) -> None:
    """Run a model: answer PROMPT, or chat interactively."""
    from pasture.cli.chat import Session
    from pasture.cli.run import run as run_model

    if format not in (None, "", "json"):
        raise ValueError(f"invalid format '{format}': only 'json' is supported")
    session = Session(
        model=model,
        format=format or None,
        keep_alive=keepalive,
        think=_think_value(think, think_level),
        hide_thinking=hidethinking,
        verbose=verbose,
        word_wrap=not nowordwrap,
    )
    run_model(light_client(), session, prompt or [], insecure)


def _think_value(think: bool | None, level: str | None) -> bool | str | None:
    """`--think-level` implies thinking; `--nothink` wins over both."""
    if think is False or level is None:
        return think
    from pasture.options import THINK_LEVELS

    if level.lower() not in THINK_LEVELS:
        raise ValueError(f"invalid thinking level {level!r}: use low, medium, high or max")
    return level.lower()


@command("bench")
def bench(
    model: ModelArg,
    clients: Annotated[
        str, _flag("--clients", "Clients at once for the throughput figures, comma-separated")
    ] = "1,2,4,8",
    tokens: Annotated[int, _flag("--tokens", "Tokens each request generates")] = 128,
    output: Annotated[
        Path | None, _flag("--output", "Where to write PATH.json and PATH.png", "-o")
    ] = None,
) -> None:
    """Measure a model on this machine: load, prompt and decode speed, time to first
    token, and throughput for several clients, with speculative decoding off and on."""
    from pasture.cli import bench as measure

    try:
        counts = sorted({int(n) for n in clients.split(",") if n.strip()})
    except ValueError:
        raise fail(f"--clients takes numbers separated by commas, not {clients!r}") from None
    if not counts or counts[0] < 1 or tokens < 1:
        raise fail("--clients and --tokens must be at least 1")
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in model)
    measure.run(model, counts, tokens, output or Path(f"pasture-bench-{safe}"))


@command("stop")
def stop(model: ModelArg) -> None:
    """Stop a running model."""
    from pasture.client import ResponseError

    try:
        client().generate(model, "", keep_alive=0)
    except ResponseError as exc:
        if exc.status_code == 404:
            raise fail(f'couldn\'t find model "{model}" to stop') from None
        raise


# ----- registry ---------------------------------------------------------------------------


@command("pull")
def pull(model: ModelArg, insecure: Insecure = False) -> None:
    """Pull a model from a registry."""
    from pasture.cli import transfer

    transfer.pull(client(), model, insecure)


@command("push")
def push(model: ModelArg, insecure: Insecure = False) -> None:
    """Push a model to a registry."""
    from pasture.cli import transfer

    transfer.push(client(), model, insecure)


# ----- model management -------------------------------------------------------------------


@command("create")
def create(
    model: ModelArg,
    file: Annotated[Path, _flag("--file", "Name of the Modelfile", "-f")] = Path("Modelfile"),
    quantize: Annotated[
        str | None, _flag("--quantize", "Quantize model to this level (e.g. q4_K_M)", "-q")
    ] = None,
) -> None:
    """Create a model from a Modelfile."""
    from pasture.cli import transfer

    transfer.create(client(), model, file, quantize)


@command("verify")
def verify(
    models: Annotated[
        list[str] | None, typer.Argument(help="Models to check (default: all)", show_default=False)
    ] = None,
    repair: Annotated[
        bool, _flag("--repair", "Pull damaged files again from the model's registry")
    ] = False,
    insecure: Insecure = False,
) -> None:
    """Check that models' files are intact (beyond Ollama); exit status 1 if any is not."""
    from pasture.cli import transfer

    if not transfer.verify(client(), models or [], repair, insecure):
        raise Exit(1)


# Also answered without typer, by `pasture.cli.entry`: the functions live in `quick`.
command("list", "ls")(quick.list_models)
command("ps")(quick.ps)


@command("nodes")
def nodes() -> None:
    """List the machines serving models: memory, GPUs, models, queues (beyond Ollama)."""
    reply = light_client().nodes()
    print_reply(lambda: render.nodes_table(reply.get("nodes") or []))


@command("show")
def show(
    model: ModelArg,
    license: Annotated[bool, _flag("--license", "Show license of a model")] = False,
    modelfile: Annotated[bool, _flag("--modelfile", "Show Modelfile of a model")] = False,
    parameters: Annotated[bool, _flag("--parameters", "Show parameters of a model")] = False,
    template: Annotated[bool, _flag("--template", "Show template of a model")] = False,
    system: Annotated[bool, _flag("--system", "Show system message of a model")] = False,
    verbose: Annotated[bool, _flag("--verbose", "Show detailed model information", "-v")] = False,
) -> None:
    """Show information for a model."""
    flags = {"license": license, "modelfile": modelfile, "parameters": parameters,
             "template": template, "system": system}
    chosen = [name for name, flag in flags.items() if flag]
    if len(chosen) > 1:
        raise fail(
            "only one of '--license', '--modelfile', '--parameters', '--system', "
            "or '--template' can be specified"
        )
    info = light_client().show(model, verbose=verbose or None)
    print_reply(lambda: _show_text(info, chosen[0] if chosen else None, verbose))


def _show_text(info: dict[str, Any], field: str | None, verbose: bool) -> str:
    """`show`'s output: every section, or the one field a flag asked for."""
    if field is None:
        return render.show_info(info, verbose)
    value: str = info.get(field) or ""
    if field in ("license", "modelfile", "parameters") and not value.endswith("\n"):
        value += "\n"
    return value


@command("cp")
def copy(
    source: Annotated[str, typer.Argument(help="Model to copy")],
    destination: Annotated[str, typer.Argument(help="Name of the copy")],
) -> None:
    """Copy a model."""
    client().copy(source, destination)
    typer.echo(f"copied '{source}' to '{destination}'")


@command("rm")
def remove(models: Annotated[list[str], typer.Argument(help="Models to remove")]) -> None:
    """Remove one or more models."""
    from pasture.client import ResponseError

    api = client()
    for model in models:
        try:  # unload it first, so its memory is freed along with its files
            api.generate(model, "", keep_alive=0)
        except ResponseError as exc:
            if exc.status_code != 404:
                raise
        api.delete(model)
        typer.echo(f"deleted '{model}'")


# ----- engine builds ----------------------------------------------------------------------

engine_app = typer.Typer(help="Manage engine builds (llama.cpp compiled for this machine)",
                         cls=_Group, no_args_is_help=True, add_completion=False,
                         rich_markup_mode=None,
                         context_settings={"help_option_names": ["-h", "--help"]})
for _name, _func in engine.COMMANDS.items():
    engine_app.command(_name, cls=_Command)(reports_errors(_func))
app.add_typer(engine_app, name="engine")
