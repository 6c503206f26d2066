"""Model checks that send no request: can every role a run needs build its model?

``apigen-mt generate`` (and ``resume``) run them before any work, so a missing API key or
provider package stops the command at once with the doctor's message, instead of a run whose
items all end "unfinished". What is checked: the provider is known and the URL well formed
(the :class:`~apigen_mt.configuration.ModelSpec` refuses anything else when the configuration
is loaded), the key variable is set, the provider's LangChain package is installed, and for
``local`` that the engine and the model file are installed. Building a model sends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from apigen_mt.configuration import Configuration
from apigen_mt.llm.embedded import EmbeddedModelUnavailable, locate_engine, locate_model
from apigen_mt.llm.factory import LLMRuntime, make_chat_model
from apigen_mt.llm.retry import LLMConfigError

__all__ = ["PHASE_ROLES", "model_problems"]

PHASE_ROLES = {
    "1": ("generator", "reviewers", "feedback"),
    "2": ("user", "user_critic", "assistant"),
}
"""The roles each phase of ``generate`` calls (``user_critic`` only with best-of-N > 1)."""


def model_problems(config: Configuration, roles: Iterable[str]) -> list[str]:
    """One message per role (of ``roles``; ``reviewers`` means every judge) whose model cannot
    be built, in the words ``apigen-mt doctor`` uses; empty when all can."""
    wanted = set(roles)
    problems: list[str] = []
    runtime = LLMRuntime()
    try:
        for label, spec in config.models.items():
            role = "reviewers" if label.startswith("reviewer[") else label
            if role not in wanted:
                continue
            try:
                if spec.is_local:
                    locate_engine()
                    locate_model()
                else:
                    make_chat_model(spec, label, runtime=runtime)
            except LLMConfigError as error:
                problems.append(str(error))
            except EmbeddedModelUnavailable as error:
                problems.append(f"role {label}: model 'local': {error}")
    finally:
        runtime.close()
    return problems
