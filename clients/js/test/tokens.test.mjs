// Beyond Ollama: tokenize / detokenize, and the per-request `stats`, against the live server.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { ResponseError } from 'pasture'

import { MODEL, SHORT, client } from './helpers.mjs'

const pasture = client()

describe('tokens', () => {
  test('tokenize and detokenize round-trip a text', async () => {
    const { tokens } = await pasture.tokenize({ model: MODEL, content: 'Hello, world!' })
    assert.ok(tokens.length > 0 && tokens.every(Number.isInteger))
    const { content } = await pasture.detokenize({ model: MODEL, tokens })
    assert.equal(content, 'Hello, world!')
  })

  test('an id outside the vocabulary is a 400', async () => {
    await assert.rejects(
      pasture.detokenize({ model: MODEL, tokens: [10_000_000] }),
      (error) => error instanceof ResponseError && error.status_code === 400 &&
        /outside this model's vocabulary/.test(error.error),
    )
  })
})

describe('stats', () => {
  test('the final response carries tokens a second and the time to first token', async () => {
    const reply = await pasture.generate({ model: MODEL, prompt: 'Hi', options: SHORT })
    const { stats } = reply
    assert.ok(stats.tokens_per_second > 0)
    assert.ok(Math.abs(stats.tokens_per_second - reply.eval_count / (reply.eval_duration / 1e9)) < 0.01)
    assert.ok(stats.time_to_first_token_seconds > 0)
    assert.ok(stats.time_to_first_token_seconds <= reply.total_duration / 1e9)
  })
})
