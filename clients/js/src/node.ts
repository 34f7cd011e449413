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

import { createHash } from 'node:crypto'
import { createReadStream, openAsBlob, readFileSync } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path'

import { Pasture as BrowserPasture, sha256Digest, type BlobData } from './client.js'
import { env } from './host.js'
import {
  ModelfileError,
  parametersOf,
  parseModelfile,
  type ModelfileCommand,
} from './modelfile.js'
import type { AbortableAsyncIterator } from './stream.js'
import { trustingFetch } from './tls.js'
import type { Config, CreateRequest, Message, ProgressResponse } from './types.js'

// A FROM naming a missing file is a typo'd path, not a model name, when it looks like one.
const PATH_PREFIXES = ['./', '../', '/', '~', '.\\', '..\\']
const MODEL_SUFFIXES = ['.gguf', '.bin', '.safetensors']
// Instructions Pasture's server cannot honour yet: refused early, never silently dropped.
const UNSUPPORTED = new Set(['renderer'])
// Semver with an optional `v`, pre-release and build, short forms allowed, as the server
// reads REQUIRES (`pasture/api/requires.py`); checked here to report the line.
const SEMVER =
  /^v?(0|[1-9]\d*)(\.(0|[1-9]\d*))?(\.(0|[1-9]\d*))?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/

/** Options of `createFromModelfile`. */
export interface CreateFromModelfileOptions {
  stream?: boolean
  quantize?: string
}

/** What a Modelfile asks the server to build, with local files still as paths. */
export interface CreatePlan {
  request: Omit<CreateRequest, 'model' | 'files' | 'adapters' | 'draft_files' | 'stream'>
  files: [name: string, path: string][]
  adapters: [name: string, path: string][]
  /** The DRAFT model's files (the last DRAFT wins). */
  draftFiles: [name: string, path: string][]
}

/** The certificates in the file `PASTURE_CA_FILE` names, if it names one. */
function caFromEnvironment(): Buffer | undefined {
  const path = env('CA_FILE')
  return path ? readFileSync(path) : undefined
}

/** SHA-256 of a file, read as a stream so a model of many gigabytes is never in memory. */
export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return sha256Digest(hash.digest())
}

function expand(path: string, baseDir: string): string {
  const home = path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path
  return isAbsolute(home) ? home : resolve(baseDir, home)
}

async function kindOf(path: string): Promise<'file' | 'directory' | undefined> {
  try {
    const info = await stat(path)
    return info.isDirectory() ? 'directory' : 'file'
  } catch {
    return undefined
  }
}

/** A file as itself; a directory as the GGUF files in it. */
async function modelFiles(path: string, line: number): Promise<[string, string][]> {
  if ((await kindOf(path)) === 'file') return [[basename(path), path]]
  const found = (await readdir(path, { withFileTypes: true }))
    .filter((entry) => entry.isFile() && extname(entry.name).toLowerCase() === '.gguf')
    .map((entry) => entry.name)
    .sort()
  if (found.length === 0) throw new ModelfileError(`(line ${line}): no GGUF files found in ${path}`)
  return found.map((name) => [name, join(path, name)])
}

function addFiles(files: [string, string][], added: [string, string][], line: number): void {
  const names = new Set(files.map(([name]) => name))
  for (const [name, path] of added) {
    if (names.has(name)) throw new ModelfileError(`(line ${line}): two files are named ${name}`)
    names.add(name)
    files.push([name, path])
  }
}

const looksLikePath = (value: string) =>
  PATH_PREFIXES.some((prefix) => value.startsWith(prefix)) ||
  MODEL_SUFFIXES.some((suffix) => value.toLowerCase().endsWith(suffix))

/** Read parsed Modelfile commands into a create request; paths relative to `baseDir`. */
export async function planCreate(commands: ModelfileCommand[], baseDir: string): Promise<CreatePlan> {
  const plan: CreatePlan = { request: {}, files: [], adapters: [], draftFiles: [] }
  const messages: Message[] = []
  const licenses: string[] = []
  for (const { name, args, line, key } of commands) {
    if (name === 'from') {
      const path = expand(args, baseDir)
      if (await kindOf(path)) addFiles(plan.files, await modelFiles(path, line), line)
      else if (looksLikePath(args)) throw new ModelfileError(`(line ${line}): no such file: ${path}`)
      else if (plan.request.from !== undefined && plan.request.from !== args) {
        throw new ModelfileError(`(line ${line}): only one FROM may name a model`)
      } else plan.request.from = args
    } else if (name === 'adapter') {
      const path = expand(args, baseDir)
      if (!(await kindOf(path))) {
        throw new ModelfileError(`(line ${line}): no such adapter file: ${path}`)
      }
      addFiles(plan.adapters, await modelFiles(path, line), line)
    } else if (name === 'message') messages.push({ role: key, content: args })
    else if (name === 'license') licenses.push(args)
    else if (name === 'system') plan.request.system = args
    else if (name === 'template') plan.request.template = args
    else if (name === 'parser') plan.request.parser = args
    else if (name === 'draft') {
      // As in Ollama, a local GGUF file (or a directory of one), never a model name.
      const path = expand(args, baseDir)
      if (!(await kindOf(path))) {
        const hint = looksLikePath(args) ? '' : ' (DRAFT takes a file, not a model name)'
        throw new ModelfileError(`(line ${line}): no such draft model file: ${path}${hint}`)
      }
      plan.draftFiles = []
      addFiles(plan.draftFiles, await modelFiles(path, line), line)
    } else if (name === 'requires') {
      if (!SEMVER.test(args.trim())) {
        throw new ModelfileError(
          `(line ${line}): invalid version '${args}' in 'requires': expected a semver such as 0.5.0`,
        )
      }
      plan.request.requires = args.trim()
    } else if (UNSUPPORTED.has(name)) {
      throw new ModelfileError(`(line ${line}): ${name.toUpperCase()} is not supported by Pasture yet`)
    }
  }
  if (plan.request.from !== undefined && plan.files.length > 0) {
    throw new ModelfileError('FROM cannot name both a model and files')
  }
  const parameters = parametersOf(commands)
  if (Object.keys(parameters).length > 0) plan.request.parameters = parameters
  if (messages.length > 0) plan.request.messages = messages
  if (licenses.length > 0) plan.request.license = licenses
  return plan
}

