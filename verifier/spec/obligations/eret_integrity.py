"""eret-integrity: from the writes of ELR_EL1/SPSR_EL1 the eret consumes up to the eret, no exception that
could overwrite them is unmasked.

Each register has a window: it opens at the register's last write (already failing if an exception could be
taken then) and collects every point after it where DAIF or MDSCR_EL1 let one be taken, and every call whose
contract says it may unmask exceptions while it runs."""

from __future__ import annotations

from typing import Self

import z3

from verifier.engine.calls import Summary
from verifier.engine.observer import Event, EventLog, Findings, Observer, Path
from verifier.semantics.state import ELR_EL1, SPSR_EL1, State
from verifier.spec.contracts import Contract
from verifier.spec.masking import can_take_exception
from verifier.spec.obligation import Obligation

ID = "eret-integrity"


class EretIntegrity(Observer):
    def __init__(self, elr: EventLog | None = None, spsr: EventLog | None = None) -> None:
        self.elr = elr or EventLog()  # exceptions possible since the last ELR_EL1 write
        self.spsr = spsr or EventLog()

    def copy(self) -> Self:
        return type(self)(self.elr.copy(), self.spsr.copy())

    def merge(self, guard: z3.BoolRef, state: State, other: Self, other_guard: z3.BoolRef,
              other_state: State) -> Self:
        return type(self)(self.elr.merge(guard, other.elr, other_guard),
                          self.spsr.merge(guard, other.spsr, other_guard))

    def on_sysreg_write(self, path: Path, encoding: int) -> None:
        if encoding in (ELR_EL1, SPSR_EL1):
            cond = can_take_exception(path.state)
            window = [] if z3.is_false(cond) else [
                Event(path.pc, z3.And(path.guard, cond), "exception unmasked after the write")]
            (self.elr if encoding == ELR_EL1 else self.spsr).reset(window)

    def on_masking(self, path: Path, daif_changed: bool, mdscr_changed: bool) -> None:
        cond = can_take_exception(path.state)
        if not z3.is_false(cond):
            self._note(Event(path.pc, z3.And(path.guard, cond), "exception unmasked"))

    def on_summary(self, path: Path, name: str, summary: Summary) -> None:
        if isinstance(summary, Contract) and summary.unmasks == "all":
            self._note(Event(path.pc, path.guard, f"{name} may unmask exceptions while it runs"))

    def _note(self, event: Event) -> None:
        self.elr.note(event)
        self.spsr.note(event)

    def at_eret(self, path: Path) -> Findings:
        return Findings(violations={ID: z3.Or(self.elr.condition(), self.spsr.condition())},
                        events={ID: self.elr.events + self.spsr.events})


OBLIGATION = Obligation(
    ID,
    "from the writes of ELR_EL1/SPSR_EL1 the eret consumes up to the eret, no exception that could overwrite "
    "them is unmasked",
    lambda facts: EretIntegrity(),
)
