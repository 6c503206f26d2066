"""Provenance: where a value in a tool call could have come from, decided by rules, not by an LLM.

An argument value is obtainable in a conversation when it was said by the user (the
instruction, :mod:`.said`), returned by an earlier call (:mod:`.knowledge`), reachable with
the domain's read tools from values already obtainable (:mod:`.closure`), fixed by the tool's
schema, or derived from obtainable values by a documented rule (:mod:`.derivations`). The
grounding check of blueprints (:mod:`apigen_mt.tools.checks.grounding`) is built on these.
"""
