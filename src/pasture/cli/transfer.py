"""Pull, push, create and verify with progress on stderr: everything that streams statuses."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from pasture.api.ollama import ModelCheck, ProgressResponse, VerifyResponse
from pasture.cli.progress import ProgressView
from pasture.cli.render import short_digest, table
from pasture.client import BlobProgress, Client


def show_progress(stream: Iterable[ProgressResponse], view: ProgressView) -> None:
    """Draw each status of a pull/push/create stream until it ends."""
    for part in stream:
        view.update(part.status, part.digest, part.total, part.completed)


def pull(client: Client, model: str, insecure: bool = False) -> None:
    with ProgressView() as view:
        show_progress(client.pull(model, insecure=insecure, stream=True), view)


def push(client: Client, model: str, insecure: bool = False) -> None:
    with ProgressView() as view:
        show_progress(client.push(model, insecure=insecure, stream=True), view)


def create(client: Client, model: str, modelfile: Path, quantize: str | None = None) -> None:
    """Create `model` from a Modelfile: hash and upload its files, then the server's steps."""
    try:
        text = modelfile.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileNotFoundError(f"open {modelfile}: no such file or directory") from None

    with ProgressView() as view:

        def on_blob(event: BlobProgress) -> None:
            name = event.path.name
            if event.status == "hashing":
                view.update(f"hashing {name}")
            elif event.status == "exists":
                view.update(f"using existing blob {short_digest(event.digest or '')} ({name})")
            else:
                view.update(
                    f"uploading {short_digest(event.digest or '')} ({name})",
                    event.digest,
                    event.total,
                    event.completed,
                )

        stream = client.create_from_modelfile(
            model,
            text,
            modelfile.resolve().parent,
            quantize=quantize,
            progress=on_blob,
            stream=True,
        )
        show_progress(stream, view)


def verify(client: Client, models: Sequence[str], repair: bool = False,
           insecure: bool = False) -> bool:
    """Check (and repair) `models`, then print a table of verdicts; True if all are sound."""
    verdict: VerifyResponse | None = None
    with ProgressView() as view:
        for part in client.verify(models, repair=repair, insecure=insecure, stream=True):
            if part.models is not None:
                verdict = part
            else:
                view.update(part.status, part.digest, part.total, part.completed)
    assert verdict is not None and verdict.models is not None, "the server sent no verdict"
    rows = [[check.model, check.state.upper(), _details(check)] for check in verdict.models]
    sys.stdout.write(table(["NAME", "STATUS", "DETAILS"], rows))
    return verdict.status == "success"


def _details(check: ModelCheck) -> str:
    blobs = [f"{short_digest(digest)} {state}" for digest, state in (check.damaged or {}).items()]
    return "; ".join([*blobs, *([check.note] if check.note else [])])
