"""The `pasture` command line: Ollama's commands and REPL, on top of `pasture.client`."""
