"""Modelfile texts whose reading both parsers must agree on: this one and the JS client's.

`modelfile_cases.json` holds each text with the commands it parses to and the create plan
(or the exact error) the client makes of it, and the options PARAMETER may set (type and
bounds); `clients/js/test/modelfile.test.mjs` checks the same file against the JavaScript
parser, so neither can drift from the other. Paths in errors are written `{base}`, the
Modelfile's folder; a case's `files` are created there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pasture import options
from pasture.api.modelfile import parse
from pasture.client.modelfile import CreatePlan, plan_create
from pasture.errors import ModelfileError

SHARED = json.loads((Path(__file__).parent / "modelfile_cases.json").read_text())
CASES = SHARED["cases"]


def _plan(plan: CreatePlan, base: Path) -> dict[str, Any]:
    """The plan as the JSON the cases hold: paths relative to `base`, empty parts left out."""
    def files(pairs: list[tuple[str, Path]]) -> list[list[str]]:
        return [[name, path.relative_to(base).as_posix()] for name, path in pairs]

    fields = {
        "from": plan.from_, "files": files(plan.files), "adapters": files(plan.adapters),
        "draft_files": files(plan.draft_files), "template": plan.template,
        "system": plan.system, "license": plan.license, "parameters": plan.parameters,
        "messages": plan.messages, "requires": plan.requires, "parser": plan.parser,
    }
    return {key: value for key, value in fields.items() if value not in (None, [])}


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_shared_case(case: dict[str, Any], tmp_path: Path) -> None:
    for name in case.get("files", []):
        (tmp_path / name).write_bytes(b"")
    if "commands" in case:
        commands = parse(case["text"]).commands
        assert [[c.name, c.key, c.args, c.line] for c in commands] == case["commands"]
    if "error" in case:
        with pytest.raises(ModelfileError) as caught:
            plan_create(case["text"], tmp_path)
        assert caught.value.message.replace(str(tmp_path), "{base}") == case["error"]
    else:
        assert _plan(plan_create(case["text"], tmp_path), tmp_path) == case["plan"]


def test_the_cases_cover_both_outcomes() -> None:
    assert sum("plan" in case for case in CASES) >= 10
    assert sum("error" in case for case in CASES) >= 10
    assert all(("plan" in case) != ("error" in case) for case in CASES)


def test_the_options_are_the_servers() -> None:
    expected = {}
    for name, spec in options.ALL.items():
        bounds = {"low": spec.low, "high": spec.high}
        expected[name] = {"type": spec.type.__name__,
                          **{key: value for key, value in bounds.items() if value is not None},
                          **({"choices": list(spec.choices)} if spec.choices else {})}
    assert SHARED["options"] == expected
    assert SHARED["retired"] == sorted(options.RETIRED)
