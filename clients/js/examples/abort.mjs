// Stop a stream part-way: the connection closes, the server stops generating and frees its
// slot, and the next request is answered at once. `client.abort()` stops all of a client's
// streams the same way.

import pasture from 'pasture'

const model = process.env.PASTURE_EXAMPLE_MODEL ?? 'smollm2:135m'

const stream = await pasture.generate({
  model, prompt: 'Count from 1 to 1000, one number per line.', stream: true,
  options: { num_predict: 2000, temperature: 0 },
})
let parts = 0
try {
  for await (const part of stream) {
    process.stdout.write(part.response)
    parts += 1
    if (parts === 5) stream.abort()
  }
} catch (error) {
  if (error.name !== 'AbortError') throw error
  console.log(`\naborted after ${parts} parts`)
}

const next = await pasture.generate({ model, prompt: 'Say hi.', options: { num_predict: 8 } })
console.log(`next request: done=${next.done}, ${next.eval_count} tokens: ${next.response.trim()}`)
