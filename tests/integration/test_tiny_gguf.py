"""The generated test models are real models: llama.cpp loads them and generates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ggufs import CHATML_TEMPLATE, write_tiny_llama

# In a child process: deleting an xllamacpp Server can hang, so the child just exits.
_LOAD = """
import json, os, sys, xllamacpp
params = xllamacpp.CommonParams()
params.model.path = sys.argv[1]
params.n_ctx = 128
params.n_predict = 4
params.cpuparams.n_threads = 1
params.cpuparams_batch.n_threads = 1
params.fit_params = False
server = xllamacpp.Server(params)
result = server.handle_chat_completions(
    {"messages": [{"role": "user", "content": "hello world"}], "max_tokens": 4})
print(json.dumps(result), flush=True)
os._exit(0)
"""


@pytest.mark.parametrize("tokenizer", ["llama", "gpt2"])
def test_llama_cpp_loads_and_runs_tiny_llama(tokenizer: str, tmp_path: Path) -> None:
    path = write_tiny_llama(tmp_path / "tiny.gguf", chat_template=CHATML_TEMPLATE,
                            tokenizer=tokenizer)
    done = subprocess.run([sys.executable, "-c", _LOAD, str(path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["usage"]["completion_tokens"] > 0
