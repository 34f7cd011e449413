"""The `pasture` command: Ollama's CLI, talking to the server only through `pasture.client`.

Every command is declared here, with its arguments, and `main` runs the one the command
line names (`pasture.cli.parsing`: argparse, building that command's parser only). Every
command turns failures into `Error: <message>` on stderr and exit status 1 (130 after
Ctrl+C; 2 for a wrong command line), never a traceback. `serve` is the one command that
starts the server in this process instead of calling it.

This module also decides what each command imports: at start only the standard library,
`parsing`, `failures`, `quick` and `render`; each command's own modules inside its
function. The commands people run many times a minute (`list`, `ps`, `show`, `--version`,
`run`) talk through `light_client()`, the standard library's HTTP and plain JSON; the
others through `client()`, the full httpx client with the pydantic wire types. So `pasture
--help`, `list` or `show` import no third-party package at all, nor rich, the engines or
the server (`tests/unit/test_cli_imports.py` keeps it so).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pasture.cli import engine, parsing, quick, render
from pasture.cli.failures import Exit, fail
from pasture.cli.parsing import UsageError, arg, flag
from pasture.cli.quick import light_client, print_reply

if TYPE_CHECKING:
    from pasture.client import Client

PASTURE = parsing.Command(("pasture",), help="Large language model runner")
MODEL = arg("model", help="Name of the model")
INSECURE = flag("--insecure", help="Use an insecure registry")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (`sys.argv` unless given); return its exit status."""
    return parsing.run(PASTURE, sys.argv[1:] if argv is None else argv, "pasture")


def client() -> Client:
    """The full client: for commands that upload, stream progress or change the store."""
    from pasture.client import Client

    return Client()


# ----- server -----------------------------------------------------------------------------


@PASTURE.command("serve", aliases=("start",))
def serve() -> None:
    """Start the Pasture server (settings from PASTURE_* / OLLAMA_* variables)."""
    from pasture.config import Settings
    from pasture.server.app import serve as run_server

    run_server(Settings.from_env())


@PASTURE.command(
    "worker",
    arg("--host", default="127.0.0.1", help="IPv4 address to listen on: the trusted network's, "
        "never a public one (default: %(default)s)"),
    arg("-p", "--port", type=int, default=50052, metavar="PORT",
        help="Port to listen on (default: %(default)s)"),
    arg("-t", "--threads", type=int, metavar="N", help="CPU threads (default: every core)"),
    arg("--cache-dir", type=Path, metavar="PATH",
        help="Tensor cache (default: ~/.pasture/rpc-cache)"),
    flag("--no-cache", help="Keep no tensor cache"),
    flag("--allow-wildcard", help="Allow 0.0.0.0 (every network here must be trusted)"),
    arg("--engine", metavar="BUILD", help="Engine build to serve with; a GPU build offers its "
        "GPUs (default: PASTURE_ENGINE, else the installed wheel, which offers the CPU)"),
)
def worker(host: str, port: int, threads: int | None, cache_dir: Path | None, no_cache: bool,
           allow_wildcard: bool, engine: str | None) -> None:
    """Offer this machine's CPU or GPUs to runners elsewhere (llama.cpp's RPC server).

    A server with PASTURE_RPC_SERVERS=HOST:PORT places some of a model's layers here.
    The RPC protocol trusts every message: listen only on a network you trust.
    """
    from pasture.environment import pasture_only
    from pasture.rpc import worker as rpc_worker
    from pasture.rpc.endpoints import listen_address

    listen_address(host, allow_wildcard)
    cache = None if no_cache else (cache_dir or rpc_worker.default_cache())
    rpc_worker.run(host, port, threads, cache, engine or pasture_only("ENGINE"))


# ----- inference --------------------------------------------------------------------------


def _think_flags(words: list[str]) -> list[str]:
    """`run`'s words with Ollama's `--think=VALUE` spelled as Pasture's flags:
    `--think=max` is `--think-level max`, `--think=true|false` `--think` / `--nothink`.
    A prompt after `--` is text, left alone."""
    end = words.index("--") if "--" in words else len(words)
    return [part for word in words[:end] for part in _think_flag(word)] + words[end:]


def _think_flag(word: str) -> list[str]:
    if not word.startswith("--think="):
        return [word]
    from pasture.options import THINK_LEVELS

    value = word.removeprefix("--think=").lower()
    if value in ("true", "false"):
        return ["--think" if value == "true" else "--nothink"]
    if value in THINK_LEVELS:
        return ["--think-level", value]
    raise UsageError(f"invalid value for --think: {value!r} (must be true, false, "
                     "high, medium, low, or max)")


@PASTURE.command(
    "run",
    MODEL,
    arg("prompt", nargs="*", help="Prompt (else interactive)"),
    flag("--verbose", help="Show timings for the response"),
    arg("--keepalive", metavar="DURATION", help="Duration to keep the model loaded (e.g. 5m)"),
    arg("--format", metavar="FORMAT", help="Response format (json)"),
    flag("--nowordwrap", help="Don't wrap words"),
    arg("--think", action="store_const", const=True, dest="think",
        help="Turn thinking on (--think=LEVEL: at that effort)"),
    arg("--nothink", action="store_const", const=False, dest="think",
        help="Turn thinking off"),
    arg("--think-level", metavar="LEVEL", help="Thinking effort: low, medium, high or max"),
    flag("--hidethinking", help="Hide thinking output"),
    INSECURE,
    prepare=_think_flags,
)
def run(model: str, prompt: list[str], verbose: bool, keepalive: str | None,
        format: str | None, nowordwrap: bool, think: bool | None, think_level: str | None,
        hidethinking: bool, insecure: bool) -> None:
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
    run_model(light_client(), session, prompt, insecure)


