"""DAIF on return derived from a function's code instead of written: the relation between DAIF at the call
and DAIF at each return, over every DAIF a call can have, read from the returns of the function explored
from its entry; and the shortest description of that relation in the contracts' own words.

The relation is what the summary then applies (exactly, value by value); the description is what the
report prints. A derivation stands only when every path reached a return: a path not followed to its end
(or a solver that gave up) leaves the written fallback in place, trusted and said so.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import z3

from verifier.engine.explore import EretCheck
from verifier.semantics.state import BV

DaifTable = dict[int, tuple[int, ...]]
DAIF_ON_RETURN = "DAIF on return"  # the value ContractObserver records at each return


def daif_relation(returns: Iterable[EretCheck], at_call: BV, facts: list[z3.BoolRef],
                  rlimit: int) -> DaifTable | None:
    """DAIF at the call -> every DAIF a return can leave with it; None where the solver gives up."""
    table: dict[int, set[int]] = {}
    for ret in returns:
        now = z3.Extract(3, 0, ret.values[DAIF_ON_RETURN])
        solver = z3.Solver()
        solver.set("rlimit", rlimit)
        solver.add(*facts, ret.guard)
        for _ in range(16 * 16 + 1):  # at most every (at the call, on return) pair, then unsat
            status = solver.check()
            if status == z3.unknown:
                return None
            if status == z3.unsat:
                break
            model = solver.model()
            entry = model.eval(at_call, model_completion=True).as_long()
            value = model.eval(now, model_completion=True).as_long()
            table.setdefault(entry, set()).add(value)
            solver.add(z3.Not(z3.And(at_call == entry, now == value)))
    return {entry: tuple(sorted(values)) for entry, values in sorted(table.items())}


def _apply(pattern: str, at_call: int) -> int:
    """DAIF after a return that `0bDAIF` (x: as at the call) describes."""
    value = at_call
    for index, bit in enumerate(pattern):
        mask = 1 << (3 - index)
        value = value | mask if bit == "1" else value & ~mask if bit == "0" else value
    return value


def _named(pattern: str) -> str:
    return {"xxxx": "preserved", "1111": "masked"}.get(pattern, f"0b{pattern}")


def _rank(pattern: str) -> tuple[int, str]:
    """preserved and masked first, then the constants, then the patterns that keep fewer bits"""
    special = {"xxxx": 0, "1111": 1}
    return (special.get(pattern, 2 + pattern.count("x")), pattern)


_PATTERNS = sorted(("".join(bits) for bits in itertools.product("01x", repeat=4)), key=_rank)


def describe_relation(table: DaifTable) -> str:
    """The relation in `daif` words: the fewest alternatives (`0b0000|masked`) each of which is something
    the code does at every DAIF it returns from, together all it does; else the table itself."""
    pairs = {(entry, value) for entry, values in table.items() for value in values}
    exact = [p for p in _PATTERNS if all((entry, _apply(p, entry)) in pairs for entry in table)]
    chosen: list[str] = []
    left = set(pairs)
    while left and exact:
        best = max(exact, key=lambda p: sum((entry, _apply(p, entry)) in left for entry in table))
        covered = {(entry, _apply(best, entry)) for entry in table}
        if not covered & left:
            break
        chosen.append(best)
        left -= covered
    if not left and len(chosen) <= 4:
        text = "|".join(_named(p) for p in chosen)
    else:
        text = "by DAIF at the call: " + ", ".join(
            f"{entry:#x}->{'/'.join(f'{v:#x}' for v in values)}" for entry, values in table.items())
    if not table:
        return "no return"
    if len(table) < 16:
        text += f" (returns only when called with DAIF {', '.join(f'{e:#x}' for e in table)})"
    return text
