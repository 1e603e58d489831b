"""The sweep's search space: each constant's distribution, budget-like names, constraints.

Constraints are untrusted config text, so they are never given to `eval`: they are parsed with
`ast` and walked here, allowing only the constants' names, numbers and strings, arithmetic
(+ - * / // %), comparisons and `and`/`or`/`not`.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from ..config import SweepParam

Value = float | str

# Names that set how long or how reproducibly a run trains, not how well: tuning them makes the
# sweep "win" by training longer, so they are frozen unless asked for.
BUDGET = re.compile(
    r"(^|_)(STEPS?|EPOCHS?|ITERS?|ITERATIONS|TIME|SECONDS|MINUTES|BUDGET|SEED)(_|$)"
)
ALLOWED = (
    "names of constants, numbers, strings, + - * / // %, comparisons (== != < <= > >=)"
    " and and/or/not"
)
_BINARY: dict[type, Callable[[object, object], object]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_COMPARE: dict[type, Callable[[object, object], object]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


_WORDS = {
    "Call": "a function call",
    "Attribute": "an attribute",
    "Subscript": "indexing",
    "Pow": "a power (**)",
    "Lambda": "a lambda",
    "IfExp": "an if-expression",
    "ListComp": "a comprehension",
    "List": "a list",
    "Tuple": "a tuple",
    "In": "in",
    "Is": "is",
}


class SpaceError(ValueError):
    """A declared parameter or constraint that cannot be used; the message names the fix."""


def budget_like(name: str) -> bool:
    return BUDGET.search(name) is not None


def check_param(p: SweepParam) -> None:
    where = f"agent.params {p.name}"
    if p.type == "choice":
        if not p.choices:
            raise SpaceError(
                f'{where}: type "choice" needs choices, e.g. choices = [64, 128, 256] or'
                ' ["relu", "gelu"].'
            )
        return
    if p.choices:
        raise SpaceError(f'{where}: choices are only for type = "choice". Set that type.')
    if p.low is not None and p.high is not None and p.low >= p.high:
        raise SpaceError(f"{where}: low ({p.low:g}) must be below high ({p.high:g}).")
    if p.step is not None and not (p.step > 0 and math.isfinite(p.step)):
        raise SpaceError(f"{where}: step must be a positive number.")
    if p.multiple_of is not None and p.multiple_of < 1:
        raise SpaceError(f"{where}: multiple_of must be a positive integer.")
    if p.multiple_of is not None and p.type in ("float", "log"):
        raise SpaceError(f'{where}: multiple_of is for integers. Set type = "int".')
    if (p.type == "log" or p.log) and (p.step is not None or p.multiple_of is not None):
        raise SpaceError(f"{where}: a log scale has no step or multiple_of. Drop one of them.")
    if (p.type == "log" or p.log) and p.low is not None and p.low <= 0:
        raise SpaceError(f"{where}: a log scale needs low above 0.")


def distribution(name: str, value: Value, integer: bool, p: SweepParam | None) -> BaseDistribution:
    """The range a constant is tuned over: the declared one, or one around its current value."""
    if p is not None and p.type == "choice":
        return CategoricalDistribution(list(p.choices or []))
    if isinstance(value, str):
        raise SpaceError(
            f'agent.params {name}: the constant is a string ({value!r}); give it type = "choice"'
            " and its choices."
        )
    kind = p.type if p and p.type else ("int" if integer else "float")
    if kind == "int" or (kind == "log" and integer):
        return _int_range(name, value, p, log=kind == "log")
    low = p.low if p and p.low is not None else None
    high = p.high if p and p.high is not None else None
    lo = low if low is not None else (value / 10 if value > 0 else value - 1)
    hi = high if high is not None else (value * 10 if value > 0 else value + 1)
    if kind == "log":
        log = True
    elif p is not None and p.log is not None:
        log = p.log
    else:  # undeclared: a positive value is tuned on a log scale, a declared float is not
        log = lo > 0 and not (p is not None and p.type == "float")
    step = p.step if p else None
    if step is not None:
        log = False
        hi = lo + math.floor((hi - lo) / step + 1e-9) * step
    if lo >= hi:
        raise SpaceError(f"agent.params {name}: low must be below high.")
    return FloatDistribution(lo, hi, log=log, step=step)


def _int_range(name: str, value: float, p: SweepParam | None, log: bool) -> IntDistribution:
    v = int(value)
    lo = int(p.low) if p and p.low is not None else (max(1, v // 4) if v > 0 else v - 10)
    hi = int(p.high) if p and p.high is not None else (max(v * 4, lo + 1) if v > 0 else v + 10)
    step = int(p.step) if p and p.step is not None else 1
    if p and p.multiple_of:
        step = p.multiple_of
        lo = -(-lo // step) * step  # the first multiple at or above low
        lo = max(lo, step) if v > 0 else lo
    hi = lo + max((hi - lo) // step, 1) * step
    if step != 1:
        log = False  # Optuna has no stepped log range
    elif p is None or (p.log is None and p.type != "log"):
        log = lo > 0
    elif p.log is not None:
        log = p.log
    return IntDistribution(lo, hi, log=log, step=step)


class Constraint:
    """One parsed constraint; `holds` evaluates it on a proposal's values."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tree = check_constraint(text)
        self.names = sorted({n.id for n in ast.walk(self.tree) if isinstance(n, ast.Name)}, key=str)

    def holds(self, values: dict[str, Value]) -> bool:
        try:
            return bool(_eval(self.tree.body, values))
        except (ZeroDivisionError, TypeError, OverflowError, ValueError):
            return False  # a proposal the expression cannot judge is not run


