"""mdscr-sync: D is not unmasked while an MDSCR_EL1 write that changes SS or KDE awaits a context
synchronisation event.

A write to MDSCR_EL1 takes effect only at the next context synchronisation event (isb, an exception entry or
return); unmasking D before it leaves the debug exceptions governed by the old SS/KDE."""

from __future__ import annotations

from typing import Self

import z3
from typing_extensions import override

from verifier.engine.observer import Event, EventLog, Findings, Observer, Path, merge_value
from verifier.semantics.state import BV, MDSCR, State, bv
from verifier.spec.masking import MDSCR_KDE, MDSCR_SS, daif_bit
from verifier.spec.obligation import Obligation

ID = "mdscr-sync"


class MdscrSync(Observer):
    def __init__(self, log: EventLog | None = None, unsynchronised: BV | None = None) -> None:
        self.log = log or EventLog()
        self.unsynchronised = unsynchronised  # MDSCR_EL1 before a write no synchronisation has followed

    @override
    def copy(self) -> Self:
        return type(self)(self.log.copy(), self.unsynchronised)

    @override
    def merge(self, guard: z3.BoolRef, state: State, other: Self, other_guard: z3.BoolRef,
              other_state: State) -> Self:
        log = self.log.merge(guard, other.log, other_guard)
        if self.unsynchronised is None and other.unsynchronised is None:
            return type(self)(log)
        mine = self.unsynchronised if self.unsynchronised is not None else state.read_sysreg(MDSCR)
        theirs = other.unsynchronised if other.unsynchronised is not None else other_state.read_sysreg(MDSCR)
        return type(self)(log, merge_value(guard, mine, theirs))

    @override
    def on_mdscr_write(self, path: Path, before: BV) -> None:
        if self.unsynchronised is None:
            self.unsynchronised = before

    @override
    def on_synchronise(self, path: Path) -> None:
        self.unsynchronised = None

    @override
    def on_masking(self, path: Path, daif_changed: bool, mdscr_changed: bool) -> None:
        if self.unsynchronised is None:
            return
        new, old = path.state.read_sysreg(MDSCR), self.unsynchronised
        differs = z3.Or(z3.Extract(MDSCR_SS, MDSCR_SS, old) != z3.Extract(MDSCR_SS, MDSCR_SS, new),
                        z3.Extract(MDSCR_KDE, MDSCR_KDE, old) != z3.Extract(MDSCR_KDE, MDSCR_KDE, new))
        cond = z3.simplify(z3.And(daif_bit(path.state, "D") == bv(0, 1), differs))
        if not z3.is_false(cond):
            self.log.note(Event(path.pc, z3.And(path.guard, cond),
                                "D unmasked before the MDSCR_EL1 write is synchronised"))

    @override
    def at_eret(self, path: Path) -> Findings:
        return Findings(violations={ID: self.log.condition()}, events={ID: self.log.events})


OBLIGATION = Obligation(
    ID,
    "D is not unmasked while an MDSCR_EL1 write that changes SS or KDE awaits a context synchronisation event",
    lambda _facts: MdscrSync(),
)
