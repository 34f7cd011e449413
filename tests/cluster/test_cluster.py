"""Pasture on a real Ray cluster on one machine: a head and two worker nodes (separate
`ray start` processes offering different memory), and `pasture serve` with
PASTURE_CLUSTER, as a user runs them.

Ray talks over the machine's own address and probes outside ones whatever its flags say,
so every node and the server run in a network namespace of their own holding only `lo`:
nothing of the cluster can reach, or be reached from, any other address (asserted with
`ss`). The test talks to the server from inside that namespace (`inside.py`). The head
and the big node share the front end's models directory, as a shared filesystem would;
the small node has its own, and the front end's is hidden from it (an empty tmpfs
mounted over it in a mount namespace of its own), as on another machine: it fetches
the blobs it lacks from the front end.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).parent / "ray")
MiB = 1 << 20
# What each node offers Ray (`--memory`), against the estimates at 4096 tokens of context:
# Gemma 3 270M 830 MiB, SmolLM2 287 MiB; Gemma at 16384 tokens (1058 MiB) fits on no node
# but split over all three (each node lends its memory: PASTURE_CLUSTER_RPC), and at
# 65536 tokens (1970 MiB) not even split.
MEMORY = {"head": 128 * MiB, "big": 900 * MiB, "small": 400 * MiB}
GEMMA, SMOL = "gemma3:270m", "smollm2:135m"
URL = "http://127.0.0.1:11434"  # the namespace's own loopback: no other test can use it

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="network namespaces need root and iproute2")


@dataclass
class RayCluster:
    namespace: str
    nodes: dict[str, int]  # node name -> process group of its Ray processes
    log_path: Path
    root: Path  # the front end's models, the small node's models, the logs

    def start(self, name: str) -> None:
        """Start (or start again, after it was killed) the node `name`: as a node that
        joins, it is used from the next placement."""
        env = _environment(self.root)
        flags = ["--head", "--port", "6379", "--include-dashboard=false",
                 "--temp-dir", str(self.root / "ray")] if name == "head" \
            else ["--address", "127.0.0.1:6379"]
        apart = name == "small"  # its own models directory, the front end's hidden
        self.nodes[name] = _start_node(
            self.namespace, {**env, "PASTURE_MODELS": str(self.root / "small-models")}
            if apart else env, self.log_path, *flags, "--memory", str(MEMORY[name]),
            prefix=tuple(_apart(self.root / "models")) if apart else ())

    def small_blobs(self) -> Path:
        """The small node's own blobs (it cannot see the front end's)."""
        return self.root / "small-models" / "blobs"

    def run(self, *command: str, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.namespace, *command], env=env,
                              capture_output=True, text=True, timeout=timeout)

    def call(self, method: str, path: str, body: Any = None, stream: bool = False
             ) -> tuple[int, Any]:
        """An HTTP request to the server, from inside the namespace."""
        call = {"method": method, "url": URL + path, "body": body, "stream": stream}
        done = self.run(sys.executable, str(REPO / "tests/cluster/inside.py"), json.dumps(call))
        assert done.returncode == 0, done.stderr
        reply = json.loads(done.stdout)
        return reply["status"], reply["body"]

    def ps(self) -> dict[str, str]:
        """Each loaded model's node (one replica each)."""
        return dict(self.placements())

    def placements(self) -> list[tuple[str, str]]:
        """Each loaded runner's model and node, replicas included."""
        status, body = self.call("GET", "/api/ps")
        assert status == 200, body
        return sorted((m["name"], m.get("node")) for m in body["models"])

    def node_names(self) -> dict[str, str]:
        """Node name (head, big, small) -> Pasture's name for it, told apart by memory."""
        status, body = self.call("GET", "/api/nodes")
        assert status == 200, body
        by_memory = {n["memory_total"]: n["name"] for n in body["nodes"]}
        return {name: by_memory[memory] for name, memory in MEMORY.items()
                if memory in by_memory}

    def stream(self, path: str, body: Any) -> subprocess.Popen[str]:
        """A streaming request whose lines can be read as they come: first the status."""
        call = {"method": "POST", "url": URL + path, "body": body, "follow": True}
        return subprocess.Popen(["ip", "netns", "exec", self.namespace, sys.executable,
                                 str(REPO / "tests/cluster/inside.py"), json.dumps(call)],
                                stdout=subprocess.PIPE, text=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _environment(root: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src"),
            "PASTURE_MODELS": str(root / "models"), "PASTURE_ENGINES": str(root / "engines"),
            "RAY_USAGE_STATS_ENABLED": "0"}


def _apart(hidden: Path) -> list[str]:
    """A command prefix that runs a node in a mount namespace of its own where `hidden`
    (the front end's models directory) is an empty tmpfs: a node on another machine."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs tmpfs "$0" && exec "$@"', str(hidden)]


def _start_node(namespace: str, env: dict[str, str], log: Path, *flags: str,
                prefix: tuple[str, ...] = ()) -> int:
    """Start one node with `ray start`, in a process group of its own (killing the group
    is losing the node), and return that group once the node is up; tried twice, as Ray
    gives a node 30 s to register, which a loaded 2-core machine can miss."""
    for _attempt in range(2):
        with open(log, "ab") as out:
            process = subprocess.Popen(
                ["ip", "netns", "exec", namespace, *prefix, RAY, "start", "--node-ip-address",
                 "127.0.0.1", "--num-cpus", "1", "--object-store-memory", "78643200",
                 "--disable-usage-stats", *flags],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        if process.wait(180) == 0:
            return process.pid
        _kill_group(process.pid)
    raise AssertionError("a Ray node did not start:\n" + log.read_text())


def _kill_group(group: int) -> None:
    """SIGKILL a node: its process group and every process descending from one in it
    (Ray's workers, and so Pasture's agent and its runners, get groups of their own)."""
    parents: dict[int, int] = {}
    groups: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)], groups[int(entry.name)] = int(fields[1]), int(fields[2])
    doomed = {pid for pid, pgid in groups.items() if pgid == group}
    while grown := {pid for pid, ppid in parents.items() if ppid in doomed} - doomed:
        doomed |= grown
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def cluster(smollm2_gguf: Path, gemma3_gguf: Path) -> Iterator[RayCluster]:
    namespace = f"pasture-{os.getpid()}-{secrets.token_hex(2)}"
    # Short: Ray's Unix sockets live under the temp dir (108 bytes at most).
    root = Path(tempfile.mkdtemp(prefix="ptc-", dir="/tmp"))
    env = _environment(root)
    log = root / "cluster.log"
    running = RayCluster(namespace, {}, log, root)
    server = None
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up"],
                       check=True)
        (root / "models").mkdir()
        for name in MEMORY:  # one at a time: on a busy machine Ray's 30 s start-up
            running.start(name)  # limit bites
        # One slot per runner: the replica test needs requests to queue, and slots chosen
        # for a node's free memory (up to 4, unit-tested) would depend on this machine's.
        with open(log, "ab") as out:
            server = subprocess.Popen(
                ["ip", "netns", "exec", namespace, sys.executable, "-m", "pasture", "serve"],
                env={**env, "PASTURE_CLUSTER": "127.0.0.1:6379",
                     "PASTURE_HOST": "127.0.0.1:11434", "PASTURE_MAX_REPLICAS": "2",
                     "PASTURE_REPLICA_AFTER": "0.5", "PASTURE_CLUSTER_RPC": "1",
                     "PASTURE_NUM_PARALLEL": "1"},
                stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while running.call("GET", "/")[0] != 200:
            assert server.poll() is None and time.monotonic() < deadline, running.log()
            time.sleep(0.5)
        for gguf, name in ((smollm2_gguf, SMOL), (gemma3_gguf, GEMMA)):
            created = running.run(sys.executable, "-m", "pasture", "create", name, "-f",
                                  str(gguf.parent / "Modelfile"),
                                  env={**env, "PASTURE_HOST": URL})
            assert created.returncode == 0, created.stdout + created.stderr
        yield running
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        for group in running.nodes.values():
            _kill_group(group)
        pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True,
                              text=True).stdout.split()
        for pid in pids:  # anything else still in our namespace was started by this test
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", namespace], check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_nodes_lists_every_ray_node_with_what_it_offers(cluster: RayCluster) -> None:
    status, body = cluster.call("GET", "/api/nodes")
    assert status == 200, body
    assert sorted(n["memory_total"] for n in body["nodes"]) == sorted(MEMORY.values())
    for node in body["nodes"]:
        assert node["address"] == "127.0.0.1"
        assert 0 < node["memory_available"] <= node["memory_total"]
        assert node["models"] == [] and node["waiting"] == 0
    shown = cluster.run(sys.executable, "-m", "pasture", "nodes",
                        env={**os.environ, "PYTHONPATH": str(REPO / "src"),
                             "PASTURE_HOST": URL})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0].split()[:3] == ["NODE", "ADDRESS", "MEMORY"]
    assert len(shown.stdout.splitlines()) == 1 + len(MEMORY)


def test_the_cluster_uses_loopback_only(cluster: RayCluster) -> None:
    links = cluster.run("ip", "-o", "link").stdout.splitlines()
    assert [line.split(":")[1].strip() for line in links] == ["lo"]
    sockets = cluster.run("ss", "-Htanu").stdout.splitlines()
    assert sockets, "the cluster has sockets"
    for line in sockets:
        local, peer = line.split()[4:6]
        for address in (local, peer):
            host = address.rsplit(":", 1)[0].strip("[]").split("%")[0]
            assert host == "*" or _loopback_or_any(host), line


def _loopback_or_any(host: str) -> bool:
    ip = ipaddress.ip_address(host)
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return ip.is_loopback or ip.is_unspecified


def test_a_model_that_fits_on_no_node_is_refused_with_the_nodes_it_tried(
        cluster: RayCluster) -> None:
    status, body = cluster.call("POST", "/api/generate", {
        "model": GEMMA, "prompt": "hi", "stream": False, "options": {"num_ctx": 65536}})
    assert status == 500, body
    assert "model requires more memory" in body["error"]
    names = cluster.node_names()
    assert all(name in body["error"] for name in names.values())
    assert cluster.ps() == {}


def test_a_model_no_node_holds_is_split_over_the_nodes_rpc_workers(
        cluster: RayCluster) -> None:
    _wait_for_lenders(cluster)
    names = cluster.node_names()
    # Rounding differs between a runner's CPU backend and a worker's: a greedy answer
    # whose next token is a near tie can differ split (measured on one machine too, with
    # "Name three colours."), so the prompt is one with a confident continuation.
    request = {"model": GEMMA, "prompt": "The capital of France is", "stream": False,
               "options": {"num_predict": 12, "temperature": 0, "num_ctx": 16384}}
    status, split = cluster.call("POST", "/api/generate", request)
    assert status == 200 and split["done"], split
    status, body = cluster.call("GET", "/api/ps")
    [shown] = body["models"]
    assert shown["node"] == names["big"], shown  # the most room: the layers left stay
    assert re.fullmatch(rf"{names['head']} \d+% / {names['small']} \d+% / "
                        rf"{names['big']} \d+%", shown["split"]), shown
    listed = cluster.run(sys.executable, "-m", "pasture", "ps",
                         env={**os.environ, "PYTHONPATH": str(REPO / "src"),
                              "PASTURE_HOST": URL})
    assert shown["split"] in listed.stdout, listed.stdout
    assert cluster.call("POST", "/api/generate", {"model": GEMMA, "keep_alive": 0})[0] == 200
    status, whole = cluster.call("POST", "/api/generate", {
        **request, "options": {**request["options"], "num_ctx": 4096}, "keep_alive": 0})
    assert status == 200, whole
    assert (split["response"], split["eval_count"]) == \
        (whole["response"], whole["eval_count"]), (split, whole)  # the same greedy tokens
    assert cluster.ps() == {}


def _wait_for_lenders(cluster: RayCluster) -> None:
    deadline = time.monotonic() + 120  # each agent's worker builds ggml's RPC backend once
    while not all(n.get("rpc") for n in cluster.call("GET", "/api/nodes")[1]["nodes"]):
        assert time.monotonic() < deadline, cluster.call("GET", "/api/nodes")
        time.sleep(1)


def _blob_name(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return f"sha256-{digest.hexdigest()}"


RESUMED_AT = 8 * MiB


def test_models_are_placed_on_the_nodes_with_room_for_them(
        cluster: RayCluster, smollm2_gguf: Path) -> None:
    names = cluster.node_names()
    request = {"prompt": "Say hi.", "stream": False, "keep_alive": "10m",
               "options": {"num_predict": 4}}
    status, body = cluster.call("POST", "/api/generate", {"model": GEMMA, **request})
    assert status == 200 and body["done"], body
    assert cluster.ps() == {GEMMA: names["big"]}  # too large for the other nodes
    # SmolLM2 goes to the small node, which lacks its blob: an earlier fetch of it
    # was cut off after its first 8 MiB (the next test checks it resumed).
    cluster.small_blobs().mkdir(parents=True)
    with open(smollm2_gguf, "rb") as f:
        (cluster.small_blobs() / f".tmp-{_blob_name(smollm2_gguf)}-fetch").write_bytes(
            f.read(RESUMED_AT))
    status, body = cluster.call("POST", "/api/generate", {"model": SMOL, **request})
    assert status == 200 and body["done"], body
    assert cluster.ps() == {GEMMA: names["big"], SMOL: names["small"]}
    status, body = cluster.call("GET", "/api/nodes")
    models = {n["name"]: [m["name"] for m in n["models"]] for n in body["nodes"]}
    assert models == {names["head"]: [], names["big"]: [GEMMA], names["small"]: [SMOL]}
    shown = cluster.run(sys.executable, "-m", "pasture", "ps",
                        env={**os.environ, "PYTHONPATH": str(REPO / "src"),
                             "PASTURE_HOST": URL})
    assert shown.stdout.splitlines()[0].split()[-1] == "NODE", shown.stdout
    assert any(line.startswith(SMOL) and line.rstrip().endswith(names["small"])
               for line in shown.stdout.splitlines()), shown.stdout


def test_a_node_without_the_blob_fetched_it_from_the_front_end(
        cluster: RayCluster, smollm2_gguf: Path) -> None:
    name = _blob_name(smollm2_gguf)
    fetched = cluster.small_blobs() / name
    assert fetched.read_bytes() == smollm2_gguf.read_bytes()
    assert [p.name for p in cluster.small_blobs().iterdir()] == [name]  # no temp file left
    node = cluster.node_names()["small"]
    digest = name.replace("-", ":", 1)
    size = smollm2_gguf.stat().st_size >> 20
    assert f"node {node} fetched blob {digest} from this server ({size} MiB, resumed at " \
        f"{RESUMED_AT} bytes)" in cluster.log(), cluster.log()[-6000:]


def test_the_blob_endpoint_answers_only_the_nodes(cluster: RayCluster,
                                                  smollm2_gguf: Path) -> None:
    digest = _blob_name(smollm2_gguf).replace("-", ":", 1)
    status, body = cluster.call("GET", f"/api/cluster/blobs/{digest}")
    assert (status, body) == (401, {"error": "unauthorized: this endpoint is for the "
                                             "cluster's nodes"})


def test_a_tampered_blob_fetched_by_a_node_is_refused_and_not_kept(
        cluster: RayCluster, smollm2_gguf: Path) -> None:
    # A model only the front end has, whose blob is altered after its manifest was written.
    source = cluster.root / "tampered"
    source.mkdir()
    (source / "model.gguf").write_bytes(smollm2_gguf.read_bytes() + b"\0")
    (source / "Modelfile").write_text("FROM ./model.gguf\n")
    created = cluster.run(sys.executable, "-m", "pasture", "create", "tampered", "-f",
                          str(source / "Modelfile"),
                          env={**_environment(cluster.root), "PASTURE_HOST": URL})
    assert created.returncode == 0, created.stdout + created.stderr
    name = _blob_name(source / "model.gguf")
    with open(cluster.root / "models" / "blobs" / name, "r+b") as blob:
        blob.seek(-1, os.SEEK_END)
        blob.write(b"\1")
    # Only the small node has room for it once SmolLM2 is unloaded (Gemma fills the big one).
    assert cluster.call("POST", "/api/generate", {"model": SMOL, "keep_alive": 0})[0] == 200
    status, body = cluster.call("POST", "/api/generate", {
        "model": "tampered", "prompt": "hi", "stream": False})
    assert status == 500, body
    assert f"blob {name.replace('-', ':', 1)} fetched from the front end does not match " \
        "its digest" in body["error"], body
    assert "refused and deleted" in body["error"]
    assert sorted(p.name for p in cluster.small_blobs().iterdir()) == \
        [_blob_name(smollm2_gguf)]  # neither the blob nor a temp file kept
    status, body = cluster.call("POST", "/api/generate", {
        "model": SMOL, "prompt": "Say hi.", "stream": False, "keep_alive": "10m",
        "options": {"num_predict": 4}})
    assert status == 200 and cluster.ps()[SMOL] == cluster.node_names()["small"], body


LONG_SYSTEM = " ".join(f"Rule {n}: answer briefly and kindly, in plain words." for n in
                       range(42))  # ~500 tokens, past the 2048 characters hashed


def test_a_replica_is_added_on_another_node_under_queue_pressure(
        cluster: RayCluster) -> None:
    names = cluster.node_names()
    assert cluster.call("POST", "/api/generate", {"model": GEMMA, "keep_alive": 0})[0] == 200
    assert cluster.placements() == [(SMOL, names["small"])]
    request = {"model": SMOL, "stream": False, "keep_alive": "10m",
               "options": {"num_predict": 120, "temperature": 0}}
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda n: cluster.call("POST", "/api/generate", {
            **request, "prompt": f"Count from {n} to 100."}), range(4)))
    assert all(status == 200 and body["done"] for status, body in replies), replies
    assert cluster.placements() == sorted([(SMOL, names["small"]), (SMOL, names["big"])])
    moved = re.findall(rf"replica of {re.escape(SMOL)} added on node {names['big']}\w*: "
                       r"(\d+) waiting requests moved to it", cluster.log())
    assert moved and int(moved[0]) >= 1, cluster.log()[-6000:]  # served on both nodes


def test_a_prompt_prefix_goes_back_to_the_replica_whose_cache_holds_it(
        cluster: RayCluster) -> None:
    assert len(cluster.placements()) == 2  # the replicas of the test above
    cached, prompts = [], []
    for question in ("What is 2+2?", "Name a colour.", "Say yes."):
        status, body = cluster.call("POST", "/v1/chat/completions", {
            "model": SMOL, "max_tokens": 4, "messages": [
                {"role": "system", "content": LONG_SYSTEM},
                {"role": "user", "content": question}]})
        assert status == 200, body
        cached.append(body["usage"]["prompt_tokens_details"]["cached_tokens"])
        prompts.append(body["usage"]["prompt_tokens"])
    # The first is new to both replicas; the others reuse its prefix on its replica (the
    # least recently used replica would be the other one, whose cache lacks it).
    assert cached[0] < prompts[0] // 2, (cached, prompts)
    assert all(c >= prompts[0] * 3 // 4 for c in cached[1:]), (cached, prompts)
    # Back to one model per node for the tests below: Gemma on the big one, SmolLM2 small.
    assert cluster.call("POST", "/api/generate", {"model": SMOL, "keep_alive": 0})[0] == 200
    for model in (GEMMA, SMOL):
        assert cluster.call("POST", "/api/generate",
                            {"model": model, "keep_alive": "10m"})[0] == 200
    names = cluster.node_names()
    assert cluster.placements() == sorted([(GEMMA, names["big"]), (SMOL, names["small"])])


def test_a_node_lost_before_the_first_token_is_replaced_without_an_error(
        cluster: RayCluster) -> None:
    names = cluster.node_names()
    assert cluster.ps().get(SMOL) == names["small"]
    _kill_group(cluster.nodes["small"])  # the node, its agent and its runner
    status, lines = cluster.call("POST", "/api/generate", {
        "model": SMOL, "prompt": "Say hi.", "stream": True, "options": {"num_predict": 4}},
        stream=True)
    assert status == 200, lines
    assert not any("error" in line for line in lines), lines
    assert lines[-1]["done"] is True
    assert cluster.ps()[SMOL] == names["big"], cluster.log()[-6000:]  # the only other
    # node with room. Pasture saw the runner go: through the request (before its first
    # token) or through Ray (the node's agent lost), whichever came first.
    seen = re.findall(r"runner for \S+ (lost before any output|on node \w+ lost)",
                      cluster.log())
    assert seen, cluster.log()[-6000:]


def test_a_node_lost_mid_stream_ends_the_stream_with_an_error_line(
        cluster: RayCluster) -> None:
    names = cluster.node_names()
    assert cluster.ps()[SMOL] == names["big"]  # the test above moved it there
    cluster.start("small")  # the lost node comes back: used from the next placement
    reply = cluster.stream("/api/generate", {
        "model": SMOL, "prompt": "Count from 1 to 500.", "options": {"num_predict": 400}})
    assert reply.stdout is not None
    assert json.loads(reply.stdout.readline()) == {"status": 200}
    first = json.loads(reply.stdout.readline())
    assert first["response"] and not first["done"], first
    _kill_group(cluster.nodes["big"])  # its raylet, the agent and the runner
    rest = [json.loads(line) for line in reply.stdout if line.strip()]
    assert reply.wait(60) == 0
    assert rest and "error" in rest[-1], rest[-3:]
    assert not any(line.get("done") for line in rest), rest[-3:]
    assert cluster.call("GET", "/")[0] == 200  # the server stays up
    status, body = cluster.call("POST", "/api/generate", {
        "model": SMOL, "prompt": "Say hi.", "stream": False, "keep_alive": "10m",
        "options": {"num_predict": 4}})
    assert status == 200 and body["done"], body
    assert cluster.ps() == {SMOL: cluster.node_names()["small"]}  # placed again


def test_embeddings_are_served_again_after_their_node_is_lost(cluster: RayCluster) -> None:
    cluster.start("big")
    names = cluster.node_names()
    assert cluster.ps() == {SMOL: names["small"]}
    before = len(cluster.log())
    _kill_group(cluster.nodes["small"])
    status, body = cluster.call("POST", "/api/embed", {"model": SMOL, "input": ["a", "b c"]})
    assert status == 200, body
    assert len(body["embeddings"]) == 2 and len(body["embeddings"][0]) > 8
    assert cluster.ps() == {SMOL: names["big"]}
    # Seen through the request (then retried) or through Ray, whichever came first.
    seen = re.findall(r"runner for \S+ (lost during embeddings|on node \w+ lost)",
                      cluster.log()[before:])
    assert seen, cluster.log()[-6000:]


def test_a_lending_node_lost_mid_stream_ends_the_split_answer_with_an_error_line(
        cluster: RayCluster) -> None:
    cluster.start("small")  # lost in the test above: back, and lending again
    _wait_for_lenders(cluster)
    assert cluster.call("POST", "/api/generate", {"model": SMOL, "keep_alive": 0})[0] == 200
    names = cluster.node_names()
    reply = cluster.stream("/api/generate", {
        "model": GEMMA, "prompt": "Count from 1 to 500.",
        "options": {"num_predict": 400, "num_ctx": 16384}})  # no node holds it: split
    assert reply.stdout is not None
    assert json.loads(reply.stdout.readline()) == {"status": 200}
    first = json.loads(reply.stdout.readline())
    assert first["response"] and not first["done"], first
    [shown] = cluster.call("GET", "/api/ps")[1]["models"]
    assert shown["node"] == names["big"] and names["small"] in shown["split"], shown
    worker = {n["name"]: n["rpc"] for n in cluster.call("GET", "/api/nodes")[1]["nodes"]}
    _kill_group(cluster.nodes["small"])  # a lender: its raylet, its agent and its worker
    rest = [json.loads(line) for line in reply.stdout if line.strip()]
    assert reply.wait(60) == 0
    assert rest and "RPC workers" in rest[-1].get("error", ""), rest[-3:]
    assert worker[names["small"]] in rest[-1]["error"], (worker, rest[-1])
    assert not any(line.get("done") for line in rest), rest[-3:]
    assert cluster.call("GET", "/")[0] == 200  # the server stays up, and serves
    status, body = cluster.call("POST", "/api/generate", {
        "model": SMOL, "prompt": "Say hi.", "stream": False, "options": {"num_predict": 4}})
    assert status == 200 and body["done"], body
