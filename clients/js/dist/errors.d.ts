/**
 * The two ways a call to the server fails, as seen by a client.
 *
 * `ResponseError` means the server answered and said no (its `error` message and HTTP
 * status, as the official `ollama` client reports them); `ServerNotRunningError` means
 * nothing answered at all, which on a desktop almost always means `pasture serve` was
 * never started, so the message says exactly that.
 */
/**
 * The server refused a request: `error` is its message, `status_code` its HTTP status.
 * An error reported inside a stream, after the 200 status was sent, has `status_code` -1.
 */
export declare class ResponseError extends Error {
    readonly error: string;
    readonly status_code: number;
    constructor(error: string, status_code?: number);
}
/** Nothing answered at the server's address (connection refused, unknown host, …). */
export declare class ServerNotRunningError extends Error {
    readonly url: string;
    constructor(url: string, cause?: unknown);
}
