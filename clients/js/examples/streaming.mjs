// Print an answer as it is generated: `node examples/streaming.mjs`.

import pasture from 'pasture'

const model = process.env.PASTURE_EXAMPLE_MODEL ?? 'smollm2:135m'

const stream = await pasture.chat({
  model,
  messages: [{ role: 'user', content: 'Why is the sky blue?' }],
  stream: true,
  options: { num_predict: 48 },
})
let parts = 0
for await (const part of stream) {
  parts += 1
  process.stdout.write(part.message.content)
  if (part.done) console.log(`\n[${part.done_reason}, ${part.eval_count} tokens in ${parts} parts]`)
}
