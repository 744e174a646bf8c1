"""d-restored: SPSR_EL1.D at eret equals D of the interrupted context."""

from __future__ import annotations

import z3
from typing_extensions import override

from verifier.engine.observer import Findings, Observer, Path
from verifier.semantics.state import BV, SPSR_EL1
from verifier.spec.obligation import Obligation, SlotFacts

ID = "d-restored"
SPSR_D = 9  # SPSR_EL1.D


class DRestored(Observer):
    """Stateless: the eret compares what it restores with the interrupted PSTATE."""

    def __init__(self, interrupted_spsr: BV) -> None:
        self.interrupted_spsr = interrupted_spsr

    @override
    def at_eret(self, path: Path) -> Findings:
        spsr = path.state.read_sysreg(SPSR_EL1)
        restored = z3.Extract(SPSR_D, SPSR_D, spsr) != z3.Extract(SPSR_D, SPSR_D, self.interrupted_spsr)
        return Findings(violations={ID: z3.And(path.guard, restored)}, values={"SPSR_EL1 at eret": spsr})


def _observer(facts: SlotFacts) -> Observer:
    return DRestored(facts.spsr)


OBLIGATION = Obligation(ID, "SPSR_EL1.D at eret equals D of the interrupted context", _observer)
