"""`AsyncClient`: the asyncio client, with the official `ollama.AsyncClient`'s methods."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
import httpx

from pasture.api.ollama import (
    ChatResponse,
    DetokenizeResponse,
    EmbeddingsResponse,
    EmbedResponse,
    GenerateResponse,
    ListResponse,
    NodesResponse,
    ProcessResponse,
    ProgressResponse,
    RerankResponse,
    ShowResponse,
    StatusResponse,
    Think,
    TokenizeResponse,
    VerifyResponse,
    VersionResponse,
    WireModel,
)
from pasture.client import _calls
from pasture.client._inputs import ImageInput
from pasture.client._protocol import (
    Call,
    blob_exists,
    blob_path,
    connection_errors,
    parse_line,
    parse_reply,
    raise_for_status,
    verify_option,
)
from pasture.client._wire import base_url, default_headers
from pasture.client.blobs import ProgressCallback, aread_chunks, report, upload_headers
from pasture.client.modelfile import plan_create
from pasture.digests import hash_file

T = TypeVar("T", bound=WireModel)
Format = Literal["", "json"] | dict[str, Any] | None


class AsyncClient:
    """Talks to a Pasture (or Ollama) server over HTTP, with asyncio.

    >>> client = AsyncClient()
    >>> reply = await client.chat("smollm2", messages=[{"role": "user", "content": "Hi"}])
    >>> async for part in await client.generate("smollm2", "Why?", stream=True):
    ...     print(part.response, end="")

    Failures raise `ResponseError` (the server said no) or `ServerNotRunningError`
    (nothing listens at the address). An `https://` host is checked against `verify`: a
    CA file, an `ssl.SSLContext`, or False; unset, PASTURE_CA_FILE, then SSL_CERT_FILE /
    SSL_CERT_DIR, then certifi's bundle.
    """

    def __init__(
        self,
        host: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: Any = None,
        follow_redirects: bool = True,
        verify: Any = None,
        **kwargs: Any,
    ) -> None:
        self.url = base_url(host)
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers=default_headers(headers),
            timeout=timeout,
            follow_redirects=follow_redirects,
            verify=verify_option(self.url, verify),
            **kwargs,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ----- transport ----------------------------------------------------------------------

    async def _send(self, call: Call[T]) -> Any:
        if call.stream:
            return self._stream(call)
        with connection_errors(self.url):
            response = await self._http.request(call.method, call.path, **call.request_kwargs)
        return parse_reply(call, response)

    async def _stream(self, call: Call[T]) -> AsyncIterator[T]:
        # An async generator, as in the official client: the request goes out on the first
        # `anext()`, and `aclose()` closes the connection (which stops generation).
        with connection_errors(self.url):
            async with self._http.stream(
                call.method, call.path, **call.request_kwargs
            ) as response:
                if response.is_error:
                    await response.aread()
                    raise_for_status(response)
                async for line in response.aiter_lines():
                    if (item := parse_line(call, line)) is not None:
                        yield item

    # ----- inference ----------------------------------------------------------------------

    async def generate(
        self,
        model: str = "",
        prompt: str | None = None,
        suffix: str | None = None,
        *,
        system: str | None = None,
        template: str | None = None,
        context: Sequence[int] | None = None,
        stream: bool = False,
        think: Think = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        raw: bool | None = None,
        format: Format = None,
        images: Sequence[ImageInput] | None = None,
        options: Mapping[str, Any] | None = None,
        keep_alive: float | str | None = None,
    ) -> GenerateResponse | AsyncIterator[GenerateResponse]:
        """Complete `prompt`; an iterator of partial responses when `stream` is true."""
        return await self._send(_calls.generate(
            model=model, prompt=prompt, suffix=suffix, system=system, template=template,
            context=context, stream=stream, think=think, logprobs=logprobs,
            top_logprobs=top_logprobs, raw=raw, format=format, images=images, options=options,
            keep_alive=keep_alive,
        ))

    async def chat(
        self,
        model: str = "",
        messages: Sequence[Mapping[str, Any] | Any] | None = None,
        *,
        tools: Sequence[Mapping[str, Any] | Any | Callable[..., Any]] | None = None,
        stream: bool = False,
        think: Think = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        format: Format = None,
        options: Mapping[str, Any] | None = None,
        keep_alive: float | str | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        grammar: str | None = None,
    ) -> ChatResponse | AsyncIterator[ChatResponse]:
        """Answer a conversation; tools may be dicts or plain Python functions.

        Beyond the official client: `tool_choice` (`"auto"`, `"none"`, `"required"` or
        `{"type": "function", "function": {"name": ...}}`) is enforced by the server, and
        `grammar` (GBNF) constrains the answer.
        """
        return await self._send(_calls.chat(
            model=model, messages=messages, tools=tools, stream=stream, think=think,
            logprobs=logprobs, top_logprobs=top_logprobs, format=format, options=options,
            keep_alive=keep_alive, tool_choice=tool_choice, grammar=grammar,
        ))

    async def embed(
        self,
        model: str = "",
        input: str | Sequence[str] = "",
        truncate: bool | None = None,
        options: Mapping[str, Any] | None = None,
        keep_alive: float | str | None = None,
        dimensions: int | None = None,
    ) -> EmbedResponse:
        """Embedding vectors for one text or a batch."""
        return await self._send(_calls.embed(
            model=model, input=input, truncate=truncate, options=options,
            keep_alive=keep_alive, dimensions=dimensions,
        ))

    async def embeddings(
        self,
        model: str = "",
        prompt: str | None = None,
        options: Mapping[str, Any] | None = None,
        keep_alive: float | str | None = None,
    ) -> EmbeddingsResponse:
        """The legacy single-vector endpoint; prefer `embed`."""
        return await self._send(_calls.embeddings(
            model=model, prompt=prompt, options=options, keep_alive=keep_alive,
        ))

    async def tokenize(
        self,
        model: str,
        content: str,
        add_special: bool | None = None,
        keep_alive: float | str | None = None,
    ) -> TokenizeResponse:
        """The token ids `model`'s tokenizer makes of `content` (beyond Ollama).

        >>> ids = (await client.tokenize("smollm2:135m", "Hello")).tokens

        `add_special` adds the tokens the model puts around a prompt (its BOS).
        """
        return await self._send(_calls.tokenize(
            model=model, content=content, add_special=add_special, keep_alive=keep_alive,
        ))

    async def detokenize(
        self, model: str, tokens: Sequence[int], keep_alive: float | str | None = None,
    ) -> DetokenizeResponse:
        """The text of token ids in `model`'s vocabulary (beyond Ollama); an id outside
        it is a `ResponseError` (400)."""
        return await self._send(_calls.detokenize(model=model, tokens=tokens,
                                                keep_alive=keep_alive))

    async def rerank(
        self,
        model: str,
        query: str,
        documents: Sequence[str],
        top_n: int | None = None,
        return_documents: bool | None = None,
        options: Mapping[str, Any] | None = None,
        keep_alive: float | str | None = None,
    ) -> RerankResponse:
        """`documents` ordered by a reranker model's relevance to `query`, best first
        (Pasture's `/api/rerank`: `(await client.rerank("bge-reranker", "q", ["a", "b"])).results`).
        """
        return await self._send(_calls.rerank(
            model=model, query=query, documents=documents, top_n=top_n,
            return_documents=return_documents, options=options, keep_alive=keep_alive,
        ))

    # ----- registry -----------------------------------------------------------------------

    async def pull(
        self, model: str, *, insecure: bool = False, stream: bool = False
    ) -> ProgressResponse | AsyncIterator[ProgressResponse]:
        """Download a model from its registry."""
        return await self._send(_calls.pull(model=model, insecure=insecure, stream=stream))

    async def push(
        self, model: str, *, insecure: bool = False, stream: bool = False
    ) -> ProgressResponse | AsyncIterator[ProgressResponse]:
        """Upload a model to its registry."""
        return await self._send(_calls.push(model=model, insecure=insecure, stream=stream))

    async def verify(
        self, models: Sequence[str] = (), *, repair: bool = False, insecure: bool = False,
        stream: bool = False,
    ) -> VerifyResponse | AsyncIterator[VerifyResponse]:
        """Hash the blobs of `models` (default: all) against their digests, beyond Ollama.

        `repair` fetches damaged blobs again from each model's registry. The last
        response's `models` holds every model's verdict (`ok`, `corrupt`, `missing`,
        `repaired`).
        """
        return await self._send(_calls.verify(models=list(models), repair=repair,
                                           insecure=insecure, stream=stream))

    # ----- model management ---------------------------------------------------------------

    async def create(
        self,
        model: str,
        quantize: str | None = None,
        from_: str | None = None,
        files: dict[str, str] | None = None,
        adapters: dict[str, str] | None = None,
        template: str | None = None,
        license: str | list[str] | None = None,
        system: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        messages: Sequence[Mapping[str, Any] | Any] | None = None,
        *,
        stream: bool = False,
        requires: str | None = None,
        draft_files: dict[str, str] | None = None,
        parser: str | None = None,
    ) -> ProgressResponse | AsyncIterator[ProgressResponse]:
        """Create a model from another (`from_`) or from uploaded blobs (`files`)."""
        return await self._send(_calls.create(
            model=model, quantize=quantize, from_=from_, files=files, adapters=adapters,
            template=template, license=license, system=system, parameters=parameters,
            messages=messages, stream=stream, requires=requires, draft_files=draft_files,
            parser=parser,
        ))

    async def create_from_modelfile(
        self,
        model: str,
        modelfile: str,
        base_dir: str | Path = ".",
        *,
        quantize: str | None = None,
        progress: ProgressCallback | None = None,
        stream: bool = False,
    ) -> ProgressResponse | AsyncIterator[ProgressResponse]:
        """Create `model` from Modelfile text, uploading the files it names first.

        Paths in FROM and ADAPTER are relative to `base_dir`; a FROM that names no
        existing file is a model name. Only files the server lacks are uploaded.
        """
        plan = plan_create(modelfile, Path(base_dir))
        digests = {path: await self.create_blob(path, progress=progress) for path in plan.paths}
        return await self.create(
            model, quantize=quantize, stream=stream, **plan.arguments(digests)
        )

    async def create_blob(
        self, path: str | Path, *, progress: ProgressCallback | None = None
    ) -> str:
        """Make a local file available to the server as a blob; returns its digest."""
        path = Path(path)
        size = (await anyio.Path(path).stat()).st_size
        report(progress, "hashing", path, size)
        digest = await anyio.to_thread.run_sync(hash_file, path)
        if await self._blob_exists(digest):
            report(progress, "exists", path, size, size, digest)
            return digest
        report(progress, "uploading", path, size, 0, digest)
        with connection_errors(self.url):
            response = await self._http.post(
                blob_path(digest),
                content=aread_chunks(path, size, digest, progress),
                headers=upload_headers(size),
            )
        raise_for_status(response)
        report(progress, "uploaded", path, size, size, digest)
        return digest

    async def _blob_exists(self, digest: str) -> bool:
        with connection_errors(self.url):
            return blob_exists(await self._http.head(blob_path(digest)))

    async def list(self) -> ListResponse:
        """The models in the server's store, newest first."""
        return await self._send(_calls.list_models())

    async def show(self, model: str, *, verbose: bool | None = None) -> ShowResponse:
        """A model's details, Modelfile, parameters, template and metadata."""
        return await self._send(_calls.show(model, verbose))

    async def ps(self) -> ProcessResponse:
        """The models loaded in memory right now."""
        return await self._send(_calls.ps())

    async def nodes(self) -> NodesResponse:
        """The machines serving models, with their memory, GPUs and models (beyond
        Ollama: `GET /api/nodes`)."""
        return await self._send(_calls.nodes())

    async def copy(self, source: str, destination: str) -> StatusResponse:
        return await self._send(_calls.copy(source, destination))

    async def delete(self, model: str) -> StatusResponse:
        return await self._send(_calls.delete(model))

    async def version(self) -> VersionResponse:
        """The server's version (`GET /api/version`)."""
        return await self._send(_calls.version())
