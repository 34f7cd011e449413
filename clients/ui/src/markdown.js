/**
 * Model output as Markdown, made safe: `marked` turns it into HTML and DOMPurify removes
 * anything that could run (a `<script>` in an answer shows as nothing, never executes;
 * the page's CSP would block it anyway). Each code block gets a copy button.
 */

import DOMPurify from 'dompurify'
import { marked } from 'marked'

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.setAttribute('target', '_blank')
    node.setAttribute('rel', 'noopener noreferrer')
  }
})

/** Replace `target`'s content with `text` rendered as sanitised Markdown. */
export function renderMarkdown(target, text) {
  const html = marked.parse(text, { async: false, gfm: true })
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
