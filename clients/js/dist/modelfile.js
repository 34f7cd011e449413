/**
 * A Modelfile parser following Ollama's (`parser/parser.go`) state machine, as Pasture's
 * Python parser does: `INSTRUCTION value` per line, instructions case-insensitive, `#`
 * comments, values bare or wrapped in `"…"` / `"""…"""` to span lines, no escapes.
 * Pure string work, so it runs in browsers too; reading files is `pasture/node`'s job.
 */
export const COMMANDS = [
    'from', 'license', 'template', 'system', 'adapter', 'draft', 'renderer', 'parser',
    'parameter', 'message', 'requires',
];
export const ROLES = ['system', 'user', 'assistant'];
const INVALID_COMMAND = 'command must be one of "from", "license", "template", "system", "adapter", "draft", ' +
    '"renderer", "parser", "parameter", "message", or "requires"';
const INVALID_ROLE = 'message role must be one of "system", "user", or "assistant"';
/** A Modelfile that cannot be used; the message names the line. */
export class ModelfileError extends Error {
    constructor(message) {
        super(message);
        this.name = 'ModelfileError';
    }
}
const isSpace = (ch) => ch === ' ' || ch === '\t';
const isNewline = (ch) => ch === '\r' || ch === '\n';
const isAlpha = (ch) => /^[A-Za-z]$/.test(ch);
// Characters Go's strconv.IsPrint rejects, tab aside (line breaks never reach here).
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u2028\u2029\ufeff]/g;
/** Ollama's `unquote` succeeds on the value read so far: no quote open, or it is closed. */
function closed(raw) {
    const s = raw.trim();
    if (!s)
        return true;
    if (s.length >= 3 && s.startsWith('"""'))
        return s.length >= 6 && s.endsWith('"""');
    if (s.startsWith('"'))
        return s.length >= 2 && s.endsWith('"');
    return true;
}
function unquote(raw) {
    const s = raw.trim();
    if (s.startsWith('"""'))
        return s.slice(3, -3);
    if (s.startsWith('"'))
        return s.slice(1, -1);
    return s;
}
const lineError = (line, message) => new ModelfileError(`(line ${line}): ${message}`);
/** The commands of Modelfile `text`, in order; `ModelfileError` naming the line if bad. */
export function parseModelfile(text) {
    if (text.startsWith('\ufeff'))
        text = text.slice(1);
    const commands = [];
    let state = 0 /* State.Nil */;
    let word = '';
    let value = '';
    let name = '';
    let key = '';
    let line = 1;
    let commandLine = 1;
    let i = 0;
    const push = () => commands.push({ name: name, args: unquote(value), line: commandLine, key });
    while (i < text.length) {
        const ch = text[i];
        if ((state === 2 /* State.Value */ || state === 5 /* State.Comment */) && !isNewline(ch)) {
            let end = i;
            while (end < text.length && !isNewline(text[end]))
                end++;
            if (state === 2 /* State.Value */)
                value += text.slice(i, end).replace(UNPRINTABLE, '');
            i = end;
            continue;
        }
        i++;
        const newline = ch === '\n' || (ch === '\r' && text[i] !== '\n');
        switch (state) {
            case 0 /* State.Nil */:
                if (ch === '#')
                    state = 5 /* State.Comment */;
                else if (!isSpace(ch) && !isNewline(ch)) {
                    state = 1 /* State.Name */;
                    word = ch;
                    commandLine = line;
                }
                break;
            case 1 /* State.Name */:
                if (isAlpha(ch))
                    word += ch;
                else if (isSpace(ch)) {
                    name = word.toLowerCase();
                    if (!COMMANDS.includes(name))
                        throw lineError(line, INVALID_COMMAND);
                    state = name === 'parameter' ? 3 /* State.Parameter */ : name === 'message' ? 4 /* State.Message */ : 2 /* State.Value */;
                    word = '';
                    key = '';
                    value = '';
                }
                else
                    throw lineError(line, INVALID_COMMAND);
                break;
            case 3 /* State.Parameter */:
                if (/^[A-Za-z0-9_]$/.test(ch))
                    word += ch;
                else if (isSpace(ch)) {
                    if (word) {
                        state = 2 /* State.Value */;
                        key = word;
                        word = '';
                    }
                }
                else
                    throw lineError(line, 'invalid or missing parameter name');
                break;
            case 4 /* State.Message */:
                if (isAlpha(ch))
                    word += ch;
                else if (!(isSpace(ch) && !word)) {
                    if (!isSpace(ch) || !ROLES.includes(word)) {
                        throw lineError(line, INVALID_ROLE);
                    }
                    state = 2 /* State.Value */;
                    key = word;
                    word = '';
                }
                break;
            case 2 /* State.Value */: // ch is a line break
                if (!closed(value))
                    value += ch;
                else {
                    push();
                    state = 0 /* State.Nil */;
                }
                break;
            case 5 /* State.Comment */:
                state = 0 /* State.Nil */;
                break;
        }
        if (newline)
            line++;
    }
    if (state === 2 /* State.Value */) {
        if (!closed(value))
            throw lineError(commandLine, 'unexpected EOF: unterminated quoted value');
        push();
    }
    else if (state !== 0 /* State.Nil */ && state !== 5 /* State.Comment */) {
        throw lineError(line, 'unexpected EOF');
    }
    if (!commands.some((command) => command.name === 'from'))
        throw new ModelfileError('no FROM line');
    return commands;
}
/** Each option's JSON type; the server checks types strictly, so values are typed here. */
const OPTION_TYPES = {
    num_keep: 'int', seed: 'int', num_predict: 'int', top_k: 'int', repeat_last_n: 'int',
    num_ctx: 'int', num_batch: 'int', num_gpu: 'int', main_gpu: 'int', num_thread: 'int',
    top_p: 'float', min_p: 'float', typical_p: 'float', temperature: 'float',
    repeat_penalty: 'float', presence_penalty: 'float', frequency_penalty: 'float',
    use_mmap: 'bool', stop: 'list',
};
/** Options Ollama dropped: a Modelfile may still name them; they are accepted and ignored. */
const RETIRED = new Set([
    'penalize_newline', 'low_vram', 'f16_kv', 'logits_all', 'vocab_only', 'use_mlock',
    'mirostat', 'mirostat_tau', 'mirostat_eta', 'tfs_z', 'numa',
]);
const TYPE_NAMES = {
    int: 'integer', float: 'float', bool: 'boolean', list: 'array of strings',
};
/** The typed value of `PARAMETER name raw`; undefined for a retired option. */
export function parseParameter(name, raw, line = 0) {
    const key = name.toLowerCase();
    if (RETIRED.has(key))
        return undefined;
    const kind = OPTION_TYPES[key];
    if (!kind)
        throw lineError(line, `unknown parameter "${name}"`);
    const text = raw.trim();
    if (kind === 'list')
        return text;
    if (kind === 'bool') {
        const lowered = text.toLowerCase();
        if (['1', 't', 'true'].includes(lowered))
            return true;
        if (['0', 'f', 'false'].includes(lowered))
            return false;
    }
    else if (kind === 'int' && /^[+-]?\d+$/.test(text)) {
        return Number.parseInt(text, 10);
    }
    else if (kind === 'float' && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) {
        const value = Number(text);
        if (Number.isFinite(value))
            return value;
    }
    throw lineError(line, `invalid value "${raw}" for parameter "${name}": must be of type ${TYPE_NAMES[kind]}`);
}
/** PARAMETER lines as an options object; repeated `stop`s accumulate. */
export function parametersOf(commands) {
    const parameters = {};
    for (const command of commands) {
        if (command.name !== 'parameter')
            continue;
        const value = parseParameter(command.key, command.args, command.line);
        if (value === undefined)
            continue;
        const key = command.key.toLowerCase();
        if (OPTION_TYPES[key] === 'list') {
            parameters[key] = [...(parameters[key] ?? []), value];
        }
        else
            parameters[key] = value;
    }
    return parameters;
}
