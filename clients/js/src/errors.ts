/**
 * The two ways a call to the server fails, as seen by a client.
 *
 * `ResponseError` means the server answered and said no (its `error` message and HTTP
 * status, as the official `ollama` client reports them); `ServerNotRunningError` means
 * nothing answered at all, which on a desktop almost always means `pasture serve` was
 * never started, so the message says exactly that.
 */

/**
 * The server refused a request: `error` is its message, `status_code` its HTTP status.
 * An error reported inside a stream, after the 200 status was sent, has `status_code` -1.
 */
export class ResponseError extends Error {
  readonly error: string
  readonly status_code: number

  constructor(error: string, status_code = -1) {
    super(error)
    this.name = 'ResponseError'
    this.error = error
    this.status_code = status_code
  }
}

/** Nothing answered at the server's address (connection refused, unknown host, …). */
export class ServerNotRunningError extends Error {
  readonly url: string

  constructor(url: string, cause?: unknown) {
    const code = errorCode(cause)
    super(
      `could not connect to the Pasture server at ${url}` +
        (code ? ` (${code})` : '') +
        ': it is not running. Start it with `pasture serve`',
      { cause },
    )
    this.name = 'ServerNotRunningError'
    this.url = url
  }
}

/** The system error code (ECONNREFUSED, ENOTFOUND, …) Node's fetch puts under `cause`. */
function errorCode(error: unknown): string | undefined {
  let current: unknown = error
  for (let depth = 0; depth < 4 && current && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string') return code
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}
