"""Child-process entry point: quantize one GGUF with llama.cpp's quantizer.

Run as `python -m pasture.engines.quantize_main ENGINE_LIB QUANT_LIB SOURCE TARGET FTYPE
THREADS MAX_OUTPUT` by `pasture.engines.quantizer.quantize`. The engine's library is loaded
first with its symbols global, so the quantizer library finds llama.cpp's loader and
ggml's kernels in it. llama.cpp logs each tensor on stderr; the exit status says whether
the file was written. The output may not outgrow MAX_OUTPUT bytes (RLIMIT_FSIZE), so a
hostile header cannot fill the disk, the work runs at low priority beside serving, and
dies with the server (`worker.limit_self`).
"""

from __future__ import annotations

import ctypes
import os
import sys

from pasture.engines import worker


def main() -> None:
    engine, library, source, target, ftype, threads, max_output = sys.argv[1:8]
    worker.limit_self(int(max_output))
    ctypes.CDLL(engine, mode=ctypes.RTLD_GLOBAL)
    quantizer = ctypes.CDLL(library)
    quantizer.pasture_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int,
                                           ctypes.c_int]
    quantizer.pasture_quantize.restype = ctypes.c_int
    status = quantizer.pasture_quantize(os.fsencode(source), os.fsencode(target), int(ftype),
                                        int(threads))
    sys.stderr.flush()
    os._exit(0 if status == 0 else 1)


if __name__ == "__main__":
    main()
