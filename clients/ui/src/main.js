/**
 * Pasture's chat page: wires the header, the conversation list, the composer and the side
 * panels (settings, models, server) to the modules that do the work.
 */

import { Api, isUnauthorized } from './api.js'
import { Chat } from './chat.js'
import { Conversations, exportJSON } from './conversations.js'
import { element } from './format.js'
import { Models } from './models.js'
import { ServerPanel } from './server.js'

const $ = (id) => document.getElementById(id)
const api = new Api()
const conversations = new Conversations()
const notice = $('notice')
const prompt = $('prompt')
let images = [] // data URLs attached to the next message

function showError(error) {
  if (isUnauthorized(error)) {
    askForKey()
    return
  }
  notice.textContent = error?.message ?? String(error)
  notice.hidden = false
}

function clearError() {
  notice.hidden = true
}

const models = new Models(api, showError)
const server = new ServerPanel(api)
const chat = new Chat(api, conversations, { onSaved: drawConversations, onError: showError })

// ----- API key ---------------------------------------------------------------------------

function askForKey() {
  $('key-button').hidden = false
  const dialog = $('key-dialog')
  $('key-refused').hidden = !api.key
  $('api-key').value = api.key
  if (!dialog.open) dialog.showModal()
}

$('key-form').addEventListener('submit', () => {
  api.key = $('api-key').value.trim()
  start()
})
$('key-button').addEventListener('click', askForKey)

// ----- conversations ---------------------------------------------------------------------

function drawConversations() {
  const list = $('conversation-list')
  list.replaceChildren(...conversations.all.map((c) => {
    const open = element('button', { type: 'button', class: 'title', textContent: c.title,
                                     title: c.title, testid: 'conversation-title' })
    open.addEventListener('click', () => switchTo(c.id))
    const rename = element('button', { type: 'button', class: 'icon', textContent: '✎',
                                       title: 'Rename', testid: 'conversation-rename' })
    rename.addEventListener('click', () => {
      const title = window.prompt('Rename the conversation', c.title)
      if (title?.trim()) {
        c.title = title.trim()
        conversations.save()
        drawConversations()
      }
    })
    const remove = element('button', { type: 'button', class: 'icon', textContent: '✕',
                                       title: 'Delete', testid: 'conversation-delete' })
    remove.addEventListener('click', () => {
      if (!window.confirm(`Delete the conversation "${c.title}"?`)) return
      conversations.remove(c.id)
      showConversation()
    })
    const item = element('li', { testid: 'conversation' }, open, rename, remove)
    if (c.id === conversations.currentId) item.classList.add('current')
    return item
  }))
}

function switchTo(id) {
  chat.cancel()
  conversations.select(id)
  showConversation()
  document.body.classList.remove('sidebar-open')
}

function showConversation() {
  const c = conversations.current()
  // Before the list has loaded, a stored model name is kept; a deleted one is replaced.
  if (models.byName.has(c.model)) $('model-select').value = c.model
  else if (models.byName.size) c.model = $('model-select').value
  $('settings-system').value = c.system
  $('settings-temperature').value = c.temperature
  $('settings-num-ctx').value = c.numCtx
  $('settings-num-predict').value = c.numPredict ?? ''
  $('settings-think').checked = c.think !== false
  drawConversations()
  drawModel()
  chat.draw()
}

$('new-chat').addEventListener('click', () => {
  chat.cancel()
  conversations.create($('model-select').value)
  showConversation()
  prompt.focus()
})

$('export').addEventListener('click', () => {
  const c = conversations.current()
  const url = URL.createObjectURL(new Blob([exportJSON(c)], { type: 'application/json' }))
  const link = element('a', { href: url, download: `${c.title.replace(/[^\w-]+/g, '_')}.json` })
  link.click()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
})

// ----- settings --------------------------------------------------------------------------

const settings = { 'settings-system': 'system', 'settings-temperature': 'temperature',
                   'settings-num-ctx': 'numCtx', 'settings-num-predict': 'numPredict' }
for (const [id, field] of Object.entries(settings)) {
  $(id).addEventListener('input', () => {
    const c = conversations.current()
    c[field] = $(id).value
    conversations.touch(c)
  })
}
$('settings-think').addEventListener('change', () => {
  const c = conversations.current()
  c.think = $('settings-think').checked
  conversations.touch(c)
})

