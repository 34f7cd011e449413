"""Prompt building: Go templates (Ollama's TEMPLATE) rendered by our own interpreter."""
