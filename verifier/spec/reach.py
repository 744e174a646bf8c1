"""Which lifted functions a slot's paths ran, and for a synchronous slot which exception classes reached each:
what a slot's result depends on, so a series reuses it for a commit that changed none of them (or re-proves
only the classes that reach what changed).

An observer notes the path guard each time a path enters a function (by a call, a jump, a return or falling
through). The classes that reach a function are those its entry guards allow: each guard is evaluated with
ESR_EL1.EC fixed to each class and simplified; a class is left out only when that makes the guard false, so
the sets over-approximate (a class may be listed that no path of it takes, never the reverse)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

import z3
from typing_extensions import override

from verifier.engine.image import CodeRef
from verifier.engine.observer import Observer, Path
from verifier.semantics.state import State

ALL = "all"  # a function every class of the slot may reach


def with_class(esr: z3.BitVecRef, ec: int) -> z3.BitVecRef:
    """`esr` with its exception class (ESR_EL1.EC, bits 31:26) fixed to `ec`."""
    return z3.Concat(z3.Extract(63, 32, esr), z3.BitVecVal(ec, 6), z3.Extract(25, 0, esr))


class Reached:
    """The shared log: function -> the distinct guards it was entered under."""

    def __init__(self, function_at: Callable[[int], str | None]) -> None:
        self.function_at = function_at
        self.entries: dict[str, dict[int, z3.BoolRef]] = {}

    def name(self, address: int) -> str:
        return self.function_at(address) or f"{address:#x}"  # Image.function_at keeps its answers

    def note(self, function: str, guard: z3.BoolRef) -> None:
        self.entries.setdefault(function, {}).setdefault(guard.get_id(), guard)

    def classes(self, esr: z3.BitVecRef, only: tuple[int, ...] = ()) -> dict[str, list[int] | str]:
        """Per function, the exception classes (ESR_EL1.EC of `esr`) that may reach it, or ALL; `only`: the
        paths were those of these classes alone (a proof of some classes), so no other class reaches."""
        candidates = sorted(only) if only else list(range(64))
        fixed = {ec: with_class(esr, ec) for ec in candidates}
        out: dict[str, list[int] | str] = {}
        for function, guards in self.entries.items():
            found: set[int] = set()
            for guard in guards.values():
                for ec in candidates:
                    if ec not in found and not z3.is_false(z3.simplify(z3.substitute(guard, (esr, fixed[ec])))):
                        found.add(ec)
                if len(found) == len(candidates):
                    break
            out[function] = ALL if len(found) == 64 else sorted(found)
        return out


class ReachObserver(Observer):
    """Tells Reached where each path enters a function (copies share the log; the current function is the
    path's own)."""

    def __init__(self, reached: Reached, current: str | None = None) -> None:
        self.reached = reached
        self.current = current

    @override
    def copy(self) -> Self:
        return type(self)(self.reached, self.current)

    @override
    def merge(self, guard: z3.BoolRef, state: State, other: Self, other_guard: z3.BoolRef,
              other_state: State) -> Self:
        return self  # both at one pc: one function

    @override
    def on_step(self, path: Path, code: CodeRef) -> None:
        alt = getattr(path, "alt", None)  # an alternative's replacement counts as the site's function
        function = self.reached.name(alt.orig_start if alt is not None else code.address)
        if function != self.current:
            self.current = function
            self.reached.note(function, path.guard)
