"""Child-process entry point: run one of llama.cpp's converters on a staged directory.

Run as `python -m pasture.engines.convert_main CONVERTERS KIND SOURCE TARGET MAX_OUTPUT
[BASE]` by `pasture.engines.converter.convert`. KIND "model" runs `convert_hf_to_gguf.py`
on the Hugging Face directory SOURCE; "lora" runs `convert_lora_to_gguf.py` on the PEFT
adapter directory SOURCE, for the GGUF model BASE, whose Hugging Face config is written
back from its header first, into SOURCE's parent (the conversion's scratch folder in the
store, so a killed child leaves nothing elsewhere). The output may not outgrow MAX_OUTPUT
bytes, the work runs at low priority beside serving, and dies with the server
(`worker.limit_self`).
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

from pasture.engines import worker


def main() -> None:
    converters, kind, source, target, max_output, base = sys.argv[1:7]
    worker.limit_self(int(max_output))
    # A model's `auto`: F16 from F32 or F16 weights, BF16 kept (what the quantizer takes).
    # An adapter's is F16: the LoRA converter's `auto` fails on its paired tensors.
    args = [source, "--outfile", target, "--outtype", "f16" if kind == "lora" else "auto"]
    sys.path.insert(0, converters)  # the `conversion` package next to the scripts
    if kind == "lora":
        from pasture import gguf
        from pasture.engines.converter import lora_base_config

        base_dir = Path(source).parent / "base"
        base_dir.mkdir()
        config = lora_base_config(gguf.read_gguf(Path(base)))
        (base_dir / "config.json").write_text(json.dumps(config))
        args += ["--base", str(base_dir)]
    script = Path(converters) / ("convert_lora_to_gguf.py" if kind == "lora"
                                 else "convert_hf_to_gguf.py")
    sys.argv = [str(script), *args]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
