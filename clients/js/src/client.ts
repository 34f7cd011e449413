/**
 * `Pasture`: the client, with the official `ollama` package's methods and arguments, for
 * browsers and Node alike (only the platform `fetch`, `ReadableStream`, `AbortController`
 * and Web Crypto are used). The `pasture/node` entry point adds file paths on top.
 */

import { ResponseError } from './errors.js'
import { env, formatHost } from './host.js'
import { defaultHeaders, Transport } from './http.js'
import { AbortableAsyncIterator, parseNDJSON } from './stream.js'
import type {
  ChatRequest,
  ChatResponse,
  Config,
  CopyRequest,
  CreateRequest,
  DeleteRequest,
  DetokenizeRequest,
  DetokenizeResponse,
  EmbeddingsRequest,
  EmbeddingsResponse,
  EmbedRequest,
  EmbedResponse,
  GenerateRequest,
  GenerateResponse,
  ListResponse,
  Message,
  ProcessResponse,
  ProgressResponse,
  PullRequest,
  PushRequest,
  RerankRequest,
  RerankResponse,
  ShowRequest,
  ShowResponse,
  StatusResponse,
  TokenizeRequest,
  TokenizeResponse,
  VersionResponse,
} from './types.js'

/** Bytes that can become a blob on the server. */
export type BlobData = Blob | ArrayBuffer | ArrayBufferView

/** Base64 text for bytes, in slices so a large image does not overflow the call stack. */
export function toBase64(bytes: Uint8Array): string {
  let binary = ''
  for (let start = 0; start < bytes.length; start += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(start, start + 0x8000))
  }
  return btoa(binary)
}

function toBlob(data: BlobData): Blob {
  if (data instanceof Blob) return data
  if (ArrayBuffer.isView(data)) {
    return new Blob([new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength)])
  }
  return new Blob([data])
}

/** `sha256:<hex>`, the digest form blob URLs and manifests use. */
export function sha256Digest(hash: ArrayBuffer | Uint8Array): string {
  const bytes = hash instanceof Uint8Array ? hash : new Uint8Array(hash)
  return `sha256:${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`
}

/**
 * Talks to a Pasture (or Ollama) server over HTTP.
 *
 * ```js
 * import { Pasture } from 'pasture'
 * const client = new Pasture({ host: 'http://127.0.0.1:11434' })
 * const reply = await client.chat({ model: 'smollm2:135m', messages: [{ role: 'user', content: 'Hi' }] })
 * ```
 *
 * Failures throw `ResponseError` (the server said no) or `ServerNotRunningError` (nothing
 * listens at the address).
 */
export class Pasture {
  protected readonly transport: Transport
  /** Controllers of this client's streaming requests that have not finished yet. */
  private readonly inFlight = new Set<AbortController>()

  constructor(config: Partial<Config> = {}) {
    this.transport = new Transport(
      formatHost(config.host || env('HOST')),
      defaultHeaders(config.headers),
      config.fetch ?? ((input, init) => fetch(input, init)),
    )
  }

  /** The server's base URL, e.g. `http://127.0.0.1:11434`. */
  get host(): string {
    return this.transport.host
  }

  /** Abort every stream this client has open (each one's loop throws an `AbortError`). */
  abort(): void {
    for (const controller of this.inFlight) controller.abort()
    this.inFlight.clear()
  }

  /**
   * POST a request that may stream: its answer, or an iterator over its NDJSON parts.
   * The official client's default is kept: no streaming unless `stream: true`.
   */
  protected async processStreamableRequest<T extends object>(
    path: string,
    request: { stream?: boolean } & Record<string, unknown>,
  ): Promise<T | AbortableAsyncIterator<T>> {
    const body = { ...request, stream: request.stream ?? false }
    if (!body.stream) return this.transport.json<T>('POST', path, { json: body })
    const controller = new AbortController()
    this.inFlight.add(controller)
    const release = () => {
      this.inFlight.delete(controller)
    }
    let response: Response
    try {
      response = await this.transport.request('POST', path, {
        json: body,
        signal: controller.signal,
      })
    } catch (error) {
      release()
      throw error
    }
    if (!response.body) {
      release()
      throw new ResponseError('the server sent a streaming response without a body')
    }
    return new AbortableAsyncIterator<T>(controller, parseNDJSON(response.body), release)
  }

