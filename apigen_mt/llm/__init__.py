"""LLM layer: the chat models the roles use, including the embedded local default model."""
