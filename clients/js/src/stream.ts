/**
 * Streaming responses: NDJSON lines read off a `ReadableStream`, handed out by an async
 * iterator that can be aborted.
 *
 * A stream is only complete when its last line says so (`done: true` for generate and
 * chat, `status: "success"` for create, pull and push); a connection that just ends is an
 * error, never a silently short answer. An `{"error": …}` line throws `ResponseError`.
 */

import { ResponseError } from './errors.js'

/** Each JSON object in an NDJSON byte stream; a line that is not JSON throws. */
export async function* parseNDJSON(body: ReadableStream<Uint8Array>): AsyncGenerator<unknown> {
  const decoder = new TextDecoder('utf-8')
  const reader = body.getReader()
  let buffer = ''
  const parse = (line: string): unknown => {
    try {
      return JSON.parse(line)
    } catch {
      throw new ResponseError(`invalid JSON in server stream: ${line.slice(0, 200)}`)
    }
  }
  try {
    while (true) {
      const { done, value } = await reader.read()
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true })
      const lines = buffer.split('\n')
      buffer = done ? '' : (lines.pop() ?? '')
      for (const line of lines) {
        if (line.trim()) yield parse(line)
      }
      if (done) return
    }
  } finally {
    // Cancelling (not just unlocking) closes the connection when the reader stops early.
    await reader.cancel().catch(() => undefined)
  }
}

function isFinal(message: unknown): boolean {
  const part = message as { done?: unknown; status?: unknown }
  return part.done === true || part.status === 'success'
}

/**
 * The parts of a streamed response, for `for await`; `abort()` stops it (the connection
 * is closed, so the server stops generating) and the loop then throws an `AbortError`.
 * Leaving the loop early (`break`) closes the connection too.
 */
export class AbortableAsyncIterator<T extends object> implements AsyncIterable<T> {
  private readonly abortController: AbortController
  private readonly itr: AsyncGenerator<unknown>
  private readonly doneCallback: () => void

  constructor(
    abortController: AbortController,
    itr: AsyncGenerator<unknown>,
    doneCallback: () => void,
  ) {
    this.abortController = abortController
    this.itr = itr
    this.doneCallback = doneCallback
  }

  /** Stop this stream. */
  abort(): void {
    this.abortController.abort()
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    let finished = false
    const signal = this.abortController.signal
    try {
      for await (const message of this.itr) {
        // Lines read before the abort may still be buffered: none is handed out after it.
        signal.throwIfAborted()
        if (message === null || typeof message !== 'object') {
          throw new ResponseError(`unexpected line in server stream: ${JSON.stringify(message)}`)
        }
        const error = (message as { error?: unknown }).error
        if (error !== undefined && error !== null) throw new ResponseError(String(error))
        yield message as T
        if (isFinal(message)) {
          finished = true
          return
        }
      }
      throw new ResponseError('the server stream ended before its final (done) message')
    } catch (error) {
      // Once aborted, however the body reader reacted (an error, or a plain early end),
      // the caller asked for it: report the abort, not a broken stream.
      if (signal.aborted) throw signal.reason
      throw error
    } finally {
      // An early exit (break, error, abort) must not leave the connection generating.
      if (!finished) this.abortController.abort()
      this.doneCallback()
    }
  }
}
