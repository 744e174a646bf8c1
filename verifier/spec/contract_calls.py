"""Contracts applied at calls: the call model (engine/calls.py) that the contract files give.

Here live the kernel's calling conventions the explorer does not know: which registers a call clobbers
(AAPCS64 unless a contract says otherwise), what DAIF and MDSCR_EL1 it leaves, which memory classes it may
write, and the pt_regs frame kernel_entry built at the initial SP_EL1, whose fields a handler may rewrite.
"""

from __future__ import annotations

from collections.abc import Callable

import z3

from verifier.engine.calls import Fresh, Summary
from verifier.semantics import names
from verifier.semantics.state import ICC_PMR_EL1, MDSCR, Region, State, bv, split_address
from verifier.spec.contracts import PSTATE_BITS, Callback, Contract, Contracts
from verifier.spec.priority import PriorityMasking

FIRMWARE_CLOBBERS = tuple(f"x{i}" for i in range(18))  # SMCCC: x0-x17


class ContractCalls:
    """engine.calls.CallModel over a contract file."""

    def __init__(self, contracts: Contracts, priority: PriorityMasking | None = None, regs_frame: bool = True) -> None:
        self.contracts = contracts
        self.priority = priority or PriorityMasking.none()
        # whether kernel_entry's pt_regs frame lies below the initial SP (a vector slot); a function checked
        # from its entry reaches pt_regs through the pointer its callers passed (names.regs_pointer())
        self.regs_frame = regs_frame

    def for_symbol(self, symbol: str) -> Contract:
        return self.contracts.for_function(symbol)

    def for_pointer(self, origin: str) -> Contract | None:
        # A call through a pointer the code loaded from a symbol's memory is a call to whatever function
        # that memory holds: its own entry if the contracts have one, else the default, like any callee.
        return self.contracts.indirect.get(origin, self.contracts.default)

    def instead_of_lifted(self, name: str) -> Contract | None:
        if name in self.contracts.summarised:
            return self.contracts.for_function(name)
        contract = self.contracts.functions.get(name)
        return contract if contract is not None and not contract.lift else None

    def firmware(self) -> Contract:
        return self.contracts.firmware or Contract("firmware call (hvc/smc)", clobbers=FIRMWARE_CLOBBERS, writes=())

    def patch(self, callback: str) -> Callback | None:
        return self.contracts.callbacks.get(callback)

    def assumption(self, summary: Summary, name: str) -> str:
        contract = _contract(summary)
        return contract.describe() if not contract.is_default else f"{name}: default contract"

    def apply(self, summary: Summary, name: str, state: State, fresh: Fresh) -> None:
        contract = _contract(summary)
        for reg in contract.clobbers:
            state.write_reg(reg, fresh(f"{name}.{reg}", 64))
        state.nzcv = fresh(f"{name}.nzcv", 4)
        daif_at_call = state.daif
        choices = daif_returns(contract, daif_at_call, lambda: fresh(f"{name}.daif", 4))
        state.daif = choices[0]
        for index, other in enumerate(choices[1:]):  # several possible returns: a fresh choice among them
            state.daif = z3.simplify(z3.If(z3.Extract(0, 0, fresh(f"{name}.daif_choice{index}", 1)) == 1,
                                           other, state.daif))
        if contract.mdscr == "any":
            state.write_sysreg(MDSCR, fresh(f"{name}.mdscr", 64))
        self._apply_pmr(contract, name, state, daif_at_call, fresh)
        self._havoc_memory(contract, name, state, fresh)

    def _apply_pmr(self, contract: Contract, name: str, state: State, daif_at_call: z3.BitVecRef,
                   fresh: Fresh) -> None:
        """ICC_PMR_EL1 on return. Where the kernel masks with PMR, "unmask-pnmis" and "irqs-off" add the
        returns that mask normal interrupts with PMR (GIC_PRIO_IRQOFF) instead of PSTATE.I: either one may
        be taken (a disjunction, so each is judged)."""
        if contract.pmr == "any":
            state.write_sysreg(ICC_PMR_EL1, fresh(f"{name}.pmr", 64))
            return
        if contract.pmr == "preserved" or z3.is_false(self.priority.in_use):
            return
        masked = self.priority.irqs_masked_value(fresh(f"{name}.irqoff", 64))
        if masked is None:
            masked = fresh(f"{name}.pmr", 64)
        did = z3.And(self.priority.in_use, z3.Extract(0, 0, fresh(f"{name}.pmr_masked", 1)) == 1)
        if contract.pmr == "unmask-pnmis":
            # the GIC driver's gic_unmask_pnmis(): PMR masks normal interrupts, PSTATE.I and F cleared
            state.daif = z3.simplify(z3.If(did, state.daif & bv(0b1100, 4), state.daif))
        else:
            # "irqs-off": local_irq_disable() last, which with priority masking writes PMR, not DAIF
            state.daif = z3.simplify(z3.If(did, daif_at_call, state.daif))
        state.write_sysreg(ICC_PMR_EL1, z3.If(did, masked, state.read_sysreg(ICC_PMR_EL1)))

    def _havoc_memory(self, contract: Contract, name: str, state: State, fresh: Fresh) -> None:
        memory = state.memory
        callers = _callers_frames(state.read_reg("sp"))
        for cls in ("task", "percpu", "global"):
            if cls in contract.writes:
                memory.havoc_class(cls, callers)
        frame = regs_frame(self.contracts.layout) if self.regs_frame else (Region((names.REGS,)), 0)
        if frame is None:
            return
        region, base = frame
        pstate = self.contracts.layout["S_PSTATE"]
        for cls, (lo, hi) in regs_spans(self.contracts.layout).items():
            if cls in contract.writes and cls != "regs.pstate":
                for offset in range(lo, hi, 8):
                    memory.store(region, base + offset, fresh(f"{name}.regs+{offset:#x}", 64), 8)
        if "regs.pstate" in contract.writes:
            old = memory.load(region, base + pstate, 8)
            value = fresh(f"{name}.pstate", 64)
            mask = pstate_mask(contract)
            memory.store(region, base + pstate, (old & ~bv(mask)) | (value & bv(mask)), 8)


