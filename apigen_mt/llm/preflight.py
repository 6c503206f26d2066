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

__all__ = ["model_problems", "phase_roles"]


def phase_roles(phase: int, best_of_n: int = 1) -> set[str]:
    """The roles a phase calls: Phase 1 proposes and reviews; Phase 2 simulates the user (and,
    with best-of-N > 1, its critic) and the assistant."""
    if phase == 1:
        return {"generator", "reviewers", "feedback"}
    return {"user", "assistant"} | ({"user_critic"} if best_of_n > 1 else set())


def model_problems(config: Configuration, roles: Iterable[str]) -> list[str]:
    """One message per problem (of the roles in ``roles``; ``reviewers`` means every judge)
    whose model cannot be built, in the words ``apigen-mt doctor`` uses, the roles that share
    it named together; empty when every model can be built."""
    wanted = set(roles)
    by_problem: dict[str, list[str]] = {}
    runtime = LLMRuntime()
    try:
        for label, spec in config.models.items():
            if ("reviewers" if label.startswith("reviewer[") else label) not in wanted:
                continue
            try:
                if spec.is_local:
                    locate_engine()
                    locate_model()
                else:
                    make_chat_model(spec, label, runtime=runtime)
            except LLMConfigError as error:
                by_problem.setdefault(str(error).removeprefix(f"role {label}: "), []).append(label)
            except EmbeddedModelUnavailable as error:
                by_problem.setdefault(f"model 'local': {error}", []).append(label)
            except Exception as error:  # noqa: BLE001 - a provider class refusing its settings (Azure without an endpoint)
                errors = getattr(error, "errors", None)  # pydantic: say which settings, not "1 validation error"
                detail = "; ".join(str(e.get("msg")) for e in errors()) if callable(errors) else str(error).strip()
                problem = f"model {spec.label!r} cannot be built: {type(error).__name__}: {detail.splitlines()[0] if detail else ''}"
                by_problem.setdefault(problem, []).append(label)
    finally:
        runtime.close()
    return [f"role{'s' if len(labels) > 1 else ''} {', '.join(labels)}: {problem}" for problem, labels in by_problem.items()]
