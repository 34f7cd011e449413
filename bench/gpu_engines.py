#!/usr/bin/env python3
"""Prove engine builds on a real NVIDIA GPU: a CUDA build installed beside the CPU wheel.

Pasture's default engine is PyPI's xllamacpp wheel, which is CPU-only; a CUDA build is
installed beside it with `pasture engine install`, and the server must find the GPU
through that build and start GPU runners on it. This script:

1. installs the wheel into a temporary PASTURE_ENGINES with `python -m pasture engine
   install WHEEL` and checks that `pasture engine list` shows it for GPU placements;
2. writes a random-weight llama-shaped F16 model of 1.1 B parameters (bench/gpu_check.py's
   writer), starts `pasture serve` with that PASTURE_ENGINES (the default wheel stays
   CPU-only on PYTHONPATH) and imports the model;
3. measures decode tokens/s, both as streamed to the caller and as the engine timed it,
   with the same prompt per run (a fresh one each run), greedy sampling, num_ctx 4096,
   one slot, the same thread count and token count on every side:
     pasture      /api/generate, no num_gpu: expect every layer on the GPU, and /api/ps
                  to name the CUDA build, 100% GPU
     in-process   the same build with nothing around it: bench/engine_alone.py in a
                  child Python with the build's site first on PYTHONPATH,
                  xllamacpp.Server with n_gpu_layers 999; its runs alternate with the
                  pasture runs
     cpu          /api/generate with num_gpu 0: expect the default wheel, 100% CPU
4. forces a tool call (`tool_choice: required`) on a variant with a tools template: the
   grammar alone makes it valid, the weights being random; the CUDA build has no
   llguidance, so this is the GBNF Pasture writes for such builds, run on the GPU;
5. prints a table with the ratios to the in-process engine (target: pasture streamed
   ≥ 0.95 × in-process streamed) and writes it to $OUT/gpu_engines.txt, the server and
   in-process logs beside it. Exit status 1 if a check failed or the target was missed.

`--cpu-smoke` runs the same steps on a CPU machine, with a tiny model and a CPU wheel
standing in for the CUDA one (that build then serves every placement, 100% CPU, and
there is no speed target; it is recorded without llguidance, as the CUDA build is, so the
forced tool call takes the same GBNF path); tests/integration/test_gpu_check_smoke.py
runs it.

On the GPU machine (Python 3.12 with numpy, no network) the wheels travel in the ignored
`.gpu/` folder that `bash bench/gpu_prepare.sh` fills. A device call carries at most
64 MiB, and the CPU wheel with the dependencies (`.gpu/base`, 53 MiB) and the CUDA wheel
(`.gpu/cuda`, 51 MiB) together do not fit, so it takes two calls on one warm machine:
the first installs `.gpu/base` into `.gpu/site` (the machine keeps ignored files between
calls) and runs the smoke there; the second carries the CUDA wheel and runs the proof.

    call 1, carry [".gpu/base"], timeout_s 300 (about a minute once started):
      python3 -m pip install -q --no-index --no-deps --target .gpu/site .gpu/base/*.whl &&
      PYTHONPATH=$PWD/.gpu/site python3 bench/gpu_engines.py --cpu-smoke
    call 2 right after it, carry [".gpu/cuda"], timeout_s 420 (about 3 minutes):
      test -d .gpu/site/fastapi || { echo 'no .gpu/site: the machine was released, run
      call 1 again'; exit 3; }; PYTHONPATH=$PWD/.gpu/site python3 bench/gpu_engines.py

With time left on the same warm machine, bench/gpu_check.py's placement check runs the
same way (its docstring has the command). Then give the machine back.

    python bench/gpu_engines.py --cpu-smoke --wheel XLLAMACPP_CPU_WHEEL   # here
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# bench/ is on the path (this file runs as a script); gpu_check puts src/ there too.
import httpx
from bench_decode import decode_rate
from engine_alone import ANSWER
from gpu_check import (
    FULL,
    MODEL,
    PROMPT,
    REPO,
    SMOKE,
    Server,
    await_exit,
    child_env,
    import_model,
    unload,
    write_model,
)

from pasture.cli.render import processor
from pasture.engines.builds import EngineBuilds

NUM_CTX = 4096
TARGET = 0.95  # pasture's streamed decode rate over the in-process engine's
ALONE = Path(__file__).with_name("engine_alone.py")
TOOLS_TEMPLATE = REPO / "tests" / "unit" / "templates" / "qwen2.5-tools.gotmpl"
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "required": ["city"], "properties": {
        "city": {"enum": ["Oslo", "Paris"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7}}}}}


class Failed(Exception):
    """A step that later steps depend on did not work."""


@dataclass
class Run:
    """One generation: decode tokens/s as the caller received the tokens, and as the
    engine timed them (llama.cpp's `predicted_per_second`, Ollama's eval_count over
    eval_duration)."""

    streamed: float
    timed: float
    tokens: int
    text: str


@dataclass
class Row:
    what: str
    build: str
    placement: str
    runs: list[Run]

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)


@dataclass
class Report:
    checks: list[tuple[bool, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> bool:
        self.checks.append((ok, what))
        print(("ok:   " if ok else "FAIL: ") + what, flush=True)
        return ok

    def note(self, line: str) -> None:
        self.notes.append(line)
        print(line, flush=True)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(ok for ok, _ in self.checks)


def prompt(i: int) -> str:
    """A fresh prompt per run (no cached prefix helps), the same for every side."""
    return f"Story {i}. {PROMPT}"


def pasture_cli(engines: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pasture", *args],
                          env=child_env(PASTURE_ENGINES=str(engines)), capture_output=True,
                          text=True, timeout=600)


def pasture_run(client: httpx.Client, i: int, tokens: int, options: dict[str, Any]) -> Run:
    """One streamed /api/generate."""
    stamps: list[float] = []
    text: list[str] = []
    final: dict[str, Any] = {}
    body = {"model": MODEL, "prompt": prompt(i), "raw": True, "stream": True,
            "options": {"temperature": 0, "num_predict": tokens, "num_ctx": NUM_CTX,
                        **options}}
    with client.stream("POST", "/api/generate", json=body) as reply:
        if reply.status_code != 200:
            raise Failed(f"/api/generate answered {reply.status_code}: "
                         f"{reply.read().decode(errors='replace')[:300]}")
        for line in reply.iter_lines():
            if not line:
                continue
            chunk = json.loads(line)
            if "error" in chunk:
                raise Failed(f"/api/generate failed: {chunk['error']}")
            if chunk.get("response"):
                stamps.append(time.perf_counter())
                text.append(chunk["response"])
            if chunk.get("done"):
                final = chunk
    if len(stamps) < 2 or not final.get("eval_duration"):
        raise Failed(f"/api/generate streamed {len(stamps)} tokens")
    return Run(decode_rate(stamps), final["eval_count"] / final["eval_duration"] * 1e9,
               final["eval_count"], "".join(text))


def loaded(client: httpx.Client, model: str = MODEL) -> tuple[str, str]:
    """(engine build, PROCESSOR) of `model` as /api/ps lists it."""
    models = [m for m in client.get("/api/ps").json()["models"]
              if m["name"] == f"{model}:latest"]
    if len(models) != 1:
        raise Failed(f"/api/ps does not list {model}")
    return models[0].get("engine", "?"), processor(models[0]["size"], models[0]["size_vram"])


class InProcess:
    """The engine with no Pasture around it: bench/engine_alone.py in a child Python with
    the build's site first on its path (and `-X faulthandler`, so a crash says where)."""

    def __init__(self, site: Path, gguf: Path, tokens: int, threads: int,
                 log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [sys.executable, "-X", "faulthandler", str(ALONE), str(gguf), "--tokens",
             str(tokens), "--threads", str(threads), "--ctx", str(NUM_CTX)],
            env=child_env(site), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, text=True)
        try:
            self.hello = self._read()  # sent once the model is loaded
        except Failed:
            self.close()
            raise

    def run(self, i: int) -> Run:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(prompt(i)) + "\n")
        self.process.stdin.flush()
        reply = self._read()
        timings = reply["timings"]
        return Run(decode_rate(reply["stamps"]), timings["predicted_per_second"],
                   int(timings["predicted_n"]), reply["text"])

    def _read(self) -> dict[str, Any]:
        """The next answer; anything else the child prints (llama.cpp may log to stdout)
        goes to its log."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(ANSWER):
                return json.loads(line[len(ANSWER):])
            self._log.write(line.encode())
        self._log.flush()
        code = self.process.wait()
        tail = self.log_path.read_text(errors="replace").strip().splitlines()[-6:]
        raise Failed(f"the in-process engine exited with status {code}: " + " | ".join(tail))

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        await_exit(self.process, 30)
        self._log.close()


def install(engines: Path, wheel: Path, smoke: bool, report: Report) -> str:
    """`pasture engine install`, then `pasture engine list`; the build's name."""
    installed = pasture_cli(engines, "engine", "install", str(wheel))
    said = (installed.stdout or installed.stderr).strip()
    match = re.search(r"installed engine build '([^']+)': (\w+)", installed.stdout)
    report.check(installed.returncode == 0 and match is not None,
                 f"`pasture engine install {wheel.name}`: {said[-300:]}")
    if match is None:
        raise Failed("the wheel did not install")
    name, kind = match.groups()
    want = "cpu" if smoke else "cuda"
    report.check(kind == want, f"build {name} is a {kind} build (expected {want})")
    if smoke:  # recorded without llguidance, as the CUDA build is: the same grammar path;
        # and named, as the default wheel (llguidance) would win the tie on the CPU
        record = engines / name / "build.json"
        record.write_text(json.dumps({**json.loads(record.read_text()), "llguidance": False}))
        os.environ["PASTURE_ENGINE"] = name  # for every child from here on

    listing = pasture_cli(engines, "engine", "list")
    report.note("`pasture engine list`:\n\n" + "\n".join(
        "    " + line for line in (listing.stdout + listing.stderr).splitlines()) + "\n")
    listed = re.search(rf"^{re.escape(name)}\s+{kind}\s", listing.stdout, re.MULTILINE)
    report.check(listing.returncode == 0 and listed is not None, f"engine list shows {name}")
    gpu_line = "GPU placements: no GPU found" if smoke else f"GPU placements use: {name}"
    report.check(gpu_line in listing.stdout, f"engine list says '{gpu_line}'")
    return name


