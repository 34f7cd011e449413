/**
 * Request and response shapes of the native API, named as in the official `ollama` package
 * so code typed against it type-checks here too. Timestamps are the ISO strings the server
 * sends (the official typings claim `Date`, but neither library converts them).
 */
/** The `fetch` the client uses; pass your own to add logging, retries or a proxy. */
export type Fetch = typeof fetch;
/** Client configuration: every field is optional. */
export interface Config {
    /** Server URL or `host:port`; default `PASTURE_HOST`/`OLLAMA_HOST` (Node), else 127.0.0.1:11434. */
    host: string;
    /** A `fetch` implementation; default the platform's. */
    fetch?: Fetch;
    /** Headers sent with every request (e.g. `Authorization`); they override the defaults. */
    headers?: HeadersInit;
}
/** Model options (Modelfile `PARAMETER`s); load-time ones restart the model when changed. */
export interface Options {
    num_ctx: number;
    num_batch: number;
    num_gpu: number;
    main_gpu: number;
    use_mmap: boolean;
    num_thread: number;
    /** Tokens a DRAFT model proposes per step (0 turns speculative decoding off). */
    draft_num_predict: number;
    /** Speculative decoding with no draft model: 'off' (the default) or an ngram kind. */
    speculative: 'off' | 'ngram' | 'ngram_simple' | 'ngram_map_k' | 'ngram_mod';
    num_keep: number;
    seed: number;
    num_predict: number;
    top_k: number;
    top_p: number;
    min_p: number;
    typical_p: number;
    repeat_last_n: number;
    temperature: number;
    repeat_penalty: number;
    presence_penalty: number;
    frequency_penalty: number;
    stop: string[];
    numa: boolean;
    low_vram: boolean;
    f16_kv: boolean;
    logits_all: boolean;
    vocab_only: boolean;
    use_mlock: boolean;
    tfs_z: number;
    mirostat: number;
    mirostat_tau: number;
    mirostat_eta: number;
    penalize_newline: boolean;
}
/** A JSON schema object, or `"json"` for any JSON value. */
export type Format = string | object;
/** Seconds as a number, or a Go duration string ("5m", "1h30m"); negative keeps it loaded. */
export type KeepAlive = string | number;
export type Think = boolean | 'high' | 'medium' | 'low' | 'max';
export interface GenerateRequest {
    model: string;
    prompt: string;
    suffix?: string;
    system?: string;
    template?: string;
    context?: number[];
    stream?: boolean;
    raw?: boolean;
    format?: Format;
    /** Raw bytes or base64 text (the Node entry point also takes file paths). */
    images?: Uint8Array[] | string[];
    keep_alive?: KeepAlive;
    think?: Think;
    logprobs?: boolean;
    top_logprobs?: number;
    options?: Partial<Options>;
    /** Beyond Ollama: a GBNF grammar the answer must follow. */
    grammar?: string;
}
export interface ToolCall {
    id?: string;
    function: {
        index?: number;
        name: string;
        arguments: {
            [key: string]: any;
        };
    };
}
export interface Message {
    role: string;
    content: string;
    thinking?: string;
    images?: Uint8Array[] | string[];
    tool_calls?: ToolCall[];
    tool_name?: string;
    tool_call_id?: string;
}
export interface Tool {
    type: string;
    function: {
        name?: string;
        description?: string;
        type?: string;
        parameters?: {
            type?: string;
            $defs?: any;
            items?: any;
            required?: string[];
            properties?: {
                [key: string]: {
                    type?: string | string[];
                    items?: any;
                    description?: string;
                    enum?: any[];
                    [key: string]: any;
                };
            };
        };
    };
}
export interface ChatRequest {
    model: string;
    messages?: Message[];
    stream?: boolean;
    format?: Format;
    keep_alive?: KeepAlive;
    tools?: Tool[];
    /**
     * Beyond Ollama (which ignores it): `"auto"`, `"none"`, `"required"` or
     * `{ type: 'function', function: { name } }`, enforced by the server with a grammar.
     */
    tool_choice?: ToolChoice;
    think?: Think;
    logprobs?: boolean;
    top_logprobs?: number;
    options?: Partial<Options>;
    /** Beyond Ollama: a GBNF grammar the answer must follow. */
    grammar?: string;
}
export type ToolChoice = 'auto' | 'none' | 'required' | {
    type: 'function';
    function: {
        name: string;
    };
};
export interface PullRequest {
    model: string;
    insecure?: boolean;
    stream?: boolean;
}
export interface PushRequest {
    model: string;
    insecure?: boolean;
    stream?: boolean;
}
export interface CreateRequest {
    /** The name of the model to create. */
    model: string;
    /** An existing model to build on. */
    from?: string;
    /** File name → blob digest (from `createBlob`) of GGUF files already on the server. */
    files?: Record<string, string>;
    /** File name → blob digest of LoRA adapters. */
    adapters?: Record<string, string>;
    stream?: boolean;
    quantize?: string;
    template?: string;
    license?: string | string[];
    system?: string;
    parameters?: Partial<Options> & Record<string, unknown>;
    messages?: Message[];
    /** The minimum server version the model needs, a semver (a Modelfile's REQUIRES). */
    requires?: string;
    /** A built-in output parser by name, e.g. `harmony` (a Modelfile's PARSER). */
    parser?: string;
    /** File name → blob digest of a speculative-decoding draft model (a Modelfile's DRAFT). */
    draft_files?: Record<string, string>;
}
export interface DeleteRequest {
    model: string;
}
export interface CopyRequest {
    source: string;
    destination: string;
}
export interface ShowRequest {
    model: string;
    /** Include the large metadata arrays (the tokenizer's vocabulary, …) in `model_info`. */
    verbose?: boolean;
    system?: string;
    template?: string;
    options?: Partial<Options>;
}
export interface EmbedRequest {
    model: string;
    input: string | string[];
    truncate?: boolean;
    keep_alive?: KeepAlive;
    dimensions?: number;
    options?: Partial<Options>;
}
/** Pasture's `/api/rerank`: `documents` ordered by a reranker model's relevance to `query`. */
export interface RerankRequest {
    model: string;
    query: string;
    documents: string[];
    /** Keep the best n (default: all). */
    top_n?: number;
    /** Echo each document's text in its result. */
    return_documents?: boolean;
    keep_alive?: KeepAlive;
    options?: Partial<Options>;
}
export interface EmbeddingsRequest {
    model: string;
    prompt: string;
    keep_alive?: KeepAlive;
    options?: Partial<Options>;
}
export interface TokenLogprob {
    token: string;
    logprob: number;
}
export interface Logprob extends TokenLogprob {
    top_logprobs?: TokenLogprob[];
}
/**
 * Beyond Ollama: a generation's speeds, from the durations beside them (LM Studio's names).
 * A rate without a duration (a prompt the engine had cached) is left out.
 */
