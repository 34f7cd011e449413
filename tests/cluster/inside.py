"""An HTTP request made from inside the test's network namespace (its loopback is not the
test's): `python inside.py '{"method": …, "url": …, "body": …, "stream": bool}'` prints
`{"status": …, "body": …}` (a stream's lines as a list; with `"follow": true`, the status
and then each line, printed as they arrive). Standard library only: it runs once per
request and must start fast."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request


def main() -> None:
    call = json.loads(sys.argv[1])
    data = json.dumps(call["body"]).encode() if call.get("body") is not None else None
    request = urllib.request.Request(call["url"], data=data, method=call["method"],
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=call.get("timeout", 300)) as reply:
            if call.get("follow"):
                print(json.dumps({"status": reply.status}), flush=True)
                for line in reply:
                    print(line.decode().strip(), flush=True)
                return
            status, text = reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    except OSError as exc:  # nothing listening yet
        print(json.dumps({"status": 0, "body": str(exc)}))
        return
    if call.get("stream"):
        body = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        try:
            body = json.loads(text)
        except ValueError:
            body = text
    print(json.dumps({"status": status, "body": body}))


if __name__ == "__main__":
    main()
