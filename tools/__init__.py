"""Deterministic machinery (no LLM): executor, state diff and hash, checks, verifier,
API dependency graph, samplers."""
