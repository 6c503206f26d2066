"""LangGraph state machines (phase 1, phase 2, recombination, pipeline). Built in later issues."""
