"""The current task's stack pointer at an exception from EL0: SP_EL1 at the vector minus THREAD_SIZE, so that
task_pt_regs(current) is the frame kernel_entry builds (a printed assumption), in every epoch of the task's
memory; nothing of the kind for a slot taken from EL1 or a build that does not give TSK_STACK and THREAD_SIZE."""

from __future__ import annotations

import z3

from verifier.engine.image import Image
from verifier.proof.config import BUNDLED_CONTRACTS
from verifier.semantics import names
from verifier.semantics.state import Region, split_address
from verifier.spec.contracts import BuildFacts, load_contracts
from verifier.spec.slots import SlotStart, build, slot_by_name

TSK_STACK, THREAD_SIZE, S_PSTATE, PT_REGS_SIZE = 32, 0x4000, 264, 272


def _start(slot: str, layout: dict[str, int]) -> SlotStart:
    contracts = load_contracts(BUNDLED_CONTRACTS)
    contracts.layout.update(layout)
    return build(slot_by_name(slot), Image.link([]), contracts, [], 0)


def test_from_el0_current_stack_is_the_vector_sp_minus_thread_size() -> None:
    start = _start("el0_64_sync", {"TSK_STACK": TSK_STACK, "THREAD_SIZE": THREAD_SIZE})
    memory, task = start.state.memory, Region((names.CURRENT_TASK,))
    stack = memory.load(task, TSK_STACK, 8)
    assert z3.simplify(stack - (names.initial_sp() - THREAD_SIZE)).eq(z3.BitVecVal(0, 64))
    # task_pt_regs(current)->pstate is the frame's: SP_EL1 at the vector - PT_REGS_SIZE + S_PSTATE
    regs_pstate = split_address(stack + THREAD_SIZE - PT_REGS_SIZE + S_PSTATE)
    assert regs_pstate == split_address(names.initial_sp() - PT_REGS_SIZE + S_PSTATE)
    memory.havoc_class("task")  # a call that may write the task does not move its stack
    assert memory.load(task, TSK_STACK, 8).eq(stack)
    assert not memory.load(task, TSK_STACK + 8, 8).eq(stack)
    assert any(line.startswith("current-stack:") for line in start.printed)


def test_no_relation_from_el1_or_without_the_builds_values() -> None:
    for slot, layout in (("el1h_sync", {"TSK_STACK": TSK_STACK, "THREAD_SIZE": THREAD_SIZE}),
                         ("el0_64_sync", {"TSK_STACK": TSK_STACK})):
        start = _start(slot, layout)
        stack = start.state.memory.load(Region((names.CURRENT_TASK,)), TSK_STACK, 8)
        assert stack.eq(names.memory_word(Region((names.CURRENT_TASK,)), TSK_STACK))
        assert not any(line.startswith("current-stack:") for line in start.printed)


def test_build_facts_carry_the_layout_through_json() -> None:
    facts = BuildFacts(layout={"TSK_STACK": TSK_STACK, "THREAD_SIZE": THREAD_SIZE})
    assert BuildFacts.from_json(facts.json()).layout == facts.layout
