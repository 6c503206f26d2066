"""LLM roles (generator, reviewers, feedback, recombiner, simulated user, assistant).

Built in the LLM-layer issue; empty until then.
"""
