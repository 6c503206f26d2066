"""tau2-bench telecom: tech support where the user has tools too (their phone)."""

from apigen_mt.domains.telecom.domain import TelecomDomain

__all__ = ["TelecomDomain"]
