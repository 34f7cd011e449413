"""The JavaScript client (`clients/js`, npm package `pasture`) against the shared live server.

Its tests are written with `node:test` and live beside it; this module is how `make test`
(and so CI) runs them: it installs the package's dev dependencies (TypeScript, for the type
check) when the lock file changed, then runs `node --test` with the server's URL and model,
and the address of a real registry (Debian's docker-registry) for the pull and push tests.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.integration.conftest import MODEL, RunningServer
from tests.integration.js import JS, client_env, install_dev_dependencies, node
from tests.integration.registry import (  # noqa: F401 - the fixture is used by name
    Registry,
    registry_fixture,
)


def test_js_client_suite_passes_against_the_live_server(
    server: RunningServer, smollm2_gguf: Path, registry: Registry, reranker: str
) -> None:
    node_binary = node()
    install_dev_dependencies()
    env = client_env(
        PASTURE_TEST_URL=server.url,
        PASTURE_TEST_MODEL=MODEL,
        PASTURE_TEST_GGUF=str(smollm2_gguf),
        PASTURE_TEST_REGISTRY=registry.host,
        PASTURE_TEST_RERANKER=reranker,
    )
    test_files = sorted(str(path) for path in (JS / "test").glob("*.test.mjs"))
    assert test_files, "no JavaScript test files found"
    result = subprocess.run(
        # One file at a time: they share one server, whose single slot they would queue on.
        [node_binary, "--test", "--test-concurrency=1", "--test-reporter=spec", *test_files],
        cwd=JS, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, (
        f"node --test failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
    )
    # The spec reporter's summary: tests did run, and none failed.
    assert re.search(r"^ℹ pass [1-9]", result.stdout, re.MULTILINE), result.stdout
    assert re.search(r"^ℹ fail 0$", result.stdout, re.MULTILINE), result.stdout
