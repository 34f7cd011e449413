"""The `pasture` command against a live server, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import MODEL, REPO, RunningServer


@pytest.fixture
def pasture(server: RunningServer):
    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PASTURE_HOST": server.url.removeprefix("http://"),
               "PYTHONPATH": str(REPO / "src")}
        return subprocess.run([sys.executable, "-m", "pasture", *args], env=env, text=True,
                              input=stdin if stdin is not None else "", capture_output=True,
                              timeout=120)

    return run


# Runners shift their context, so an answer the model never ends would run on for good
# (SmolLM2 sometimes repeats one emoji); these tests are about the command, not sampling.
BOUNDED = "smollm2-bounded"


@pytest.fixture
def bounded(pasture, tmp_path: Path) -> Iterator[str]:
    """The test model with every answer capped at 64 tokens (removed afterwards: the
    server is shared)."""
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(f"FROM {MODEL}\nPARAMETER num_predict 64\n")
    created = pasture("create", BOUNDED, "-f", str(modelfile))
    assert created.returncode == 0, created.stderr
    yield BOUNDED
    pasture("rm", BOUNDED)


def test_run_with_a_prompt_streams_an_answer(pasture, bounded: str) -> None:
    result = pasture("run", bounded, "Why is the sky blue? Answer in one sentence.")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip()) > 10


def test_run_verbose_prints_ollama_style_statistics(pasture, bounded: str) -> None:
    result = pasture("run", "--verbose", bounded, "Say hi.")
    assert result.returncode == 0, result.stderr
    for label in ("total duration:", "load duration:", "prompt eval count:",
                  "prompt eval rate:", "eval count:", "eval rate:"):
        assert label in result.stderr


def test_piped_stdin_is_prepended_to_the_prompt(pasture, bounded: str) -> None:
    result = pasture("run", "--verbose", bounded, "Repeat the word above.", stdin="pineapple")
    plain = pasture("run", "--verbose", bounded, "Repeat the word above.")
    count = [line for line in result.stderr.splitlines() if "prompt eval count" in line]
    plain_count = [line for line in plain.stderr.splitlines() if "prompt eval count" in line]
    assert int(count[0].split()[-2]) > int(plain_count[0].split()[-2])


def test_create_list_show_cp_rm(pasture, smollm2_gguf: Path, tmp_path: Path) -> None:
    modelfile = tmp_path / "Modelfile"
    (tmp_path / "weights").mkdir()
    link = tmp_path / "weights" / "model.gguf"
    link.symlink_to(smollm2_gguf)
    modelfile.write_text('FROM ./weights/model.gguf\nPARAMETER temperature 0.3\n'
                         'PARAMETER stop "<|im_end|>"\nSYSTEM """You are terse."""\n')
    created = pasture("create", "terse", "-f", str(modelfile))
    assert created.returncode == 0, created.stderr
    assert "success" in created.stdout + created.stderr

    listed = pasture("list").stdout
    assert "NAME" in listed and "terse:latest" in listed and MODEL in listed

    shown = pasture("show", "terse", "--modelfile").stdout
    assert "SYSTEM" in shown and "You are terse." in shown and "temperature 0.3" in shown
    assert pasture("show", "terse", "--system").stdout.strip() == "You are terse."

    assert pasture("cp", "terse", "terse2").returncode == 0
    assert "terse2:latest" in pasture("list").stdout
    removed = pasture("rm", "terse", "terse2")
    assert removed.returncode == 0, removed.stderr
    assert "terse" not in pasture("list").stdout


def test_create_reports_modelfile_errors_with_the_line(pasture, tmp_path: Path) -> None:
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text("FROM smollm2:135m\nPARAMETER temperature hot\n")
    result = pasture("create", "bad", "-f", str(modelfile))
    assert result.returncode == 1
    assert "temperature" in result.stderr and "Traceback" not in result.stderr


def test_ps_and_stop(pasture, bounded: str) -> None:
    assert pasture("run", bounded, "Hi").returncode == 0
    ps = pasture("ps").stdout
    assert "PROCESSOR" in ps and bounded in ps and "100% CPU" in ps
    assert pasture("stop", bounded).returncode == 0
    assert bounded not in pasture("ps").stdout


def test_unknown_model_is_a_clean_error(pasture) -> None:
    result = pasture("show", "nosuch")
    assert result.returncode == 1
    assert "not found" in result.stderr and "Traceback" not in result.stderr


def test_server_not_running_says_how_to_start_it(server: RunningServer) -> None:
    env = {**os.environ, "PASTURE_HOST": "127.0.0.1:9", "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run([sys.executable, "-m", "pasture", "list"], env=env, text=True,
                            capture_output=True, timeout=60)
    assert result.returncode == 1
    assert "pasture serve" in result.stderr
