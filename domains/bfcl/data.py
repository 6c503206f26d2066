"""BFCL's multi-turn data: API classes, function docs, entries, ground truth, initial configs.

Everything is read from the installed ``bfcl-eval`` package (``pip install --no-deps
bfcl-eval`` plus ``mpmath``): nothing is copied into this repository. Files are parsed once
per process; callers get shared objects and must not mutate them (the helpers that hand out
configs return deep copies).

The multi-turn files have 200 entries each (``id``, ``question`` = one list of messages per
turn, ``initial_config`` = one dict per class, ``involved_classes``, ``excluded_function``,
``missed_function`` in miss_func). The ground truth files list, per turn, the call strings
that solve it (``"cd(folder='document')"``).
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
from pathlib import Path
from typing import Any

from apigen_mt.domains.base import DomainError
from apigen_mt.tools.jsonl import read_jsonl

INSTALL_HINT = (
    "bfcl-eval is not installed. Run `make setup`, or: pip install --no-deps bfcl-eval && pip install mpmath"
)

#: The eight executable multi-turn API classes (WebSearch and the Memory APIs are left out:
#: they need network access or embeddings and are not part of the multi-turn categories).
CLASS_NAMES: tuple[str, ...] = (
    "GorillaFileSystem",
    "MathAPI",
    "MessageAPI",
    "TwitterAPI",
    "TicketAPI",
    "TradingBot",
    "TravelAPI",
    "VehicleControlAPI",
)

#: Short names used in domain names (``bfcl.file_system``) -> BFCL class names.
SHORT_NAMES: dict[str, str] = {
    "file_system": "GorillaFileSystem",
    "math": "MathAPI",
    "message": "MessageAPI",
    "posting": "TwitterAPI",
    "ticket": "TicketAPI",
    "trading": "TradingBot",
    "travel": "TravelAPI",
    "vehicle": "VehicleControlAPI",
}

CATEGORIES: tuple[str, ...] = ("base", "miss_func", "miss_param", "long_context")


def import_bfcl(module: str) -> Any:
    """Import ``bfcl_eval.<module>``; a clear error when bfcl-eval (or mpmath) is missing."""
    try:
        return importlib.import_module(f"bfcl_eval.{module}")
    except ModuleNotFoundError as error:
        raise DomainError(f"{INSTALL_HINT} (missing module: {error.name})") from error


@functools.cache
def _backend_config() -> Any:
    return import_bfcl("constants.executable_backend_config")


def data_dir() -> Path:
    """The ``data`` folder of the installed bfcl-eval package."""
    try:
        package = importlib.import_module("bfcl_eval")
    except ModuleNotFoundError as error:
        raise DomainError(INSTALL_HINT) from error
    return Path(package.__file__).parent / "data"


def check_class(class_name: str) -> str:
    if class_name not in CLASS_NAMES:
        raise DomainError(f"unknown BFCL class {class_name!r}: use one of {', '.join(CLASS_NAMES)}")
    return class_name


@functools.cache
def api_class(class_name: str) -> type:
    """BFCL's implementation class, e.g. ``GorillaFileSystem``."""
    check_class(class_name)
    module_path = _backend_config().CLASS_FILE_PATH_MAPPING[class_name]
    return getattr(import_bfcl(module_path.removeprefix("bfcl_eval.")), class_name)


def is_stateless(class_name: str) -> bool:
    """BFCL never loads a scenario into these (MathAPI)."""
    return class_name in _backend_config().STATELESS_CLASSES


@functools.cache
def func_docs(class_name: str) -> tuple[dict[str, Any], ...]:
    """The function docs (name, description, parameters, response) of one class, as shipped."""
    check_class(class_name)
    file_name = _backend_config().MULTI_TURN_FUNC_DOC_FILE_MAPPING[class_name]
    path = data_dir() / "multi_turn_func_doc" / file_name
    return tuple(_read_rows(path))


@functools.cache
def _entries(category: str) -> tuple[dict[str, Any], ...]:
    if category not in CATEGORIES:
        raise DomainError(f"unknown BFCL multi-turn category {category!r}: use one of {', '.join(CATEGORIES)}")
    return tuple(_read_rows(data_dir() / f"BFCL_v4_multi_turn_{category}.json"))