  /** Base64 text for an image given as bytes or as base64 text already. */
  async encodeImage(image: Uint8Array | string): Promise<string> {
    return typeof image === 'string' ? image : toBase64(image)
  }

  private async encodeImages(
    images: (Uint8Array | string)[] | undefined,
  ): Promise<string[] | undefined> {
    return images && Promise.all(images.map((image) => this.encodeImage(image)))
  }

  private async encodeMessages(messages: Message[] | undefined): Promise<Message[] | undefined> {
    if (!messages) return undefined
    return Promise.all(
      messages.map(async (message) =>
        message.images ? { ...message, images: await this.encodeImages(message.images) } : message,
      ),
    )
  }

  // ----- inference ------------------------------------------------------------------------

  /** Complete a prompt; an abortable async iterator of partial responses with `stream: true`. */
  generate(request: GenerateRequest & { stream: true }): Promise<AbortableAsyncIterator<GenerateResponse>>
  generate(request: GenerateRequest & { stream?: false }): Promise<GenerateResponse>
  generate(request: GenerateRequest): Promise<GenerateResponse | AbortableAsyncIterator<GenerateResponse>>
  async generate(
    request: GenerateRequest,
  ): Promise<GenerateResponse | AbortableAsyncIterator<GenerateResponse>> {
    const images = await this.encodeImages(request.images)
    return this.processStreamableRequest<GenerateResponse>('/api/generate', {
      ...request,
      ...(images ? { images } : {}),
    })
  }

  /** Answer a conversation; message images may be bytes or base64 text. */
  chat(request: ChatRequest & { stream: true }): Promise<AbortableAsyncIterator<ChatResponse>>
  chat(request: ChatRequest & { stream?: false }): Promise<ChatResponse>
  chat(request: ChatRequest): Promise<ChatResponse | AbortableAsyncIterator<ChatResponse>>
  async chat(request: ChatRequest): Promise<ChatResponse | AbortableAsyncIterator<ChatResponse>> {
    const messages = await this.encodeMessages(request.messages)
    return this.processStreamableRequest<ChatResponse>('/api/chat', {
      ...request,
      ...(messages ? { messages } : {}),
    })
  }

  /** Embedding vectors (unit length) for one text or a batch. */
  async embed(request: EmbedRequest): Promise<EmbedResponse> {
    return this.transport.json<EmbedResponse>('POST', '/api/embed', { json: request })
  }

  /** The legacy single-vector endpoint (not normalised); prefer `embed`. */
  async embeddings(request: EmbeddingsRequest): Promise<EmbeddingsResponse> {
    return this.transport.json<EmbeddingsResponse>('POST', '/api/embeddings', { json: request })
  }

  /** Beyond Ollama: the token ids the model's tokenizer makes of `content`. */
  async tokenize(request: TokenizeRequest): Promise<TokenizeResponse> {
    return this.transport.json<TokenizeResponse>('POST', '/api/tokenize', { json: request })
  }

  /** Beyond Ollama: the text of token ids; an id outside the vocabulary is a 400. */
  async detokenize(request: DetokenizeRequest): Promise<DetokenizeResponse> {
    return this.transport.json<DetokenizeResponse>('POST', '/api/detokenize', { json: request })
  }

  /** `documents` ordered by a reranker model's relevance to `query`, best first (Pasture's
   *  `/api/rerank`; Ollama has none). */
  async rerank(request: RerankRequest): Promise<RerankResponse> {
    return this.transport.json<RerankResponse>('POST', '/api/rerank', { json: request })
  }

  // ----- registry -------------------------------------------------------------------------

  /** Download a model from its registry. */
  pull(request: PullRequest & { stream: true }): Promise<AbortableAsyncIterator<ProgressResponse>>
  pull(request: PullRequest & { stream?: false }): Promise<ProgressResponse>
  pull(request: PullRequest): Promise<ProgressResponse | AbortableAsyncIterator<ProgressResponse>>
  async pull(
    request: PullRequest,
  ): Promise<ProgressResponse | AbortableAsyncIterator<ProgressResponse>> {
    return this.processStreamableRequest<ProgressResponse>('/api/pull', { ...request })
  }

