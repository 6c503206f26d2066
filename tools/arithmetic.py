"""Arithmetic over + - * / and parentheses, parsed with ``ast``: never ``eval``.

tau2's ``calculate`` tool calls ``eval`` on the model's expression (after a character
filter). LLM output is data here, so the adapter answers ``calculate`` with this instead,
giving the same result format (``str(round(value, 2))``).
"""

from __future__ import annotations

import ast
import operator

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_ALLOWED_CHARS = set("0123456789+-*/(). ")


def evaluate(expression: str) -> float:
    """The value of an arithmetic expression; ValueError for anything else."""
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError("Invalid expression: expected a non-empty string")
    if not set(expression) <= _ALLOWED_CHARS:
        raise ValueError("Invalid characters in expression")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as error:
        raise ValueError(f"Invalid expression: {error.msg}") from None
    return float(_value(tree.body))


def _value(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Div) and right == 0:
            raise ValueError("division by zero")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))
    raise ValueError("Invalid expression: only numbers, + - * / and parentheses are allowed")


def calculate(expression: str) -> str:
    """tau2's ``calculate`` result format."""
    return str(round(evaluate(expression), 2))
