// The streaming reader on hand-made byte streams (no server needed): lines split across
// chunks, multi-byte characters split across chunks, blank lines, bad lines.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import { AbortableAsyncIterator, Pasture, ResponseError } from 'pasture'

function bytesStream(chunks) {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk)
      controller.close()
    },
  })
}

/** An iterator over `text` delivered in chunks of `size` bytes. */
async function* lines(text, size) {
  const bytes = new TextEncoder().encode(text)
  const chunks = []
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.slice(i, i + size))
  const response = new Response(bytesStream(chunks))
  // The client's own reader, reached the way it reaches it: through a streaming response
  // (built here, since a real server's chunk boundaries cannot be chosen).
  const fake = new Pasture({ host: 'http://stream.invalid', fetch: async () => response })
  yield* await fake.generate({ model: 'm', prompt: '', stream: true })
}

const collect = async (iterable) => {
  const parts = []
  for await (const part of iterable) parts.push(part)
  return parts
}

test('lines and UTF-8 characters split across chunks are reassembled', async () => {
  const text = '{"response":"é🐑"}\n\n{"response":"中文"}\r\n{"response":"","done":true}'
  for (const size of [1, 2, 3, 5, 64]) {
    const parts = await collect(lines(text, size))
    assert.deepEqual(parts.map((part) => part.response), ['é🐑', '中文', ''], `chunk size ${size}`)
  }
})

test('a line that is not JSON throws ResponseError', async () => {
  await assert.rejects(collect(lines('{"response":"a"}\nnot json\n', 4)), ResponseError)
})

test('nothing after the final message is read', async () => {
  const parts = await collect(lines('{"status":"success"}\n{"status":"late"}\n', 7))
  assert.deepEqual(parts, [{ status: 'success' }])
})

test('the iterator class is exported for typing and instanceof checks', () => {
  assert.equal(typeof AbortableAsyncIterator.prototype.abort, 'function')
})
