// Runs in the browser page (index.html): the package's main entry point, straight from
// dist/, against the live server named in the query string. The outcome goes into
// #result as JSON, with data-status "done" or "failed"; then the page lets its load finish.

import { Pasture, ResponseError, VERSION } from '../../dist/index.js'

const params = new URLSearchParams(location.search)
const model = params.get('model')
const client = new Pasture({ host: params.get('host') })
const options = { num_predict: 8, temperature: 0, seed: 1 }
const messages = [{ role: 'user', content: 'Say hello.' }]

async function run() {
  const { version } = await client.version()
  const { models } = await client.list()
  const reply = await client.chat({ model, messages, options })
  const parts = []
  for await (const part of await client.chat({ model, messages, options, stream: true })) {
    parts.push(part)
  }
  // Web Crypto hashes the bytes (localhost is a secure context).
  const digest = await client.createBlob(new TextEncoder().encode(`browser ${Date.now()}`))
  let missing
  try {
    await client.show({ model: 'no-such-model:latest' })
  } catch (error) {
    missing = { isResponseError: error instanceof ResponseError, status: error.status_code, error: error.error }
  }
  return {
    clientVersion: VERSION,
    serverVersion: version,
    models: models.map((entry) => entry.name),
    chat: { role: reply.message.role, content: reply.message.content, done: reply.done },
    stream: {
      parts: parts.length,
      done: parts.at(-1)?.done,
      content: parts.map((part) => part.message.content).join(''),
    },
    blob: { digest, exists: await client.blobExists(digest) },
    missing,
    userAgent: navigator.userAgent,
  }
}

const result = document.getElementById('result')
try {
  result.textContent = JSON.stringify(await run())
  result.dataset.status = 'done'
} catch (error) {
  result.textContent = JSON.stringify({ name: error?.name, message: String(error?.message ?? error) })
  result.dataset.status = 'failed'
} finally {
  await fetch('/release', { method: 'POST' })
}
