"""schemathesis against a running Pasture's own `/openapi.json`: no generated request may get
a 5xx (schemathesis's `not_a_server_error` check).

Used by tests/integration/test_api_fuzz.py (a short run on the shared server) and for the
long run recorded in fuzz/RESULTS.md:

    python -m fuzz.api URL [EXAMPLES_PER_OPERATION] [--with-create]

`/api/pull` and `/api/push` go to the network and are never generated. `/api/create` can pull
a missing base, so it runs only with `--with-create`, its `from` pointed at a local model.
Every body gets a tiny `num_predict`/`max_tokens`, so a request that reaches the model is
cheap; about half the inference bodies name the local model, so some requests do.
`POST /api/blobs/{digest}` reads a raw body: only its path parameter is generated.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

NETWORK = r"^/api/(pull|push)$"
CREATE = r"^/api/create$"
AIMED = r"/api/(generate|chat|embed|embeddings|show)|/v1/(chat/completions|completions|embeddings|responses|messages)"  # noqa: E501


@dataclass
class Report:
    """What a run sent and what came back: status codes per operation, and any 5xx."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    slowest: tuple[float, str] = (0.0, "")

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())


def _cheap(path: str, body: Any, model: str) -> Any:
    """Cap generation; aim about half the inference bodies at the real model (a random name
    only ever reaches the 404). Never rewrites delete or copy: the model must survive."""
    if isinstance(body, dict):
        for cap in ("num_predict", "max_tokens", "max_completion_tokens", "max_output_tokens"):
            body[cap] = 2
        options = body.get("options")
        body["options"] = {**options, "num_predict": 2} if isinstance(options, dict) else {
            "num_predict": 2}
        if re.fullmatch(AIMED, path) and len(str(body.get("model"))) % 2 == 0:
            body["model"] = model
        if "from" in body:
            body["from"] = model
    return body


def fuzz_api(url: str, model: str, examples: int, *, with_create: bool = False) -> Report:
    """Generate `examples` requests per operation against the server at `url`."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json").exclude(path_regex=NETWORK)
    if not with_create:
        schema = schema.exclude(path_regex=CREATE)
    report = Report()
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            if case.body is not None and not isinstance(case.body, bytes | str):
                case.body = _cheap(case.operation.path, case.body, model)
            start = time.monotonic()
            response = case.call(timeout=120)
            report.slowest = max(report.slowest, (time.monotonic() - start, case.operation.label))
            report.statuses[(case.operation.label, response.status_code)] += 1
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except Exception as exc:  # noqa: BLE001 - collected, asserted on by the caller
                report.failures.append(f"{case.operation.label} {case.body!r:.300}: {exc}"[:2000])

        check()
    return report


if __name__ == "__main__":
    start = time.monotonic()
    found = fuzz_api(sys.argv[1], "smollm2:135m", int(sys.argv[2]) if len(sys.argv) > 2 else 100,
                     with_create="--with-create" in sys.argv)
    for (label, status), count in sorted(found.statuses.items()):
        print(f"{label:40} {status} x{count}")
    print(f"{found.requests} requests in {time.monotonic() - start:.0f}s, "
          f"{len(found.failures)} server errors; slowest {found.slowest}")
    for failure in found.failures:
        print(failure)
