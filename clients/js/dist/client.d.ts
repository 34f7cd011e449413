/**
 * `Pasture`: the client, with the official `ollama` package's methods and arguments, for
 * browsers and Node alike (only the platform `fetch`, `ReadableStream`, `AbortController`
 * and Web Crypto are used). The `pasture/node` entry point adds file paths on top.
 */
import { Transport } from './http.js';
import { AbortableAsyncIterator } from './stream.js';
import type { ChatRequest, ChatResponse, Config, CopyRequest, CreateRequest, DeleteRequest, DetokenizeRequest, DetokenizeResponse, EmbeddingsRequest, EmbeddingsResponse, EmbedRequest, EmbedResponse, GenerateRequest, GenerateResponse, ListResponse, ProcessResponse, ProgressResponse, PullRequest, PushRequest, RerankRequest, RerankResponse, ShowRequest, ShowResponse, StatusResponse, TokenizeRequest, TokenizeResponse, VersionResponse } from './types.js';
/** Bytes that can become a blob on the server. */
export type BlobData = Blob | ArrayBuffer | ArrayBufferView;
/** Base64 text for bytes, in slices so a large image does not overflow the call stack. */
export declare function toBase64(bytes: Uint8Array): string;
/** `sha256:<hex>`, the digest form blob URLs and manifests use. */
export declare function sha256Digest(hash: ArrayBuffer | Uint8Array): string;
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
export declare class Pasture {
    protected readonly transport: Transport;
    /** Controllers of this client's streaming requests that have not finished yet. */
    private readonly inFlight;
    constructor(config?: Partial<Config>);
    /** The server's base URL, e.g. `http://127.0.0.1:11434`. */
    get host(): string;
    /** Abort every stream this client has open (each one's loop throws an `AbortError`). */
    abort(): void;
    /**
     * POST a request that may stream: its answer, or an iterator over its NDJSON parts.
     * The official client's default is kept: no streaming unless `stream: true`.
     */
    protected processStreamableRequest<T extends object>(path: string, request: {
        stream?: boolean;
    } & Record<string, unknown>): Promise<T | AbortableAsyncIterator<T>>;
    /** Base64 text for an image given as bytes or as base64 text already. */
    encodeImage(image: Uint8Array | string): Promise<string>;
    private encodeImages;
    private encodeMessages;
    /** Complete a prompt; an abortable async iterator of partial responses with `stream: true`. */
    generate(request: GenerateRequest & {
        stream: true;
    }): Promise<AbortableAsyncIterator<GenerateResponse>>;
    generate(request: GenerateRequest & {
        stream?: false;
    }): Promise<GenerateResponse>;
    generate(request: GenerateRequest): Promise<GenerateResponse | AbortableAsyncIterator<GenerateResponse>>;
    /** Answer a conversation; message images may be bytes or base64 text. */
    chat(request: ChatRequest & {
        stream: true;
    }): Promise<AbortableAsyncIterator<ChatResponse>>;
    chat(request: ChatRequest & {
        stream?: false;
    }): Promise<ChatResponse>;
    chat(request: ChatRequest): Promise<ChatResponse | AbortableAsyncIterator<ChatResponse>>;
    /** Embedding vectors (unit length) for one text or a batch. */
    embed(request: EmbedRequest): Promise<EmbedResponse>;
    /** The legacy single-vector endpoint (not normalised); prefer `embed`. */
    embeddings(request: EmbeddingsRequest): Promise<EmbeddingsResponse>;
    /** Beyond Ollama: the token ids the model's tokenizer makes of `content`. */
    tokenize(request: TokenizeRequest): Promise<TokenizeResponse>;
    /** Beyond Ollama: the text of token ids; an id outside the vocabulary is a 400. */
    detokenize(request: DetokenizeRequest): Promise<DetokenizeResponse>;
    /** `documents` ordered by a reranker model's relevance to `query`, best first (Pasture's
     *  `/api/rerank`; Ollama has none). */
    rerank(request: RerankRequest): Promise<RerankResponse>;
    /** Download a model from its registry. */
    pull(request: PullRequest & {
        stream: true;
    }): Promise<AbortableAsyncIterator<ProgressResponse>>;
    pull(request: PullRequest & {
        stream?: false;
    }): Promise<ProgressResponse>;
    pull(request: PullRequest): Promise<ProgressResponse | AbortableAsyncIterator<ProgressResponse>>;
    /** Upload a model to its registry. */
    push(request: PushRequest & {
        stream: true;
    }): Promise<AbortableAsyncIterator<ProgressResponse>>;
    push(request: PushRequest & {
        stream?: false;
    }): Promise<ProgressResponse>;
    push(request: PushRequest): Promise<ProgressResponse | AbortableAsyncIterator<ProgressResponse>>;
    /**
     * Create a model from another (`from`) or from blobs already uploaded (`files`, from
     * `createBlob`), with an optional template, system prompt, parameters, messages and
     * license. `createFromModelfile` in `pasture/node` does the uploading for you.
     */
    create(request: CreateRequest & {
        stream: true;
    }): Promise<AbortableAsyncIterator<ProgressResponse>>;
    create(request: CreateRequest & {
        stream?: false;
    }): Promise<ProgressResponse>;
    create(request: CreateRequest): Promise<ProgressResponse | AbortableAsyncIterator<ProgressResponse>>;
    /**
     * Make bytes available to the server as a blob (for `create`'s `files`); returns its
     * digest. Nothing is uploaded when the server already has it.
     */
    createBlob(data: BlobData): Promise<string>;
    /** Whether the server has the blob `digest` (`HEAD /api/blobs/<digest>`). */
    blobExists(digest: string): Promise<boolean>;
    /** Upload `body` as blob `digest` unless the server has it; true if it was sent. */
    protected uploadBlob(digest: string, body: Blob): Promise<boolean>;
    /** The models in the server's store. */
    list(): Promise<ListResponse>;
    /** A model's details, Modelfile, parameters, template, capabilities and metadata. */
    show(request: ShowRequest): Promise<ShowResponse>;
    /** The models loaded in memory right now. */
    ps(): Promise<ProcessResponse>;
    /** Copy a model under a new name (the blobs are shared, not duplicated). */
    copy(request: CopyRequest): Promise<StatusResponse>;
    /** Delete a model (its blobs go when no other model uses them). */
    delete(request: DeleteRequest): Promise<StatusResponse>;
    /** The server's version. */
    version(): Promise<VersionResponse>;
}