/** The selected model's summary, its defaults, and which inputs it allows. */
function drawModel() {
  const name = $('model-select').value
  const caps = models.capabilities(name)
  $('model-info').textContent = models.summary(name)
  $('attach').disabled = !caps.includes('vision')
  $('think-row').hidden = !caps.includes('thinking')
  const defaults = models.defaults(name)
  const rows = Object.entries(defaults.parameters).map(([k, v]) => [k, [].concat(v).join(', ')])
  if (defaults.trainedContext) rows.push(['trained context', defaults.trainedContext])
  if (defaults.system) rows.push(['system prompt', defaults.system])
  if (!rows.length) rows.push(['parameters', 'none set (server defaults)'])
  $('model-defaults').replaceChildren(...rows.flatMap(([k, v]) => [
    element('dt', { textContent: k }), element('dd', { textContent: String(v) })]))
  $('settings-temperature').placeholder = defaults.parameters.temperature ?? '0.8 (default)'
  $('settings-num-ctx').placeholder = defaults.parameters.num_ctx ?? 'server default'
  $('settings-system').placeholder = defaults.system || 'none'
}

$('model-select').addEventListener('change', () => {
  const c = conversations.current()
  c.model = $('model-select').value
  conversations.touch(c)
  drawModel()
})

// ----- panels ----------------------------------------------------------------------------

for (const button of document.querySelectorAll('.panel-toggle')) {
  button.addEventListener('click', () => togglePanel(button.dataset.panel))
}

function togglePanel(name) {
  const panel = $('panel')
  const wasOpen = !panel.hidden && panel.dataset.open === name
  panel.hidden = wasOpen
  panel.dataset.open = wasOpen ? '' : name
  for (const section of panel.querySelectorAll('section')) {
    section.hidden = section.dataset.panel !== name
  }
  for (const button of document.querySelectorAll('.panel-toggle')) {
    button.classList.toggle('active', !wasOpen && button.dataset.panel === name)
  }
  if (!wasOpen && name === 'server') server.start()
  else server.stop()
}

$('toggle-sidebar').addEventListener('click', () => {
  document.body.classList.toggle('sidebar-open')
})

// ----- composer --------------------------------------------------------------------------

function send() {
  clearError()
  const text = prompt.value.trim()
  const attached = images
  if (chat.busy || (!text && !attached.length)) return
  prompt.value = ''
  images = []
  drawAttachments()
  const c = conversations.current()
  const think = models.capabilities(c.model).includes('thinking') && c.think !== false
  chat.ask(text, attached, { think }).catch(showError)
}

$('composer').addEventListener('submit', (event) => {
  event.preventDefault()
  send()
})
prompt.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault()
    send()
  }
})
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && chat.busy) {
    event.preventDefault()
    chat.cancel()
  }
})
$('stop').addEventListener('click', () => chat.cancel())

$('attach').addEventListener('click', () => $('image-input').click())
$('image-input').addEventListener('change', async () => {
  await attach([...$('image-input').files])
  $('image-input').value = ''
})
prompt.addEventListener('paste', async (event) => {
  const files = [...(event.clipboardData?.files ?? [])].filter((f) => f.type.startsWith('image/'))
  if (!files.length) return
  event.preventDefault()
  if ($('attach').disabled) {
    showError(new Error('this model does not take images; choose a vision model'))
    return
  }
  await attach(files)
})

async function attach(files) {
  for (const file of files) images.push(await dataURL(file))
  drawAttachments()
}

function dataURL(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader()
    reader.onload = () => resolve(reader.result)
    reader.onerror = () => reject(reader.error)
    reader.readAsDataURL(file)
  })
}

function drawAttachments() {
  $('attachments').replaceChildren(...images.map((src, index) => {
    const remove = element('button', { type: 'button', class: 'icon', textContent: '✕',
                                       title: 'Remove' })
    remove.addEventListener('click', () => {
      images.splice(index, 1)
      drawAttachments()
    })
    return element('span', { class: 'attachment', testid: 'attachment' },
      element('img', { src, alt: 'attachment' }), remove)
  }))
}

// ----- start -----------------------------------------------------------------------------

async function start() {
  try {
    await models.refresh(conversations.current().model)
    $('key-dialog').close()
    clearError()
    showConversation()
    document.body.dataset.ready = 'true'
  } catch (error) {
    showError(error)
  }
}

showConversation()
start()