def measure(server: Server, name: str, site: Path, gguf: Path, args: argparse.Namespace,
            report: Report, logs: Path, rows: list[Row]) -> None:
    """The three sides (see the module docstring) into `rows` as each is done, checking
    where each one ran."""
    smoke = args.cpu_smoke
    log = server.log().splitlines()
    summary = next((line for line in log if "engine builds:" in line), "no summary line")
    report.note("serve log: " + summary.strip())
    gpus = [line.strip() for line in log if " gpu " in line]
    for gpu in gpus:
        report.note("serve log: " + gpu)
    if not smoke:
        report.check(bool(gpus), "the server found a GPU through the installed build")
    want = f"CPU placements use {name}" if smoke else f"GPU placements use {name}"
    report.check(want in summary, f"serve log says '{want}'")

    with httpx.Client(base_url=server.url, timeout=600) as client:
        pasture_run(client, -1, args.tokens, {})  # warm-up, and the load
        engine, where = loaded(client)
        on = "100% CPU" if smoke else "100% GPU"
        report.check(engine == name and where == on,
                     f"no num_gpu: /api/ps says engine {engine}, {where} (expected {name}, {on})")
        child = InProcess(site, gguf, args.tokens, args.threads, logs / "in-process.log")
        try:
            path = str(child.hello["path"])
            report.check(path.startswith(str(site)), f"in-process engine imported {path}")
            if not smoke:
                report.check("CUDA :" in child.hello["system_info"],
                             "the in-process engine is a CUDA build")
            child.run(-1)  # warm-up
            served, alone = [], []
            for i in range(args.runs):  # alternating, so drift hits both sides alike
                served.append(pasture_run(client, i, args.tokens, {}))
                alone.append(child.run(i))
        finally:
            child.close()
        rows.append(Row("Pasture, no num_gpu", engine, where, served))
        rows.append(Row("engine in-process, n_gpu_layers 999", name, "-", alone))
        forced_call(client, name, report)
        unload(server.url)

        pasture_run(client, -1, args.tokens, {"num_gpu": 0})
        engine, where = loaded(client)
        cpu_engine = name if smoke else "default"
        report.check(engine == cpu_engine and where == "100% CPU",
                     f"num_gpu 0: /api/ps says engine {engine}, {where} "
                     f"(expected {cpu_engine}, 100% CPU)")
        cpu = [pasture_run(client, i, args.tokens, {"num_gpu": 0})
               for i in range(args.cpu_runs)]
        rows.append(Row("Pasture, num_gpu 0", engine, where, cpu))
        unload(server.url)


