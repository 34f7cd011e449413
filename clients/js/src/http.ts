/**
 * How a request travels: headers, the connection-failure check and the status check.
 *
 * Every call of the client goes through `Transport.request`, so a refused connection and
 * an error status are reported the same way whatever the endpoint.
 */

import { ResponseError, ServerNotRunningError } from './errors.js'
import { env } from './host.js'
import type { Fetch } from './types.js'
import { VERSION } from './version.js'

export interface RequestOptions {
  /** A JSON value (serialised here) or a raw body such as a `Blob`. */
  json?: unknown
  body?: BodyInit
  headers?: Record<string, string>
  signal?: AbortSignal
}

function platform(): string {
  const proc = (globalThis as { process?: { version?: string; platform?: string; arch?: string } })
    .process
  if (proc?.version) return `${proc.arch} ${proc.platform} Node.js/${proc.version}`
  const nav = (globalThis as { navigator?: { userAgent?: string } }).navigator
  return nav?.userAgent ? `Browser/${nav.userAgent}` : 'unknown'
}

/** Lower-cased plain object from any `HeadersInit`. */
function normalizeHeaders(headers: HeadersInit | undefined): Record<string, string> {
  const result: Record<string, string> = {}
  new Headers(headers ?? {}).forEach((value, key) => {
    result[key] = value
  })
  return result
}

/** The caller's headers over the JSON defaults, plus `PASTURE_API_KEY` as a bearer token. */
export function defaultHeaders(extra: HeadersInit | undefined): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json',
    'user-agent': `pasture-js/${VERSION} (${platform()})`,
    ...normalizeHeaders(extra),
  }
  const apiKey = env('API_KEY')
  if (apiKey && !headers.authorization) headers.authorization = `Bearer ${apiKey}`
  return headers
}

/** The server's `{"error": …}` message, else its raw body, else the HTTP status text. */
async function errorFrom(response: Response): Promise<ResponseError> {
  let message = ''
  try {
    message = (await response.text()).trim()
  } catch {
    // the body could not be read: fall back to the status line
  }
  try {
    const parsed: unknown = JSON.parse(message)
    const error = (parsed as { error?: unknown } | null)?.error
    if (typeof error === 'string') message = error
  } catch {
    // not JSON: keep the text as it is
  }
  return new ResponseError(
    message || response.statusText || `HTTP ${response.status}`,
    response.status,
  )
}

/** Node's codes for "no connection could be made" (refused, no such host, unreachable). */
const CONNECT_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
])

/**
 * Whether `fetch` failed because no connection could be made. Node puts a system error
 * code under `cause` (other codes, such as a response timeout, are not "not running" and
 * pass through); browsers only say so in the message. Other TypeErrors (a bad header value,
 * say) are the caller's mistake and pass through unchanged too.
 */
function isConnectionFailure(error: unknown): error is TypeError {
  if (!(error instanceof TypeError)) return false
  let cause: unknown = error.cause
  for (let depth = 0; depth < 4 && cause && typeof cause === 'object'; depth++) {
    const code = (cause as { code?: unknown }).code
    if (typeof code === 'string') return CONNECT_CODES.has(code)
    cause = (cause as { cause?: unknown }).cause
  }
  return /^(failed to fetch|networkerror|load failed)/i.test(error.message)
}

export class Transport {
  constructor(
    readonly host: string,
    readonly headers: Record<string, string>,
    readonly fetch: Fetch,
  ) {}

  /** Send one request; the response, if it answered 2xx. `allow` lists other accepted codes. */
  async request(
    method: string,
    path: string,
    options: RequestOptions = {},
    allow: number[] = [],
  ): Promise<Response> {
    const init: RequestInit & { duplex?: 'half' } = {
      method,
      headers: { ...this.headers, ...options.headers },
      signal: options.signal,
    }
    if (options.json !== undefined) init.body = JSON.stringify(options.json)
    else if (options.body !== undefined) init.body = options.body
    let response: Response
    try {
      response = await this.fetch(`${this.host}${path}`, init)
    } catch (error) {
      if (isConnectionFailure(error)) throw new ServerNotRunningError(this.host, error.cause ?? error)
      throw error
    }
    if (!response.ok && !allow.includes(response.status)) throw await errorFrom(response)
    return response
  }

  /** Send a request and parse its JSON answer. */
  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.request(method, path, options)
    return (await response.json()) as T
  }
}
