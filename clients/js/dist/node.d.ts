/**
 * `pasture/node`: the client plus what only Node can do, reading local files.
 *
 * Ollama's design is kept: the client reads every file a Modelfile names, hashes it, and
 * uploads it as a content-addressed blob only if the server lacks it; `create` then names
 * digests, never paths, so the server never opens a path from a request.
 *
 * ```js
 * import pasture from 'pasture/node'
 * await pasture.createFromModelfile('mymodel', './Modelfile')
 * ```
 */
import { Pasture as BrowserPasture, type BlobData } from './client.js';
import { type ModelfileCommand } from './modelfile.js';
import type { AbortableAsyncIterator } from './stream.js';
import type { Config, CreateRequest, ProgressResponse } from './types.js';
/** Options of `createFromModelfile`. */
export interface CreateFromModelfileOptions {
    stream?: boolean;
    quantize?: string;
}
/** What a Modelfile asks the server to build, with local files still as paths. */
export interface CreatePlan {
    request: Omit<CreateRequest, 'model' | 'files' | 'adapters' | 'draft_files' | 'stream'>;
    files: [name: string, path: string][];
    adapters: [name: string, path: string][];
    /** The DRAFT model's files (the last DRAFT wins). */
    draftFiles: [name: string, path: string][];
}
/** SHA-256 of a file, read as a stream so a model of many gigabytes is never in memory. */
export declare function hashFile(path: string): Promise<string>;
/** Read parsed Modelfile commands into a create request; paths relative to `baseDir`. */
export declare function planCreate(commands: ModelfileCommand[], baseDir: string): Promise<CreatePlan>;
/** The configuration `pasture/node` takes: the browser client's, and `ca`. */
export interface NodeConfig extends Config {
    /**
     * PEM certificates (a CA's, or a server's self-signed one) to trust for https besides
     * Node's built-in roots; default the file `PASTURE_CA_FILE` names. Ignored with `fetch`.
     */
    ca?: string | Uint8Array;
}
/**
 * The client, with file paths accepted for images and blobs, `createFromModelfile`, and
 * https servers checked against `ca` (or `PASTURE_CA_FILE`).
 */
export declare class Pasture extends BrowserPasture {
    constructor(config?: Partial<NodeConfig>);
    /** Base64 text for an image given as bytes, a file path, or base64 text already. */
    encodeImage(image: Uint8Array | string): Promise<string>;
    /**
     * Make a local file (a path) or bytes available to the server as a blob; returns its
     * digest. A file is hashed and uploaded as a stream, and only if the server lacks it.
     */
    createBlob(source: string | BlobData): Promise<string>;
    /**
     * Create `model` from the Modelfile at `modelfilePath`: FROM, ADAPTER and DRAFT paths
     * (relative to the Modelfile's folder) are uploaded as blobs first; a FROM naming no file
     * is a model.
     */
    createFromModelfile(model: string, modelfilePath: string, options: CreateFromModelfileOptions & {
        stream: true;
    }): Promise<AbortableAsyncIterator<ProgressResponse>>;
    createFromModelfile(model: string, modelfilePath: string, options?: CreateFromModelfileOptions & {
        stream?: false;
    }): Promise<ProgressResponse>;
}
export { Pasture as Ollama };
export { sha256Digest, toBase64 } from './client.js';
export { ResponseError, ServerNotRunningError } from './errors.js';
export { DEFAULT_HOST, formatHost } from './host.js';
export { AbortableAsyncIterator } from './stream.js';
export { VERSION } from './version.js';
export type * from './types.js';
export type { BlobData } from './client.js';
export { ModelfileError, parseModelfile, parseParameter } from './modelfile.js';
export type { ModelfileCommand } from './modelfile.js';
declare const _default: Pasture;
export default _default;
