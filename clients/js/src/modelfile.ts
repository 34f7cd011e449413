/**
 * A Modelfile parser following Ollama's (`parser/parser.go`) state machine, as Pasture's
 * Python parser does: `INSTRUCTION value` per line, instructions case-insensitive, `#`
 * comments, values bare or wrapped in `"…"` / `"""…"""` to span lines, no escapes.
 * Pure string work, so it runs in browsers too; reading files is `pasture/node`'s job.
 *
 * Pasture's one addition, for values Ollama's grammar cannot carry (a line ending in
 * `"""` inside a multi-line value, unprintable characters): a value written as `<<TAG`
 * (`TAG` upper-case letters, digits and `_`) alone on its line is every character of the
 * following lines, verbatim, up to a line that is exactly `TAG`. `show --modelfile`
 * writes it only for such values.
 */

export const COMMANDS = [
  'from', 'license', 'template', 'system', 'adapter', 'draft', 'renderer', 'parser',
  'parameter', 'message', 'requires',
] as const
export const ROLES = ['system', 'user', 'assistant'] as const

const INVALID_COMMAND =
  'command must be one of "from", "license", "template", "system", "adapter", "draft", ' +
  '"renderer", "parser", "parameter", "message", or "requires"'
const INVALID_ROLE = 'message role must be one of "system", "user", or "assistant"'

/** A Modelfile that cannot be used; the message names the line. */
export class ModelfileError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ModelfileError'
  }
}

/** One instruction: `name` lower-cased, `key` the parameter name or message role. */
export interface ModelfileCommand {
  name: (typeof COMMANDS)[number]
  args: string
  line: number
  key: string
}

const enum State {
  Nil,
  Name,
  Value,
  Parameter,
  Message,
  Comment,
}

const isSpace = (ch: string) => ch === ' ' || ch === '\t'
const isNewline = (ch: string) => ch === '\r' || ch === '\n'
const isAlpha = (ch: string) => /^[A-Za-z]$/.test(ch)
// Characters Go's strconv.IsPrint rejects (controls, format characters, separators other
// than the space), tab aside; line breaks never reach here.
const UNPRINTABLE = /(?![ \t])[\p{C}\p{Z}]/gu
const HEREDOC = /^<<([A-Z][A-Z0-9_]*)$/
const LINE_BREAK = /\r\n|\r|\n/g

/** Ollama's `unquote` succeeds on the value read so far: no quote open, or it is closed. */
function closed(raw: string): boolean {
  const s = raw.trim()
  if (!s) return true
  if (s.length >= 3 && s.startsWith('"""')) return s.length >= 6 && s.endsWith('"""')
  if (s.startsWith('"')) return s.length >= 2 && s.endsWith('"')
  return true
}

function unquote(raw: string): string {
  const s = raw.trim()
  if (s.startsWith('"""')) return s.slice(3, -3)
  if (s.startsWith('"')) return s.slice(1, -1)
  return s
}

const lineError = (line: number, message: string) =>
  new ModelfileError(`(line ${line}): ${message}`)

const unterminated = (tag: string, line: number) =>
  lineError(line, `unexpected EOF: no line ${tag} ends the <<${tag} value`)

/** `TAG` when the value read so far is a heredoc opener `<<TAG` on the command's line. */
function heredocTag(value: string): string | undefined {
  return /[\r\n]/.test(value) ? undefined : HEREDOC.exec(value.trim())?.[1]
}

/**
 * The `<<TAG` value whose opening line ends at `start` (a line break), and where its
 * closing `TAG` ends. The line breaks after the opener and before `TAG` are not part of it.
 */
function heredoc(text: string, start: number, tag: string, line: number): [string, number] {
  const begin = start + (text.startsWith('\r\n', start) ? 2 : 1)
  const endsLine = (at: number) => at === text.length || isNewline(text[at] as string)
  if (text.startsWith(tag, begin) && endsLine(begin + tag.length)) return ['', begin + tag.length]
  const closing = new RegExp(`(?:\\r\\n|\\r|\\n)${tag}(?=[\\r\\n]|$)`, 'g')
  closing.lastIndex = begin
  const found = closing.exec(text)
  if (!found) throw unterminated(tag, line)
  return [text.slice(begin, found.index), found.index + found[0].length]
}

