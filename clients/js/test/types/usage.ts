// Typed use of the package, checked by `tsc --noEmit` (test/types.test.mjs): the published
// declarations must accept what the README shows and reject what it must not.

import pasture, {
  AbortableAsyncIterator,
  Ollama,
  Pasture,
  ResponseError,
  ServerNotRunningError,
  type ChatResponse,
  type GenerateResponse,
  type Message,
  type ProgressResponse,
  type Tool,
} from 'pasture'
import nodePasture, { Pasture as NodePasture, ModelfileError } from 'pasture/node'

async function usage(): Promise<void> {
  const client: Pasture = new Ollama({ host: 'http://127.0.0.1:11434', headers: { 'X-Id': '1' } })
  const custom = new Pasture({ fetch: (input, init) => fetch(input, init) })
  const host: string = custom.host

  const reply: ChatResponse = await client.chat({
    model: 'smollm2:135m',
    messages: [{ role: 'user', content: 'Hi', images: [new Uint8Array([1, 2])] }],
    options: { num_predict: 8, temperature: 0, stop: ['\n'] },
    format: { type: 'object' },
    keep_alive: '5m',
  })
  const history: Message[] = [reply.message]
  const content: string = reply.message.content

  const stream: AbortableAsyncIterator<GenerateResponse> = await pasture.generate({
    model: 'smollm2:135m', prompt: 'Hi', stream: true,
  })
  for await (const part of stream) {
    const text: string = part.response
    if (part.done) stream.abort()
  }
  pasture.abort()

  const streaming: boolean = Math.random() > 0.5
  const either = await pasture.chat({ model: 'm', messages: history, stream: streaming })
  if (either instanceof AbortableAsyncIterator) either.abort()

  const tool: Tool = {
    type: 'function',
    function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'string' } } } },
  }
  await client.chat({ model: 'm', messages: history, tools: [tool] })
  await client.chat({ model: 'm', messages: history, tools: [tool], tool_choice: 'required' })
  await client.chat({ model: 'm', messages: history, tools: [tool],
    tool_choice: { type: 'function', function: { name: 'f' } } })
  await client.generate({ model: 'm', prompt: 'Yes?', grammar: 'root ::= "yes" | "no"' })

  const vectors: number[][] = (await client.embed({ model: 'm', input: ['a', 'b'] })).embeddings
  const vector: number[] = (await client.embeddings({ model: 'm', prompt: 'a' })).embedding
  const names: string[] = (await client.list()).models.map((model) => model.name)
  const running: number[] = (await client.ps()).models.map((model) => model.size_vram)
  const family: string = (await client.show({ model: 'm' })).details.family
  const status: string = (await client.copy({ source: 'a', destination: 'b' })).status
  await client.delete({ model: 'b' })
  const version: string = (await client.version()).version
  const ids: number[] = (await client.tokenize({ model: 'm', content: 'Hi', add_special: true })).tokens
  const text: string = (await client.detokenize({ model: 'm', tokens: ids })).content
  const speed: number | undefined = (await client.generate({ model: 'm', prompt: 'p' })).stats
    ?.tokens_per_second
  await client.chat({ model: 'm', messages: history, think: 'max' })
  const digest: string = await client.createBlob(new Uint8Array([1]))
  const created: ProgressResponse = await client.create({
    model: 'x', from: 'm', system: 'S', parameters: { temperature: 0.1 }, license: ['MIT'],
    files: { 'a.gguf': digest }, messages: [{ role: 'user', content: 'Hi' }],
  })
  for await (const progress of await client.pull({ model: 'm', stream: true })) {
    const done: number | undefined = progress.completed
  }
  const pushed: ProgressResponse = await client.push({ model: 'm', insecure: true })

  const node = new NodePasture()
  const fromFile: string = await node.createBlob('./model.gguf')
  const made: ProgressResponse = await nodePasture.createFromModelfile('x', './Modelfile')
  for await (const progress of await node.createFromModelfile('x', './Modelfile', { stream: true })) {
    const step: string = progress.status
  }
  const image = await node.generate({ model: 'm', prompt: 'What is this?', images: ['./cat.png'] })

  try {
    await client.list()
  } catch (error) {
    if (error instanceof ResponseError) {
      const code: number = error.status_code
      const message: string = error.error
    } else if (error instanceof ServerNotRunningError || error instanceof ModelfileError) {
      const message: string = error.message
    }
  }

  // @ts-expect-error: a model is required
  await client.chat({ messages: [] })
  const streamed = await client.chat({ model: 'm', stream: true })
  // @ts-expect-error: a stream has no message, it yields them
  streamed.message
  const whole = await client.chat({ model: 'm' })
  // @ts-expect-error: a whole response is not iterable
  for await (const part of whole) part
  // @ts-expect-error: options are typed
  await client.generate({ model: 'm', prompt: 'p', options: { num_predict: 'many' } })
  // @ts-expect-error: tool_choice is auto, none, required or one function
  await client.chat({ model: 'm', tools: [tool], tool_choice: 'always' })
  // @ts-expect-error: think is a boolean or low, medium, high or max
  await client.chat({ model: 'm', think: 'extreme' })
  void [host, content, vectors, vector, names, running, family, status, version, created, pushed,
    fromFile, made, image, text, speed]
}

void usage
