// Host strings, read as OLLAMA_HOST is (no server needed).

import assert from 'node:assert/strict'
import { test } from 'node:test'

import { DEFAULT_HOST, formatHost } from 'pasture'

test('host strings get a scheme and the default port', () => {
  const cases = {
    '': DEFAULT_HOST,
    'example.com': 'http://example.com:11434',
    'example.com:8080': 'http://example.com:8080',
    ':8080': 'http://127.0.0.1:8080',
    '0.0.0.0': 'http://0.0.0.0:11434',
    'http://example.com': 'http://example.com:11434',
    'https://example.com': 'https://example.com:443',
    'https://example.com/pasture/': 'https://example.com:443/pasture',
    '[::1]:9000': 'http://[::1]:9000',
    '[::1]': 'http://[::1]:11434',
    'http://user:pw@example.com:1234': 'http://user:pw@example.com:1234',
    '  127.0.0.1:11434/  ': 'http://127.0.0.1:11434',
  }
  for (const [input, expected] of Object.entries(cases)) {
    assert.equal(formatHost(input), expected, `formatHost(${JSON.stringify(input)})`)
  }
  assert.equal(formatHost(undefined), DEFAULT_HOST)
})

test('a host with a bad port is refused with a TypeError naming it', () => {
  assert.throws(() => formatHost('example.com:port'), { name: 'TypeError', message: /example\.com:port/ })
})
