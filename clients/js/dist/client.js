/**
 * `Pasture`: the client, with the official `ollama` package's methods and arguments, for
 * browsers and Node alike (only the platform `fetch`, `ReadableStream`, `AbortController`
 * and Web Crypto are used). The `pasture/node` entry point adds file paths on top.
 */
import { ResponseError } from './errors.js';
import { env, formatHost } from './host.js';
import { defaultHeaders, Transport } from './http.js';
import { AbortableAsyncIterator, parseNDJSON } from './stream.js';
/** Base64 text for bytes, in slices so a large image does not overflow the call stack. */
export function toBase64(bytes) {
    let binary = '';
    for (let start = 0; start < bytes.length; start += 0x8000) {
        binary += String.fromCharCode(...bytes.subarray(start, start + 0x8000));
    }
    return btoa(binary);
}
function toBlob(data) {
    if (data instanceof Blob)
        return data;
    if (ArrayBuffer.isView(data)) {
        return new Blob([new Uint8Array(data.buffer, data.byteOffset, data.byteLength)]);
    }
    return new Blob([data]);
}
/** `sha256:<hex>`, the digest form blob URLs and manifests use. */
export function sha256Digest(hash) {
    const bytes = hash instanceof Uint8Array ? hash : new Uint8Array(hash);
    return `sha256:${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
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
    transport;
    /** Controllers of this client's streaming requests that have not finished yet. */
    inFlight = new Set();
    constructor(config = {}) {
        this.transport = new Transport(formatHost(config.host || env('HOST')), defaultHeaders(config.headers), config.fetch ?? ((input, init) => fetch(input, init)));
    }
    /** The server's base URL, e.g. `http://127.0.0.1:11434`. */
    get host() {
        return this.transport.host;
    }
    /** Abort every stream this client has open (each one's loop throws an `AbortError`). */
    abort() {
        for (const controller of this.inFlight)
            controller.abort();
        this.inFlight.clear();
    }
    /**
     * POST a request that may stream: its answer, or an iterator over its NDJSON parts.
     * The official client's default is kept: no streaming unless `stream: true`.
     */
    async processStreamableRequest(path, request) {
        const body = { ...request, stream: request.stream ?? false };
        if (!body.stream)
            return this.transport.json('POST', path, { json: body });
        const controller = new AbortController();
        this.inFlight.add(controller);
        const release = () => {
            this.inFlight.delete(controller);
        };
        let response;
        try {
            response = await this.transport.request('POST', path, {
                json: body,
                signal: controller.signal,
            });
        }
        catch (error) {
            release();
            throw error;
        }
        if (!response.body) {
            release();
            throw new ResponseError('the server sent a streaming response without a body');
        }
        return new AbortableAsyncIterator(controller, parseNDJSON(response.body), release);
    }
    /** Base64 text for an image given as bytes or as base64 text already. */
    async encodeImage(image) {
        return typeof image === 'string' ? image : toBase64(image);
    }
    async encodeImages(images) {
        return images && Promise.all(images.map((image) => this.encodeImage(image)));
    }
    async encodeMessages(messages) {
        if (!messages)
            return undefined;
        return Promise.all(messages.map(async (message) => message.images ? { ...message, images: await this.encodeImages(message.images) } : message));
    }
    async generate(request) {
        const images = await this.encodeImages(request.images);
        return this.processStreamableRequest('/api/generate', {
            ...request,
            ...(images ? { images } : {}),
        });
    }
    async chat(request) {
        const messages = await this.encodeMessages(request.messages);
        return this.processStreamableRequest('/api/chat', {
            ...request,
            ...(messages ? { messages } : {}),
        });
    }
    /** Embedding vectors (unit length) for one text or a batch. */
    async embed(request) {
        return this.transport.json('POST', '/api/embed', { json: request });
    }
    /** The legacy single-vector endpoint (not normalised); prefer `embed`. */
    async embeddings(request) {
        return this.transport.json('POST', '/api/embeddings', { json: request });
    }
    /** Beyond Ollama: the token ids the model's tokenizer makes of `content`. */
    async tokenize(request) {
        return this.transport.json('POST', '/api/tokenize', { json: request });
    }
    /** Beyond Ollama: the text of token ids; an id outside the vocabulary is a 400. */
    async detokenize(request) {
        return this.transport.json('POST', '/api/detokenize', { json: request });
    }
    /** `documents` ordered by a reranker model's relevance to `query`, best first (Pasture's
     *  `/api/rerank`; Ollama has none). */
    async rerank(request) {
        return this.transport.json('POST', '/api/rerank', { json: request });
    }
    async pull(request) {
        return this.processStreamableRequest('/api/pull', { ...request });
    }
    async push(request) {
        return this.processStreamableRequest('/api/push', { ...request });
    }
    async create(request) {
        const messages = await this.encodeMessages(request.messages);
        return this.processStreamableRequest('/api/create', {
            ...request,
            ...(messages ? { messages } : {}),
        });
    }
    /**
     * Make bytes available to the server as a blob (for `create`'s `files`); returns its
     * digest. Nothing is uploaded when the server already has it.
     */
    async createBlob(data) {
        const blob = toBlob(data);
        const digest = sha256Digest(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
        await this.uploadBlob(digest, blob);
        return digest;
    }
    /** Whether the server has the blob `digest` (`HEAD /api/blobs/<digest>`). */
    async blobExists(digest) {
        const response = await this.transport.request('HEAD', `/api/blobs/${digest}`, {}, [404]);
        return response.status !== 404;
    }
    /** Upload `body` as blob `digest` unless the server has it; true if it was sent. */
    async uploadBlob(digest, body) {
        if (await this.blobExists(digest))
            return false;
        const response = await this.transport.request('POST', `/api/blobs/${digest}`, {
            body,
            headers: { 'content-type': 'application/octet-stream' },
        });
        await response.body?.cancel();
        return true;
    }
    /** The models in the server's store. */
    async list() {
        return this.transport.json('GET', '/api/tags');
    }
    /** A model's details, Modelfile, parameters, template, capabilities and metadata. */
    async show(request) {
        return this.transport.json('POST', '/api/show', { json: request });
    }
    /** The models loaded in memory right now. */
    async ps() {
        return this.transport.json('GET', '/api/ps');
    }
    /** Copy a model under a new name (the blobs are shared, not duplicated). */
    async copy(request) {
        const response = await this.transport.request('POST', '/api/copy', { json: request });
        await response.body?.cancel();
        return { status: 'success' };
    }
    /** Delete a model (its blobs go when no other model uses them). */
    async delete(request) {
        const response = await this.transport.request('DELETE', '/api/delete', {
            json: { model: request.model },
        });
        await response.body?.cancel();
        return { status: 'success' };
    }
    /** The server's version. */
    async version() {
        return this.transport.json('GET', '/api/version');
    }
}
