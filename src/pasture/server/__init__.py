"""The HTTP server: Ollama's REST API over the store, the scheduler and the runners."""