def check_constraint(text: str) -> ast.Expression:
    """Parse a constraint; anything beyond ALLOWED is refused with the expression named."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise SpaceError(
            f"agent.constraints: {text!r} is not an expression ({exc.msg}). Write a comparison"
            f' such as "N_EMBD % N_HEAD == 0"; allowed: {ALLOWED}.'
        ) from None
    for node in ast.walk(tree):
        if not _allowed(node):
            what = _what(node)
            raise SpaceError(
                f"agent.constraints: {text!r} uses {what}, which is not allowed; a constraint"
                f" may use only {ALLOWED}. Rewrite it with those."
            )
    return tree


def _what(node: ast.AST) -> str:
    """The refused part in words: the operator of an operation, not the operation."""
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return "arithmetic on text"
    if isinstance(node, ast.BinOp | ast.UnaryOp):
        node = node.op
    elif isinstance(node, ast.Compare):
        node = next(op for op in node.ops if type(op) not in _COMPARE)
    return _WORDS.get(type(node).__name__, type(node).__name__)


def _text(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _allowed(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int | float | str) and not isinstance(node.value, bool)
    if isinstance(node, ast.BinOp):
        # "x" * 10**12 would fill the memory: arithmetic is for numbers only.
        return type(node.op) in _BINARY and not (_text(node.left) or _text(node.right))
    if isinstance(node, ast.Compare):
        return all(type(op) in _COMPARE for op in node.ops)
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, ast.Not | ast.USub | ast.UAdd)
    return isinstance(
        node,
        ast.Expression
        | ast.Name
        | ast.Load
        | ast.BoolOp
        | ast.And
        | ast.Or
        | ast.Not
        | ast.USub
        | ast.UAdd
        | ast.operator
        | ast.cmpop,
    ) and not isinstance(node, ast.Pow | ast.MatMult | ast.LShift | ast.RShift | ast.BitOr)


def _eval(node: ast.AST, values: dict[str, Value]) -> object:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, values), _eval(node.right, values)
        if isinstance(left, str) or isinstance(right, str):  # a text constant's value
            raise TypeError("arithmetic on text")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        inner = _eval(node.operand, values)
        if isinstance(node.op, ast.Not):
            return not inner
        return -inner if isinstance(node.op, ast.USub) else +inner  # type: ignore[operator]
    if isinstance(node, ast.BoolOp):
        results = (bool(_eval(v, values)) for v in node.values)
        return all(results) if isinstance(node.op, ast.And) else any(results)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, values)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, values)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    raise SpaceError(f"not allowed in a constraint: {type(node).__name__}")  # pragma: no cover
