/**
 * Request and response shapes of the native API, named as in the official `ollama` package
 * so code typed against it type-checks here too. Timestamps are the ISO strings the server
 * sends (the official typings claim `Date`, but neither library converts them).
 */
export {};
