/**
 * The connection to the server that served this page, through Pasture's JS client.
 *
 * The page lives at `<base>/ui/`, so the API is at `<base>` (a reverse proxy's path prefix
 * is kept). When the server has API keys, the key the user typed is kept in localStorage
 * and sent as `Authorization: Bearer …`. Chat has a client of its own, so that stopping an
 * answer (`abort()`, which also cancels a request still waiting in the server's queue)
 * never cancels a pull.
 */

import { Pasture } from 'pasture'

const KEY = 'pasture.ui.apiKey'

export class Api {
  constructor() {
    this.host = new URL('..', window.location.href).href.replace(/\/$/, '')
    this.connect()
  }

  get key() {
    return window.localStorage.getItem(KEY) || ''
  }

  set key(value) {
    if (value) window.localStorage.setItem(KEY, value)
    else window.localStorage.removeItem(KEY)
    this.connect()
  }

  connect() {
    const headers = this.key ? { Authorization: `Bearer ${this.key}` } : {}
    this.client = new Pasture({ host: this.host, headers })
    this.chatClient = new Pasture({ host: this.host, headers })
  }
}

/** True for the server's "unauthorized" answer: the page must ask for a key. */
export function isUnauthorized(error) {
  return error?.status_code === 401
}
