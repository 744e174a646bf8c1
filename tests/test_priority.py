"""Priority masking (pseudo-NMI) in the spec layer: which interrupts PMR and PSTATE.I let in, the initial PMR,
contracts' PMR on return, and the policy fields irqs_on, pmr and prio_masking."""

from __future__ import annotations

import z3

from verifier.semantics.state import ICC_PMR_EL1, bv, concrete_state
from verifier.spec.contract_calls import ContractCalls
from verifier.spec.contracts import Contract, Contracts
from verifier.spec.priority import PriorityFacts, PriorityMasking

# 7.3's values (GICV3_PRIO_*), and 5.10's (GIC_PRIO_IRQOFF chosen at boot from 0x60 and 0xa0)
V73 = PriorityFacts(True, 36, 0xE0, (0xC0,), 0x10, 0xC0, 0xF0)
V510 = PriorityFacts(True, 24, 0xE0, (0x60, 0xA0), 0x10, 0xA0, 0xF0)


def holds(formula: z3.BoolRef) -> bool:
    solver = z3.Solver()
    solver.add(z3.Not(formula))
    return solver.check() == z3.unsat


def state_with(pmr: int, daif: int):
    state = concrete_state(daif=daif)
    state.write_sysreg(ICC_PMR_EL1, bv(pmr))
    return state


def test_normal_interrupts_need_pstate_i_clear_and_pmr_above_their_priority() -> None:
    for facts in (V73, V510):
        view = PriorityMasking(facts, z3.BoolVal(True))
        on = [(facts.irq_on, 0b0000), (facts.irq_on | facts.psr_i_set, 0b0000)]
        off = [(facts.irq_on, 0b0010)] + [(value, 0b0000) for value in facts.irq_off]
        for pmr, daif in on:
            assert holds(view.irqs_enabled(state_with(pmr, daif))), (facts, hex(pmr), daif)
        for pmr, daif in off:
            assert holds(z3.Not(view.irqs_enabled(state_with(pmr, daif)))), (facts, hex(pmr), daif)
        # GIC_PRIO_IRQOFF with PSTATE.I clear: only a pseudo-NMI gets in
        assert all(holds(view.masked_by_pmr_only(state_with(value, 0))) for value in facts.irq_off)
        assert holds(z3.Not(view.masked_by_pmr_only(state_with(facts.irq_on, 0))))


def test_without_pseudo_nmi_pmr_masks_nothing_and_holds_its_boot_value() -> None:
    off = PriorityMasking(PriorityFacts(False, 36, 0xE0, (0xC0,), 0x10, 0xC0, 0xF0), z3.Bool("cap36"))
    assert z3.is_false(off.in_use)  # the capability is never tested: the code is compiled out
    assert off.initial_pmr(z3.BitVec("pmr", 8)).eq(bv(0xF0))
    assert holds(z3.Not(off.masked_by_pmr_only(state_with(0xC0, 0))))
    on = PriorityMasking(V73, z3.Bool("cap36"))
    initial = on.initial_pmr(z3.BitVec("pmr", 8))
    assert holds(z3.Implies(z3.Not(z3.Bool("cap36")), initial == 0xF0))  # boot value while the cap is off
    assert not holds(z3.Implies(z3.Bool("cap36"), initial == 0xF0))  # the context's own value while it is on
    assert on.assumption() is not None and "0xf0" in on.assumption()
    # a subject without a GIC (no facts): PSTATE.I alone decides, and nothing is assumed of PMR
    none = PriorityMasking.none()
    assert none.initial_pmr(z3.BitVec("pmr", 8)) is None and none.assumption() is None
    assert holds(none.irqs_enabled(concrete_state(daif=0)))


def _calls(facts: PriorityFacts, cap: z3.BoolRef) -> ContractCalls:
    layout = {"TSK_TI_FLAGS": 0, "S_PC": 256, "S_PSTATE": 264, "S_FRAME_SIZE": 336}
    contracts = Contracts("c.toml", "linux", layout, {}, {}, Contract("default", is_default=True))
    return ContractCalls(contracts, PriorityMasking(facts, cap))


def _fresh():
    count = [0]

    def fresh(what: str, bits: int) -> z3.BitVecRef:
        count[0] += 1
        return z3.BitVec(f"{what}#{count[0]}", bits)

    return fresh


def test_an_interrupt_handler_may_return_with_pseudo_nmis_unmasked() -> None:
    cap = z3.Bool("cap36")
    contract = Contract("*handle_arch_irq", pmr="unmask-pnmis", unmasks="all", writes=())
    state = state_with(0xF0, 0b0011)  # I and F masked, as el1_interrupt calls it
    _calls(V73, cap).apply(contract, "handle_arch_irq", state, _fresh())
    i_clear = z3.Extract(1, 1, state.daif) == 0
    pmr = z3.Extract(7, 0, state.read_sysreg(ICC_PMR_EL1))
    assert holds(z3.Implies(z3.Not(cap), z3.Not(i_clear)))  # without priority masking: DAIF as at the call
    assert holds(z3.Implies(i_clear, pmr == 0xC0))  # PSTATE.I cleared only with PMR masking normal interrupts
    solver = z3.Solver()
    solver.add(cap, i_clear)
    assert solver.check() == z3.sat  # and with priority masking that return is possible


def test_local_irq_disable_last_masks_with_pmr_where_priority_masking_is_on() -> None:
    cap = z3.Bool("cap24")
    contract = Contract("exit_to_user_mode_loop", daif="0bxx11", pmr="irqs-off", unmasks="all", writes=())
    state = state_with(0xE0, 0b0000)
    _calls(V510, cap).apply(contract, "exit_to_user_mode_loop", state, _fresh())
    i_clear = z3.Extract(1, 1, state.daif) == 0
    pmr = z3.Extract(7, 0, state.read_sysreg(ICC_PMR_EL1))
    assert holds(z3.Implies(z3.Not(cap), z3.Not(i_clear)))
    assert holds(z3.Implies(i_clear, z3.Or(pmr == 0x60, pmr == 0xA0)))  # either of the boot-chosen values
    view = PriorityMasking(V510, cap)
    assert holds(z3.Not(view.irqs_enabled(state)))  # either way, normal interrupts are masked on return
