"""BFCL's multi-turn entries as the reference set of the contamination guard.

BFCL has no training split: every multi-turn entry (base, miss_func, miss_param,
long_context) is test data, and BFCL v3 multi-turn is one of the benchmarks APIGen-MT
reports. A blueprint generated on a BFCL domain copies an entry when it has

- the same call sequence as the entry's first k turns (any k), on the same initial state:
  every class those calls use was loaded with the entry's ``initial_config`` for it (and
  long-context loading matches); or
- an instruction at least as similar as the guard's threshold (0.85) to one of the entry's
  question turns, or to all its turns joined.

:func:`bfcl_test_blueprints` gives those references as blueprints (actions only where the
initial state matches; instruction-only otherwise) for
:class:`~apigen_mt.tools.contamination.ContaminationGuard`.
"""

from __future__ import annotations

from typing import Any

from apigen_mt.domains.bfcl import data
from apigen_mt.domains.bfcl.domain import BFCLDomain, ground_truth_actions
from apigen_mt.tools.state_diff import canonical_json

__all__ = ["bfcl_test_blueprints"]


def _turn_texts(entry: dict[str, Any]) -> list[str]:
    texts = []
    for turn in entry.get("question") or []:
        said = " ".join(str(m.get("content") or "") for m in turn if m.get("role") == "user").strip()
        if said:
            texts.append(said)
    return texts


def _same_state(domain: BFCLDomain, entry: dict[str, Any], classes: set[str], configs: dict[str, str]) -> bool:
    if data.is_long_context(entry) != domain.long_context:
        return False
    return all(canonical_json(data.entry_config(entry, c)) == configs[c] for c in classes)


def bfcl_test_blueprints(domain: BFCLDomain) -> list[dict[str, Any]]:
    """The multi-turn entries touching ``domain``'s classes, as reference blueprints of its name."""
    classes = set(domain.class_names)
    configs = {c: canonical_json(config) for c, config in domain.initial_config().items()}
    references: list[dict[str, Any]] = []
    for entry in data.all_entries():
        if not classes & set(entry["involved_classes"]):
            continue
        entry_id = entry["id"]
        texts = _turn_texts(entry)
        for number, text in enumerate(texts, 1):
            references.append({"id": f"bfcl:{entry_id} (turn {number})", "domain": domain.name,
                               "instruction": text, "actions": []})
        if len(texts) > 1:
            references.append({"id": f"bfcl:{entry_id} (all turns)", "domain": domain.name,
                               "instruction": " ".join(texts), "actions": []})
        calls: list[dict[str, Any]] = []
        for number, turn in enumerate(ground_truth_actions(entry_id), 1):
            calls = calls + turn
            if not turn or not calls:
                continue
            owners = {domain.owner(call["name"]) for call in calls}
            if None in owners or not _same_state(domain, entry, owners, configs):
                break  # a later prefix uses the same calls and more: it cannot match either
            references.append({"id": f"bfcl:{entry_id} (calls of turns 1-{number})", "domain": domain.name,
                               "instruction": "", "actions": list(calls)})
    return references
