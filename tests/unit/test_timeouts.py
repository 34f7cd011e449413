"""The slow-client timeout settings and the protocol class they configure (the behaviour on
the wire is tested against a live server in tests/integration/test_slowloris.py)."""

from __future__ import annotations

import math

from pasture.config import Settings
from pasture.server.edge.timeouts import TimedH11Protocol, protocol_with_timeouts


def test_timeouts_default_to_10_and_60_seconds() -> None:
    settings = Settings.from_env({})
    assert (settings.header_timeout, settings.body_timeout) == (10.0, 60.0)


def test_timeouts_take_seconds_or_go_durations_with_the_ollama_fallback() -> None:
    settings = Settings.from_env({"PASTURE_HEADER_TIMEOUT": "3",
                                  "OLLAMA_BODY_TIMEOUT": "1m30s"})
    assert (settings.header_timeout, settings.body_timeout) == (3.0, 90.0)
    assert Settings.from_env({"PASTURE_HEADER_TIMEOUT": "500ms"}).header_timeout == 0.5


def test_zero_or_negative_turns_a_clock_off() -> None:
    settings = Settings.from_env({"PASTURE_HEADER_TIMEOUT": "0",
                                  "PASTURE_BODY_TIMEOUT": "-1"})
    assert settings.body_timeout == math.inf
    protocol = protocol_with_timeouts(settings.header_timeout, settings.body_timeout)
    assert issubclass(protocol, TimedH11Protocol)
    assert (protocol.header_timeout, protocol.body_timeout) == (0.0, 0.0)
    assert protocol_with_timeouts(2.5, 7).body_timeout == 7
