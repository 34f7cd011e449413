/** Small formatting helpers for sizes, durations and model details. */

export function bytes(n) {
  if (!Number.isFinite(n) || n <= 0) return '0 B'
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  const i = Math.min(units.length - 1, Math.floor(Math.log10(n) / 3))
  const value = n / 1000 ** i
  return `${value >= 100 || i === 0 ? value.toFixed(0) : value.toFixed(1)} ${units[i]}`
}

/** `{temperature: "0.3", stop: ["a", "b"]}` from /api/show's `parameters` text. */
export function parseParameters(text) {
  const result = {}
  for (const line of (text || '').split('\n')) {
    const match = line.trim().match(/^(\S+)\s+(.*)$/)
    if (!match) continue
    const value = match[2].replace(/^"(.*)"$/, '$1')
    if (match[1] in result) result[match[1]] = [].concat(result[match[1]], value)
    else result[match[1]] = value
  }
  return result
}

/** The context length the model was trained with, from /api/show's model_info. */
export function trainedContext(modelInfo) {
  for (const [key, value] of Object.entries(modelInfo || {})) {
    if (key.endsWith('.context_length')) return value
  }
  return undefined
}

/** The stats line under an answer: tokens, tokens per second, time to first token. */
export function stats(final, ttftMs) {
  const seconds = (final.eval_duration ?? 0) / 1e9
  return {
    tokens: final.eval_count ?? 0,
    tokensPerSecond: seconds > 0 ? (final.eval_count ?? 0) / seconds : 0,
    promptTokens: final.prompt_eval_count ?? 0,
    ttftMs: ttftMs ?? 0,
    doneReason: final.done_reason ?? '',
  }
}

export function statsText(s) {
  return `${s.tokens} tokens · ${s.tokensPerSecond.toFixed(1)} tokens/s · ` +
    `first token ${Math.round(s.ttftMs)} ms · prompt ${s.promptTokens} tokens`
}

export function element(tag, props = {}, ...children) {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (key === 'testid') node.dataset.testid = value
    else if (key === 'class') node.className = value
    else node[key] = value
  }
  node.append(...children.filter((c) => c !== undefined && c !== null))
  return node
}
