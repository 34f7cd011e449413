// generate, chat, structured output, tools and embeddings against the live server.

import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { after, before, describe, test } from 'node:test'

import { AbortableAsyncIterator, ResponseError } from 'pasture'

import { MODEL, RERANKER, SHORT, client, collect, scratchName } from './helpers.mjs'

const pasture = client()
const hello = [{ role: 'user', content: 'Say hello.' }]

describe('generate', () => {
  test('without streaming returns one final response with text and metrics', async () => {
    const reply = await pasture.generate({ model: MODEL, prompt: 'Why is the sky blue?', options: SHORT })
    assert.equal(reply.done, true)
    assert.equal(reply.model, MODEL)
    assert.ok(reply.response.length > 0)
    assert.ok(reply.eval_count > 0 && reply.eval_count <= SHORT.num_predict)
    assert.ok(Array.isArray(reply.context))
  })

  test('with stream: true yields partial responses ending in done', async () => {
    const stream = await pasture.generate({
      model: MODEL, prompt: 'Why is the sky blue?', stream: true, options: SHORT,
    })
    assert.ok(stream instanceof AbortableAsyncIterator)
    const parts = await collect(stream)
    assert.ok(parts.length >= 2)
    assert.ok(parts.slice(0, -1).every((part) => part.done === false))
    const last = parts.at(-1)
    assert.equal(last.done, true)
    assert.ok(last.eval_count > 0)
    assert.ok(parts.map((part) => part.response).join('').length > 0)
  })

  test('a JSON schema format gives output that parses and matches it', async () => {
    const reply = await pasture.generate({
      model: MODEL, prompt: 'What color is the sky? Answer in JSON.', format: COLOR_SCHEMA,
      options: { ...SHORT, num_predict: 16 },
    })
    assert.ok(['red', 'blue'].includes(JSON.parse(reply.response).color))
  })
})

const COLOR_SCHEMA = {
  type: 'object',
  properties: { color: { type: 'string', enum: ['red', 'blue'] } },
  required: ['color'],
  additionalProperties: false,
}

describe('chat', () => {
  test('without streaming returns the assistant message', async () => {
    const reply = await pasture.chat({ model: MODEL, messages: hello, options: SHORT })
    assert.equal(reply.done, true)
    assert.equal(reply.message.role, 'assistant')
    assert.ok(reply.message.content.length > 0)
    assert.ok(reply.prompt_eval_count > 0)
  })

  test('with stream: true yields message pieces ending in done', async () => {
    const parts = await collect(
      await pasture.chat({ model: MODEL, messages: hello, stream: true, options: SHORT }),
    )
    assert.ok(parts.length >= 2)
    assert.equal(parts.at(-1).done, true)
    assert.ok(parts.every((part) => part.message.role === 'assistant'))
    assert.ok(parts.map((part) => part.message.content).join('').length > 0)
  })

  test('a JSON schema format gives a message that parses and matches it', async () => {
    const reply = await pasture.chat({
      model: MODEL, format: COLOR_SCHEMA, options: { ...SHORT, num_predict: 16 },
      messages: [{ role: 'user', content: 'What color is the sky? Answer in JSON.' }],
    })
    assert.deepEqual(Object.keys(JSON.parse(reply.message.content)), ['color'])
  })

  test('tools on a model whose template cannot use them are refused with 400', async () => {
    await assert.rejects(
      pasture.chat({ model: MODEL, messages: hello, tools: [WEATHER_TOOL], options: SHORT }),
      (error) => error instanceof ResponseError && error.status_code === 400 &&
        /does not support tools/.test(error.error),
    )
  })
})

const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: {
      type: 'object',
      required: ['city'],
      properties: { city: { type: 'string', description: 'City' } },
    },
  },
}

describe('chat with tools', () => {
  // The model's own template has no tools; a copy with a tools-aware (Qwen 2.5) template does.
  const toolModel = scratchName('tools')

  before(async () => {
    const template = await readFile(
      new URL('../../../tests/unit/templates/qwen2.5-tools.gotmpl', import.meta.url), 'utf8',
    )
    await pasture.create({ model: toolModel, from: MODEL, template })
  })

  after(async () => {
    await pasture.delete({ model: toolModel })
  })

  test('tool definitions and a tool-call round trip reach the template', async () => {
    const messages = [
      { role: 'user', content: 'Weather in Paris?' },
      {
        role: 'assistant', content: '',
        tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }],
      },
      { role: 'tool', content: '18 degrees and sunny', tool_name: 'get_weather' },
    ]
    // `_debug_render_only` (a server debugging field) returns the prompt instead of generating.
    const rendered = await pasture.chat({
      model: toolModel, messages, tools: [WEATHER_TOOL], _debug_render_only: true,
    })
    const prompt = rendered._debug_info.rendered_template
    assert.match(prompt, /"name":"get_weather"/)
    assert.match(prompt, /"city":"Paris"/)
    assert.match(prompt, /18 degrees and sunny/)

    const reply = await pasture.chat({ model: toolModel, messages, tools: [WEATHER_TOOL], options: SHORT })
    assert.equal(reply.done, true)
    assert.equal(reply.message.role, 'assistant')
    for (const call of reply.message.tool_calls ?? []) assert.equal(typeof call.function.name, 'string')
  })
})

describe('embeddings', () => {
  test('embed returns one unit vector per input', async () => {
    const reply = await pasture.embed({ model: MODEL, input: ['hello world', 'blue sky'] })
    assert.equal(reply.embeddings.length, 2)
    const [first, second] = reply.embeddings
    assert.equal(first.length, second.length)
    assert.ok(first.length > 0)
    const norm = Math.hypot(...first)
    assert.ok(Math.abs(norm - 1) < 1e-3, `norm ${norm}`)
    assert.notDeepEqual(first, second)
    assert.ok(reply.prompt_eval_count > 0)
  })

  test('embed with dimensions truncates the vector', async () => {
    const reply = await pasture.embed({ model: MODEL, input: 'sky', dimensions: 8 })
    assert.equal(reply.embeddings[0].length, 8)
  })

  test('the legacy embeddings call returns the raw vector', async () => {
    const reply = await pasture.embeddings({ model: MODEL, prompt: 'sky' })
    const unit = (await pasture.embed({ model: MODEL, input: 'sky' })).embeddings[0]
    assert.equal(reply.embedding.length, unit.length)
    const norm = Math.hypot(...reply.embedding)
    assert.ok(reply.embedding.every((value, i) => Math.abs(value / norm - unit[i]) < 1e-3))
  })
})

describe('rerank', () => {
  test('orders documents best first and keeps top_n, with their texts when asked', async () => {
    const documents = ['the cat sat on the mat', 'stock prices fell', 'a cat', 'blue sky']
    const all = await pasture.rerank({ model: RERANKER, query: 'cat', documents })
    assert.equal(all.results.length, documents.length)
    assert.deepEqual(all.results.map((r) => r.index).sort(), [0, 1, 2, 3])
    const scores = all.results.map((r) => r.relevance_score)
    assert.deepEqual(scores, [...scores].sort((a, b) => b - a))
    const top = await pasture.rerank({
      model: RERANKER, query: 'cat', documents, top_n: 2, return_documents: true,
    })
    assert.deepEqual(top.results.map((r) => r.index), all.results.slice(0, 2).map((r) => r.index))
    assert.deepEqual(top.results.map((r) => r.document), top.results.map((r) => documents[r.index]))
  })
})
