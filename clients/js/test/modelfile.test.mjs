// The Modelfile parser reads what Ollama's (and Pasture's Python parser) reads, types
// PARAMETER values as the server expects, and reports errors by line (no server needed).
// tests/unit/modelfile_cases.json holds texts both parsers must read alike; the Python
// unit test tests/unit/test_modelfile_cases.py checks the same file.

import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { test } from 'node:test'

import { ModelfileError, parseModelfile, parseParameter, planCreate } from 'pasture/node'

const SHARED = JSON.parse(
  await readFile(new URL('../../../tests/unit/modelfile_cases.json', import.meta.url), 'utf8'),
)

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
  assert.equal(parseParameter('stop', ' <|im_end|> '), ' <|im_end|> ') // kept as written, as Ollama keeps it
  assert.equal(parseParameter('mirostat', '2'), undefined) // retired: accepted, ignored
  for (const [name, raw] of [['num_ctx', '4k'], ['num_ctx', '1.5'], ['temperature', 'hot'],
    ['temperature', 'Infinity'], ['use_mmap', 'yes'], ['top_k', '0x10']]) {
    assert.throws(() => parseParameter(name, raw, 7), {
      name: 'ModelfileError', message: new RegExp(`^\\(line 7\\): invalid value "${raw}" for parameter "${name}"`),
    })
  }
  assert.throws(() => parseParameter('warmth', '1', 3), { message: '(line 3): unknown parameter "warmth"' })
})

test("every option the server knows is typed and bounded as the server's", () => {
  const TYPE_NAMES = { int: 'integer', float: 'float', bool: 'boolean', list: 'array of strings' }
  const SAMPLES = { int: ['7', 7], float: ['0.5', 0.5], bool: ['true', true], list: [' \n ', ' \n '] }
  const options = Object.entries(SHARED.options)
  assert.ok(options.some(([name]) => name === 'draft_num_predict'))
  for (const [name, { type, low, high, choices }] of options) {
    if (type === 'str') {
      for (const choice of choices) assert.equal(parseParameter(name, choice.toUpperCase()), choice, name)
      assert.throws(() => parseParameter(name, 'x', 2), {
        message: `(line 2): option "${name}" must be one of ${choices.join(', ')}`,
      })
      continue
    }
    const [raw, value] = SAMPLES[type]
    if ((low === undefined || value >= low) && (high === undefined || value <= high)) {
      assert.equal(parseParameter(name, raw), value, name)
    }
    const bounds =
      high === undefined ? `at least ${low}` : low === undefined ? `at most ${high}` : `between ${low} and ${high}`
    for (const outside of [low === undefined ? [] : [low - 1], high === undefined ? [] : [high + 1]].flat()) {
      assert.throws(() => parseParameter(name, String(outside), 4), {
        name: 'ModelfileError', message: `(line 4): option "${name}" must be ${bounds}`,
      })
    }
    if (type !== 'list') {
      assert.throws(() => parseParameter(name, 'x', 2), {
        message: `(line 2): invalid value "x" for parameter "${name}": must be of type ${TYPE_NAMES[type]}`,
      })
    }
  }
  for (const name of SHARED.retired) assert.equal(parseParameter(name, '1'), undefined, name)
})

/** A create plan as the JSON the shared cases hold: paths relative to `base`. */
function planJson(plan, base) {
  const files = (pairs) => pairs.map(([name, path]) => [name, relative(base, path)])
  const { from, template, system, license, parameters, messages, requires, parser } = plan.request
  const fields = {
    from, files: files(plan.files), adapters: files(plan.adapters),
    draft_files: files(plan.draftFiles), template, system, license, parameters, messages, requires,
    parser,
  }
  return Object.fromEntries(
    Object.entries(fields).filter(([, value]) => value !== undefined && !(Array.isArray(value) && !value.length)),
  )
}

test('the cases shared with the Python parser read exactly as there', async (t) => {
  assert.ok(SHARED.cases.length >= 30)
  for (const { name, text, files = [], commands, plan, error } of SHARED.cases) {
    await t.test(name, async () => {
      const base = await mkdtemp(join(tmpdir(), 'pasture-modelfile-'))
      try {
        for (const file of files) await writeFile(join(base, file), '')
        if (commands) assert.deepEqual(simple(parseModelfile(text)), commands)
        const planned = async () => planCreate(parseModelfile(text), base)
        if (error === undefined) assert.deepEqual(planJson(await planned(), base), plan)
        else {
          await assert.rejects(planned, (caught) => {
            assert.ok(caught instanceof ModelfileError)
            assert.equal(caught.message.replaceAll(base, '{base}'), error)
            return true
          })
        }
      } finally {
        await rm(base, { recursive: true, force: true })
      }
    })
  }
})
