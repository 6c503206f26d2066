"""Executable worlds the agent acts in: tau2 retail/airline, BFCL API classes, user domains.

``apigen_mt.domains.registry.get_domain(name)`` is the entry point; ``base`` holds the contract.
"""
