#!/usr/bin/env python3
"""`make demo`: fetch SmolLM2, import it as smollm2:135m, start the server, ask a question,
then point at the chat page (`/ui`).

Everything is done with the `pasture` command itself, as a user would. A second run
reuses the cached model, the imported model and any server already running. A server the
demo started keeps serving the page until Ctrl+C when run from a terminal.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fetch_models import fetch_smollm2  # noqa: E402

MODEL = "smollm2:135m"
QUESTION = "Why is the sky blue?"


def pasture(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pasture", *args], check=check)


def server_url() -> str:
    from pasture.environment import env, parse_host

    return parse_host(env("HOST")).url


def running(url: str) -> bool:
    try:
        return httpx.get(url + "/", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def main() -> int:
    model_dir = fetch_smollm2()
    url = server_url()
    server = None
    if not running(url):
        log_path = Path.home() / ".pasture" / "demo-serve.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        print(f"starting pasture serve on {url} (log: {log_path})", file=sys.stderr)
        server = subprocess.Popen([sys.executable, "-m", "pasture", "serve"],
                                  stdout=open(log_path, "ab"), stderr=subprocess.STDOUT,
                                  env=os.environ.copy())
        deadline = time.monotonic() + 60
        while not running(url):
            if server.poll() is not None or time.monotonic() > deadline:
                print(log_path.read_text()[-2000:], file=sys.stderr)
                return 1
            time.sleep(0.2)
    try:
        if httpx.post(url + "/api/show", json={"model": MODEL}).status_code == 404:
            pasture("create", MODEL, "-f", str(model_dir / "Modelfile"))
        print(f">>> {QUESTION}", file=sys.stderr)
        answered = pasture("run", MODEL, QUESTION, check=False).returncode
        print(f"\nChat in your browser: {url}/ui", file=sys.stderr)
        if server is not None and sys.stdin.isatty() and answered == 0:
            print("(the server runs until Ctrl+C)", file=sys.stderr)
            try:
                server.wait()
            except KeyboardInterrupt:
                pass
        return answered
    finally:
        if server is not None:
            server.terminate()
            server.wait(15)


if __name__ == "__main__":
    sys.exit(main())
