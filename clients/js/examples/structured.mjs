// Structured output: the answer is JSON that validates against a JSON schema.

import pasture from 'pasture'

const model = process.env.PASTURE_EXAMPLE_MODEL ?? 'smollm2:135m'

const country = {
  type: 'object',
  properties: {
    // Bounds keep a small model from rambling inside a string until it runs out of tokens.
    name: { type: 'string', maxLength: 40 },
    capital: { type: 'string', maxLength: 40 },
    population_millions: { type: 'integer', minimum: 0, maximum: 2000 },
  },
  required: ['name', 'capital', 'population_millions'],
  additionalProperties: false,
}

const reply = await pasture.chat({
  model,
  messages: [{ role: 'user', content: 'Tell me about Canada.' }],
  format: country,
  options: { temperature: 0, num_predict: 200 },
})
const { name, capital, population_millions: millions } = JSON.parse(reply.message.content)
console.log(`name=${name} capital=${capital} population_millions=${millions}`)