const lineBreaks = (text: string) => text.match(LINE_BREAK)?.length ?? 0

/** The commands of Modelfile `text`, in order; `ModelfileError` naming the line if bad. */
export function parseModelfile(text: string): ModelfileCommand[] {
  if (text.startsWith('\ufeff')) text = text.slice(1)
  const commands: ModelfileCommand[] = []
  let state = State.Nil
  let word = ''
  let value = ''
  let name = ''
  let key = ''
  let line = 1
  let commandLine = 1
  let i = 0
  const push = () =>
    commands.push({ name: name as ModelfileCommand['name'], args: unquote(value), line: commandLine, key })
  while (i < text.length) {
    const ch = text[i] as string
    if ((state === State.Value || state === State.Comment) && !isNewline(ch)) {
      let end = i
      while (end < text.length && !isNewline(text[end] as string)) end++
      if (state === State.Value) value += text.slice(i, end).replace(UNPRINTABLE, '')
      i = end
      continue
    }
    i++
    const newline = ch === '\n' || (ch === '\r' && text[i] !== '\n')
    switch (state) {
      case State.Nil:
        if (ch === '#') state = State.Comment
        else if (!isSpace(ch) && !isNewline(ch)) {
          state = State.Name
          word = ch.replace(UNPRINTABLE, '')
          commandLine = line
        }
        break
      case State.Name:
        if (isAlpha(ch)) word += ch
        else if (isSpace(ch)) {
          name = word.toLowerCase()
          if (!(COMMANDS as readonly string[]).includes(name)) throw lineError(line, INVALID_COMMAND)
          state = name === 'parameter' ? State.Parameter : name === 'message' ? State.Message : State.Value
          word = ''
          key = ''
          value = ''
        } else throw lineError(line, INVALID_COMMAND)
        break
      case State.Parameter:
        if (/^[A-Za-z0-9_]$/.test(ch)) word += ch
        else if (isSpace(ch)) {
          if (word) {
            state = State.Value
            key = word
            word = ''
          }
        } else throw lineError(line, 'invalid or missing parameter name')
        break
      case State.Message:
        if (isAlpha(ch)) word += ch
        else if (!(isSpace(ch) && !word)) {
          if (!isSpace(ch) || !(ROLES as readonly string[]).includes(word)) {
            throw lineError(line, INVALID_ROLE)
          }
          state = State.Value
          key = word
          word = ''
        }
        break
      case State.Value: {
        // ch is a line break
        const tag = heredocTag(value)
        if (tag !== undefined) {
          const [body, end] = heredoc(text, i - 1, tag, commandLine)
          commands.push({ name: name as ModelfileCommand['name'], args: body, line: commandLine, key })
          line += lineBreaks(text.slice(i - 1, end))
          i = end
          state = State.Nil
          continue
        }
        if (!closed(value)) value += ch
        else {
          push()
          state = State.Nil
        }
        break
      }
      case State.Comment:
        state = State.Nil
        break
    }
    if (newline) line++
  }
  if (state === State.Value) {
    const tag = heredocTag(value)
    if (tag !== undefined) throw unterminated(tag, commandLine)
    if (!closed(value)) throw lineError(commandLine, 'unexpected EOF: unterminated quoted value')
    push()
  } else if (state !== State.Nil && state !== State.Comment) {
    throw lineError(line, 'unexpected EOF')
  }
  if (!commands.some((command) => command.name === 'from')) throw new ModelfileError('no FROM line')
  return commands
}

// ----- PARAMETER values ---------------------------------------------------------------------

type OptionType = 'int' | 'float' | 'bool' | 'list' | 'str'

/** An option's JSON type and, if bounded, its smallest and largest values (or a string's choices). */
interface OptionSpec {
  type: OptionType
  low?: number
  high?: number
  choices?: string[]
}

/**
 * Each option's type and bounds, as the server checks them (`pasture/options.py`), so a
 * bad value is reported with its line before anything is uploaded.
 */