def forced_call(client: httpx.Client, name: str, report: Report) -> None:
    """A forced tool call on the build under test, which the grammar alone makes valid
    (the weights are random): a build without llguidance, as the shared CUDA build is,
    gets it in GBNF. The tool takes only a few values, so the call ends soon."""
    variant = f"{MODEL}-tools"
    created = client.post("/api/create", json={"model": variant, "from": MODEL,
                                               "template": TOOLS_TEMPLATE.read_text(),
                                               "stream": False})
    if created.status_code != 200:
        raise Failed(f"create {variant}: {created.status_code} {created.text[:200]}")
    reply = client.post("/api/chat", json={
        "model": variant, "messages": [{"role": "user", "content": "Weather in Oslo?"}],
        "tools": [WEATHER], "tool_choice": "required", "stream": False,
        "options": {"temperature": 0, "num_predict": 600, "num_ctx": NUM_CTX}})
    calls = reply.json().get("message", {}).get("tool_calls") or [] \
        if reply.status_code == 200 else []
    said = calls or reply.text[:300]
    report.check(len(calls) == 1 and calls[0]["function"]["name"] == "get_weather"
                 and calls[0]["function"]["arguments"].get("city") in ("Oslo", "Paris"),
                 f"tool_choice required: one valid call, {said}")
    # the variant shares the runner of the model it was made from (one runner per file):
    # /api/ps lists that runner under the name that loaded it
    engine, _ = loaded(client)
    report.check(engine == name, f"the call ran on engine build {engine} (expected {name})")
    client.post("/api/generate", json={"model": variant, "keep_alive": 0})


