// A tool-calling loop: the model asks for a function, we run it and send the result back.
//
// SmolLM2 has no tool template of its own, so this first derives a model from it with a
// Qwen-style Go TEMPLATE (the Python examples' `tools-template.gotmpl`); models from
// Ollama's library that support tools already carry one. A 135M model rarely decides to
// call a tool by itself, so the first turn uses Pasture's `tool_choice: 'required'`, which
// the server enforces.

import { readFile } from 'node:fs/promises'

import pasture from 'pasture'

const base = process.env.PASTURE_EXAMPLE_MODEL ?? 'smollm2:135m'
const model = 'smollm2-tools-js'

const functions = {
  add: ({ a, b }) => a + b,
}
const tools = [{
  type: 'function',
  function: {
    name: 'add',
    description: 'Add two whole numbers.',
    parameters: {
      type: 'object',
      required: ['a', 'b'],
      properties: {
        a: { type: 'integer', description: 'The first number.' },
        b: { type: 'integer', description: 'The second number.' },
      },
    },
  },
}]

const template = await readFile(
  new URL('../../../examples/tools-template.gotmpl', import.meta.url), 'utf8',
)
await pasture.create({ model, from: base, template })
try {
  const messages = [{ role: 'user', content: 'What is 12 plus 30?' }]
  const reply = await pasture.chat({
    model, messages, tools, tool_choice: 'required', options: { temperature: 0 },
  })
  messages.push(reply.message)
  for (const call of reply.message.tool_calls ?? []) {
    const result = functions[call.function.name](call.function.arguments)
    console.log(`model called ${call.function.name}(${JSON.stringify(call.function.arguments)}) = ${result}`)
    messages.push({ role: 'tool', content: String(result), tool_name: call.function.name })
  }

  const final = await pasture.chat({
    model, messages, tools, tool_choice: 'none', options: { num_predict: 40, temperature: 0 },
  })
  console.log(final.message.content)
} finally {
  await pasture.delete({ model })
}
