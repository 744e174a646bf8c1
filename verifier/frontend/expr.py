"""gas expression values and evaluation.

A value is linear: a constant plus integer multiples of *terms*. A term is a fragment base address (a label
becomes its fragment's base plus an offset, so that two labels in one fragment subtract to a constant
before layout) or a symbol not defined (yet). This is what gas's own `expressionS` can express as well:
`sym + 8`, `663f - .`, `662b - 661b`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from lark import Token, Tree

MASK64 = (1 << 64) - 1


def to_signed64(value: int) -> int:
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


class NotConstant(Exception):
    """An operation gas can only do on constants met a value with symbols in it."""


@dataclass
class Lin:
    const: int = 0
    terms: dict[Hashable, int] = field(default_factory=dict)

    @staticmethod
    def of(const: int) -> Lin:
        return Lin(to_signed64(const))

    @staticmethod
    def term(key: Hashable, offset: int = 0) -> Lin:
        return Lin(offset, {key: 1})

    def is_const(self) -> bool:
        return not self.terms

    def value(self) -> int:
        if self.terms:
            raise NotConstant(f"expression is not constant (refers to {describe_terms(self.terms)})")
        return self.const

    def add(self, other: Lin, sign: int = 1) -> Lin:
        terms = dict(self.terms)
        for key, coeff in other.terms.items():
            new = terms.get(key, 0) + sign * coeff
            if new:
                terms[key] = new
            else:
                terms.pop(key, None)
        return Lin(to_signed64(self.const + sign * other.const), terms)

    def substitute(self, resolve: Callable[[Hashable], Lin | None]) -> Lin:
        """Replace each term that `resolve` knows by its value."""
        out = Lin(self.const)
        for key, coeff in self.terms.items():
            known = resolve(key)
            if known is None:
                out = out.add(Lin(0, {key: coeff}))
            else:
                for _ in range(abs(coeff)):
                    out = out.add(known, 1 if coeff > 0 else -1)
        return out


def describe_terms(terms: dict[Hashable, int]) -> str:
    names = []
    for key in terms:
        if isinstance(key, tuple) and key and key[0] == "sym":
            names.append(str(key[1]))
        else:
            names.append("a location not yet laid out")
    return ", ".join(names)


class Scope:
    """What an expression can see: symbols (equates, labels), `.`, numeric local labels."""

    def symbol(self, name: str) -> Lin:
        raise NotImplementedError

    def here(self) -> Lin:
        raise NotImplementedError

    def local_ref(self, text: str) -> Lin:
        raise NotImplementedError


def _char_value(text: str) -> int:
    body = text[1:].rstrip("'") if len(text) > 2 and text.endswith("'") else text[1:]
    if body.startswith("\\"):
        escapes = {"n": 10, "t": 9, "r": 13, "0": 0, "\\": 92, "'": 39, '"': 34}
        return escapes.get(body[1:2], ord(body[1:2] or "\\"))
    return ord(body[0])


def parse_number(text: str) -> int:
    lowered = text.lower()
    if lowered.startswith("0x"):
        return int(lowered, 16)
    if lowered.startswith("0b"):
        return int(lowered[2:], 2)
    if len(lowered) > 1 and lowered.startswith("0"):
        try:
            return int(lowered, 8)  # gas reads a leading 0 as octal
        except ValueError:
            raise NotConstant(f"invalid octal number '{text}'") from None
    return int(lowered)


def _binop(op: str, a: Lin, b: Lin) -> Lin:
    if op == "+":
        return a.add(b)
    if op == "-":
        return a.add(b, -1)
    x, y = a.value(), b.value()
    ux, uy = x & MASK64, y & MASK64
    if op == "*":
        return Lin.of(x * y)
    if op in ("/", "%"):
        if y == 0:
            raise NotConstant("division by zero")
        quotient = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)  # C truncation
        return Lin.of(quotient if op == "/" else x - quotient * y)
    if op == "<<":
        return Lin.of(0 if uy >= 64 else x << uy)
    if op == ">>":
        return Lin.of(0 if uy >= 64 else ux >> uy)  # gas shifts the unsigned value
    if op == "|":
        return Lin.of(x | y)
    if op == "&":
        return Lin.of(x & y)
    if op == "^":
        return Lin.of(x ^ y)
    if op == "!":
        return Lin.of(x | ~y)  # binary `!` is "or not"
    comparisons = {
        "==": x == y,
        "!=": x != y,
        "<>": x != y,
        "<": x < y,
        ">": x > y,
        "<=": x <= y,
        ">=": x >= y,
    }
    if op in comparisons:
        return Lin.of(-1 if comparisons[op] else 0)
    if op == "&&":
        return Lin.of(1 if x and y else 0)
    if op == "||":
        return Lin.of(1 if x or y else 0)
    raise NotConstant(f"unknown operator {op}")


def evaluate(tree: Tree | Token, scope: Scope) -> Lin:
    """Evaluate an expression parse tree (grammar rule `expr`)."""
    if isinstance(tree, Token):
        raise NotConstant(f"unexpected token {tree}")
    kind = tree.data
    if kind == "number":
        return Lin.of(parse_number(str(tree.children[0])))
    if kind == "symbol":
        name = str(tree.children[0])
        return scope.here() if name == "." else scope.symbol(name)
    if kind == "local_ref":
        return scope.local_ref(str(tree.children[0]))
    if kind == "char":
        return Lin.of(_char_value(str(tree.children[0])))
    if kind == "binop":
        left, op_tree, right = tree.children
        op = str(op_tree.children[0])
        return _binop(op, evaluate(left, scope), evaluate(right, scope))
    if kind == "unop":
        op_tree, operand = tree.children
        op = str(op_tree.children[0])
        value = evaluate(operand, scope)
        if op == "+":
            return value
        if op == "-":
            return Lin().add(value, -1)
        if op == "~":
            return Lin.of(~value.value())
        return Lin.of(0 if value.value() else 1)
    raise NotConstant(f"cannot evaluate {kind}")
