"""tau2-bench retail: an online store's customer-service agent (orders, returns, exchanges)."""

from apigen_mt.domains.retail.domain import RetailDomain

__all__ = ["RetailDomain"]