def table(rows: list[Row], smoke: bool, report: Report) -> str:
    """The rows with their ratios to the in-process engine; checks the target."""
    lines = ["| run | engine build | /api/ps | decode tok/s streamed (median) | "
             "decode tok/s engine-timed (median) | tokens | × in-process (streamed, timed) |",
             "|---|---|---|---|---|---|---|"]
    base = next((r for r in rows if r.what.startswith("engine in-process")), None)
    for r in rows:
        ratios = (f"{r.median('streamed') / base.median('streamed'):.3f}, "
                  f"{r.median('timed') / base.median('timed'):.3f}") if base else "-"
        lines.append(f"| {r.what} | {r.build} | {r.placement} | {r.median('streamed'):.1f} | "
                     f"{r.median('timed'):.1f} | {', '.join(str(x.tokens) for x in r.runs)} | "
                     f"{ratios} |")
    lines.append("")
    for r in rows:
        lines.append(f"{r.what}, streamed per run: "
                     + ", ".join(f"{x.streamed:.1f}" for x in r.runs))
    if base and rows[0] is not base:
        ratio = rows[0].median("streamed") / base.median("streamed")
        same = all(a.text == b.text for a, b in zip(rows[0].runs, base.runs, strict=True))
        lines.append(f"same greedy text from Pasture and the in-process engine: "
                     f"{'yes' if same else 'no'}")
        if not smoke:
            report.check(ratio >= TARGET, f"Pasture decodes at {ratio:.3f} × the in-process "
                                          f"engine (target ≥ {TARGET})")
    return "\n".join(lines) + "\n"


