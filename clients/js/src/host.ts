/**
 * Where the client connects, and the environment it may read that from.
 *
 * Host strings follow `OLLAMA_HOST`'s rules, as Pasture's server and Python client read
 * them: `host`, `host:port`, `:port`, `[::1]:port`, with or without `http(s)://`; a plain
 * `http` host gets port 11434, `https` gets 443. A path is kept, so a server behind a
 * reverse proxy at `https://example.com/pasture` works.
 */

export const DEFAULT_PORT = 11434
export const DEFAULT_HOST = `http://127.0.0.1:${DEFAULT_PORT}`

/**
 * `PASTURE_<name>`, else `OLLAMA_<name>`, trimmed of spaces and quotes; undefined in a
 * browser, where there is no `process.env` and configuration comes from arguments only.
 */
export function env(name: string): string | undefined {
  const environ = (globalThis as { process?: { env?: Record<string, string | undefined> } })
    .process?.env
  if (!environ) return undefined
  for (const prefix of ['PASTURE_', 'OLLAMA_']) {
    const value = environ[prefix + name]?.trim().replace(/^["']+|["']+$/g, '')
    if (value) return value
  }
  return undefined
}

/** The base URL (no trailing slash) for a host string; the default for an empty one. */
export function formatHost(host: string | undefined): string {
  let value = (host ?? '').trim()
  if (!value) return DEFAULT_HOST
  let scheme = 'http'
  const separator = value.indexOf('://')
  if (separator >= 0) {
    scheme = value.slice(0, separator).toLowerCase()
    value = value.slice(separator + 3)
  }
  const slash = value.indexOf('/')
  const path = slash >= 0 ? value.slice(slash).replace(/\/+$/, '') : ''
  let authority = slash >= 0 ? value.slice(0, slash) : value
  let userinfo = ''
  const at = authority.lastIndexOf('@')
  if (at >= 0) {
    userinfo = authority.slice(0, at + 1)
    authority = authority.slice(at + 1)
  }
  const defaultPort = scheme === 'https' ? 443 : DEFAULT_PORT
  let hostname: string
  let port: string
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']')
    hostname = authority.slice(0, close + 1)
    port = authority.slice(close + 2)
  } else if (authority.split(':').length === 2) {
    ;[hostname, port] = authority.split(':') as [string, string]
  } else {
    hostname = authority
    port = ''
  }
  if (port && !/^\d+$/.test(port)) throw new TypeError(`invalid port in host "${host}"`)
  const url = `${scheme}://${userinfo}${hostname || '127.0.0.1'}:${port || defaultPort}${path}`
  new URL(url) // throws a TypeError naming the URL when it cannot be one
  return url
}
