"""Parses BFCL call strings such as ``cd(folder='document')`` without ``eval``.

BFCL's ground truth (and the python-style output of many models) is a list of call strings.
BFCL itself runs them with ``eval``; here a string is parsed with :mod:`ast` and only a plain
call of a bare function name whose arguments are literals is accepted: strings, numbers
(negative ones too), booleans, ``None``, and lists, tuples and dicts of those. Anything else
(an attribute call like ``os.system(...)``, a nested call ``f(x=g())``, a name, ``*args``,
an f-string, an expression such as ``1 + 2``) is rejected with a :class:`CallParseError`
that says what was found and where; so are dunder names (``__import__(...)``). Parsing
never runs anything: whether the name is a real tool is the environment's business.

Positional arguments are mapped to parameter names with ``inspect.signature`` of the callable
(``sort('report.txt')`` -> ``{"file_name": "report.txt"}``), so the result is always the
``(name, arguments)`` pair tool calls use everywhere else. Tuples become lists so the
arguments are plain JSON data.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Mapping
from typing import Any

#: Resolves a function name to what positional arguments are mapped with: a callable (its
#: signature is read), an ``inspect.Signature``, or a sequence of parameter names.
Resolver = Callable[[str], Any]

MAX_CALL_CHARS = 200_000


class CallParseError(ValueError):
    """A call string that is not a plain call with literal arguments."""


def parse_call(text: str, resolve: Resolver | Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """``"f(1, b='x')"`` -> ``("f", {"a": 1, "b": "x"})``.

    ``resolve`` maps a function name to its callable, ``inspect.Signature`` or parameter
    names (a mapping works too); it is only needed when the call has positional arguments.
    """
    if not isinstance(text, str):
        raise CallParseError(f"a call must be a string, got {type(text).__name__}")
    source = text.strip()
    if not source:
        raise CallParseError("empty call string")
    if len(source) > MAX_CALL_CHARS:
        raise CallParseError(f"call string too long ({len(source)} characters, limit {MAX_CALL_CHARS})")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as error:
        raise CallParseError(f"not a valid call: {error.msg} in {_short(source)}") from None
    except (RecursionError, MemoryError, ValueError) as error:
        raise CallParseError(f"cannot parse call {_short(source)}: {type(error).__name__}") from None
    node = tree.body
    if not isinstance(node, ast.Call):
        raise CallParseError(f"expected a function call, got {_describe(node)} in {_short(source)}")
    if not isinstance(node.func, ast.Name):
        raise CallParseError(
            f"only calls of a plain function name are allowed, got {_describe(node.func)} "
            f"({_segment(source, node.func)}) in {_short(source)}"
        )
    name = node.func.id
    if name.startswith("__") and name.endswith("__"):
        raise CallParseError(f"{name!r} is not a tool name (dunder names are refused) in {_short(source)}")
    positional = []
    for arg in node.args:
        if isinstance(arg, ast.Starred):
            raise CallParseError(f"*-unpacking is not allowed in {_short(source)}")
        positional.append(literal_value(arg, source))
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            raise CallParseError(f"**-unpacking is not allowed in {_short(source)}")
        if keyword.arg in arguments:
            raise CallParseError(f"argument {keyword.arg!r} given twice in {_short(source)}")
        arguments[keyword.arg] = literal_value(keyword.value, source)
    if positional:
        names = _positional_names(name, resolve, len(positional), source)
        for param, value in zip(names, positional):
            if param in arguments:
                raise CallParseError(f"argument {param!r} given both by position and by name in {_short(source)}")
            arguments[param] = value
        # keep the call's own order: positional first, then keywords
        arguments = {**{p: arguments[p] for p in names[: len(positional)]}, **arguments}
    return name, arguments


def literal_value(node: ast.AST, source: str = "") -> Any:
    """The value of a literal expression node, or :class:`CallParseError`."""
    if isinstance(node, ast.Constant):
        value = node.value
        if value is None or isinstance(value, (bool, int, float, str)):
            if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
                raise CallParseError(f"non-finite number {_segment(source, node)} is not allowed")
            return value
        raise CallParseError(f"literal of type {type(value).__name__} ({_segment(source, node)}) is not allowed")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = node.operand
        if (
            isinstance(operand, ast.Constant)
            and isinstance(operand.value, (int, float))
            and not isinstance(operand.value, bool)
        ):
            value = literal_value(operand, source)
            return -value if isinstance(node.op, ast.USub) else value
        raise CallParseError(f"a sign applies to numbers only, got {_segment(source, node)}")
    if isinstance(node, (ast.List, ast.Tuple)):
        items = []
        for element in node.elts:
            if isinstance(element, ast.Starred):
                raise CallParseError(f"*-unpacking is not allowed in {_segment(source, node)}")
            items.append(literal_value(element, source))
        return items
    if isinstance(node, ast.Dict):
        result: dict[Any, Any] = {}
        for key_node, value_node in zip(node.keys, node.values):
            if key_node is None:
                raise CallParseError(f"**-unpacking is not allowed in {_segment(source, node)}")
            key = literal_value(key_node, source)
            if isinstance(key, (list, dict)):
                raise CallParseError(f"dict keys must be strings or numbers, got {_segment(source, key_node)}")
            result[key] = literal_value(value_node, source)
        return result
    raise CallParseError(
        f"only literal arguments are allowed (strings, numbers, booleans, None, lists, tuples, dicts); "
        f"got {_describe(node)} {_segment(source, node)}"
    )


def _positional_names(name: str, resolve: Any, count: int, source: str) -> list[str]:
    target = resolve.get(name) if isinstance(resolve, Mapping) else resolve(name) if callable(resolve) else None
    if target is None:
        raise CallParseError(
            f"{_short(source)} passes arguments by position, but the parameters of {name!r} are unknown"
        )
    if isinstance(target, inspect.Signature) or callable(target):
        signature = target if isinstance(target, inspect.Signature) else inspect.signature(target)
        names = []
        for param in signature.parameters.values():
            if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
                if param.name == "self" and not names:
                    continue  # a method taken from its class: self is not an argument
                names.append(param.name)
            elif param.kind == param.VAR_POSITIONAL:
                raise CallParseError(f"{name!r} takes *args: positional arguments cannot be named")
    else:
        names = [str(n) for n in target]
    if count > len(names):
        raise CallParseError(f"{name!r} takes at most {len(names)} positional arguments, got {count} in {_short(source)}")
    return names


def _describe(node: ast.AST) -> str:
    kinds = {
        ast.Attribute: "an attribute access",
        ast.Call: "a function call",
        ast.Name: "a name",
        ast.BinOp: "an arithmetic expression",
        ast.JoinedStr: "an f-string",
        ast.Subscript: "a subscript",
        ast.Lambda: "a lambda",
        ast.Set: "a set",
        ast.Compare: "a comparison",
        ast.BoolOp: "a boolean expression",
    }
    for kind, text in kinds.items():
        if isinstance(node, kind):
            return text
    return f"a {type(node).__name__} expression"


def _segment(source: str, node: ast.AST) -> str:
    text = ast.get_source_segment(source, node) if source else None
    return _short(text if text is not None else ast.dump(node), 80)


def _short(text: str, limit: int = 160) -> str:
    text = text.replace("\n", " ")
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
