"""Constraints over the interrupted context (grammar/constraint.lark) compiled to Z3.

Assumptions live in files under proofs/, not in code; this turns their text into formulas over the
named initial values of a vector slot's exploration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TypeAlias

import z3
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from verifier.semantics import names
from verifier.util.errors import UserError
from verifier.util.grammars import lalr_parser
from verifier.util.paths import GRAMMARS

GRAMMAR = GRAMMARS / "constraint.lark"

# (register, field) -> (high bit, low bit)
FIELDS = {
    "spsr": {"D": (9, 9), "A": (8, 8), "I": (7, 7), "F": (6, 6), "SS": (21, 21), "IL": (20, 20), "PAN": (22, 22),
             "M": (4, 0), "EL": (3, 2), "nRW": (4, 4), "N": (31, 31), "Z": (30, 30), "C": (29, 29), "V": (28, 28)},
    "mdscr": {"SS": (0, 0), "KDE": (13, 13), "MDE": (15, 15)},
    "esr": {"EC": (31, 26), "IL": (25, 25), "ISS": (24, 0)},
}


@cache
def _parser() -> Lark:
    return lalr_parser(GRAMMAR.name, propagate_positions=True)


Value: TypeAlias = z3.BitVecRef | z3.BoolRef | int


@dataclass
class Context:
    """The named values a constraint can mention."""

    values: dict[str, z3.BitVecRef]  # spsr, mdscr, esr, elr, flags
    tif_bits: dict[str, int]  # TIF_SINGLESTEP -> 21
    from_el0: z3.BoolRef
    caps: dict[int, z3.BoolRef] = field(default_factory=dict)
    # names of the state at an event (policies): D A I F, now.mdscr.SS, percpu.NAME, called.ROLE
    lookup: Callable[[str], Value | None] | None = None

    def cap(self, number: int) -> z3.BoolRef:
        if number not in self.caps:
            self.caps[number] = names.capability(number)
        return self.caps[number]


class ConstraintError(Exception):
    def __init__(self, message: str, line: int | None = None, col: int | None = None) -> None:
        super().__init__(message)
        self.line, self.col = line, col


def _as_bool(value: Value) -> z3.BoolRef:
    if isinstance(value, bool):
        return z3.BoolVal(value)
    if isinstance(value, int):
        return z3.BoolVal(value != 0)
    if isinstance(value, z3.BoolRef):  # what z3.is_bool() checks
        return value
    return value != 0


def _as_bv(value: Value, width: int = 64) -> z3.BitVecRef:
    if isinstance(value, int):
        return z3.BitVecVal(value, width)
    if isinstance(value, z3.BoolRef):
        return z3.If(value, z3.BitVecVal(1, width), z3.BitVecVal(0, width))
    if value.size() < width:
        return z3.ZeroExt(width - value.size(), value)
    return value


def _widths(a: Value, b: Value) -> tuple[z3.BitVecRef, z3.BitVecRef]:
    wa = a.size() if isinstance(a, z3.BitVecRef) else 1
    wb = b.size() if isinstance(b, z3.BitVecRef) else 1
    width = max(wa, wb, 64 if isinstance(a, int) or isinstance(b, int) else 1)
    return _as_bv(a, width), _as_bv(b, width)


def _field(name: str, ctx: Context) -> Value:
    if ctx.lookup is not None:
        found = ctx.lookup(name)
        if found is not None:
            return found
    parts = name.split(".")
    head = parts[0]
    if head == "from" and len(parts) == 2 and parts[1] in ("el0", "el1"):
        return ctx.from_el0 if parts[1] == "el0" else z3.Not(ctx.from_el0)
    if head == "cap" and len(parts) == 2 and parts[1].isdigit():
        return ctx.cap(int(parts[1]))
    if head == "flags":
        value = ctx.values["flags"]
        if len(parts) == 1:
            return value
        if len(parts) == 2 and parts[1] in ctx.tif_bits:
            bit = ctx.tif_bits[parts[1]]
            return z3.Extract(bit, bit, value)
        known = ", ".join(sorted(ctx.tif_bits))
        raise ConstraintError(f"unknown thread flag '{parts[1] if len(parts) > 1 else ''}' (known: {known})")
    if head in ctx.values and head in FIELDS or head in ctx.values:
        value = ctx.values[head]
        if len(parts) == 1:
            return value
        fields = FIELDS.get(head, {})
        if len(parts) == 2 and parts[1] in fields:
            hi, lo = fields[parts[1]]
            return z3.Extract(hi, lo, value)
        raise ConstraintError(f"unknown field '{name}' (known: {', '.join(head + '.' + f for f in fields)})")
    raise ConstraintError(f"unknown name '{name}' (known: spsr, mdscr, esr, elr, flags, cap.N, from.el0, from.el1)")


def _eval(tree: Tree | Token, ctx: Context) -> Value:
    if isinstance(tree, Token):
        raise ConstraintError(f"unexpected {tree}")
    kind = tree.data
    try:
        if kind == "number":
            return int(str(tree.children[0]), 0)
        if kind == "field":
            return _field(str(tree.children[0]), ctx)
        if kind == "implies":
            return z3.Implies(_as_bool(_eval(tree.children[0], ctx)), _as_bool(_eval(tree.children[1], ctx)))
        if kind == "or_":
            return z3.Or(_as_bool(_eval(tree.children[0], ctx)), _as_bool(_eval(tree.children[1], ctx)))
        if kind == "and_":
            return z3.And(_as_bool(_eval(tree.children[0], ctx)), _as_bool(_eval(tree.children[1], ctx)))
        if kind == "not_":
            return z3.Not(_as_bool(_eval(tree.children[0], ctx)))
        if kind == "compare":
            left, op, right = tree.children
            a, b = _widths(_eval(left, ctx), _eval(right, ctx))
            ops = {"==": a == b, "!=": a != b, "<": z3.ULT(a, b), ">": z3.UGT(a, b), "<=": z3.ULE(a, b),
                   ">=": z3.UGE(a, b)}
            return ops[str(op)]
        if kind == "member":
            subject = _eval(tree.children[0], ctx)
            options = []
            for child in tree.children[1:]:
                a, b = _widths(subject, _eval(child, ctx))
                options.append(a == b)
            return z3.Or(*options)
        if kind in ("arith", "bitop"):
            left, op, right = tree.children
            a, b = _widths(_eval(left, ctx), _eval(right, ctx))
            table = {"+": lambda: a + b, "-": lambda: a - b, "&": lambda: a & b, "|": lambda: a | b,
                     "^": lambda: a ^ b, "<<": lambda: a << b, ">>": lambda: z3.LShR(a, b)}
            return table[str(op)]()
    except ConstraintError as err:
        if err.line is None and getattr(tree, "meta", None) is not None and not tree.meta.empty:
            err.line, err.col = tree.meta.line, tree.meta.column
        raise
    raise ConstraintError(f"cannot evaluate {kind}")


@cache
def parse_constraint(text: str) -> Tree:
    try:
        return _parser().parse(text)
    except UnexpectedInput as err:
        raise ConstraintError(f"syntax error: unexpected {str(err).splitlines()[0]}", err.line, err.column) from None


def compile_constraint(text: str, ctx: Context) -> z3.BoolRef:
    """Raises ConstraintError (with line/col inside `text`) on syntax or name errors."""
    return evaluate(parse_constraint(text), ctx)


def evaluate(tree: Tree, ctx: Context) -> z3.BoolRef:
    """A parsed constraint as a formula over `ctx` (ConstraintError on a name error)."""
    return _as_bool(_eval(tree, ctx))


def check_syntax(text: str) -> None:
    try:
        _parser().parse(text)
    except UnexpectedInput as err:
        raise ConstraintError("syntax error in constraint", err.line, err.column) from None


def user_error(err: ConstraintError, file: str, line_base: int, col_base: int = 1) -> UserError:
    line = line_base + (err.line - 1 if err.line else 0)
    col = (err.col or 1) + (col_base - 1 if (err.line or 1) == 1 else 0)
    return UserError(str(err), file, line, col)