def default_wheel(smoke: bool) -> Path:
    folder = REPO / ".gpu" / ("base" if smoke else "cuda")
    wheels = sorted(folder.glob("xllamacpp-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one xllamacpp wheel in {folder} (`bash bench/"
                         "gpu_prepare.sh` puts it there), or give --wheel")
    return wheels[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="tiny model, a CPU wheel as the stand-in build, no GPU checks")
    parser.add_argument("--wheel", type=Path, help="the build to install (default: the "
                        "one in .gpu/cuda, or .gpu/base with --cpu-smoke)")
    parser.add_argument("--runs", type=int, help="measured runs per side (default 5, 2)")
    parser.add_argument("--cpu-runs", type=int, help="runs with num_gpu 0 (default 3, 2)")
    parser.add_argument("--tokens", type=int, help="tokens per run (default 256, 8)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    smoke = args.cpu_smoke
    args.runs = args.runs or (2 if smoke else 5)
    args.cpu_runs = args.cpu_runs or (2 if smoke else 3)
    args.tokens = args.tokens or (8 if smoke else 256)
    wheel = (args.wheel or default_wheel(smoke)).resolve()
    shape = SMOKE if smoke else FULL
    out = Path(os.environ["OUT"]) if os.environ.get("OUT") else None
    started = time.monotonic()
    report = Report()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="gpu-engines-") as tmp:
        root = Path(tmp)
        logs = out or root
        engines = root / "engines"
        try:
            name = install(engines, wheel, smoke, report)
            build = EngineBuilds(engines).get(name)
            report.note(f"build {name}: {build.kind}, xllamacpp {build.version}, CUDA "
                        f"{' '.join(f'sm{a}' for a in build.cuda_archs) or '-'}, CPU "
                        f"{' '.join(build.cpu_features)}; {build.origin}")
            assert build.site is not None
            gguf = write_model(root / "gpu-engines.gguf", shape)
            server = Server(root / "models", logs / "serve-engines.log",
                            PASTURE_ENGINES=str(engines), PASTURE_NUM_PARALLEL="1",
                            PASTURE_NUM_THREADS=str(args.threads))
            try:
                import_model(server.url, gguf)
                measure(server, name, build.site, gguf, args, report, logs, rows)
            finally:
                server.stop()
        except (Failed, httpx.HTTPError, SystemExit) as exc:  # SystemExit: no server
            report.check(False, str(exc)[:500])

    header = [f"# gpu_engines ({'CPU smoke' if smoke else 'GPU'}), "
              f"{time.strftime('%Y-%m-%d %H:%M')}, {time.monotonic() - started:.0f} s", "",
              f"model: llama-shaped F16, n_embd {shape.n_embd}, {shape.n_layers} layers, "
              f"n_ff {shape.n_ff}, vocab {shape.n_vocab}; num_ctx {NUM_CTX}, one slot, "
              f"{args.threads} threads, {args.tokens} tokens, greedy, raw prompt; "
              f"{args.runs} runs per side ({args.cpu_runs} with num_gpu 0) after a warm-up",
              "", *report.notes, "", ""]
    text = "\n".join(header) + (table(rows, smoke, report) if rows else "no measurements\n")
    text += "\nchecks:\n" + "\n".join(f"- {'ok' if ok else 'FAIL'}: {what}"
                                      for ok, what in report.checks) + "\n"
    print(text)
    if out:
        (out / "gpu_engines.txt").write_text(text)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
