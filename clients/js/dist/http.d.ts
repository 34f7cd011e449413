/**
 * How a request travels: headers, the connection-failure check and the status check.
 *
 * Every call of the client goes through `Transport.request`, so a refused connection and
 * an error status are reported the same way whatever the endpoint.
 */
import type { Fetch } from './types.js';
export interface RequestOptions {
    /** A JSON value (serialised here) or a raw body such as a `Blob`. */
    json?: unknown;
    body?: BodyInit;
    headers?: Record<string, string>;
    signal?: AbortSignal;
}
/** The caller's headers over the JSON defaults, plus `PASTURE_API_KEY` as a bearer token. */
export declare function defaultHeaders(extra: HeadersInit | undefined): Record<string, string>;
export declare class Transport {
    readonly host: string;
    readonly headers: Record<string, string>;
    readonly fetch: Fetch;
    constructor(host: string, headers: Record<string, string>, fetch: Fetch);
    /** Send one request; the response, if it answered 2xx. `allow` lists other accepted codes. */
    request(method: string, path: string, options?: RequestOptions, allow?: number[]): Promise<Response>;
    /** Send a request and parse its JSON answer. */
    json<T>(method: string, path: string, options?: RequestOptions): Promise<T>;
}
