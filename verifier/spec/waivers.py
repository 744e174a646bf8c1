"""Waivers: deliberate violations, each with its reason (proofs/waivers.toml), and the observer that tells
the verdicts whether a path ran a waived function.

A waiver names a property and a function pattern; a violation is WAIVED only when every violating path of
its exception class runs a function the pattern matches, by its symbol or by the C function its source line
is in (which may have been inlined)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import z3
from typing_extensions import override

from verifier.engine.image import CodeRef
from verifier.engine.observer import Findings, Observer, merge_condition
from verifier.engine.observer import Path as ObservedPath
from verifier.semantics.state import State
from verifier.spec.code_functions import CodeFunctions
from verifier.spec.obligations import OBLIGATIONS
from verifier.util.errors import UserError
from verifier.util.files import read_toml
from verifier.util.paths import shown


@dataclass(frozen=True)
class Waiver:
    property: str
    function: str  # regular expression over function names the violating path runs through
    reason: str
    vector: str | None
    source: str

    def matches(self, prop: str, vector: str, functions: list[str]) -> bool:
        if prop != self.property or (self.vector and self.vector != vector):
            return False
        return any(re.fullmatch(self.function, f) for f in functions)


def load_waivers(path: str | Path) -> list[Waiver]:
    path = Path(path)
    data, _ = read_toml(path, "waivers")
    waivers = []
    for number, entry in enumerate(data.get("waiver", []), start=1):
        for key in ("property", "function", "reason"):
            if not str(entry.get(key, "")).strip():
                raise UserError(f"waiver #{number} needs a non-empty '{key}' (a waiver without a reason is refused)",
                                str(path))
        if entry["property"] not in OBLIGATIONS and not re.fullmatch(r"R\d+(-[\w-]+)?", entry["property"]):
            raise UserError(f"waiver #{number}: unknown property '{entry['property']}'", str(path))
        try:
            re.compile(entry["function"])
        except re.error as err:
            raise UserError(f"waiver #{number}: bad function pattern: {err}", str(path)) from None
        waivers.append(Waiver(entry["property"], entry["function"], entry["reason"].strip(), entry.get("vector"),
                              f"{shown(path)}#{number}"))
    return waivers


def watched_patterns(waivers: list[Waiver]) -> tuple[str, ...]:
    """The function-name patterns whose visits the paths track (the waivers')."""
    return tuple(sorted({waiver.function for waiver in waivers}))


def ran(pattern: str) -> str:
    """The name of the path condition "the path ran a function `pattern` matches" at an eret."""
    return f"ran {pattern}"


class Watchlist:
    """The watched patterns and, per address, which of them its function matches (shared by all paths)."""

    def __init__(self, functions: CodeFunctions, patterns: tuple[str, ...]) -> None:
        self.functions = functions
        self.patterns = patterns
        self._matching: dict[int, list[str]] = {}

    def matching(self, address: int, code: CodeRef) -> list[str]:
        found = self._matching.get(address)
        if found is None:
            names = self.functions.names(address, code)
            found = [p for p in self.patterns if any(re.fullmatch(p, n) for n in names)]
            self._matching[address] = found
        return found


class WaiverWatch(Observer):
    def __init__(self, watchlist: Watchlist, visited: dict[str, z3.BoolRef] | None = None) -> None:
        self.watchlist = watchlist
        self.visited = visited if visited is not None else {}  # pattern -> "the path ran it"

    @override
    def copy(self) -> Self:
        return type(self)(self.watchlist, dict(self.visited))

    @override
    def merge(self, guard: z3.BoolRef, state: State, other: Self, other_guard: z3.BoolRef,
              other_state: State) -> Self:
        return type(self)(self.watchlist, {
            k: merge_condition(guard, self.visited.get(k), other_guard, other.visited.get(k))
            for k in set(self.visited) | set(other.visited)})

    @override
    def on_step(self, path: ObservedPath, code: CodeRef) -> None:
        for pattern in self.watchlist.matching(path.pc, code):
            seen = self.visited.get(pattern, z3.BoolVal(False))
            self.visited[pattern] = z3.simplify(z3.Or(seen, path.guard))

    @override
    def at_eret(self, path: ObservedPath) -> Findings:
        return Findings(conditions={ran(pattern): cond for pattern, cond in self.visited.items()})
