/**
 * `pasture`: the JavaScript client for Pasture (and Ollama) servers.
 *
 * ```js
 * import pasture from 'pasture'          // a default client (PASTURE_HOST in Node, else 127.0.0.1:11434)
 * import { Pasture, Ollama } from 'pasture'
 * ```
 *
 * This entry point runs in browsers and Node alike; `pasture/node` adds file paths
 * (images, blobs, `createFromModelfile`).
 */
import { Pasture } from './client.js';
export { Pasture, Pasture as Ollama, sha256Digest, toBase64 } from './client.js';
export type { BlobData } from './client.js';
export { ResponseError, ServerNotRunningError } from './errors.js';
export { DEFAULT_HOST, formatHost } from './host.js';
export { AbortableAsyncIterator } from './stream.js';
export type * from './types.js';
export { VERSION } from './version.js';
declare const _default: Pasture;
export default _default;
