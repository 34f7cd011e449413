"""`tracing.from_env`: traces only when OTEL_EXPORTER_OTLP_ENDPOINT names a collector and
the SDK is installed; a missing SDK is one warning naming the extra, not an error."""

from __future__ import annotations

import logging
import sys

import pytest

from pasture.server import tracing

COLLECTOR = {tracing.ENDPOINT: "http://127.0.0.1:4318"}  # never reached: no span is sent


def service_of(tracer: tracing.Tracer | tracing.NoTrace) -> str:
    assert isinstance(tracer, tracing.Tracer)
    try:
        return str(tracer.provider.resource.attributes["service.name"])
    finally:
        tracer.shutdown()


def test_no_endpoint_is_no_tracing() -> None:
    assert tracing.from_env({}) is tracing.NO_TRACE
    assert tracing.from_env({tracing.ENDPOINT: ""}) is tracing.NO_TRACE


def test_an_endpoint_traces_as_pasture_or_the_named_service() -> None:
    assert service_of(tracing.from_env(COLLECTOR)) == "pasture"
    named = {**COLLECTOR, "OTEL_SERVICE_NAME": "edge-box"}
    assert service_of(tracing.from_env(named)) == "edge-box"


def test_an_endpoint_without_the_sdk_warns_once_naming_the_extra(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # The SDK is installed for the tests: a None in sys.modules makes its import fail,
    # as it does where the extra is not installed.
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with caplog.at_level(logging.WARNING, "pasture.tracing"):
        assert tracing.from_env(COLLECTOR) is tracing.NO_TRACE
    assert [r.getMessage().endswith("(pip install 'pasture[otel]')") for r in caplog.records
            ] == [True]
