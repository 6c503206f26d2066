"""Stage 1 of blueprint validation: rule-based checks, run in order.

format -> execution -> policy -> grounding; :func:`apigen_mt.tools.checks.validate.validate_blueprint`
runs them and reports the first failing stage with its reasons.
"""
