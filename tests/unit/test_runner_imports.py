"""The runner child imports nothing but the standard library before the engine.

On the H100 machine, importing numpy before the CUDA build of xllamacpp crashed the
process with SIGSEGV and no message (bench/RESULTS.md, "A CUDA build on an NVIDIA H100").
The runner loads whichever engine build the scheduler chose, so nothing it imports first
may bring in numpy or any other compiled third-party library.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

PROBE = """
import json, sys
before = {name.split('.')[0] for name in sys.modules}  # the interpreter's own start-up
import pasture.runner.main
after = {name.split('.')[0] for name in sys.modules}
print(json.dumps(sorted(after - before)))
"""


def test_runner_imports_only_the_standard_library_before_the_engine() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(SRC)}, check=True)
    imported = set(json.loads(done.stdout))
    third_party = imported - set(sys.stdlib_module_names) - {"pasture"}
    assert third_party == set()
    assert "pasture" in imported  # the probe did import the runner
