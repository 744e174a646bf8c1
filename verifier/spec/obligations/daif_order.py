"""daif-order: at every instruction, I unmasked implies D unmasked.

I is PSTATE.I: with pseudo-NMI, PSTATE.I clear lets pseudo-NMIs in even while ICC_PMR_EL1 masks normal
interrupts, so the order is the same; the report says which view an event is in and gives PMR at the eret."""

from __future__ import annotations

from typing import Self

import z3
from typing_extensions import override

from verifier.engine.observer import Event, EventLog, Findings, Observer, Path
from verifier.semantics.state import State, bv
from verifier.spec.masking import daif_bit
from verifier.spec.obligation import Obligation
from verifier.spec.priority import PriorityMasking

ID = "daif-order"


class DaifOrder(Observer):
    def __init__(self, priority: PriorityMasking, log: EventLog | None = None) -> None:
        self.priority = priority
        self.log = log or EventLog()  # the points where I was unmasked while D was masked

    @override
    def copy(self) -> Self:
        return type(self)(self.priority, self.log.copy())

    @override
    def merge(self, guard: z3.BoolRef, state: State, other: Self, other_guard: z3.BoolRef,
              other_state: State) -> Self:
        return type(self)(self.priority, self.log.merge(guard, other.log, other_guard))

    @override
    def on_masking(self, path: Path, daif_changed: bool, mdscr_changed: bool) -> None:
        order = z3.simplify(z3.And(daif_bit(path.state, "I") == bv(0, 1), daif_bit(path.state, "D") == bv(1, 1)))
        if z3.is_false(order):
            return
        for part, pnmi_only in self.priority.split(path.state, order):
            what = "I unmasked while D masked" + (
                " (ICC_PMR_EL1 masks normal interrupts, not pseudo-NMIs)" if pnmi_only else "")
            self.log.note(Event(path.pc, z3.And(path.guard, part), what))

    @override
    def at_eret(self, path: Path) -> Findings:
        values: dict[str, z3.ExprRef] = {"DAIF at eret": path.state.daif}
        if not z3.is_false(self.priority.in_use):
            values["ICC_PMR_EL1 at eret"] = self.priority.pmr(path.state)
        return Findings(violations={ID: self.log.condition()}, events={ID: self.log.events}, values=values)


OBLIGATION = Obligation(ID, "at every instruction, I unmasked implies D unmasked",
                        lambda facts: DaifOrder(facts.priority))
