// Failures and aborts against the live server: what a caller sees when things go wrong.

import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { describe, test } from 'node:test'

import { Pasture, ResponseError, ServerNotRunningError } from 'pasture'

import { MODEL, SERVER_URL, SHORT, client, recordingFetch } from './helpers.mjs'

const pasture = client()
const isAbort = (error) => error?.name === 'AbortError'

/** A port nothing listens on: bound by the OS, then released. */
async function closedPort() {
  const server = createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function generateWorks(target = pasture) {
  const reply = await target.generate({ model: MODEL, prompt: 'Hi', options: SHORT })
  assert.equal(reply.done, true)
  assert.ok(reply.response.length > 0)
}

describe('errors', () => {
  test('an unknown model is a ResponseError with status 404 and the server message', async () => {
    const unknown = 'no-such-model:latest'
    for (const call of [
      () => pasture.generate({ model: unknown, prompt: 'Hi' }),
      () => pasture.chat({ model: unknown, messages: [], stream: true }),
      () => pasture.show({ model: unknown }),
    ]) {
      await assert.rejects(call(), (error) => {
        assert.ok(error instanceof ResponseError)
        assert.equal(error.name, 'ResponseError')
        assert.equal(error.status_code, 404)
        assert.match(error.error, /not found/)
        assert.equal(error.message, error.error)
        return true
      })
    }
  })

  test('bad input is a ResponseError with status 400', async () => {
    await assert.rejects(
      pasture.generate({ model: MODEL, prompt: 'Hi', options: { num_predict: 'many' } }),
      (error) => error instanceof ResponseError && error.status_code === 400 &&
        /num_predict/.test(error.error),
    )
  })

  test('no server at the address is a ServerNotRunningError saying how to start one', async () => {
    const host = `http://127.0.0.1:${await closedPort()}`
    const nobody = new Pasture({ host })
    for (const call of [
      () => nobody.list(),
      () => nobody.generate({ model: MODEL, prompt: 'Hi', stream: true }),
    ]) {
      await assert.rejects(call(), (error) => {
        assert.ok(error instanceof ServerNotRunningError)
        assert.equal(error.url, host)
        assert.match(error.message, new RegExp(`${host}.*not running.*pasture serve`))
        assert.match(error.message, /ECONNREFUSED/)
        return true
      })
    }
  })

  test('an error line inside a stream throws ResponseError', async () => {
    // A server fails mid-stream only when its runner breaks; the real stream is kept and an
    // error line substituted for its end, the one fault here not produced for real.
    const faulty = client({ fetch: rewriteStream((lines) => [lines[0], '{"error":"runner crashed"}']) })
    const stream = await faulty.generate({ model: MODEL, prompt: 'Hi', stream: true, options: SHORT })
    const seen = []
    await assert.rejects(
      (async () => { for await (const part of stream) seen.push(part) })(),
      (error) => error instanceof ResponseError && error.error === 'runner crashed' &&
        error.status_code === -1,
    )
    assert.equal(seen.length, 1)
  })

  test('a stream that ends before done throws instead of passing for complete', async () => {
    // A dropped connection, simulated by cutting the real stream after its first line.
    const cut = client({ fetch: rewriteStream((lines) => lines.slice(0, 1)) })
    const stream = await cut.chat({
      model: MODEL, messages: [{ role: 'user', content: 'Hi' }], stream: true, options: SHORT,
    })
    await assert.rejects(
      (async () => { for await (const part of stream) assert.equal(part.done, false) })(),
      /ended before its final/,
    )
  })
})

/** A fetch whose NDJSON response lines are rewritten by `edit` (for faults only). */
function rewriteStream(edit) {
  return async (input, init) => {
    const response = await fetch(input, init)
    const lines = (await response.text()).split('\n').filter(Boolean)
    return new Response(edit(lines).join('\n') + '\n', { status: response.status, headers: response.headers })
  }
}

describe('abort', () => {
  test('aborting a stream stops it with an AbortError, and the next request succeeds', async () => {
    const stream = await pasture.generate({
      model: MODEL, prompt: 'Count to fifty.', stream: true, options: { ...SHORT, num_predict: 16 },
    })
    const seen = []
    await assert.rejects(
      (async () => {
        for await (const part of stream) {
          seen.push(part)
          stream.abort()
        }
      })(),
      isAbort,
    )
    assert.equal(seen.length, 1)
    assert.equal(seen[0].done, false)
    await generateWorks()
  })

  test('client.abort() stops every stream of that client, queued ones too', async () => {
    const own = client()
    const first = await own.chat({
      model: MODEL, messages: [{ role: 'user', content: 'Count to fifty.' }], stream: true,
      options: { ...SHORT, num_predict: 16 },
    })
    // The server runs one request at a time, so this one waits in its queue.
    const second = own.generate({ model: MODEL, prompt: 'Hi', stream: true, options: SHORT })
    const iterator = first[Symbol.asyncIterator]()
    assert.equal((await iterator.next()).value.done, false)
    own.abort()
    await assert.rejects(iterator.next(), isAbort)
    await assert.rejects(
      (async () => { for await (const part of await second) assert.ok(part) })(),
      isAbort,
    )
    await generateWorks()
    await generateWorks(own)
  })

  test('leaving a stream loop early closes it, and the next request succeeds', async () => {
    const stream = await pasture.generate({
      model: MODEL, prompt: 'Count to fifty.', stream: true, options: { ...SHORT, num_predict: 16 },
    })
    for await (const part of stream) {
      assert.equal(part.done, false)
      break
    }
    await generateWorks()
  })
})

describe('configuration', () => {
  test('headers and the fetch option are used for every request', async () => {
    const { fetch, requests } = recordingFetch()
    const custom = client({ fetch, headers: { Authorization: 'Bearer secret', 'X-Trace': 'abc' } })
    await custom.version()
    await custom.list()
    assert.deepEqual(requests.map((request) => request.path), ['/api/version', '/api/tags'])
    for (const { headers } of requests) {
      assert.equal(headers.get('authorization'), 'Bearer secret')
      assert.equal(headers.get('x-trace'), 'abc')
      assert.match(headers.get('user-agent'), /^pasture-js\//)
    }
  })

  test('PASTURE_API_KEY becomes a bearer token; an explicit header wins', async () => {
    const previous = process.env.PASTURE_API_KEY
    process.env.PASTURE_API_KEY = 'from-env'
    try {
      const { fetch, requests } = recordingFetch()
      await client({ fetch }).version()
      await client({ fetch, headers: { authorization: 'Bearer explicit' } }).version()
      assert.deepEqual(requests.map((request) => request.headers.get('authorization')),
        ['Bearer from-env', 'Bearer explicit'])
    } finally {
      if (previous === undefined) delete process.env.PASTURE_API_KEY
      else process.env.PASTURE_API_KEY = previous
    }
  })

  test('PASTURE_HOST is the default host in Node', async () => {
    const previous = process.env.PASTURE_HOST
    process.env.PASTURE_HOST = SERVER_URL
    try {
      const fromEnv = new Pasture()
      assert.equal(fromEnv.host, new URL(SERVER_URL).origin)
      assert.match((await fromEnv.version()).version, /\d/)
    } finally {
      if (previous === undefined) delete process.env.PASTURE_HOST
      else process.env.PASTURE_HOST = previous
    }
  })
})
