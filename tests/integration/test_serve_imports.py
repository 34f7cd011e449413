"""`pasture serve` starts without the network client (issue 23: the server answers soon
after it starts). Guarded by counts, not time: the modules a real server process had
imported when it stopped, after answering `GET /`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.integration.conftest import start_server, stop_server
from tests.unit.test_cli_imports import WRAPPER


def test_serve_starts_without_the_network_client(tmp_path: Path) -> None:
    # httpx (which imports its own command line: click's and rich's modules) cost
    # `pasture serve` 0.15-0.2 s of its start; the first pull or push loads it.
    out = tmp_path / "modules.json"
    server = start_server(tmp_path / "models", tmp_path / "server.log",
                          command=[sys.executable, "-c", WRAPPER, str(out), "serve"])
    stop_server(server)
    modules = set(json.loads(out.read_text()))
    assert "pasture.server.app" in modules  # the server did run in this process
    assert {"httpx", "rich", "pasture.store.registry.client"} & modules == set()