def regs_frame(layout: dict[str, int]) -> tuple[Region, int] | None:
    """Where kernel_entry builds the pt_regs frame of a vector slot: at the initial SP_EL1 minus its size."""
    return split_address(names.initial_sp() - layout["S_FRAME_SIZE"])


def regs_spans(layout: dict[str, int]) -> dict[str, tuple[int, int]]:
    """The `writes` classes of pt_regs, as byte ranges of the frame."""
    pstate, size = layout["S_PSTATE"], layout["S_FRAME_SIZE"]
    return {"regs.gprs": (0, 31 * 8), "regs.sp": (31 * 8, 32 * 8), "regs.pc": (layout["S_PC"], layout["S_PC"] + 8),
            "regs.pstate": (pstate, pstate + 8), "regs.rest": (pstate + 8, size)}


def pstate_mask(contract: Contract) -> int:
    """The bits of the saved PSTATE the contract lets the function change."""
    mask = 0
    for field in contract.pstate_bits:
        mask |= PSTATE_BITS[field]
    return mask


def _callers_frames(sp: z3.BitVecRef) -> Callable[[Region, int], bool]:
    """The bytes at or above the stack pointer a callee is called with, on whichever stack that is (the
    overflow stack and the IRQ stack live in per-CPU and allocated memory): its callers' frames, which
    a callee does not write (CALLERS_FRAMES)."""
    where = split_address(sp)
    if where is None:
        return lambda _region, _offset: False
    stack, bottom = where
    return lambda region, offset: region == stack and (offset - bottom) % (1 << 64) < (1 << 63)


CALLERS_FRAMES = ("a function that is not lifted does not write its callers' stack frames (the memory at or "
                  "above the stack pointer it is called with), whatever its contract's `writes`")


def _contract(summary: Summary) -> Contract:
    assert isinstance(summary, Contract), summary  # this model hands out only contracts
    return summary


def daif_returns(contract: Contract, at_call: z3.BitVecRef, fresh: Callable[[], z3.BitVecRef]) -> list[z3.BitVecRef]:
    """The DAIF values a call may return with, one expression per alternative: the contract's |-joined
    `daif` choices, or for a contract derived from its code, its table (DAIF at the call -> the DAIF its
    returns leave; a DAIF at the call it never returns from gives any value)."""
    if not contract.daif_table:
        return [daif_on_return(choice, at_call, fresh) for choice in contract.daif.split("|")]
    widest = max(len(returns) for _, returns in contract.daif_table)
    unreachable = fresh()
    options = []
    for index in range(widest):
        value: z3.BitVecRef = unreachable
        for entry, returns in contract.daif_table:
            value = z3.If(at_call == entry, bv(returns[min(index, len(returns) - 1)], 4), value)
        options.append(z3.simplify(value))
    return options


def daif_on_return(choice: str, at_call: z3.BitVecRef, fresh: Callable[[], z3.BitVecRef]) -> z3.BitVecRef:
    """DAIF after a call whose contract's `daif` is CHOICE (one of the |-joined alternatives)."""
    if choice == "masked":
        return bv(0xF, 4)
    if choice == "any":
        return fresh()
    if choice.startswith("0b"):
        return _daif_bits(choice[2:], at_call)
    return at_call


def _daif_bits(bits: str, at_call: z3.BitVecRef) -> z3.BitVecRef:
    """DAIF after a call whose contract gives it bit by bit, D first: 0 or 1, or x for "as at the call"."""
    value = at_call
    for index, bit in enumerate(bits):
        mask = bv(1 << (3 - index), 4)
        if bit == "1":
            value = value | mask
        elif bit == "0":
            value = value & ~mask
    return z3.simplify(value)