def _think_value(think: bool | None, level: str | None) -> bool | str | None:
    """`--think-level` implies thinking; `--nothink` wins over both."""
    if think is False or level is None:
        return think
    from pasture.options import THINK_LEVELS

    if level.lower() not in THINK_LEVELS:
        raise ValueError(f"invalid thinking level {level!r}: use low, medium, high or max")
    return level.lower()


@PASTURE.command(
    "bench",
    MODEL,
    arg("--clients", default="1,2,4,8", metavar="N,N,...", help="Clients at once for the "
        "throughput figures, comma-separated (default: %(default)s)"),
    arg("--tokens", type=int, default=128, metavar="N",
        help="Tokens each request generates (default: %(default)s)"),
    arg("-o", "--output", type=Path, metavar="PATH", help="Where to write PATH.json and PATH.png"),
)
def bench(model: str, clients: str, tokens: int, output: Path | None) -> None:
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


@PASTURE.command("stop", MODEL)
def stop(model: str) -> None:
    """Stop a running model."""
    from pasture.client import ResponseError

    try:
        client().generate(model, "", keep_alive=0)
    except ResponseError as exc:
        if exc.status_code == 404:
            raise fail(f'couldn\'t find model "{model}" to stop') from None
        raise


# ----- registry ---------------------------------------------------------------------------


@PASTURE.command("pull", MODEL, INSECURE)
def pull(model: str, insecure: bool) -> None:
    """Pull a model from a registry."""
    from pasture.cli import transfer

    transfer.pull(client(), model, insecure)


@PASTURE.command("push", MODEL, INSECURE)
def push(model: str, insecure: bool) -> None:
    """Push a model to a registry."""
    from pasture.cli import transfer

    transfer.push(client(), model, insecure)


# ----- model management -------------------------------------------------------------------


@PASTURE.command(
    "create",
    MODEL,
    arg("-f", "--file", type=Path, default=Path("Modelfile"), metavar="PATH",
        help="Name of the Modelfile (default: %(default)s)"),
    arg("-q", "--quantize", metavar="LEVEL", help="Quantize model to this level (e.g. q4_K_M)"),
)
def create(model: str, file: Path, quantize: str | None) -> None:
    """Create a model from a Modelfile."""
    from pasture.cli import transfer

    transfer.create(client(), model, file, quantize)


@PASTURE.command(
    "verify",
    arg("models", nargs="*", metavar="MODEL", help="Models to check (default: all)"),
    flag("--repair", help="Pull damaged files again from the model's registry"),
    INSECURE,
)
def verify(models: list[str], repair: bool, insecure: bool) -> None:
    """Check that models' files are intact (beyond Ollama); exit status 1 if any is not."""
    from pasture.cli import transfer

    if not transfer.verify(client(), models, repair, insecure):
        raise Exit(1)


PASTURE.command("list", aliases=("ls",))(quick.list_models)
PASTURE.command("ps")(quick.ps)


@PASTURE.command("nodes")
def nodes() -> None:
    """List the machines serving models: memory, GPUs, models, queues (beyond Ollama)."""
    reply = light_client().nodes()
    print_reply(lambda: render.nodes_table(reply.get("nodes") or []))


@PASTURE.command(
    "show",
    MODEL,
    flag("--license", help="Show license of a model"),
    flag("--modelfile", help="Show Modelfile of a model"),
    flag("--parameters", help="Show parameters of a model"),
    flag("--template", help="Show template of a model"),
    flag("--system", help="Show system message of a model"),
    flag("-v", "--verbose", help="Show detailed model information"),
)
def show(model: str, license: bool, modelfile: bool, parameters: bool, template: bool,
         system: bool, verbose: bool) -> None:
    """Show information for a model."""
    flags = {"license": license, "modelfile": modelfile, "parameters": parameters,
             "template": template, "system": system}
    chosen = [name for name, given in flags.items() if given]
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


@PASTURE.command("cp", arg("source", help="Model to copy"),
                 arg("destination", help="Name of the copy"))
def copy(source: str, destination: str) -> None:
    """Copy a model."""
    client().copy(source, destination)
    print(f"copied '{source}' to '{destination}'")


@PASTURE.command("rm", arg("models", nargs="+", metavar="MODEL", help="Models to remove"))
def remove(models: list[str]) -> None:
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
        print(f"deleted '{model}'")


# ----- engine builds ----------------------------------------------------------------------

ENGINE = PASTURE.group("engine", "Manage engine builds (llama.cpp compiled for this machine)")
ENGINE.command("list")(engine.list_builds)
ENGINE.command(
    "build",
    flag("--native", help="Compile for this CPU (every build does; the default)"),
    flag("--cuda", help="Build for NVIDIA GPUs"),
    arg("--cuda-arch", metavar="ARCH",
        help="Compute capability, e.g. 90 (default: this machine's GPU)"),
    arg("--name", help="Name of the build"),
    arg("--source", type=Path, metavar="PATH",
        help="xllamacpp source archive (default: download it from PyPI)"),
    arg("-j", "--jobs", type=int, metavar="N", help="Parallel compile jobs"),
    flag("--force", help="Rebuild an existing build"),
    flag("--rpc", help="Layers on other machines (`pasture worker`): alone, build only ggml's "
         "RPC backend for the installed engines (seconds); with --cuda, compile it in"),
)(engine.build)
ENGINE.command(
    "install",
    arg("wheel", type=Path, help="An xllamacpp wheel file"),
    arg("--name", help="Name of the build"),
    flag("--force", help="Replace a build of that name"),
)(engine.install)
ENGINE.command("remove", arg("name", help="Build to remove"))(engine.remove)

PASTURE.command("--version", aliases=("-v",), help="Show version information")(quick.version)
