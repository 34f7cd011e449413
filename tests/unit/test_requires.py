"""`REQUIRES`: semver parsing and the comparison with Pasture's own version."""

from __future__ import annotations

from pathlib import Path

import pytest

from pasture.api.requires import check_requires, parse_version
from pasture.client import plan_create
from pasture.errors import BadRequestError, ModelfileError


@pytest.mark.parametrize(("text", "parsed"), [
    ("0.5.0", (0, 5, 0, "")), ("v1.2.3", (1, 2, 3, "")), ("1.2", (1, 2, 0, "")),
    ("2", (2, 0, 0, "")), ("0.6.0-rc1+build.5", (0, 6, 0, "rc1")),
])
def test_semver_forms_go_accepts_are_parsed(text: str, parsed: tuple) -> None:
    assert parse_version(text) == parsed


@pytest.mark.parametrize("text", ["", "soon", "1.2.3.4", "01.2.3", "1.x", "1.2.3-"])
def test_invalid_versions_are_a_400(text: str) -> None:
    with pytest.raises(BadRequestError, match="invalid version"):
        parse_version(text)


@pytest.mark.parametrize(("requires", "current", "refused"), [
    ("0.1.0", "0.1.0", False), ("0.0.9", "0.1.0", False), ("0.1.1", "0.1.0", True),
    ("1.0.0-rc1", "1.0.0", False), ("1.0.0", "1.0.0-rc1", True), ("0.10.0", "0.9.0", True),
    (None, "0.1.0", False),
])
def test_a_newer_requirement_is_refused(requires: str | None, current: str,
                                        refused: bool) -> None:
    if refused:
        with pytest.raises(BadRequestError, match=f"requires Ollama {requires} or later"):
            check_requires(requires, current)
    else:
        check_requires(requires, current)


def test_modelfile_plan_sends_requires_and_draft_files(tmp_path: Path) -> None:
    draft = tmp_path / "draft.gguf"
    draft.write_bytes(b"GGUF")
    plan = plan_create("FROM base\nREQUIRES 0.1.0\nDRAFT ./draft.gguf\n", tmp_path)
    arguments = plan.arguments({draft: "sha256:" + "a" * 64})
    assert arguments["requires"] == "0.1.0"
    assert arguments["draft_files"] == {"draft.gguf": "sha256:" + "a" * 64}
    assert plan.paths == [draft]
    with pytest.raises(ModelfileError, match="line 2"):
        plan_create("FROM base\nREQUIRES later\n", tmp_path)
