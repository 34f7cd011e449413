// The Modelfile parser reads what Ollama's (and Pasture's Python parser) reads, types
// PARAMETER values as the server expects, and reports errors by line (no server needed).

import assert from 'node:assert/strict'
import { test } from 'node:test'

import { ModelfileError, parseModelfile, parseParameter } from 'pasture/node'

const FULL = `# a comment
FROM llama3.2
ADAPTER ./lora.gguf
PARAMETER temperature 0.2
PARAMETER stop "<|im_end|>"
PARAMETER stop <|endoftext|>
template """{{ if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}"""
SYSTEM You are "helpful".
MESSAGE user Is the sky blue?
MESSAGE assistant Yes.
LICENSE """MIT
License"""
LICENSE Apache
REQUIRES 0.14.0
`

const simple = (commands) => commands.map(({ name, args, line, key }) => [name, key, args, line])

test('every instruction is read with its key and line', () => {
  assert.deepEqual(simple(parseModelfile(FULL)), [
    ['from', '', 'llama3.2', 2],
    ['adapter', '', './lora.gguf', 3],
    ['parameter', 'temperature', '0.2', 4],
    ['parameter', 'stop', '<|im_end|>', 5],
    ['parameter', 'stop', '<|endoftext|>', 6],
    ['template', '', '{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}', 7],
    ['system', '', 'You are "helpful".', 10],
    ['message', 'user', 'Is the sky blue?', 11],
    ['message', 'assistant', 'Yes.', 12],
    ['license', '', 'MIT\nLicense', 13],
    ['license', '', 'Apache', 15],
    ['requires', '', '0.14.0', 16],
  ])
})

test('values bare and quoted read as Ollama reads them', () => {
  const cases = [
    ['SYSTEM   spaced out  ', 'spaced out'],
    ['SYSTEM "  kept spaces  "', '  kept spaces  '],
    ['SYSTEM ""', ''],
    ['SYSTEM """"""', ''],
    ['SYSTEM "multi\nline"', 'multi\nline'],
    ['SYSTEM """a "quoted" word"""', 'a "quoted" word'],
    ['SYSTEM """\nfirst\n\nthird\n"""', '\nfirst\n\nthird\n'],
    ['SYSTEM a\\nb', 'a\\nb'],
    ['SYSTEM tab\there', 'tab\there'],
    ['SYSTEM bell\x07gone', 'bellgone'],
    ['SYSTEM say "hi"', 'say "hi"'],
    ['SYSTEM # not a comment', '# not a comment'],
    ['SYSTEM héllo wörld ✓', 'héllo wörld ✓'],
  ]
  for (const [text, value] of cases) {
    assert.equal(parseModelfile(`FROM m\n${text}`).at(-1).args, value, JSON.stringify(text))
  }
})

test('CRLF line endings, a BOM, comments and case-insensitive instructions', () => {
  const commands = parseModelfile('\ufeff# c\r\nfrom m\r\nSyStEm """a\r\nb"""\r\nPARAMETER top_k 5\r\n')
  assert.deepEqual(simple(commands), [
    ['from', '', 'm', 2], ['system', '', 'a\r\nb', 3], ['parameter', 'top_k', '5', 5],
  ])
})

test('errors name the line', () => {
  const cases = [
    ['FROM m\nSYSTEM hi\nINSTRUCTION x\n', 3, 'command must be one of'],
    ['FROM m\nSYSTEM\nx', 2, 'command must be one of'],
    ['FROM m\nMESSAGE tool hi\n', 2, 'message role must be one of'],
    ['FROM m\nMESSAGE user: hi\n', 2, 'message role must be one of'],
    ['FROM m\nPARAMETER top-k 5\n', 2, 'invalid or missing parameter name'],
    ['FROM m\nSYSTEM """never closed\nmore\n', 2, 'unterminated'],
    ['FROM m\n\nSYSTEM "open\n', 3, 'unterminated'],
  ]
  for (const [text, line, message] of cases) {
    assert.throws(() => parseModelfile(text), (error) => {
      assert.ok(error instanceof ModelfileError, JSON.stringify(text))
      assert.ok(error.message.startsWith(`(line ${line}): `), `${JSON.stringify(text)}: ${error.message}`)
      assert.ok(error.message.includes(message), error.message)
      return true
    })
  }
  assert.throws(() => parseModelfile('SYSTEM hi\n'), { name: 'ModelfileError', message: 'no FROM line' })
})

test('PARAMETER values are typed as the server checks them', () => {
  assert.equal(parseParameter('num_ctx', '4096'), 4096)
  assert.equal(parseParameter('Seed', '-1'), -1)
  assert.equal(parseParameter('temperature', '0.25'), 0.25)
  assert.equal(parseParameter('top_p', '1e-1'), 0.1)
  assert.equal(parseParameter('use_mmap', 'false'), false)
  assert.equal(parseParameter('use_mmap', 'T'), true)
  assert.equal(parseParameter('stop', ' <|im_end|> '), '<|im_end|>')
  assert.equal(parseParameter('mirostat', '2'), undefined) // retired: accepted, ignored
  for (const [name, raw] of [['num_ctx', '4k'], ['num_ctx', '1.5'], ['temperature', 'hot'],
    ['temperature', 'Infinity'], ['use_mmap', 'yes'], ['top_k', '0x10']]) {
    assert.throws(() => parseParameter(name, raw, 7), {
      name: 'ModelfileError', message: new RegExp(`^\\(line 7\\): invalid value "${raw}" for parameter "${name}"`),
    })
  }
  assert.throws(() => parseParameter('warmth', '1', 3), { message: '(line 3): unknown parameter "warmth"' })
})
