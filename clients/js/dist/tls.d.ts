/**
 * https with a certificate authority of your own, in Node: a server serving its own
 * (self-signed) certificate, as `PASTURE_TLS_CERT` makes Pasture do.
 *
 * Node's `fetch` trusts only its built-in roots (and `NODE_EXTRA_CA_CERTS`, read once at
 * start-up), with no per-request option, so `trustingFetch` sends https requests through
 * `node:https` with the extra certificates and answers with a standard `Response`, its
 * body streamed; plain http keeps the platform's `fetch`.
 */
import type { Fetch } from './types.js';
/** A `fetch` that also trusts the PEM certificates in `ca` for https servers. */
export declare function trustingFetch(ca: string | Uint8Array): Fetch;
