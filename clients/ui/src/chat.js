/**
 * The conversation view and one streamed answer at a time.
 *
 * Each part from /api/chat is added to the answer as it arrives (thinking, content, tool
 * calls) and redrawn at most once a frame. Stopping aborts the request: the connection
 * closes, and the server cancels the generation (or the queued request) when its client
 * goes away.
 */

import { UNTITLED } from './conversations.js'
import { element, stats, statsText } from './format.js'
import { renderMarkdown } from './markdown.js'

export class Chat {
  /**
   * @param {import('./api.js').Api} api
   * @param {import('./conversations.js').Conversations} conversations
   */
  constructor(api, conversations, { onSaved, onError }) {
    this.api = api
    this.conversations = conversations
    this.onSaved = onSaved
    this.onError = onError
    this.busy = false
    this.frame = 0
    this.view = document.getElementById('messages')
    this.send = document.getElementById('send')
    this.stop = document.getElementById('stop')
  }

  /** Draw every message of the current conversation. */
  draw() {
    const conversation = this.conversations.current()
    this.view.replaceChildren(...conversation.messages.map((m) => this.drawMessage(m)))
    this.view.scrollTop = this.view.scrollHeight
  }

  drawMessage(message) {
    const node = element('article', { class: `message ${message.role}`,
                                       testid: `message-${message.role}` })
    this.fill(node, message)
    return node
  }

  fill(node, message) {
    const parts = []
    if (message.images?.length) {
      parts.push(element('div', { class: 'images' },
        ...message.images.map((src) => element('img', { src, alt: 'attached image' }))))
    }
    if (message.thinking) {
      const details = element('details', { class: 'thinking', testid: 'thinking' },
        element('summary', { textContent: 'Thinking' }),
        element('div', { class: 'thought', textContent: message.thinking }))
      details.open = Boolean(message.thinkingOpen)
      details.addEventListener('toggle', () => (message.thinkingOpen = details.open))
      parts.push(details)
    }
    const content = element('div', { class: 'content', testid: 'message-content' })
    if (message.role === 'assistant') renderMarkdown(content, message.content)
    else content.textContent = message.content
    parts.push(content)
    for (const call of message.tool_calls ?? []) {
      parts.push(element('div', { class: 'tool-call', testid: 'tool-call' },
        element('span', { class: 'label', textContent: 'tool call ' }),
        element('code', { textContent: `${call.function?.name}(` +
          `${JSON.stringify(call.function?.arguments ?? {})})` })))
    }
    if (message.stats) {
      parts.push(element('div', { class: 'stats', testid: 'stats',
                                  textContent: statsText(message.stats) }))
    }
    if (message.stopped) {
      parts.push(element('div', { class: 'stats', testid: 'stopped', textContent: 'stopped' }))
    }
    if (message.error) {
      parts.push(element('div', { class: 'error', testid: 'message-error',
                                  textContent: message.error }))
    }
    node.replaceChildren(...parts)
  }

  /** What the server is sent: the system prompt, then the turns without our extras. */
  history(conversation) {
    const turns = conversation.messages.filter((m) => !m.error && (m.content || m.images ||
                                                                   m.tool_calls))
    const messages = turns.map((m) => ({
      role: m.role,
      content: m.content,
      ...(m.images?.length ? { images: m.images.map((url) => url.split(',', 2)[1]) } : {}),
      ...(m.tool_calls?.length ? { tool_calls: m.tool_calls } : {}),
    }))
    if (conversation.system.trim()) messages.unshift({ role: 'system', content: conversation.system })
    return messages
  }

  options(conversation) {
    const options = {}
    if (conversation.temperature !== '') options.temperature = Number(conversation.temperature)
    if (conversation.numCtx !== '') options.num_ctx = Number(conversation.numCtx)
    if (conversation.numPredict) options.num_predict = Number(conversation.numPredict)
    return options
  }

  /** Send `text` (and images) in the current conversation and stream the answer. */
  async ask(text, images, { think }) {
    const conversation = this.conversations.current()
    if (this.busy || (!text && !images.length)) return
    if (!conversation.model) throw new Error('choose a model first (or pull one in Models)')
    conversation.messages.push({ role: 'user', content: text,
                                 ...(images.length ? { images } : {}) })
    if (conversation.title === UNTITLED) conversation.title = text.slice(0, 48) || 'Image'
    const request = { model: conversation.model, messages: this.history(conversation),
                      options: this.options(conversation), stream: true,
                      ...(think ? { think: true } : {}) }
    const answer = { role: 'assistant', content: '' }
    conversation.messages.push(answer)
    this.save(conversation)
    this.draw()
    const node = this.view.lastElementChild
    node.dataset.state = 'streaming'
    this.setBusy(true)
    const started = performance.now()
    let firstToken
    try {
      const stream = await this.api.chatClient.chat(request)
      for await (const part of stream) {
        const { content, thinking, tool_calls: calls } = part.message ?? {}
        if (firstToken === undefined && (content || thinking || calls?.length)) {
          firstToken = performance.now() - started
        }
        if (thinking) answer.thinking = (answer.thinking ?? '') + thinking
        if (content) answer.content += content
        if (calls?.length) answer.tool_calls = [...(answer.tool_calls ?? []), ...calls]
        if (part.done) answer.stats = stats(part, firstToken)
        this.redraw(node, answer)
      }
    } catch (error) {
      if (error?.name === 'AbortError') answer.stopped = true
      else answer.error = error?.message ?? String(error)
    } finally {
      window.cancelAnimationFrame(this.frame)
      this.fill(node, answer)
      node.dataset.state = 'done'
      this.setBusy(false)
      this.save(conversation)
    }
  }

  redraw(node, message) {
    window.cancelAnimationFrame(this.frame)
    this.frame = window.requestAnimationFrame(() => {
      const atBottom = this.view.scrollHeight - this.view.scrollTop - this.view.clientHeight < 40
      this.fill(node, message)
      if (atBottom) this.view.scrollTop = this.view.scrollHeight
    })
  }

  /** Stop the answer being written (and a request still queued on the server). */
  cancel() {
    if (this.busy) this.api.chatClient.abort()
  }

  setBusy(busy) {
    this.busy = busy
    this.send.hidden = busy
    this.stop.hidden = !busy
  }

  save(conversation) {
    try {
      this.conversations.touch(conversation)
    } catch (error) {
      this.onError(error)
    }
    this.onSaved()
  }
}
