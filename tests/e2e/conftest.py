"""The end-to-end tests share the integration tests' server."""

from tests.integration.conftest import api, server, smollm2_gguf  # noqa: F401
