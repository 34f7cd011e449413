"""The committed build of the chat page is what its sources build to.

`src/pasture/server/static/ui` is committed so that no one needs Node to serve the page;
this rebuilds it from `clients/ui` (npm's locked marked, DOMPurify and esbuild, and the
committed JS client) and compares, so a source change without a rebuild fails here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.integration.conftest import REPO
from tests.integration.js import install_dev_dependencies, node

UI = REPO / "clients" / "ui"
BUILT = REPO / "src" / "pasture" / "server" / "static" / "ui"


def test_the_committed_page_matches_a_fresh_build(tmp_path: Path) -> None:
    install_dev_dependencies(UI)
    out = tmp_path / "ui"
    done = subprocess.run([node(), "build.mjs", str(out)], cwd=UI, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    fresh = {path.name: path.read_bytes() for path in out.iterdir()}
    committed = {path.name: path.read_bytes() for path in BUILT.iterdir()}
    assert sorted(fresh) == sorted(committed), "rebuild: cd clients/ui && npm run build"
    for name, body in fresh.items():
        assert committed[name] == body, f"{name} is stale: cd clients/ui && npm run build"
