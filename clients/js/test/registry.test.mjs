// push and pull against a real OCI registry (Debian's docker-registry on 127.0.0.1, plain
// HTTP, so `insecure: true`): a model goes up, is deleted here, comes back down and runs.
// `tests/integration/test_js_client.py` starts the registry and sets PASTURE_TEST_REGISTRY.

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { ResponseError } from 'pasture'

import { MODEL, SHORT, client, collect, required } from './helpers.mjs'

const REGISTRY = required('PASTURE_TEST_REGISTRY', 'a registry host:port to push to and pull from')
const pasture = client()
const isNotFound = (message) => (error) =>
  error instanceof ResponseError && error.status_code === 404 && message.test(error.error)

/** The manifest the registry holds for `repository:tag`, as Ollama's pushes write it. */
async function registryManifest(repository, tag) {
  const response = await fetch(`http://${REGISTRY}/v2/${repository}/manifests/${tag}`, {
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  })
  assert.equal(response.status, 200, `manifest of ${repository}:${tag}`)
  return response.json()
}

/** The last progress message of each digest, by digest. */
function lastProgress(parts) {
  return new Map(parts.filter((part) => part.digest).map((part) => [part.digest, part]))
}

describe('push and pull through a registry', () => {
  const repository = `js/pushed-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
  const remote = `${REGISTRY}/${repository}:latest`
  // A system prompt of its own gives the model one layer no other local model shares, so
  // deleting the model deletes that blob and the pull has to download it again.
  const system = `You are the model ${repository}.`
  let manifest

  before(async () => {
    await pasture.create({ model: remote, from: MODEL, system })
  })

  after(async () => {
    await pasture.delete({ model: remote }).catch(() => undefined)
  })

  test('push with stream: true uploads every layer, then the manifest', async () => {
    const parts = await collect(await pasture.push({ model: remote, insecure: true, stream: true }))
    assert.equal(parts[0].status, 'retrieving manifest')
    assert.deepEqual(parts.slice(-2).map((part) => part.status), ['pushing manifest', 'success'])

    manifest = await registryManifest(repository, 'latest')
    const layers = [...manifest.layers, manifest.config]
    const pushed = lastProgress(parts)
    assert.deepEqual([...pushed.keys()].sort(), layers.map((layer) => layer.digest).sort())
    for (const layer of layers) {
      const last = pushed.get(layer.digest)
      assert.equal(last.status, `pushing ${layer.digest.slice(7, 19)}`)
      assert.equal(last.completed, layer.size)
      assert.equal(last.total, layer.size)
    }
    const { models } = await pasture.list()
    assert.equal(models.find((model) => model.name === remote)?.size,
      layers.reduce((sum, layer) => sum + layer.size, 0))
  })

  test('push without streaming answers success once everything is on the registry', async () => {
    assert.deepEqual(await pasture.push({ model: remote, insecure: true }), { status: 'success' })
  })

  test('a model deleted here is pulled back with progress, and runs', async () => {
    assert.ok(manifest, 'the push test ran first')
    const systemLayer = manifest.layers.find((layer) => layer.mediaType.endsWith('.system'))
    assert.ok(systemLayer, `a system layer in ${JSON.stringify(manifest.layers)}`)

    await pasture.delete({ model: remote })
    await assert.rejects(pasture.show({ model: remote }), isNotFound(/not found/))
    assert.equal(await pasture.blobExists(systemLayer.digest), false)

    const parts = await collect(await pasture.pull({ model: remote, insecure: true, stream: true }))
    assert.equal(parts[0].status, 'pulling manifest')
    assert.deepEqual(
      parts.slice(-3).map((part) => part.status),
      ['verifying sha256 digest', 'writing manifest', 'success'],
    )
    const pulled = lastProgress(parts)
    for (const layer of [...manifest.layers, manifest.config]) {
      const last = pulled.get(layer.digest)
      assert.ok(last, `progress for ${layer.digest}`)
      assert.equal(last.status, `pulling ${layer.digest.slice(7, 19)}`)
      assert.equal(last.completed, layer.size)
      assert.equal(last.total, layer.size)
    }
    assert.equal(await pasture.blobExists(systemLayer.digest), true)

    const info = await pasture.show({ model: remote })
    assert.equal(info.system, system)
    assert.equal(info.details.family, 'llama')
    const reply = await pasture.generate({ model: remote, prompt: 'Hi', options: SHORT })
    assert.equal(reply.done, true)
    assert.ok(reply.eval_count > 0)
  })

  test('pull without streaming of a model already here answers success', async () => {
    assert.deepEqual(await pasture.pull({ model: remote, insecure: true }), { status: 'success' })
  })

  test('pulling a model the registry does not have: a 404, or streamed after pulling manifest', async () => {
    const missing = `${REGISTRY}/js/no-such-model:latest`
    await assert.rejects(
      pasture.pull({ model: missing, insecure: true, stream: false }),
      isNotFound(/^pull model manifest: file does not exist$/),
    )
    // Streamed, as Ollama's: the status line first, then the failure, raised mid-stream.
    const seen = []
    await assert.rejects(async () => {
      for await (const part of await pasture.pull({ model: missing, insecure: true, stream: true })) {
        seen.push(part.status)
      }
    }, (error) => error instanceof ResponseError &&
      /^pull model manifest: file does not exist$/.test(error.error))
    assert.deepEqual(seen, ['pulling manifest'])
  })

  test('pushing a model that is not here is a 404', async () => {
    await assert.rejects(
      pasture.push({ model: `${REGISTRY}/js/not-local:latest`, insecure: true }),
      isNotFound(/not found/),
    )
  })
})
