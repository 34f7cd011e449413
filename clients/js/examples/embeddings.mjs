// Embeddings: rank sentences by similarity to a query (vectors are unit length, so the dot
// product is the cosine similarity).

import pasture from 'pasture'

const model = process.env.PASTURE_EXAMPLE_MODEL ?? 'smollm2:135m'

const sentences = ['The cat sat on the mat.', 'Stocks fell sharply today.', 'A kitten was napping.']
const { embeddings: vectors } = await pasture.embed({ model, input: sentences })
const [query] = (await pasture.embed({ model, input: 'Where is the cat sleeping?' })).embeddings

const dot = (a, b) => a.reduce((sum, value, i) => sum + value * b[i], 0)
const ranked = sentences
  .map((sentence, i) => ({ sentence, score: dot(query, vectors[i]) }))
  .sort((a, b) => b.score - a.score)
for (const { sentence, score } of ranked) console.log(`${score.toFixed(3)}  ${sentence}`)
