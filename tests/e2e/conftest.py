"""The end-to-end tests share the integration tests' server."""

from tests.integration.conftest import api, server  # noqa: F401
