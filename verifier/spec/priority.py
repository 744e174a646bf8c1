"""Interrupt priority masking (CONFIG_ARM64_PSEUDO_NMI): what "interrupts are masked" means when the kernel
masks them with the GIC's priority mask ICC_PMR_EL1 instead of PSTATE.I.

An interrupt is signalled to the PE only if its priority is higher (numerically lower) than PMR, and PSTATE.I
masks every interrupt, pseudo-NMIs included (GICv3 architecture, ICC_PMR_EL1; arm64-facts.md). So a normal
interrupt can be taken when PSTATE.I is clear and PMR is above the normal interrupts' priority; a pseudo-NMI
whenever PSTATE.I is clear. The kernel uses PMR only where the priority-masking capability is on; elsewhere
PMR keeps the value the GIC driver wrote at boot. The values come from the build (`PriorityFacts`).
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from verifier.semantics import names
from verifier.semantics.state import ICC_PMR_EL1, State, bv

PMR_BITS = 8  # ICC_PMR_EL1.Priority is bits 7:0; the rest is RES0


@dataclass(frozen=True)
class PriorityFacts:
    """A kernel build's priority-masking facts (kernel/info.py reads them from the build and the tree)."""

    configured: bool = False  # CONFIG_ARM64_PSEUDO_NMI is set: the kernel may mask interrupts with PMR
    capability: int | None = None  # the capability that turns it on (ARM64_HAS_{GIC,IRQ}_PRIO_MASKING)
    irq_on: int | None = None  # GIC_PRIO_IRQON: the PMR value of "interrupts enabled"
    irq_off: tuple[int, ...] = ()  # GIC_PRIO_IRQOFF (6.1 and before: chosen at boot from two values)
    psr_i_set: int | None = None  # GIC_PRIO_PSR_I_SET: or-ed into PMR while PSTATE.I is set as well
    irq_priority: int | None = None  # normal interrupts' priority in the PMR view
    boot_pmr: int | None = None  # DEFAULT_PMR_VALUE: what PMR holds when the kernel does not mask with it

    def json(self) -> dict[str, object]:
        return {"configured": self.configured, "capability": self.capability, "irq_on": self.irq_on,
                "irq_off": list(self.irq_off), "psr_i_set": self.psr_i_set, "irq_priority": self.irq_priority,
                "boot_pmr": self.boot_pmr}

    @classmethod
    def from_json(cls, data: dict | None) -> PriorityFacts:
        data = data or {}
        return cls(bool(data.get("configured", False)), data.get("capability"), data.get("irq_on"),
                   tuple(data.get("irq_off", ())), data.get("psr_i_set"), data.get("irq_priority"),
                   data.get("boot_pmr"))

    @property
    def known(self) -> bool:
        """The build gave the values (a kernel build, not a bundled subject)."""
        return self.irq_priority is not None


class PriorityMasking:
    """One slot's view of priority masking: whether the kernel masks with PMR (a capability's free boolean,
    false where the build cannot), PMR's value, and which interrupts can be taken."""

    def __init__(self, facts: PriorityFacts, capability: z3.BoolRef | None) -> None:
        self.facts = facts
        # in use only where the build has the code and the capability is on (the alternatives say which)
        self.in_use: z3.BoolRef = capability if facts.configured and capability is not None else z3.BoolVal(False)

    @classmethod
    def none(cls) -> PriorityMasking:
        """No priority masking: a subject without a GIC, where PSTATE.I alone masks interrupts."""
        return cls(PriorityFacts(), None)

    def initial_pmr(self, entry: z3.BitVecRef) -> z3.BitVecRef | None:
        """PMR at the vector (`entry`: the interrupted context's 8-bit value), or None for a fresh unknown:
        the boot value where the kernel does not mask with PMR, the context's where it does."""
        if self.facts.boot_pmr is None:
            return None
        boot = bv(self.facts.boot_pmr, PMR_BITS)
        value = boot if z3.is_false(self.in_use) else z3.If(self.in_use, entry, boot)
        return z3.simplify(z3.ZeroExt(64 - PMR_BITS, value))

    def assumption(self) -> str | None:
        """The printed assumption initial_pmr rests on (None: nothing assumed)."""
        if self.facts.boot_pmr is None:
            return None
        return (f"pmr-at-boot: where the kernel does not mask interrupts with the GIC priority mask, ICC_PMR_EL1 "
                f"holds DEFAULT_PMR_VALUE {self.facts.boot_pmr:#x}, which the GIC driver wrote at boot "
                "(drivers/irqchip/irq-gic-v3.c, gic_cpu_sys_reg_init); nothing else writes it")

    @staticmethod
    def pmr(state: State) -> z3.BitVecRef:
        return z3.simplify(z3.Extract(PMR_BITS - 1, 0, state.read_sysreg(ICC_PMR_EL1)))

    def irqs_enabled(self, state: State) -> z3.BoolRef:
        """A normal interrupt can be taken: PSTATE.I clear and PMR above the normal interrupts' priority
        (PMR alone where the build gives no priority: a subject without a GIC masks with PSTATE.I only)."""
        i_clear = z3.Extract(1, 1, state.daif) == 0
        if self.facts.irq_priority is None:
            return i_clear
        return z3.simplify(z3.And(i_clear, z3.UGT(self.pmr(state), bv(self.facts.irq_priority, PMR_BITS))))

    def masked_by_pmr_only(self, state: State) -> z3.BoolRef:
        """PSTATE.I is clear but PMR masks normal interrupts: only a pseudo-NMI can be taken."""
        if self.facts.irq_priority is None:
            return z3.BoolVal(False)
        return z3.simplify(z3.And(self.in_use, z3.Extract(1, 1, state.daif) == 0,
                                  z3.ULE(self.pmr(state), bv(self.facts.irq_priority, PMR_BITS))))

    def split(self, state: State, cond: z3.BoolRef) -> list[tuple[z3.BoolRef, bool]]:
        """`cond` split by whether only a pseudo-NMI can be taken here (True) or more (False); one part where
        priority masking cannot be in play."""
        pnmi_only = self.masked_by_pmr_only(state)
        if z3.is_false(pnmi_only):
            return [(cond, False)]
        return [(z3.And(cond, pnmi_only), True), (z3.And(cond, z3.Not(pnmi_only)), False)]

    def irqs_masked_value(self, fresh: z3.BitVecRef) -> z3.BitVecRef | None:
        """A PMR value that masks normal interrupts the way local_irq_disable() does (GIC_PRIO_IRQOFF; where the
        build chose among several at boot, any of them, picked by the bits of `fresh`)."""
        if not self.facts.irq_off:
            return None
        value: z3.BitVecRef = bv(self.facts.irq_off[0], 64)
        for index, other in enumerate(self.facts.irq_off[1:]):
            value = z3.If(z3.Extract(index, index, fresh) == 1, bv(other, 64), value)
        return value


def masking_for(facts: PriorityFacts, caps: dict[int, z3.BoolRef]) -> PriorityMasking:
    """The view for one slot, with the capability's boolean shared with the slot's other uses of it."""
    cap = None
    if facts.capability is not None:
        cap = caps.setdefault(facts.capability, names.capability(facts.capability))
    return PriorityMasking(facts, cap)