/** The configuration `pasture/node` takes: the browser client's, and `ca`. */
export interface NodeConfig extends Config {
  /**
   * PEM certificates (a CA's, or a server's self-signed one) to trust for https besides
   * Node's built-in roots; default the file `PASTURE_CA_FILE` names. Ignored with `fetch`.
   */
  ca?: string | Uint8Array
}

/**
 * The client, with file paths accepted for images and blobs, `createFromModelfile`, and
 * https servers checked against `ca` (or `PASTURE_CA_FILE`).
 */
export class Pasture extends BrowserPasture {
  constructor(config: Partial<NodeConfig> = {}) {
    const { ca = caFromEnvironment(), ...rest } = config
    super(ca !== undefined && !rest.fetch ? { ...rest, fetch: trustingFetch(ca) } : rest)
  }

  /** Base64 text for an image given as bytes, a file path, or base64 text already. */
  override async encodeImage(image: Uint8Array | string): Promise<string> {
    if (typeof image !== 'string') return Buffer.from(image).toString('base64')
    if (image.length < 4096 && (await kindOf(image)) === 'file') {
      return (await readFile(image)).toString('base64')
    }
    return image
  }

  /**
   * Make a local file (a path) or bytes available to the server as a blob; returns its
   * digest. A file is hashed and uploaded as a stream, and only if the server lacks it.
   */
  override async createBlob(source: string | BlobData): Promise<string> {
    if (typeof source !== 'string') return super.createBlob(source)
    const digest = await hashFile(source)
    if (!(await this.blobExists(digest))) await this.uploadBlob(digest, await openAsBlob(source))
    return digest
  }

  /**
   * Create `model` from the Modelfile at `modelfilePath`: FROM, ADAPTER and DRAFT paths
   * (relative to the Modelfile's folder) are uploaded as blobs first; a FROM naming no file
   * is a model.
   */
  createFromModelfile(
    model: string,
    modelfilePath: string,
    options: CreateFromModelfileOptions & { stream: true },
  ): Promise<AbortableAsyncIterator<ProgressResponse>>
  createFromModelfile(
    model: string,
    modelfilePath: string,
    options?: CreateFromModelfileOptions & { stream?: false },
  ): Promise<ProgressResponse>
  async createFromModelfile(
    model: string,
    modelfilePath: string,
    options: CreateFromModelfileOptions = {},
  ): Promise<ProgressResponse | AbortableAsyncIterator<ProgressResponse>> {
    const commands = parseModelfile(await readFile(modelfilePath, 'utf8'))
    const plan = await planCreate(commands, dirname(resolve(modelfilePath)))
    const digests = new Map<string, string>()
    for (const [, path] of [...plan.files, ...plan.adapters, ...plan.draftFiles]) {
      if (!digests.has(path)) digests.set(path, await this.createBlob(path))
    }
    const named = (files: [string, string][]) =>
      files.length > 0
        ? Object.fromEntries(files.map(([name, path]) => [name, digests.get(path) as string]))
        : undefined
    return this.create({
      model,
      ...plan.request,
      files: named(plan.files),
      adapters: named(plan.adapters),
      draft_files: named(plan.draftFiles),
      quantize: options.quantize,
      stream: options.stream ?? false,
    })
  }
}

export { Pasture as Ollama }
export { sha256Digest, toBase64 } from './client.js'
export { ResponseError, ServerNotRunningError } from './errors.js'
export { DEFAULT_HOST, formatHost } from './host.js'
export { AbortableAsyncIterator } from './stream.js'
export { VERSION } from './version.js'
export type * from './types.js'
export type { BlobData } from './client.js'
export { ModelfileError, parseModelfile, parseParameter } from './modelfile.js'
export type { ModelfileCommand } from './modelfile.js'

export default new Pasture()
