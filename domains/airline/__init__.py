"""tau2-bench airline: an airline's reservation agent (book, change, cancel, baggage)."""

from apigen_mt.domains.airline.domain import AirlineDomain

__all__ = ["AirlineDomain"]
