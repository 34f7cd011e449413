// Shared set-up for the tests that talk to a live Pasture server.
//
// The server is real (the real engine and model): `tests/integration/test_js_client.py`
// starts one and runs `node --test` with PASTURE_TEST_URL and PASTURE_TEST_MODEL set (and
// PASTURE_TEST_REGISTRY, a registry's host:port, for registry.test.mjs). To run by hand:
// `PASTURE_TEST_URL=http://127.0.0.1:11434 PASTURE_TEST_MODEL=smollm2:135m
// node --test clients/js/test/` (see clients/js/README.md for the rest).

import { Pasture } from 'pasture/node'

/** An environment variable the tests cannot run without. */
export function required(name, what) {
  const value = process.env[name]
  if (!value) {
    throw new Error(
      `${name} is not set: these tests need ${what} ` +
        '(`make test` sets it; see clients/js/README.md)',
    )
  }
  return value
}

export const SERVER_URL = required('PASTURE_TEST_URL', 'a running Pasture server URL')
export const MODEL = required('PASTURE_TEST_MODEL', 'the name of a chat model on that server')

/** A reranker model on that server (rank pooling), for `rerank`. */
export const RERANKER = required('PASTURE_TEST_RERANKER', 'the name of a reranker model on that server')

/** Short, repeatable generations: the test machines have two shared cores. */
export const SHORT = { num_predict: 8, temperature: 0, seed: 1 }

export function client(config = {}) {
  return new Pasture({ host: SERVER_URL, ...config })
}

/** A `fetch` that records each request's method, path and headers, then sends it for real. */
export function recordingFetch() {
  const requests = []
  const recorder = async (input, init = {}) => {
    const url = new URL(String(input))
    requests.push({ method: init.method ?? 'GET', path: url.pathname, headers: new Headers(init.headers) })
    return fetch(input, init)
  }
  return { fetch: recorder, requests }
}

/** Every part of a stream, in order. */
export async function collect(stream) {
  const parts = []
  for await (const part of stream) parts.push(part)
  return parts
}

/** A unique model name for a test, so parallel files never collide. */
export function scratchName(label) {
  return `js-${label}-${process.pid}-${Math.random().toString(36).slice(2, 8)}:latest`
}
