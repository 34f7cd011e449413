"""Bytes this process moved to and from registries: the server's metrics read them when
scraped (`pasture:pull_bytes_total`, `pasture:push_bytes_total`), so counting a chunk is
one integer addition and the store needs nothing of Prometheus."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Traffic:
    pulled: int = 0  # blob bytes received and written (resumed bytes are not counted again)
    pushed: int = 0  # blob bytes sent (a retried request's bytes count again: they went)


TRAFFIC = Traffic()