  /** Upload a model to its registry. */
  push(request: PushRequest & { stream: true }): Promise<AbortableAsyncIterator<ProgressResponse>>
  push(request: PushRequest & { stream?: false }): Promise<ProgressResponse>
  push(request: PushRequest): Promise<ProgressResponse | AbortableAsyncIterator<ProgressResponse>>
  async push(
    request: PushRequest,
  ): Promise<ProgressResponse | AbortableAsyncIterator<ProgressResponse>> {
    return this.processStreamableRequest<ProgressResponse>('/api/push', { ...request })
  }

  // ----- model management -----------------------------------------------------------------

  /**
   * Create a model from another (`from`) or from blobs already uploaded (`files`, from
   * `createBlob`), with an optional template, system prompt, parameters, messages and
   * license. `createFromModelfile` in `pasture/node` does the uploading for you.
   */
  create(request: CreateRequest & { stream: true }): Promise<AbortableAsyncIterator<ProgressResponse>>
  create(request: CreateRequest & { stream?: false }): Promise<ProgressResponse>
  create(request: CreateRequest): Promise<ProgressResponse | AbortableAsyncIterator<ProgressResponse>>
  async create(
    request: CreateRequest,
  ): Promise<ProgressResponse | AbortableAsyncIterator<ProgressResponse>> {
    const messages = await this.encodeMessages(request.messages)
    return this.processStreamableRequest<ProgressResponse>('/api/create', {
      ...request,
      ...(messages ? { messages } : {}),
    })
  }

  /**
   * Make bytes available to the server as a blob (for `create`'s `files`); returns its
   * digest. Nothing is uploaded when the server already has it.
   */
  async createBlob(data: BlobData): Promise<string> {
    const blob = toBlob(data)
    const digest = sha256Digest(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()))
    await this.uploadBlob(digest, blob)
    return digest
  }

  /** Whether the server has the blob `digest` (`HEAD /api/blobs/<digest>`). */
  async blobExists(digest: string): Promise<boolean> {
    const response = await this.transport.request('HEAD', `/api/blobs/${digest}`, {}, [404])
    return response.status !== 404
  }

  /** Upload `body` as blob `digest` unless the server has it; true if it was sent. */
  protected async uploadBlob(digest: string, body: Blob): Promise<boolean> {
    if (await this.blobExists(digest)) return false
    const response = await this.transport.request('POST', `/api/blobs/${digest}`, {
      body,
      headers: { 'content-type': 'application/octet-stream' },
    })
    await response.body?.cancel()
    return true
  }

  /** The models in the server's store. */
  async list(): Promise<ListResponse> {
    return this.transport.json<ListResponse>('GET', '/api/tags')
  }

  /** A model's details, Modelfile, parameters, template, capabilities and metadata. */
  async show(request: ShowRequest): Promise<ShowResponse> {
    return this.transport.json<ShowResponse>('POST', '/api/show', { json: request })
  }

  /** The models loaded in memory right now. */
  async ps(): Promise<ProcessResponse> {
    return this.transport.json<ProcessResponse>('GET', '/api/ps')
  }

  /** Copy a model under a new name (the blobs are shared, not duplicated). */
  async copy(request: CopyRequest): Promise<StatusResponse> {
    const response = await this.transport.request('POST', '/api/copy', { json: request })
    await response.body?.cancel()
    return { status: 'success' }
  }

  /** Delete a model (its blobs go when no other model uses them). */
  async delete(request: DeleteRequest): Promise<StatusResponse> {
    const response = await this.transport.request('DELETE', '/api/delete', {
      json: { model: request.model },
    })
    await response.body?.cancel()
    return { status: 'success' }
  }

  /** The server's version. */
  async version(): Promise<VersionResponse> {
    return this.transport.json<VersionResponse>('GET', '/api/version')
  }
}
