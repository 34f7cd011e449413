/**
 * Streaming responses: NDJSON lines read off a `ReadableStream`, handed out by an async
 * iterator that can be aborted.
 *
 * A stream is only complete when its last line says so (`done: true` for generate and
 * chat, `status: "success"` for create, pull and push); a connection that just ends is an
 * error, never a silently short answer. An `{"error": …}` line throws `ResponseError`.
 */
/** Each JSON object in an NDJSON byte stream; a line that is not JSON throws. */
export declare function parseNDJSON(body: ReadableStream<Uint8Array>): AsyncGenerator<unknown>;
/**
 * The parts of a streamed response, for `for await`; `abort()` stops it (the connection
 * is closed, so the server stops generating) and the loop then throws an `AbortError`.
 * Leaving the loop early (`break`) closes the connection too.
 */
export declare class AbortableAsyncIterator<T extends object> implements AsyncIterable<T> {
    private readonly abortController;
    private readonly itr;
    private readonly doneCallback;
    constructor(abortController: AbortController, itr: AsyncGenerator<unknown>, doneCallback: () => void);
    /** Stop this stream. */
    abort(): void;
    [Symbol.asyncIterator](): AsyncGenerator<T, void, undefined>;
}
