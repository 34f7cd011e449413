"""A client that leaves a pull, streamed or not, stops the download at once: the blob
stays partial (to be resumed) and no manifest is written."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.fake_registry import FakeRegistry, manifest_for, sha256
from tests.fake_runner import FakeEngine
from tests.routes.conftest import Server, run_app, settings_for
from tests.routes.test_disconnect_and_queue import leave, until

WEIGHTS = os.urandom(4 << 20)
CONFIG = b'{"model_format":"gguf","architecture":"amd64","os":"linux"}'


def _partial_bytes(models: Path) -> int:
    return sum(p.stat().st_size for p in (models / "blobs").glob("*-partial*"))


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_leaving_a_pull_stops_the_download(tmp_path: Path, stream: bool) -> None:
    models = tmp_path / "models"
    with FakeRegistry() as registry:
        registry.serve_model("library/slow", "latest", manifest_for(CONFIG, WEIGHTS),
                             {sha256(CONFIG): CONFIG, sha256(WEIGHTS): WEIGHTS},
                             chunk_delay=0.05)  # 64 KiB a 50 ms: 3 s for the weights

        async def scenario(server: Server) -> None:
            async def downloading(_: list[bytes]) -> None:
                await until(lambda: _partial_bytes(models) > 256 << 10, timeout=30)

            request = {"model": f"{registry.host}/library/slow", "insecure": True,
                       "stream": stream}
            await leave(server, "/api/pull", request, downloading)
            # the server hangs up on the registry mid-blob: the download stopped
            await until(lambda: registry.cut_off == 1, timeout=30)
            assert _partial_bytes(models) < len(WEIGHTS)
            assert not (models / "manifests").exists()

        asyncio.run(run_app(settings_for(models), FakeEngine(), scenario))
