/**
 * Model output as Markdown, made safe. HTML written by the model is shown as text (a
 * `<script>` in an answer reads as `<script>`, as in a chat app); `marked` renders the
 * rest, and DOMPurify then removes anything that could still run (a `javascript:` link),
 * under a CSP that would block inline code anyway. Each code block gets a copy button.
 */

import DOMPurify from 'dompurify'
import { Marked } from 'marked'

const escapes = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
const escape = (text) => text.replace(/[&<>"']/g, (c) => escapes[c])
const marked = new Marked({ gfm: true, renderer: { html: ({ text }) => escape(text) } })

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.setAttribute('target', '_blank')
    node.setAttribute('rel', 'noopener noreferrer')
  }
})

/** Replace `target`'s content with `text` rendered as sanitised Markdown. */
export function renderMarkdown(target, text) {
  const html = marked.parse(text, { async: false })
  target.innerHTML = DOMPurify.sanitize(html, { USE_PROFILES: { html: true } })
  for (const pre of target.querySelectorAll('pre')) {
    const button = document.createElement('button')
    button.type = 'button'
    button.className = 'copy'
    button.dataset.testid = 'copy-code'
    button.textContent = 'Copy'
    button.addEventListener('click', () => copy(pre.querySelector('code') ?? pre, button))
    pre.prepend(button)
  }
}

async function copy(code, button) {
  const text = code.textContent ?? ''
  try {
    await navigator.clipboard.writeText(text)
    button.textContent = 'Copied'
  } catch {
    button.textContent = 'Copy failed'
  }
  setTimeout(() => (button.textContent = 'Copy'), 1500)
}
