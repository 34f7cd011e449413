"""Model runners: one child process per loaded model, hosting llama.cpp's server.

The scheduler depends only on the `Runner` interface; `ProcessRunner` is the real one.
"""

from __future__ import annotations

from pasture.runner.base import LoadSpec, Runner, RunnerCrashed
from pasture.runner.process import ProcessRunner

__all__ = ["LoadSpec", "ProcessRunner", "Runner", "RunnerCrashed"]
