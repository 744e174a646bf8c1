"""ss-restored: MDSCR_EL1.SS at eret equals its value at entry (returning to EL1) or the task's TIF_SINGLESTEP
as the return path read it (returning to EL0).

The observer remembers the thread flags the path last loaded from the current task (SP_EL0 + TSK_TI_FLAGS):
the return to user re-arms single step from what it read, not from the flags at entry."""

from __future__ import annotations

from typing import Self

import z3
from typing_extensions import override

from verifier.engine.observer import Findings, Observer, Path, merge_value
from verifier.semantics.state import BV, MDSCR, SPSR_EL1, Region, State, bv, split_address
from verifier.spec.masking import MDSCR_SS
from verifier.spec.obligation import Obligation, SlotFacts

ID = "ss-restored"


class SsRestored(Observer):
    def __init__(self, facts: SlotFacts, flags_read: BV | None = None) -> None:
        self.facts = facts
        self.flags_read = flags_read  # the current task's thread flags as the code last read them

    @override
    def copy(self) -> Self:
        return type(self)(self.facts, self.flags_read)

    @override
    def merge(self, guard: z3.BoolRef, state: State, other: Self, other_guard: z3.BoolRef,
              other_state: State) -> Self:
        if self.flags_read is None and other.flags_read is None:
            return type(self)(self.facts)
        return type(self)(self.facts, merge_value(guard, self._flags(), other._flags()))

    def _flags(self) -> BV:
        return self.flags_read if self.flags_read is not None else self.facts.flags

    @override
    def on_load(self, path: Path, region: Region, offset: int, size: int, value: BV) -> None:
        current = split_address(path.state.sp_el0 + self.facts.flags_offset)
        if current == (region, offset) and size in (4, 8):
            self.flags_read = z3.ZeroExt(64 - value.size(), value) if value.size() < 64 else value

    @override
    def at_eret(self, path: Path) -> Findings:
        spsr = path.state.read_sysreg(SPSR_EL1)
        mdscr = path.state.read_sysreg(MDSCR)
        to_el0 = z3.Extract(3, 2, spsr) == bv(0, 2)
        flags = self._flags()
        tif = self.facts.tif["TIF_SINGLESTEP"]
        ss_now = z3.Extract(MDSCR_SS, MDSCR_SS, mdscr)
        wrong = z3.If(to_el0, ss_now != z3.Extract(tif, tif, flags),
                      ss_now != z3.Extract(MDSCR_SS, MDSCR_SS, self.facts.mdscr))
        return Findings(violations={ID: z3.And(path.guard, wrong)},
                        values={"MDSCR_EL1 at eret": mdscr, "thread flags read": flags})


OBLIGATION = Obligation(
    ID,
    "MDSCR_EL1.SS at eret equals its value at entry (returning to EL1) or the task's TIF_SINGLESTEP as the "
    "return path read it (returning to EL0)",
    SsRestored,
)
