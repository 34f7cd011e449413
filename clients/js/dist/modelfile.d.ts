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
export declare const COMMANDS: readonly ["from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter", "message", "requires"];
export declare const ROLES: readonly ["system", "user", "assistant"];
/** A Modelfile that cannot be used; the message names the line. */
export declare class ModelfileError extends Error {
    constructor(message: string);
}
/** One instruction: `name` lower-cased, `key` the parameter name or message role. */
export interface ModelfileCommand {
    name: (typeof COMMANDS)[number];
    args: string;
    line: number;
    key: string;
}
/** The commands of Modelfile `text`, in order; `ModelfileError` naming the line if bad. */
export declare function parseModelfile(text: string): ModelfileCommand[];
/**
 * The typed value of `PARAMETER name raw`; undefined for a retired option. A `stop` is
 * kept as written, as Ollama keeps it: it may be " User:" or a lone line break.
 */
export declare function parseParameter(name: string, raw: string, line?: number): unknown;
/** PARAMETER lines as an options object; repeated `stop`s accumulate. */
export declare function parametersOf(commands: ModelfileCommand[]): Record<string, unknown>;
