"""How long `pasture` commands take from a fresh process, next to `python -c pass` (issue #23).

People call `ollama list` / `ollama ps` from shell prompts, editors and scripts many times
a minute, so every command's start-up cost counts. This starts a `pasture serve` on a free
port with a temporary store holding one tiny random model (tests/ggufs.py), then runs each
command `--runs` times in fresh processes and prints the median wall time of each, plus how
long `pasture serve` takes until `GET /` answers, and, with SmolLM2 loaded (from
~/.cache/pasture/models, if there), how long `pasture run MODEL PROMPT` takes until the
first byte of the answer reaches its stdout.

Compiled bytecode is kept (PYTHONDONTWRITEBYTECODE is dropped for the children), as an
installed package has it; the first run of each command writes it.

    PYTHONPATH=src python bench/bench_cli.py --runs 7
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MODEL = "tiny"
SMOLLM2 = Path.home() / ".cache/pasture/models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(store: Path, port: int) -> dict[str, str]:
    env = {**os.environ, "PASTURE_HOST": f"127.0.0.1:{port}",
           "PASTURE_MODELS": str(store / "models"), "PASTURE_ENGINES": str(store / "engines")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _wait_up(url: str, deadline: float) -> float:
    """Poll `GET /` until it answers; return when it did."""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return time.monotonic()
        except OSError:
            time.sleep(0.01)
    raise TimeoutError(f"{url} did not answer")


def _start_serve(env: dict[str, str], port: int) -> tuple[subprocess.Popen[bytes], float]:
    started = time.monotonic()
    server = subprocess.Popen([sys.executable, "-m", "pasture", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    up = _wait_up(f"http://127.0.0.1:{port}/", started + 60)
    return server, up - started


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=30)


def _time(argv: Sequence[str], env: dict[str, str], runs: int) -> float:
    """Median wall seconds of `argv` in fresh processes; fails loudly if the command does."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _first_byte(argv: Sequence[str], env: dict[str, str], runs: int) -> float:
    """Median seconds from start until the command's first byte of stdout; then stop it."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        command = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert command.stdout is not None
        if not command.stdout.read(1):
            raise RuntimeError(f"{argv} printed nothing")
        times.append(time.perf_counter() - started)
        command.terminate()  # closing the stream stops the answer
        command.wait(timeout=30)
        time.sleep(0.3)  # let the server finish cancelling before the next request
    return statistics.median(times)


def _first_token_row(pasture: list[str], env: dict[str, str], store: Path,
                     runs: int) -> dict[str, float]:
    if not SMOLLM2.is_file():
        print(f"no {SMOLLM2}: skipping the run benchmark", file=sys.stderr)
        return {}
    (store / "Modelfile.smol").write_text(f"FROM {SMOLLM2}\n")
    quiet = {"env": env, "check": True, "stdout": subprocess.DEVNULL,
             "stderr": subprocess.DEVNULL, "stdin": subprocess.DEVNULL}
    subprocess.run([*pasture, "create", "smol", "-f", str(store / "Modelfile.smol")], **quiet)
    subprocess.run([*pasture, "run", "smol", ""], **quiet)  # load it
    prompt = [*pasture, "run", "smol", "Why is the sky blue?"]
    return {"pasture run (first byte of answer)": _first_byte(prompt, env, runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    from tests.ggufs import write_tiny_llama

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        port = _free_port()
        env = _env(store, port)
        gguf = write_tiny_llama(store / "tiny.gguf")
        (store / "Modelfile").write_text(f"FROM {gguf}\n")
        serve_times = []
        for _ in range(max(1, args.runs // 2)):
            server, seconds = _start_serve(env, port)
            serve_times.append(seconds)
            _stop(server)
        server, _ = _start_serve(env, port)
        try:
            pasture = [sys.executable, "-m", "pasture"]
            subprocess.run([*pasture, "create", MODEL, "-f", str(store / "Modelfile")], env=env,
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            rows = {"python -c pass": _time([sys.executable, "-c", "pass"], env, args.runs)}
            for command in (["--version"], ["--help"], ["list"], ["ps"], ["show", MODEL]):
                rows["pasture " + " ".join(command)] = _time([*pasture, *command], env, args.runs)
            rows.update(_first_token_row(pasture, env, store, args.runs))
        finally:
            _stop(server)
        rows["pasture serve until GET / answers"] = statistics.median(serve_times)
    print(f"{'command':<40} median (s), {args.runs} runs")
    for name, seconds in rows.items():
        print(f"{name:<40} {seconds:.3f}")


if __name__ == "__main__":
    main()