export interface Stats {
    /** Answer tokens a second (`eval_count / eval_duration`). */
    tokens_per_second?: number;
    /** Prompt tokens a second (`prompt_eval_count / prompt_eval_duration`). */
    prompt_tokens_per_second?: number;
    /** Seconds from the request's arrival to the first answer token (loading included). */
    time_to_first_token_seconds?: number;
}
/** Timing and token counts, present on the final (`done: true`) response. */
export interface Metrics {
    total_duration?: number;
    load_duration?: number;
    prompt_eval_count?: number;
    prompt_eval_duration?: number;
    eval_count?: number;
    eval_duration?: number;
    /** Beyond Ollama: the prompt was cut to fit the context (its tokens before and after). */
    truncated?: {
        prompt_tokens: number;
        kept: number;
    };
    stats?: Stats;
}
export interface GenerateResponse extends Metrics {
    model: string;
    created_at: string;
    response: string;
    thinking?: string;
    done: boolean;
    done_reason?: string;
    context?: number[];
    logprobs?: Logprob[];
}
export interface ChatResponse extends Metrics {
    model: string;
    created_at: string;
    message: Message;
    done: boolean;
    done_reason?: string;
    logprobs?: Logprob[];
}
export interface EmbedResponse {
    model: string;
    embeddings: number[][];
    total_duration?: number;
    load_duration?: number;
    prompt_eval_count?: number;
}
export interface RerankResult {
    /** The document's position in the request. */
    index: number;
    /** The model's raw score: higher is more relevant. */
    relevance_score: number;
    document?: string;
}
export interface RerankResponse {
    model: string;
    /** Best first. */
    results: RerankResult[];
    total_duration?: number;
    load_duration?: number;
    prompt_eval_count?: number;
}
export interface EmbeddingsResponse {
    embedding: number[];
}
/** Beyond Ollama: a text as the model's tokenizer reads it. */
export interface TokenizeRequest {
    model: string;
    content: string;
    /** Add the tokens the model puts around a prompt (its BOS); default false. */
    add_special?: boolean;
    keep_alive?: KeepAlive;
}
export interface TokenizeResponse {
    tokens: number[];
}
/** Beyond Ollama: token ids back to text (ids outside the vocabulary are a 400). */
export interface DetokenizeRequest {
    model: string;
    tokens: number[];
    keep_alive?: KeepAlive;
}
export interface DetokenizeResponse {
    content: string;
}
export interface ProgressResponse {
    status: string;
    digest?: string;
    total?: number;
    completed?: number;
}
export interface ModelDetails {
    parent_model: string;
    format: string;
    family: string;
    families: string[] | null;
    parameter_size: string;
    quantization_level: string;
}
export interface ModelResponse {
    name: string;
    model: string;
    modified_at: string;
    size: number;
    digest: string;
    details: ModelDetails;
}
export interface RunningModel {
    name: string;
    model: string;
    size: number;
    digest: string;
    details: ModelDetails;
    expires_at: string;
    size_vram: number;
    context_length: number;
    /** Beyond Ollama: the engine build running the model (`pasture engine list`). */
    engine?: string;
}
export interface ListResponse {
    models: ModelResponse[];
}
export interface ProcessResponse {
    models: RunningModel[];
}
export interface ShowResponse {
    license?: string;
    modelfile: string;
    parameters?: string;
    template?: string;
    system?: string;
    details: ModelDetails;
    messages?: Message[];
    /** GGUF metadata; arrays (the vocabulary, …) are null unless `verbose` was asked. */
    model_info: Record<string, any>;
    projector_info?: Record<string, any>;
    tensors?: {
        name: string;
        type: string;
        shape: number[];
    }[];
    /** `completion`, `embedding`, `tools`, `insert`, `thinking`, `vision`, `audio`, `image`. */
    capabilities: string[];
    modified_at?: string;
}
export interface VersionResponse {
    version: string;
}
export interface StatusResponse {
    status: string;
}
export interface ErrorResponse {
    error: string;
}
