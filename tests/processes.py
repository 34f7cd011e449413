"""Processes as tests see them, through /proc: whether one still runs, and its fields."""

from __future__ import annotations

from pathlib import Path


def stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command's name (state first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie no one has reaped yet does not)."""
    try:
        return stat(pid)[0] != "Z"
    except FileNotFoundError:
        return False
