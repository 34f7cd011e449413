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


def test_body_deadline_rate_and_connection_cap_defaults_and_settings() -> None:
    settings = Settings.from_env({})
    assert (settings.body_deadline, settings.body_min_rate, settings.max_connections) == (
        30.0, 1000, 1000)
    settings = Settings.from_env({"PASTURE_BODY_DEADLINE": "2m", "PASTURE_BODY_MIN_RATE": "50",
                                  "PASTURE_MAX_CONNECTIONS": "64"})
    assert (settings.body_deadline, settings.body_min_rate, settings.max_connections) == (
        120.0, 50, 64)
    protocol = protocol_with_timeouts(1, 2, 3, 4)
    assert (protocol.body_deadline, protocol.body_min_rate) == (3, 4)


def test_the_connection_cap_leaves_half_the_descriptors_to_the_work() -> None:
    from pasture.server.edge.connections import FD_RESERVE, connection_cap

    assert connection_cap(1000, 1 << 20) == 1000
    assert connection_cap(1000, 1024) == (1024 - FD_RESERVE) // 2
    assert connection_cap(1000, 10) == 1
