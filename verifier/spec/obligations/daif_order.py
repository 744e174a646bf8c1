"""daif-order: at every instruction, I unmasked implies D unmasked."""

from __future__ import annotations

from typing import Self

import z3

from verifier.engine.observer import Event, EventLog, Findings, Observer, Path
from verifier.semantics.state import State, bv
from verifier.spec.masking import daif_bit
from verifier.spec.obligation import Obligation

ID = "daif-order"


class DaifOrder(Observer):
    def __init__(self, log: EventLog | None = None) -> None:
        self.log = log or EventLog()  # the points where I was unmasked while D was masked

    def copy(self) -> Self:
        return type(self)(self.log.copy())

    def merge(self, guard: z3.BoolRef, state: State, other: Self, other_guard: z3.BoolRef,
              other_state: State) -> Self:
        return type(self)(self.log.merge(guard, other.log, other_guard))

    def on_masking(self, path: Path, daif_changed: bool, mdscr_changed: bool) -> None:
        order = z3.simplify(z3.And(daif_bit(path.state, "I") == bv(0, 1), daif_bit(path.state, "D") == bv(1, 1)))
        if not z3.is_false(order):
            self.log.note(Event(path.pc, z3.And(path.guard, order), "I unmasked while D masked"))

    def at_eret(self, path: Path) -> Findings:
        return Findings(violations={ID: self.log.condition()}, events={ID: self.log.events},
                        values={"DAIF at eret": path.state.daif})


OBLIGATION = Obligation(ID, "at every instruction, I unmasked implies D unmasked", lambda facts: DaifOrder())
