// Chat with a model, keeping the conversation: `node examples/chat.mjs`.
// The server is PASTURE_HOST (or OLLAMA_HOST), else 127.0.0.1:11434.

import pasture from 'pasture'

const model = process.env.PASTURE_EXAMPLE_MODEL ?? 'smollm2:135m'

const messages = [{ role: 'user', content: 'Name one colour of the rainbow.' }]
let reply = await pasture.chat({ model, messages, options: { num_predict: 32 } })
console.log(reply.message.content)

messages.push(reply.message, { role: 'user', content: 'And another one?' })
reply = await pasture.chat({ model, messages, options: { num_predict: 32 } })
console.log(reply.message.content)
console.log(`(${reply.eval_count} tokens in ${(reply.eval_duration / 1e9).toFixed(2)} s)`)
