"""Seed corpora for the harnesses: valid inputs and the corruption cases of the unit tests.

`python -m fuzz.seeds DIR` writes one folder per target under DIR (gguf, modelfile,
gotemplate, names); the harnesses mutate from there.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np

from pasture.gguf import ValueType
from tests.ggufs import CHATML_TEMPLATE, write_gguf, write_tiny_llama
from tests.unit.test_gguf import f32_file, gstr, header, kv_str, kv_u32, tensor_info, u32, u64

TEMPLATES = Path(__file__).resolve().parents[1] / "tests" / "unit" / "templates"


def gguf_seeds() -> list[bytes]:
    """Small valid files and each corruption case of tests/unit/test_gguf.py."""
    with tempfile.TemporaryDirectory() as tmp:
        valid = [
            write_gguf(Path(tmp) / "a.gguf",
                       {"general.name": "m", "xs": list(range(80)), "s": ["a", "b"],
                        "nested": [[1.5], [2.5, 3.5]], "flag": True},
                       [("w", np.ones((4, 4), dtype=np.float32)),
                        ("h", np.ones(3, dtype=np.float16))]).read_bytes(),
            write_tiny_llama(Path(tmp) / "t.gguf", chat_template=CHATML_TEMPLATE, n_layers=1,
                             n_embd=16, n_ff=32, n_head=2, n_head_kv=1).read_bytes(),
        ]
    hostile = [
        b"GGUX" + valid[0][4:],
        header(version=1), header(version=4), header(n_tensors=2**63), header(n_kv=2**63),
        header(n_kv=1) + gstr("k") + u32(ValueType.ARRAY) + u32(ValueType.UINT8) + u64(2**63),
        header(n_kv=1) + gstr("k") + u32(ValueType.STRING) + u64(2**62),
        header(n_kv=2) + kv_u32("k", 1) + kv_u32("k", 2),
        header(n_kv=1) + kv_str("k", b"\xff\xfe"),
        header(n_kv=1) + kv_u32("general.alignment", 3),
        header(n_kv=1) + gstr("k") + u32(ValueType.ARRAY) + u32(ValueType.ARRAY) + u64(1)
        + u32(ValueType.ARRAY) + u64(1) + u32(ValueType.UINT8) + u64(0),
        header(1) + tensor_info("t", (2**31, 2**31)) + b"\0" * 32,
        header(1) + tensor_info("t" * 70, (4,)) + b"\0" * 32,
        header(1) + tensor_info("t", (1, 1, 1, 1, 1)) + b"\0" * 32,
        header(1) + tensor_info("t", (33,), 2) + b"\0" * 64,
        f32_file(("a", 8), ("b", 3)),
        f32_file(("a", 8))[:-8],
    ]
    return valid + hostile


def modelfile_seeds() -> list[bytes]:
    return [
        b"FROM llama3\nPARAMETER temperature 0.2\nSYSTEM You are terse.\n",
        b'FROM ./m.gguf\nTEMPLATE """{{ .System }}\n{{ .Prompt }}"""\nPARAMETER stop "<|x|>"\n',
        b"# c\nFROM m\nMESSAGE user hi\nMESSAGE assistant \"hello\nthere\"\n"
        b'LICENSE """MIT\n"""',
        b"FROM m\r\nADAPTER a.gguf\r\nDRAFT d\r\nREQUIRES 0.1\r\nRENDERER r\r\nPARSER p\r\n",
        b"\xef\xbb\xbfFROM m\nSYSTEM \"unterminated\n",
        b"\xff\xfeF\x00R\x00O\x00M\x00 \x00m\x00",
        b"FROM m\nPARAMETER\nMESSAGE robot hi\nBOGUS x\n",
    ]


def gotemplate_seeds() -> list[bytes]:
    seeds = [path.read_bytes() for path in sorted(TEMPLATES.glob("*.gotmpl"))
             if path.is_file() and path.stat().st_size < 64 << 10]
    return seeds + [
        CHATML_TEMPLATE.encode(),
        b'{{ define "a" }}{{ template "a" }}{{ end }}{{ template "a" }}',
        b"{{ range $i := 1000000000 }}x{{ end }}",
        b'{{- range $i, $m := .Messages }}{{ if eq $m.Role "user" }}{{ printf "%q" $m.Content }}'
        b"{{ else if and (gt $i 0) (not $.System) }}{{ json $.Tools }}{{ end }}{{ end -}}",
        b"{{ with .Tools }}{{ range . }}{{ .function.name | len }}{{ end }}{{ end }}",
        b"{{ slice .System 1 3 }}{{ index .Messages 0 }}{{/* c */}}{{ block \"b\" . }}{{ end }}",
        b"{{" * 200 + b"}}" * 200,
    ]


def names_seeds() -> list[bytes]:
    return [s.encode() for s in (
        "smollm2:135m", "library/llama3:8b", "registry.ollama.ai/library/m:latest",
        "http://localhost:5000/ns/m:t", "m@sha256:" + "0" * 64,
        "sha256:" + hashlib.sha256(b"x").hexdigest(), "SHA256:" + "A" * 64,
        "../../etc/passwd", "a/../../b", "m:..", ".hidden", "m\\..\\x", "a/b/c/d/e",
    )]


SEEDS = {"gguf": gguf_seeds, "modelfile": modelfile_seeds, "gotemplate": gotemplate_seeds,
         "names": names_seeds}


def write(root: Path, target: str) -> Path:
    """Write `target`'s seeds into `root/target` (kept if already there) and return it."""
    folder = root / target
    folder.mkdir(parents=True, exist_ok=True)
    for seed in SEEDS[target]():
        (folder / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    return folder


if __name__ == "__main__":
    for name in SEEDS:
        print(write(Path(sys.argv[1]), name))
