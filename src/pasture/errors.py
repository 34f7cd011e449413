"""Every error Pasture raises on purpose, each mapped to exactly one HTTP status.

The server turns these into Ollama's error shape (`{"error": message}`); anything
else that escapes a route is a bug and is reported as a generic 500 without details.
"""

from __future__ import annotations


class PastureError(Exception):
    """Base class: `status` is the HTTP status the server answers with."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(PastureError):
    """The request is malformed or asks for something impossible (400)."""

    status = 400


class InvalidNameError(BadRequestError):
    """A model name does not follow Ollama's name grammar (400)."""

    def __init__(self, message: str = "invalid model name") -> None:
        super().__init__(message)


class InvalidDigestError(BadRequestError):
    """A digest is not `sha256:` followed by 64 lowercase hex digits (400)."""

    def __init__(self, message: str = "invalid digest format") -> None:
        super().__init__(message)


class DigestMismatchError(BadRequestError):
    """Uploaded or downloaded content does not hash to the digest it claimed (400)."""


class ModelfileError(BadRequestError):
    """A Modelfile could not be parsed; the message names the line (400)."""


class GGUFError(BadRequestError):
    """A file is not a well-formed GGUF model (400)."""


class TemplateError(BadRequestError):
    """A Go prompt template failed to parse or to render; the message has the position (400)."""


class NotFoundError(PastureError):
    """A model or blob that does not exist (404)."""

    status = 404


class ModelNotFoundError(NotFoundError):
    """Ollama's wording for an unknown model."""

    def __init__(self, name: str) -> None:
        super().__init__(f"model '{name}' not found")
        self.name = name


class PayloadTooLargeError(PastureError):
    """A request body over its configured limit (413)."""

    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body too large (limit {limit} bytes)")


class ImageTooLargeError(PayloadTooLargeError):
    """An image in a request decodes to more than PASTURE_MAX_IMAGE_BYTES (413)."""

    def __init__(self, size: int, limit: int) -> None:
        PastureError.__init__(self, f"image too large: {size} bytes, over the limit of "
                                    f"{limit} bytes (PASTURE_MAX_IMAGE_BYTES)")


class ClientClosedError(PastureError):
    """The client went away before its answer was ready (nginx's and Ollama's 499)."""

    status = 499

    def __init__(self) -> None:
        super().__init__("client disconnected")


class ServerBusyError(PastureError):
    """The request queue is full (503); the client may retry after `retry_after` seconds."""

    status = 503
    retry_after = 1

    def __init__(self, message: str = "server busy, please try again.  "
                                      "maximum pending requests exceeded") -> None:
        super().__init__(message)


class QueueTimeoutError(ServerBusyError):
    """A request waited in the queue longer than PASTURE_QUEUE_TIMEOUT (503)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"server busy, please try again.  waited in the queue for "
                         f"{seconds:g} s (PASTURE_QUEUE_TIMEOUT)")


class NoRoomError(PastureError):
    """No cluster node has the memory a model needs, even with nothing else loaded (500,
    as Ollama answers a model larger than the machine's memory)."""

    status = 500


class RunnerError(PastureError):
    """The model runner failed to load or stopped while serving (500)."""

    status = 500
