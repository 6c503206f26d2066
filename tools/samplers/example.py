"""Example sampler: a few good blueprints as few-shot examples, never from a test split.

Examples come from ``domain.example_blueprints()``; for the tau2 domains these are tau2's
*train* tasks. The guarantee is enforced here, whatever a domain returns:

* for a tau2-derived domain (it has a ``tau2_name``) every example must carry
  ``source={"benchmark", "task_id", "split": "train"}`` and its task id must not be one of
  tau2's test task ids for that domain;
* for any domain, an example whose ``source.split`` is anything but "train" (e.g. "test",
  "dev") is refused;

and a violation raises :class:`ExampleLeakError` when the sampler is built, before any
example can reach a prompt.

An example is also shown only if it passes our own checks
(:func:`~apigen_mt.tools.checks.validate.validate_blueprint`: format, execution, policy):
a few-shot example that fails them would teach the generator what the validator then
rejects (some of tau2's train tasks do not execute cleanly, a few break the written policy).
The verdicts are cached per domain; the rejected examples are listed in
:attr:`ExampleSampler.rejected`. Examples sharing tools (above all write tools) with the
sampled ones are preferred; at most ``k`` are returned within ``max_chars`` of JSON.

:meth:`ExampleSampler.sample` returns the examples with their ``id`` and ``source`` (for
auditing); what goes into the generator's context is :func:`for_prompt` of each, the task
alone (instruction, actions, outputs), so no benchmark task id reaches a prompt.
"""

from __future__ import annotations

import functools
import json
import random
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from apigen_mt.domains.base import Domain, DomainError, ToolKind
from apigen_mt.tools.checks.validate import validate_blueprint
from apigen_mt.tools.samplers.weighted import weighted_order
from apigen_mt.tools.state_diff import canonical_json

_ALLOWED_SPLIT = "train"
PROMPT_FIELDS = ("instruction", "actions", "outputs")


class ExampleLeakError(DomainError):
    """An example would come from a benchmark's test split (evaluation data leaking in)."""


def _as_json(example: Any) -> dict[str, Any]:
    if isinstance(example, Mapping):
        return json.loads(json.dumps(example, default=str))
    if hasattr(example, "to_json"):
        return example.to_json()
    if hasattr(example, "model_dump"):
        return example.model_dump(mode="json")
    raise DomainError(f"example blueprint of unsupported type {type(example).__name__}")


@functools.cache
def tau2_test_task_ids(tau2_name: str) -> frozenset[str]:
    """The task ids of tau2's test split for one domain (as strings)."""
    from apigen_mt.domains.tau2bench.tasks import tau2_tasks

    return frozenset(str(task.id) for task in tau2_tasks(tau2_name, "test"))


def check_examples(domain: Domain, examples: Iterable[dict[str, Any]]) -> None:
    """Raise :class:`ExampleLeakError` if any example is not from a train split."""
    tau2_name = getattr(domain, "tau2_name", "") or ""
    test_ids = tau2_test_task_ids(tau2_name) if tau2_name else frozenset()
    for example in examples:
        source = example.get("source")
        label = example.get("id", "?")
        if tau2_name:
            if not isinstance(source, Mapping):
                raise ExampleLeakError(
                    f"example {label!r} of tau2 domain {domain.name!r} has no source; refusing it"
                )
            if source.get("split") != _ALLOWED_SPLIT:
                raise ExampleLeakError(
                    f"example {label!r} of tau2 domain {domain.name!r} comes from split {source.get('split')!r}; "
                    "only train-split examples may be shown to the generator"
                )
            if str(source.get("task_id")) in test_ids:
                raise ExampleLeakError(
                    f"example {label!r} has the id of tau2 test task {source.get('task_id')!r}"
                )
        elif isinstance(source, Mapping) and "split" in source and source["split"] != _ALLOWED_SPLIT:
            raise ExampleLeakError(
                f"example {label!r} comes from split {source['split']!r}; only train examples allowed"
            )


def for_prompt(example: Mapping[str, Any]) -> dict[str, Any]:
    """What the generator sees of an example: the task, without its id or provenance."""
    return {key: example[key] for key in PROMPT_FIELDS if key in example}


# domain -> canonical JSON of an example -> (passed, first failing stage, reasons)
Verdict = tuple[bool, str, list[str]]
_VERDICTS: weakref.WeakKeyDictionary[Domain, dict[str, Verdict]] = weakref.WeakKeyDictionary()


def example_verdict(domain: Domain, example: dict[str, Any]) -> Verdict:
    """``(passed, stage, reasons)`` of :func:`validate_blueprint` on one example, cached per domain."""
    per_domain = _VERDICTS.setdefault(domain, {})
    key = canonical_json(example)
    if key not in per_domain:
        result = validate_blueprint(domain, example)
        per_domain[key] = (result.passed, result.stage, list(result.reasons))
    return per_domain[key]


class ExampleSampler:
    """Draws up to ``k`` few-shot blueprints, favouring those that use the sampled tools.

    ``examples`` holds the domain's examples that pass validation (compacted to ``id``,
    ``instruction``, ``actions``, ``outputs`` and ``source``); ``rejected`` lists the others
    as ``{"id", "stage", "reasons"}``.
    """

    def __init__(self, domain: Domain, *, k: int = 2, max_chars: int = 4000) -> None:
        self.domain = domain
        self.k, self.max_chars = k, max_chars
        candidates = [_as_json(e) for e in domain.example_blueprints()]
        check_examples(domain, candidates)  # every example, valid or not: a leak is a bug to fix
        self.examples: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []
        for example in candidates:
            passed, stage, reasons = example_verdict(domain, example)
            if passed:
                self.examples.append(self._compact(example))
            else:
                self.rejected.append({"id": example.get("id"), "stage": stage, "reasons": reasons})
        # a train task that is a near-copy of a test task (tau2 has task variants) would steer
        # the generator towards the test set: it is never shown either
        from apigen_mt.tools.contamination import guard_for

        guard = guard_for(domain.name)
        for example in list(self.examples):
            reason = guard.check({**example, "domain": domain.name})
            if reason is not None:
                self.examples.remove(example)
                self.rejected.append({"id": example.get("id"), "stage": "contamination", "reasons": [reason]})
        self._writes = {t.name for t in domain.tools if t.kind == ToolKind.WRITE}

    @staticmethod
    def _compact(example: dict[str, Any]) -> dict[str, Any]:
        keep = ("id", "instruction", "actions", "outputs", "source")
        return {key: example[key] for key in keep if key in example}

    def _weight(self, example: dict[str, Any], tools: set[str]) -> float:
        names = {a.get("name") for a in example.get("actions", []) if isinstance(a, Mapping)}
        if not names:
            return 0.25
        return 1.0 + 3.0 * len(names & tools & self._writes) + len(names & tools)

    def sample(
        self, rng: random.Random, tools: Iterable[str] = (), k: int | None = None
    ) -> list[dict[str, Any]]:
        k = self.k if k is None else k
        wanted = set(tools)
        weights = [self._weight(e, wanted) for e in self.examples]
        chosen: list[dict[str, Any]] = []
        used = 0
        for example in weighted_order(rng, self.examples, weights) if k > 0 else ():
            size = len(json.dumps(example, ensure_ascii=False))
            if used + size <= self.max_chars:
                chosen.append(example)
                used += size
            if len(chosen) >= k:
                break
        check_examples(self.domain, chosen)  # belt and braces: nothing else can slip out
        return chosen
