/**
 * The model picker (/api/tags, with capabilities from /api/show), pulling with a progress
 * bar, and deleting with a confirmation.
 */

import { bytes, element, parseParameters, trainedContext } from './format.js'

export class Models {
  /** @param {import('./api.js').Api} api */
  constructor(api, onError) {
    this.api = api
    this.onError = onError
    /** name → {model (from /api/tags), show (from /api/show, or null)} */
    this.byName = new Map()
    this.select = document.getElementById('model-select')
    this.list = document.getElementById('model-list')
    this.progress = document.getElementById('pull-progress')
    this.status = document.getElementById('pull-status')
    document.getElementById('pull-form').addEventListener('submit', (event) => {
      event.preventDefault()
      this.pull().catch(onError)
    })
  }

  /** Fetch the local models and their details; redraw the picker and the list. */
  async refresh(selected) {
    const { models } = await this.api.client.list()
    const shows = await Promise.all(models.map((m) =>
      this.api.client.show({ model: m.name }).catch(() => null)))
    this.byName = new Map(models.map((m, i) => [m.name, { model: m, show: shows[i] }]))
    this.drawPicker(selected)
    this.drawList()
  }

  get current() {
    return this.byName.get(this.select.value)
  }

  capabilities(name) {
    return this.byName.get(name)?.show?.capabilities ?? []
  }

  /** The model's own defaults: its Modelfile parameters and trained context length. */
  defaults(name) {
    const show = this.byName.get(name)?.show
    return {
      parameters: parseParameters(show?.parameters),
      trainedContext: trainedContext(show?.model_info),
      system: show?.system ?? '',
    }
  }

  drawPicker(selected) {
    const names = [...this.byName.keys()]
    this.select.replaceChildren(...(names.length
      ? names.map((name) => element('option', { value: name, textContent: this.label(name) }))
      : [element('option', { value: '', textContent: 'no models: pull one (Models)' })]))
    if (selected && this.byName.has(selected)) this.select.value = selected
  }

  label(name) {
    const { model } = this.byName.get(name)
    const d = model.details ?? {}
    return [name, d.parameter_size, d.family, d.quantization_level, bytes(model.size)]
      .filter(Boolean).join(' · ')
  }

  /** One line on the selected model: details and capabilities. */
  summary(name) {
    const entry = this.byName.get(name)
    if (!entry) return ''
    const caps = this.capabilities(name)
    return caps.length ? caps.join(', ') : ''
  }

  drawList() {
    this.list.replaceChildren(...[...this.byName.keys()].map((name) => {
      const remove = element('button', { type: 'button', textContent: 'Delete',
                                         testid: 'model-delete' })
      remove.addEventListener('click', () => this.remove(name).catch(this.onError))
      return element('li', { testid: 'model-item' },
        element('div', { class: 'name', textContent: this.label(name) }),
        element('div', { class: 'muted', textContent: this.capabilities(name).join(', ') }),
        remove)
    }))
  }

  async remove(name) {
    if (!window.confirm(`Delete the model ${name}? Its files are removed from this machine.`)) {
      return
    }
    await this.api.client.delete({ model: name })
    await this.refresh(this.select.value)
    this.select.dispatchEvent(new Event('change'))
  }

  async pull() {
    const name = document.getElementById('pull-name').value.trim()
    const insecure = document.getElementById('pull-insecure').checked
    const button = document.getElementById('pull-start')
    if (!name) return
    button.disabled = true
    this.progress.hidden = false
    this.progress.value = 0
    this.progress.dataset.state = 'running'
    this.status.textContent = 'starting…'
    try {
      const stream = await this.api.client.pull({ model: name, insecure, stream: true })
      for await (const part of stream) {
        if (part.total) {
          this.progress.max = part.total
          this.progress.value = part.completed ?? 0
        }
        this.status.textContent = part.total
          ? `${part.status}: ${bytes(part.completed ?? 0)} of ${bytes(part.total)}`
          : part.status
      }
      this.progress.max = 1
      this.progress.value = 1
      this.progress.dataset.state = 'done'
      this.status.textContent = `${name}: success`
      await this.refresh(this.select.value || name)
      this.select.dispatchEvent(new Event('change'))
    } catch (error) {
      this.progress.dataset.state = 'error'
      this.status.textContent = `pull failed: ${error.message}`
    } finally {
      button.disabled = false
    }
  }
}
