"""A node's RPC worker in a cluster (PASTURE_CLUSTER_RPC): its memory lent to a model
split from another node.

The node's agent runs `pasture worker` as a child, bound to the node's cluster address
(never a wildcard: ggml's RPC server trusts every message) on a port free when it
starts, with the tensor cache beside the node's models. The child exits when its stdin,
held by the agent, closes: when the agent's process ends, however it ends.
Run as `python -m pasture.cluster.lender HOST PORT CACHE`.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

from pasture.rpc.endpoints import listen_address
from pasture.rpc.workers import listening

log = logging.getLogger(__name__)


class Lender:
    """The `pasture worker` child of one node's agent.

    Its port is found free and then bound by the child, so another process may take it
    in between; the child then exits, and the next `ready()` starts it again on a fresh
    port (at most `RESTARTS` times: a worker that keeps dying is left dead, with a
    warning each time it is asked for)."""

    RESTARTS = 3

    def __init__(self, address: str, cache: Path) -> None:
        self.host = listen_address(address)  # refuses a wildcard
        self.cache = cache
        self.restarts = 0
        self.endpoint, self.process = self._start()

    def _start(self) -> tuple[str, subprocess.Popen[bytes]]:
        with socket.socket() as probe:  # a port free now; the worker binds it next
            probe.bind((self.host, 0))
            port = probe.getsockname()[1]
        process = subprocess.Popen(
            [sys.executable, "-m", "pasture.cluster.lender", self.host, str(port),
             str(self.cache)], stdin=subprocess.PIPE)
        return f"{self.host}:{port}", process

    async def ready(self) -> str | None:
        """The worker's host:port while it accepts connections, else None."""
        if self.process.poll() is not None:
            log.warning("RPC worker %s exited with status %s", self.endpoint,
                        self.process.returncode)
            if self.restarts < self.RESTARTS:
                self.restarts += 1
                self.endpoint, self.process = self._start()
                log.info("RPC worker started again at %s", self.endpoint)
            return None
        return self.endpoint if await listening(self.endpoint, timeout=0.5) is None else None


def main() -> None:
    from pasture.rpc import worker

    host, port, cache = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])

    def exit_with_parent() -> None:
        sys.stdin.buffer.read()  # EOF: the agent is gone
        os._exit(0)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    worker.run(host, port, None, cache)


if __name__ == "__main__":
    main()
