"""eret-integrity: from the writes of ELR_EL1/SPSR_EL1 the eret consumes up to the eret, no exception that
could overwrite them is unmasked.

Each register has a window: it opens at the register's last write (already failing if an exception could be
taken then) and collects every point after it where DAIF or MDSCR_EL1 let one be taken, and every call whose
contract says it may unmask exceptions while it runs. PSTATE.I clear opens the window even where the GIC
priority mask blocks normal interrupts: a pseudo-NMI is still taken (and is said so)."""

from __future__ import annotations

from typing import Self

import z3
from typing_extensions import override

from verifier.engine.calls import Summary
from verifier.engine.observer import Event, EventLog, Findings, Observer, Path
from verifier.semantics.state import ELR_EL1, SPSR_EL1, State
from verifier.spec.contracts import Contract
from verifier.spec.masking import can_take_exception
from verifier.spec.obligation import Obligation
from verifier.spec.priority import PriorityMasking

ID = "eret-integrity"


class EretIntegrity(Observer):
    def __init__(self, priority: PriorityMasking, elr: EventLog | None = None, spsr: EventLog | None = None) -> None:
        self.priority = priority
        self.elr = elr or EventLog()  # exceptions possible since the last ELR_EL1 write
        self.spsr = spsr or EventLog()

    @override
    def copy(self) -> Self:
        return type(self)(self.priority, self.elr.copy(), self.spsr.copy())

    @override
    def merge(self, guard: z3.BoolRef, state: State, other: Self, other_guard: z3.BoolRef,
              other_state: State) -> Self:
        return type(self)(self.priority, self.elr.merge(guard, other.elr, other_guard),
                          self.spsr.merge(guard, other.spsr, other_guard))

    def _unmasked(self, path: Path, what: str) -> list[Event]:
        """Where an exception can be taken here, told apart when only a pseudo-NMI can (PMR masks the rest)."""
        cond = can_take_exception(path.state)
        if z3.is_false(cond):
            return []
        pnmi = f"{what}: PSTATE.I clear, so a pseudo-NMI can be taken though ICC_PMR_EL1 masks interrupts"
        return [Event(path.pc, z3.And(path.guard, part), pnmi if pnmi_only else what)
                for part, pnmi_only in self.priority.split(path.state, cond)]

    @override
    def on_sysreg_write(self, path: Path, encoding: int) -> None:
        if encoding in (ELR_EL1, SPSR_EL1):
            window = self._unmasked(path, "exception unmasked after the write")
            (self.elr if encoding == ELR_EL1 else self.spsr).reset(window)

    @override
    def on_masking(self, path: Path, daif_changed: bool, mdscr_changed: bool) -> None:
        for event in self._unmasked(path, "exception unmasked"):
            self._note(event)

    @override
    def on_summary(self, path: Path, name: str, summary: Summary) -> None:
        if isinstance(summary, Contract) and summary.unmasks == "all":
            self._note(Event(path.pc, path.guard, f"{name} may unmask exceptions while it runs"))

    def _note(self, event: Event) -> None:
        self.elr.note(event)
        self.spsr.note(event)

    @override
    def at_eret(self, path: Path) -> Findings:
        return Findings(violations={ID: z3.Or(self.elr.condition(), self.spsr.condition())},
                        events={ID: self.elr.events + self.spsr.events})


OBLIGATION = Obligation(
    ID,
    "from the writes of ELR_EL1/SPSR_EL1 the eret consumes up to the eret, no exception that could overwrite "
    "them is unmasked",
    lambda facts: EretIntegrity(facts.priority),
)
