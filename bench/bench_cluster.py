#!/usr/bin/env python3
"""One node through the cluster vs plain `pasture serve`, on the same machine.

Starts a one-node Ray cluster (`ray start --head`) and two servers over one models
directory: `pasture serve` with PASTURE_CLUSTER (its runner started by the node's agent,
streamed from over the node's address) and plain `pasture serve` (its runner a child).
All of it runs in a network namespace holding only `lo`, as the cluster tests do (Ray
probes outside addresses whatever its flags say), torn down at the end; root and
iproute2 are needed. Runs alternate between the two sides, each with a unique raw
prompt (no prefix cache), SmolLM2-135M Q4_1, greedy, 2 threads; the client measures
TTFT and decode (tokens after the first over the time they took), and /proc gives each
front end's CPU time (its own threads: for the cluster, Ray's driver threads too) per
streamed token, the figure the throughput model in docs/cluster.md starts from.

    sudo python bench/bench_cluster.py [--runs 7] [--tokens 128]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from fetch_models import SMOLLM2_FILE, fetch_smollm2  # noqa: E402

RAY = str(Path(sys.executable).parent / "ray")
PROMPT = "Story {i} ({side}). Once upon a time, in an old lighthouse by a stormy sea, lived"
SIDES = {"cluster": "http://127.0.0.1:11501", "plain": "http://127.0.0.1:11502"}


def cpu_seconds(pid: int) -> float:
    """The process's own user + system CPU time (all its threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(url: str, prompt: str, tokens: int) -> tuple[float, float, int]:
    """TTFT (s), decode rate (tokens/s after the first) and tokens, as a client sees them."""
    stamps: list[float] = []
    body = {"model": "bench", "prompt": prompt, "raw": True, "stream": True,
            "options": {"num_predict": tokens, "temperature": 0}}
    start = time.perf_counter()
    with httpx.stream("POST", url + "/api/generate", json=body, timeout=300) as reply:
        for line in reply.iter_lines():
            if line and json.loads(line).get("response"):
                stamps.append(time.perf_counter())
    return stamps[0] - start, (len(stamps) - 1) / (stamps[-1] - stamps[0]), len(stamps)


def measure(args: argparse.Namespace) -> None:
    """Inside the namespace: alternate the sides, print one JSON line of results."""
    pids = dict(zip(SIDES, args.pids, strict=True))
    for side, url in SIDES.items():  # load both, and warm them up
        one_run(url, PROMPT.format(i=-1, side=side), 16)
    runs: dict[str, list[tuple[float, float, int]]] = {side: [] for side in SIDES}
    cpu = {side: 0.0 for side in SIDES}
    for i in range(args.runs):
        order = list(SIDES) if i % 2 == 0 else list(SIDES)[::-1]
        for side in order:
            before = cpu_seconds(pids[side])
            runs[side].append(one_run(SIDES[side], PROMPT.format(i=i, side=side),
                                      args.tokens))
            cpu[side] += cpu_seconds(pids[side]) - before
    print(json.dumps({side: {
        "ttft_ms": statistics.median(r[0] for r in runs[side]) * 1000,
        "decode": statistics.median(r[1] for r in runs[side]),
        "cpu_ms_per_token": cpu[side] * 1000 / sum(r[2] for r in runs[side]),
        "decodes": [round(r[1], 1) for r in runs[side]]} for side in SIDES}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pids", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args)
        return
    namespace = f"pasture-bench-{secrets.token_hex(3)}"
    root = Path(tempfile.mkdtemp(prefix="pcb-", dir="/tmp"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PASTURE_MODELS": str(root / "m"),
           "PASTURE_NUM_THREADS": "2", "RAY_USAGE_STATS_ENABLED": "0"}
    inside = ["ip", "netns", "exec", namespace]
    log = open(root / "log", "wb")
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run([*inside, "ip", "link", "set", "lo", "up"], check=True)
        subprocess.run([*inside, RAY, "start", "--head", "--node-ip-address", "127.0.0.1",
                        "--port", "6379", "--num-cpus", "1", "--include-dashboard=false",
                        "--object-store-memory", "78643200", "--disable-usage-stats",
                        "--temp-dir", str(root / "ray")], env=env, check=True,
                       stdout=log, stderr=subprocess.STDOUT)
        servers = {side: subprocess.Popen(
            [*inside, sys.executable, "-m", "pasture", "serve"], stdout=log,
            stderr=subprocess.STDOUT, env={
                **env, "PASTURE_HOST": url.removeprefix("http://"),
                **({"PASTURE_CLUSTER": "127.0.0.1:6379"} if side == "cluster" else {})})
            for side, url in SIDES.items()}
        gguf = fetch_smollm2() / SMOLLM2_FILE
        (root / "Modelfile").write_text(f"FROM {gguf}\nPARAMETER num_ctx 4096\n")
        for _ in range(120):  # the servers come up; then the model is created once
            created = subprocess.run(
                [*inside, sys.executable, "-m", "pasture", "create", "bench", "-f",
                 str(root / "Modelfile")], env={**env, "PASTURE_HOST": SIDES["plain"]},
                capture_output=True)
            if created.returncode == 0:
                break
            time.sleep(1)
        pids = [str(p.pid) for p in servers.values()]  # `ip netns exec` execs: the server
        measured = subprocess.run([*inside, sys.executable, __file__, "--measure", "--runs",
                                   str(args.runs), "--tokens", str(args.tokens),
                                   "--pids", *pids], env=env, capture_output=True,
                                  text=True)
        if measured.returncode != 0:
            raise SystemExit(measured.stderr[-3000:] + (root / "log").read_text()[-3000:])
        results = json.loads(measured.stdout.strip().splitlines()[-1])
    finally:
        for pid in subprocess.run(["ip", "netns", "pids", namespace], capture_output=True,
                                  text=True).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", namespace], check=False)
        log.close()
        shutil.rmtree(root, ignore_errors=True)
    cluster, plain = results["cluster"], results["plain"]
    print(f"load average: {os.getloadavg()}")
    for side, row in results.items():
        print(f"{side:8} TTFT {row['ttft_ms']:7.1f} ms  decode {row['decode']:6.1f} tok/s  "
              f"front end CPU {row['cpu_ms_per_token']:.3f} ms/token  runs {row['decodes']}")
    print(f"decode ratio (cluster / plain) {cluster['decode'] / plain['decode']:.3f}, "
          f"TTFT overhead {cluster['ttft_ms'] - plain['ttft_ms']:+.1f} ms")


if __name__ == "__main__":
    main()