const OPTIONS: Record<string, OptionSpec> = {
  num_keep: { type: 'int', low: -1, high: 2147483647 },
  seed: { type: 'int' },
  num_predict: { type: 'int', low: -2, high: 2147483647 },
  top_k: { type: 'int', low: 0, high: 2147483647 },
  top_p: { type: 'float', low: 0, high: 1 },
  min_p: { type: 'float', low: 0, high: 1 },
  typical_p: { type: 'float', low: 0, high: 1 },
  repeat_last_n: { type: 'int', low: -1, high: 2147483647 },
  temperature: { type: 'float', low: 0 },
  repeat_penalty: { type: 'float', low: 0 },
  presence_penalty: { type: 'float' },
  frequency_penalty: { type: 'float' },
  stop: { type: 'list' },
  num_ctx: { type: 'int', low: 1, high: 1 << 22 },
  num_batch: { type: 'int', low: 1, high: 1 << 16 },
  num_gpu: { type: 'int', low: -1 },
  main_gpu: { type: 'int', low: 0 },
  use_mmap: { type: 'bool' },
  num_thread: { type: 'int', low: 0, high: 1024 },
  // Tokens a DRAFT model proposes per step; 0 turns speculative decoding off.
  draft_num_predict: { type: 'int', low: 0, high: 256 },
  // Speculative decoding with no draft model (the engine's ngram lookup); "off" turns it off.
  speculative: { type: 'str', choices: ['off', 'ngram', 'ngram_simple', 'ngram_map_k', 'ngram_mod'] },
}
/** Options Ollama dropped: a Modelfile may still name them; they are accepted and ignored. */
const RETIRED = new Set([
  'penalize_newline', 'low_vram', 'f16_kv', 'logits_all', 'vocab_only', 'use_mlock',
  'mirostat', 'mirostat_tau', 'mirostat_eta', 'tfs_z', 'numa',
])
const TYPE_NAMES: Record<OptionType, string> = {
  int: 'integer', float: 'float', bool: 'boolean', list: 'array of strings', str: 'string',
}

/** The value if within the option's bounds, else the server's message naming them. */
function inRange(key: string, value: number, line: number): number {
  const { low, high } = OPTIONS[key] as OptionSpec
  if ((low === undefined || value >= low) && (high === undefined || value <= high)) return value
  const bounds =
    high === undefined ? `at least ${low}` : low === undefined ? `at most ${high}` : `between ${low} and ${high}`
  throw lineError(line, `option "${key}" must be ${bounds}`)
}

/**
 * The typed value of `PARAMETER name raw`; undefined for a retired option. A `stop` is
 * kept as written, as Ollama keeps it: it may be " User:" or a lone line break.
 */
export function parseParameter(name: string, raw: string, line = 0): unknown {
  const key = name.toLowerCase()
  if (RETIRED.has(key)) return undefined
  const kind = OPTIONS[key]?.type
  if (!kind) throw lineError(line, `unknown parameter "${name}"`)
  const text = raw.trim()
  if (kind === 'list') return raw
  if (kind === 'str') {
    const choices = OPTIONS[key]?.choices ?? []
    if (choices.includes(text.toLowerCase())) return text.toLowerCase()
    throw lineError(line, `option "${key}" must be one of ${choices.join(', ')}`)
  }
  if (kind === 'bool') {
    const lowered = text.toLowerCase()
    if (['1', 't', 'true'].includes(lowered)) return true
    if (['0', 'f', 'false'].includes(lowered)) return false
  } else if (kind === 'int' && /^[+-]?\d+$/.test(text)) {
    return inRange(key, Number.parseInt(text, 10), line)
  } else if (kind === 'float' && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) {
    const value = Number(text)
    if (Number.isFinite(value)) return inRange(key, value, line)
  }
  throw lineError(
    line,
    `invalid value "${raw}" for parameter "${name}": must be of type ${TYPE_NAMES[kind]}`,
  )
}

/** PARAMETER lines as an options object; repeated `stop`s accumulate. */
export function parametersOf(commands: ModelfileCommand[]): Record<string, unknown> {
  const parameters: Record<string, unknown> = {}
  for (const command of commands) {
    if (command.name !== 'parameter') continue
    const value = parseParameter(command.key, command.args, command.line)
    if (value === undefined) continue
    const key = command.key.toLowerCase()
    if (OPTIONS[key]?.type === 'list') {
      parameters[key] = [...((parameters[key] as string[] | undefined) ?? []), value as string]
    } else parameters[key] = value
  }
  return parameters
}
