"""Read-only pristine state: what every environment shares cannot be changed, by any path.

Environments fork from one pristine state (:mod:`apigen_mt.tools.cow_table`): a record looked
up by key is copied into the environment, but a record reached by iterating a table is the
shared pristine object. Domain code that changed such a record would silently change every
environment after it, and with them every replay the verifier and the checks rely on. So the
pristine state is frozen when a domain loads it:

* JSON data (:class:`~apigen_mt.domains.simple.SimpleDomain`): dicts and lists become
  :class:`FrozenDict` and :class:`FrozenList`, still ``dict`` and ``list`` to every reader;
* pydantic records (the tau2 domains): each model is re-classed as a frozen subclass of its
  own class (``isinstance`` checks still hold), its list and dict fields frozen likewise.

Changing a frozen value raises :class:`PristineStateError`, naming the tool that tried (see
:func:`acting_tool`), the value's place, and the fix. Copying one (``copy.deepcopy``, which is
what a keyed lookup does) gives plain, mutable values of the original types, so a tool's own
copy behaves exactly as before.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

__all__ = ["FrozenDict", "FrozenList", "PristineStateError", "acting_tool", "freeze", "freeze_model", "thaw"]

_TOOL: contextvars.ContextVar[str | None] = contextvars.ContextVar("apigen_mt_acting_tool", default=None)


class PristineStateError(TypeError):
    """Domain code tried to change the pristine state shared by every environment."""


@contextlib.contextmanager
def acting_tool(name: str) -> Iterator[None]:
    """Name the tool whose code runs inside, for the message of a :class:`PristineStateError`."""
    token = _TOOL.set(name)
    try:
        yield
    finally:
        _TOOL.reset(token)


def _refuse(where: str) -> PristineStateError:
    tool = _TOOL.get()
    who = f"tool {tool!r}" if tool else "domain code"
    return PristineStateError(
        f"{who} changed {where}, which belongs to the pristine state every environment shares "
        "(a record reached by iterating a table, items() or values(), or a shallow copy of one). "
        "Look the record up by key before changing it, e.g. record = db[table][key]; "
        "record[field] = value: a keyed lookup gives this environment its own copy."
    )


def _child(where: str, key: Any) -> str:
    return f"{where}[{key!r}]" if isinstance(key, (str, int)) else f"{where}.{key}"


class _Refusing:
    """What every frozen container does on a change: refuse it, naming the place."""

    __slots__ = ()

    def _place(self) -> str:
        return getattr(self, "_where", "the pristine state")

    def _no(self, *args: Any, **kwargs: Any) -> Any:
        raise _refuse(self._place())

    def _no_item(self, key: Any, *args: Any) -> Any:
        raise _refuse(_child(self._place(), key))


class FrozenDict(_Refusing, dict):
    """A ``dict`` that refuses every change; its deep copy is a plain ``dict``."""

    __slots__ = ("_where",)
    __setitem__ = __delitem__ = _Refusing._no_item
    __init__ = __ior__ = clear = pop = popitem = setdefault = update = _Refusing._no  # type: ignore[assignment]

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[Any, Any]:
        return {key: copy.deepcopy(value, memo) for key, value in self.items()}

    def __copy__(self) -> dict[Any, Any]:
        return dict(self)

    def __reduce__(self) -> Any:  # pickles as the plain dict it reads as
        return (dict, (dict(self),))


class FrozenList(_Refusing, list):
    """A ``list`` that refuses every change; its deep copy is a plain ``list``."""

    __slots__ = ("_where",)
    __setitem__ = __delitem__ = _Refusing._no_item
    __init__ = __iadd__ = __imul__ = append = extend = insert = pop = remove = clear = sort = reverse = _Refusing._no  # type: ignore[assignment]

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [copy.deepcopy(value, memo) for value in self]

    def __copy__(self) -> list[Any]:
        return list(self)

    def __reduce__(self) -> Any:
        return (list, (list(self),))


def freeze(value: Any, where: str = "the pristine state") -> Any:
    """``value`` with every dict and list (at any depth) frozen; pydantic models frozen too."""
    if isinstance(value, BaseModel):
        return freeze_model(value, where)
    if isinstance(value, dict) and not isinstance(value, FrozenDict):
        frozen = FrozenDict.__new__(FrozenDict)
        dict.update(frozen, {key: freeze(item, _child(where, key)) for key, item in value.items()})
        frozen._where = where
        return frozen
    if isinstance(value, list) and not isinstance(value, FrozenList):
        frozen_list = FrozenList.__new__(FrozenList)
        list.extend(frozen_list, [freeze(item, _child(where, index)) for index, item in enumerate(value)])
        frozen_list._where = where
        return frozen_list
    return value


_FROZEN_CLASSES: dict[type, type] = {}
_MODEL_PLACES: dict[int, str] = {}
"""Where each frozen model sits (by id: pristine models live as long as their domain)."""


def _frozen_class(cls: type[BaseModel]) -> type[BaseModel]:
    frozen = _FROZEN_CLASSES.get(cls)
    if frozen is not None:
        return frozen

    def refuse(self: BaseModel, name: str, *args: Any) -> None:
        raise _refuse(f"{_MODEL_PLACES.get(id(self), cls.__name__)}.{name}")

    def deep(self: BaseModel, memo: dict[int, Any] | None = None) -> BaseModel:
        return thaw(self, memo)

    def shallow(self: BaseModel) -> BaseModel:
        plain = cls.__new__(cls)
        _fill(plain, self, lambda value: value)
        return plain

    def equal(self: BaseModel, other: Any) -> bool:  # a frozen record equals its plain twin
        if isinstance(other, BaseModel) and type(other) in _FROZEN_CLASSES.values():
            other = shallow(other) if type(other) is type(self) else other.__copy__()
        return cls.__eq__(shallow(self), other)

    def reduce(self: BaseModel) -> Any:  # pickles as the plain record it reads as
        return thaw(self).__reduce__()

    namespace = {"__setattr__": refuse, "__delattr__": refuse, "__deepcopy__": deep, "__copy__": shallow,
                 "__eq__": equal, "__hash__": cls.__hash__, "__reduce__": reduce,
                 "__repr_name__": lambda self: cls.__name__,
                 "__module__": cls.__module__, "__qualname__": f"Frozen{cls.__qualname__}"}
    frozen = _FROZEN_CLASSES[cls] = type(f"Frozen{cls.__name__}", (cls,), namespace)
    return frozen


def _fill(target: BaseModel, source: BaseModel, convert: Any) -> None:
    object.__setattr__(target, "__dict__", {key: convert(value) for key, value in source.__dict__.items()})
    object.__setattr__(target, "__pydantic_fields_set__", set(source.__pydantic_fields_set__))
    extra = source.__pydantic_extra__
    object.__setattr__(target, "__pydantic_extra__", None if extra is None else {k: convert(v) for k, v in extra.items()})
    private = source.__pydantic_private__
    object.__setattr__(target, "__pydantic_private__", None if private is None else {k: convert(v) for k, v in private.items()})


def freeze_model(model: BaseModel, where: str) -> BaseModel:
    """Freeze one pydantic model in place (re-classed; its field values frozen) and return it."""
    if type(model) in _FROZEN_CLASSES.values():
        return model
    for name, value in list(model.__dict__.items()):
        model.__dict__[name] = freeze(value, f"{where}.{name}")
    _MODEL_PLACES[id(model)] = where
    object.__setattr__(model, "__class__", _frozen_class(type(model)))
    return model


def thaw(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """A plain, mutable deep copy of a (possibly frozen) value, of the original types."""
    memo = {} if memo is None else memo
    if id(value) in memo:
        return memo[id(value)]
    if isinstance(value, BaseModel) and type(value) in _FROZEN_CLASSES.values():
        original = type(value).__mro__[1]
        plain = original.__new__(original)
        memo[id(value)] = plain
        _fill(plain, value, lambda item: copy.deepcopy(item, memo))
        return plain
    return copy.deepcopy(value, memo)
