"""Adapter that runs tau2-bench's own tool code over copy-on-write state.

The retail and airline domains (``domains/retail``, ``domains/airline``) are thin
subclasses of :class:`~apigen_mt.domains.tau2bench.domain.Tau2Domain`.
"""
