/**
 * The server panel: the server's version and its loaded models (/api/ps) with their
 * memory, processor, context, and Pasture's per-model `running` and `waiting` counts.
 * Polled every two seconds while the panel is open.
 */

import { bytes, element } from './format.js'

export class ServerPanel {
  /** @param {import('./api.js').Api} api */
  constructor(api) {
    this.api = api
    this.timer = 0
    this.rows = document.getElementById('ps-rows')
    this.version = document.getElementById('server-version')
  }

  start() {
    this.stop()
    const tick = () => this.refresh().catch((error) => {
      this.version.textContent = `cannot reach the server: ${error.message}`
    })
    tick()
    this.timer = window.setInterval(tick, 2000)
  }

  stop() {
    window.clearInterval(this.timer)
  }

  async refresh() {
    const [{ version }, { models }] = await Promise.all([this.api.client.version(),
                                                         this.api.client.ps()])
    this.version.textContent = `Pasture ${version} at ${this.api.host}`
    if (!models.length) {
      this.rows.replaceChildren(element('tr', {}, element('td', {
        colSpan: 7, class: 'muted', textContent: 'no model loaded' })))
      return
    }
    this.rows.replaceChildren(...models.map((m) => {
      const gpu = m.size ? Math.round((100 * (m.size_vram ?? 0)) / m.size) : 0
      const processor = gpu === 0 ? '100% CPU' : gpu === 100 ? '100% GPU' : `${gpu}% GPU`
      const until = new Date(m.expires_at)
      const cells = [m.name, bytes(m.size), processor, m.context_length,
                     m.running ?? '–', m.waiting ?? '–',
                     until.getFullYear() > 2200 ? 'forever' : until.toLocaleTimeString()]
      return element('tr', { testid: 'ps-model' },
        ...cells.map((c) => element('td', { textContent: String(c ?? '') })))
    }))
  }
}
