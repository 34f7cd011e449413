"""schemathesis against Pasture's own OpenAPI description: no generated input gets a 5xx.

A short run on the shared server (SmolLM2 imported); fuzz/api.py holds the driver, what it
leaves out and why, and runs the long version recorded in fuzz/RESULTS.md.
"""

from __future__ import annotations

import httpx
import pytest

from fuzz.api import fuzz_api
from tests.integration.conftest import MODEL, RunningServer

pytestmark = pytest.mark.integration

EXAMPLES = 10  # per operation: 24 operations, about half a minute on two cores


def test_no_generated_request_gets_a_server_error(server: RunningServer) -> None:
    report = fuzz_api(server.url, MODEL, EXAMPLES)
    operations = {label for label, _ in report.statuses}
    assert len(operations) >= 20, sorted(operations)  # the description kept its routes
    assert report.requests >= 100
    assert not report.failures, "\n".join(report.failures)


def test_a_host_too_long_for_a_directory_is_a_400_not_a_500(server: RunningServer) -> None:
    """Regression: a 300-character host passed Ollama's 350 limit and then failed to write
    `manifests/<host>/…` with ENAMETOOLONG, a 500 on copy and create."""
    long_name = "h" * 300 + "/ns/m:t"
    for path, body in [("/api/copy", {"source": MODEL, "destination": long_name}),
                       ("/api/create", {"model": long_name, "from": MODEL, "stream": False})]:
        response = httpx.post(server.url + path, json=body, timeout=60)
        assert response.status_code == 400, (path, response.text)
        assert "invalid model name" in response.text
