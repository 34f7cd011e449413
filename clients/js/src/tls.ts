/**
 * https with a certificate authority of your own, in Node: a server serving its own
 * (self-signed) certificate, as `PASTURE_TLS_CERT` makes Pasture do.
 *
 * Node's `fetch` trusts only its built-in roots (and `NODE_EXTRA_CA_CERTS`, read once at
 * start-up), with no per-request option, so `trustingFetch` sends https requests through
 * `node:https` with the extra certificates and answers with a standard `Response`, its
 * body streamed; plain http keeps the platform's `fetch`.
 */

import { request } from 'node:https'
import { rootCertificates } from 'node:tls'
import { Readable } from 'node:stream'

import type { Fetch } from './types.js'

/** A `fetch` that also trusts the PEM certificates in `ca` for https servers. */
export function trustingFetch(ca: string | Uint8Array): Fetch {
  const authorities = [...rootCertificates, Buffer.from(ca).toString()]
  return (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    if (url.protocol !== 'https:') return fetch(input, init)
    return new Promise<Response>((resolve, reject) => {
      const headers: Record<string, string> = {}
      new Headers(init.headers).forEach((value, key) => {
        headers[key] = value
      })
      const sent = request(url, {
        method: init.method ?? 'GET',
        headers,
        ca: authorities,
        signal: init.signal ?? undefined,
      }, (response) => {
        const received = new Headers()
        for (const [key, value] of Object.entries(response.headers)) {
          for (const item of [value ?? []].flat()) received.append(key, item)
        }
        const status = response.statusCode ?? 502
        const empty = init.method === 'HEAD' || status === 204 || status === 304
        if (empty) response.resume()
        resolve(new Response(empty ? null : (Readable.toWeb(response) as ReadableStream), {
          status, statusText: response.statusMessage, headers: received,
        }))
      })
      sent.on('error', (error: Error & { name: string }) => {
        // As `fetch` fails: an abort as itself, a network error as a TypeError with a cause.
        reject(error.name === 'AbortError' ? error : new TypeError('fetch failed', { cause: error }))
      })
      const body = init.body
      if (body === undefined || body === null) sent.end()
      else if (typeof body === 'string' || body instanceof Uint8Array) sent.end(body)
      else if (body instanceof Blob) Readable.fromWeb(body.stream() as never).pipe(sent)
      else reject(new TypeError('trustingFetch sends string, bytes or Blob bodies only'))
    })
  }
}
