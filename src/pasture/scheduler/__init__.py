"""Which models are loaded, for how long, and who may use them."""

from __future__ import annotations

from pasture.scheduler.scheduler import Loaded, Scheduler

__all__ = ["Loaded", "Scheduler"]
