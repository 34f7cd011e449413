"""The runner memory cap's arithmetic and its reading of /proc (runner/watchdog.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from pasture.config import Settings
from pasture.runner.watchdog import anonymous_memory, memory_limit, physical_memory

GIB = 1 << 30


def test_a_set_limit_is_used_as_given_and_zero_means_none() -> None:
    assert memory_limit(300 << 20, loaded=5 * GIB) == 300 << 20
    assert memory_limit(0, loaded=GIB) is None


def test_the_default_is_half_the_ram_but_never_within_a_gib_of_the_loaded_size() -> None:
    assert memory_limit(None, loaded=0) == physical_memory() // 2
    huge = physical_memory()
    assert memory_limit(None, loaded=huge) == huge + GIB


def test_anonymous_memory_is_read_for_a_live_process_and_none_once_it_is_gone() -> None:
    assert (anonymous_memory(os.getpid()) or 0) > 1 << 20
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    assert anonymous_memory(int(child.stdout)) is None


def test_settings_read_the_runner_cap_and_the_embedding_input_cap() -> None:
    defaults = Settings.from_env({})
    assert defaults.runner_memory_limit is None and defaults.max_embed_inputs == 2048
    chosen = Settings.from_env({"PASTURE_RUNNER_MEMORY_LIMIT": "2GiB",
                                "PASTURE_MAX_EMBED_INPUTS": "10"})
    assert chosen.runner_memory_limit == 2 * GIB and chosen.max_embed_inputs == 10
    assert Settings.from_env({"PASTURE_RUNNER_MEMORY_LIMIT": "0"}).runner_memory_limit == 0
