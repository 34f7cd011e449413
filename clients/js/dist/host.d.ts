/**
 * Where the client connects, and the environment it may read that from.
 *
 * Host strings follow `OLLAMA_HOST`'s rules, as Pasture's server and Python client read
 * them: `host`, `host:port`, `:port`, `[::1]:port`, with or without `http(s)://`; a plain
 * `http` host gets port 11434, `https` gets 443. A path is kept, so a server behind a
 * reverse proxy at `https://example.com/pasture` works.
 */
export declare const DEFAULT_PORT = 11434;
export declare const DEFAULT_HOST = "http://127.0.0.1:11434";
/**
 * `PASTURE_<name>`, else `OLLAMA_<name>`, trimmed of spaces and quotes; undefined in a
 * browser, where there is no `process.env` and configuration comes from arguments only.
 */
export declare function env(name: string): string | undefined;
/** The base URL (no trailing slash) for a host string; the default for an empty one. */
export declare function formatHost(host: string | undefined): string;