@functools.cache
def _ground_truth(category: str) -> dict[str, list[list[str]]]:
    _entries(category)  # validates the name
    path = data_dir() / "possible_answer" / f"BFCL_v4_multi_turn_{category}.json"
    return {row["id"]: row["ground_truth"] for row in _read_rows(path)}


@functools.cache
def _index() -> dict[str, tuple[str, int]]:
    return {e["id"]: (category, i) for category in CATEGORIES for i, e in enumerate(_entries(category))}


def all_entries(categories: tuple[str, ...] = CATEGORIES) -> list[dict[str, Any]]:
    return [e for category in categories for e in _entries(category)]


def category_of(entry_id: str) -> str:
    """``"multi_turn_miss_func_3"`` -> ``"miss_func"``."""
    try:
        return _index()[entry_id][0]
    except KeyError:
        raise DomainError(f"unknown BFCL multi-turn entry {entry_id!r}") from None


def get_entry(entry_id: str) -> dict[str, Any]:
    category = category_of(entry_id)
    return _entries(category)[_index()[entry_id][1]]


def ground_truth(entry_id: str) -> list[list[str]]:
    """The entry's ground truth: per turn, the call strings that solve it."""
    return _ground_truth(category_of(entry_id))[entry_id]


def is_long_context(entry: dict[str, Any] | str) -> bool:
    """Whether BFCL loads this entry's scenario with ``long_context=True`` (as its checker does)."""
    entry_id = entry if isinstance(entry, str) else entry["id"]
    category = entry_id.rsplit("_", 1)[0]
    return "long_context" in category or "composite" in category


def pristine_entry_id(class_name: str) -> str:
    """The first multi_turn_base entry involving ``class_name``: its config is the pristine state."""
    for entry in _entries("base"):
        if class_name in entry["involved_classes"]:
            return entry["id"]
    raise DomainError(f"no multi_turn_base entry involves {class_name}")  # pragma: no cover


def entry_config(entry: dict[str, Any] | str, class_name: str) -> dict[str, Any]:
    """A deep copy of one entry's initial config for one class (``{}`` when absent)."""
    if isinstance(entry, str):
        entry = get_entry(entry)
    return copy.deepcopy((entry.get("initial_config") or {}).get(class_name) or {})


def pristine_config(class_name: str) -> dict[str, Any]:
    """The initial config of the single-class domain of ``class_name`` (a deep copy)."""
    return entry_config(pristine_entry_id(class_name), class_name)


@functools.cache
def state_entries(class_name: str) -> tuple[str, ...]:
    """One entry id per distinct initial state BFCL loads ``class_name`` in (the first entry
    with it, base, miss_func and miss_param; long-context loading adds data of its own and is
    left out), the pristine entry first; empty for a stateless class (MathAPI)."""
    if is_stateless(class_name):
        return ()
    seen: dict[str, str] = {}
    for entry in all_entries(("base", "miss_func", "miss_param")):
        if class_name in entry["involved_classes"]:
            text = json.dumps(entry_config(entry, class_name), sort_keys=True)
            seen.setdefault(text, entry["id"])
    pristine = pristine_entry_id(class_name)
    return (pristine, *[entry_id for entry_id in seen.values() if entry_id != pristine])


def load_instance(class_name: str, config: dict[str, Any] | None, long_context: bool = False) -> Any:
    """A BFCL instance loaded the way BFCL's checker loads it.

    ``cls()``, then, unless the class is stateless, ``_load_scenario(deepcopy(config),
    long_context=...)``.
    """
    instance = api_class(class_name)()
    if not is_stateless(class_name):
        instance._load_scenario(copy.deepcopy(config or {}), long_context=long_context)
    return instance


def _read_rows(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a bfcl-eval data file (JSON Lines); DomainError on a bad line."""
    rows = []
    try:
        for number, value, error in read_jsonl(path):
            if error is None and not isinstance(value, dict):
                error = f"line {number}: expected a JSON object, got {type(value).__name__}"
            if error is not None:
                raise DomainError(f"BFCL data file {path} is damaged: {error}. Reinstall bfcl-eval.")
            rows.append(value)
    except FileNotFoundError:
        raise DomainError(f"BFCL data file missing: {path}. {INSTALL_HINT}") from None
    return rows
