"""What an obligation is: an id, the sentence it proves, and how to make its observer for one slot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from verifier.engine.observer import Observer
from verifier.semantics.state import BV
from verifier.spec.priority import PriorityMasking


@dataclass(frozen=True)
class SlotFacts:
    """What an obligation's observer may know of the slot it runs in: the interrupted context's values
    and the kernel's layout."""

    spsr: BV  # SPSR_EL1 at the vector: the interrupted PSTATE
    mdscr: BV  # MDSCR_EL1 at the vector
    flags: BV  # the current task's thread flags at the vector
    flags_offset: int  # TSK_TI_FLAGS: where the thread flags live in the task
    tif: dict[str, int]  # thread flag bit numbers (TIF_SINGLESTEP, ...)
    # whether the kernel masks interrupts with ICC_PMR_EL1 (pseudo-NMI), and which interrupts that lets in
    priority: PriorityMasking = field(default_factory=PriorityMasking.none)


@dataclass(frozen=True)
class Obligation:
    id: str
    text: str
    observer: Callable[[SlotFacts], Observer]
