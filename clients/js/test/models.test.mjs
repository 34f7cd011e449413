// Model management against the live server: list, show, copy, create, ps, delete, blobs.

import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'

import { ResponseError } from 'pasture'

import { MODEL, SHORT, client, recordingFetch, scratchName } from './helpers.mjs'

const pasture = client()
const names = async () => (await pasture.list()).models.map((model) => model.name)
const isNotFound = (error) => error instanceof ResponseError && error.status_code === 404

describe('model management', () => {
  const scratch = []
  after(async () => {
    for (const model of scratch) await pasture.delete({ model }).catch(() => undefined)
  })

  test('version answers with a version string', async () => {
    const { version } = await pasture.version()
    assert.match(version, /^\d+\.\d+\.\d+/)
  })

  test('list includes the test model with its details', async () => {
    const { models } = await pasture.list()
    const model = models.find((entry) => entry.name === MODEL)
    assert.ok(model, `${MODEL} in ${models.map((entry) => entry.name)}`)
    assert.match(model.digest, /^[0-9a-f]{64}$/)
    assert.ok(model.size > 0)
    assert.equal(model.details.format, 'gguf')
  })

  test('show returns the details, template and capabilities', async () => {
    const info = await pasture.show({ model: MODEL })
    assert.equal(info.details.family, 'llama')
    assert.ok(info.capabilities.includes('completion'))
    assert.ok(info.template.length > 0)
    assert.match(info.modelfile, /^FROM /m)
    assert.equal(info.model_info['general.architecture'], 'llama')
  })

  test('copy makes a second name, delete removes it', async () => {
    const copy = scratchName('copy')
    scratch.push(copy)
    assert.deepEqual(await pasture.copy({ source: MODEL, destination: copy }), { status: 'success' })
    assert.ok((await names()).includes(copy))
    assert.equal((await pasture.show({ model: copy })).details.family, 'llama')
    assert.deepEqual(await pasture.delete({ model: copy }), { status: 'success' })
    assert.ok(!(await names()).includes(copy))
    await assert.rejects(pasture.show({ model: copy }), isNotFound)
    await assert.rejects(pasture.delete({ model: copy }), isNotFound)
  })

  test('create from an existing model sets the system prompt, parameters and messages', async () => {
    const derived = scratchName('derived')
    scratch.push(derived)
    const reply = await pasture.create({
      model: derived, from: MODEL, system: 'You are a pirate.',
      parameters: { temperature: 0.1, stop: ['<|im_end|>', 'Arr'] },
      messages: [{ role: 'user', content: 'Ahoy' }, { role: 'assistant', content: 'Arr!' }],
      license: 'MIT',
    })
    assert.deepEqual(reply, { status: 'success' })
    const info = await pasture.show({ model: derived })
    assert.equal(info.system, 'You are a pirate.')
    assert.match(info.parameters, /temperature\s+0\.1/)
    assert.match(info.parameters, /stop\s+"?Arr/)
    assert.deepEqual(info.messages.map((m) => m.content), ['Ahoy', 'Arr!'])
    assert.equal(info.license, 'MIT')
  })

  test('create with stream: true yields progress ending in success', async () => {
    const streamed = scratchName('streamed')
    scratch.push(streamed)
    const parts = []
    for await (const part of await pasture.create({ model: streamed, from: MODEL, stream: true })) {
      parts.push(part)
    }
    assert.equal(parts.at(-1).status, 'success')
    assert.ok((await names()).includes(streamed))
  })

  test('create from a model that does not exist is a 404', async () => {
    await assert.rejects(
      pasture.create({ model: scratchName('orphan'), from: 'no-such-model:latest' }), isNotFound,
    )
  })

  test('ps lists the model once it has run', async () => {
    await pasture.generate({ model: MODEL, prompt: 'Hi', options: { ...SHORT, num_predict: 1 } })
    const { models } = await pasture.ps()
    const running = models.find((entry) => entry.name === MODEL)
    assert.ok(running, `${MODEL} in ${models.map((entry) => entry.name)}`)
    assert.ok(running.size > 0)
    assert.ok(running.context_length > 0)
    assert.ok(Date.parse(running.expires_at) > Date.now())
    assert.equal(running.engine, 'default') // the test server has no other engine build
  })
})

describe('blobs and Modelfiles', () => {
  const scratch = []
  let dir
  after(async () => {
    for (const model of scratch) await pasture.delete({ model }).catch(() => undefined)
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  test('createBlob uploads bytes once and returns their digest', async () => {
    const { fetch, requests } = recordingFetch()
    const recorded = client({ fetch })
    const bytes = randomBytes(4096)
    const expected = `sha256:${createHash('sha256').update(bytes).digest('hex')}`
    assert.equal(await recorded.blobExists(expected), false)
    assert.equal(await recorded.createBlob(bytes), expected)
    assert.equal(await recorded.blobExists(expected), true)
    assert.equal(await recorded.createBlob(new Blob([bytes])), expected)
    const uploads = requests.filter((request) => request.method === 'POST')
    assert.deepEqual(uploads.map((request) => request.path), [`/api/blobs/${expected}`])
  })

  test('createBlob streams a file from a path', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pasture-js-'))
    const path = join(dir, 'data.bin')
    const bytes = randomBytes(3 << 20)
    await writeFile(path, bytes)
    const { fetch, requests } = recordingFetch()
    const digest = await client({ fetch }).createBlob(path)
    assert.equal(digest, `sha256:${createHash('sha256').update(bytes).digest('hex')}`)
    assert.equal(requests.filter((request) => request.method === 'POST').length, 1)
    assert.equal(await pasture.blobExists(digest), true)
  })

  test('a bad digest is refused with 400', async () => {
    await assert.rejects(
      pasture.blobExists('sha256:nothex'),
      (error) => error instanceof ResponseError && error.status_code === 400,
    )
  })

  test('createFromModelfile reads FROM, SYSTEM, PARAMETER, MESSAGE and LICENSE', async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'pasture-js-'))
    const path = join(dir, 'Modelfile')
    await writeFile(path, [
      `FROM ${MODEL}`,
      '# a comment',
      'SYSTEM """You answer',
      'in one word."""',
      'PARAMETER temperature 0.3',
      'PARAMETER num_ctx 1024',
      'PARAMETER stop "<|im_end|>"',
      'PARAMETER stop END',
      'MESSAGE user Hi',
      'MESSAGE assistant Hello',
      'LICENSE "Apache-2.0"',
      'TEMPLATE "{{ .Prompt }}"',
      '',
    ].join('\n'))
    const model = scratchName('modelfile')
    scratch.push(model)
    assert.deepEqual(await pasture.createFromModelfile(model, path), { status: 'success' })
    const info = await pasture.show({ model })
    assert.equal(info.system, 'You answer\nin one word.')
    assert.equal(info.template, '{{ .Prompt }}')
    assert.match(info.parameters, /temperature\s+0\.3/)
    assert.match(info.parameters, /num_ctx\s+1024/)
    assert.match(info.parameters, /stop\s+"?END/)
    assert.deepEqual(info.messages, [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }])
    assert.equal(info.license, 'Apache-2.0')
  })

  test('createFromModelfile with a GGUF path hashes it and skips an upload the server has', async () => {
    const gguf = process.env.PASTURE_TEST_GGUF
    assert.ok(gguf, 'PASTURE_TEST_GGUF must name the GGUF file the test model was created from')
    dir ??= await mkdtemp(join(tmpdir(), 'pasture-js-'))
    const path = join(dir, 'Modelfile.gguf')
    await writeFile(path, `FROM ${gguf}\nPARAMETER temperature 0.5\n`)
    const { fetch, requests } = recordingFetch()
    const model = scratchName('gguf')
    scratch.push(model)
    const parts = []
    for await (const part of await client({ fetch }).createFromModelfile(model, path, { stream: true })) {
      parts.push(part)
    }
    assert.equal(parts.at(-1).status, 'success')
    const blobCalls = requests.filter((request) => request.path.startsWith('/api/blobs/'))
    assert.deepEqual(blobCalls.map((request) => request.method), ['HEAD'])
    const info = await pasture.show({ model })
    assert.equal(info.details.family, 'llama')
    assert.match(info.parameters, /temperature\s+0\.5/)
  })

  test('createFromModelfile reports a missing file with its line, before any request', async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'pasture-js-'))
    const path = join(dir, 'Modelfile.missing')
    await writeFile(path, 'PARAMETER temperature 1\nFROM ./missing.gguf\n')
    const { fetch, requests } = recordingFetch()
    await assert.rejects(
      client({ fetch }).createFromModelfile(scratchName('missing'), path),
      { name: 'ModelfileError', message: /\(line 2\): no such file: .*missing\.gguf/ },
    )
    assert.equal(requests.length, 0)
  })
})
