"""The 16 vector slots: where each starts, the symbolic interrupted context it is taken from, and the
assumptions (read from proofs/) that constrain that context."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import z3

from verifier.engine.image import Image
from verifier.ir import sysregs
from verifier.ir.program import DataValue, SymRef
from verifier.semantics import names
from verifier.semantics.state import BV, ELR_EL1, ESR_EL1, ICC_PMR_EL1, MDSCR, SPSR_EL1, Memory, Region, State, bv
from verifier.spec.constraints import ConstraintError, Context, compile_constraint
from verifier.spec.contracts import Contracts
from verifier.spec.priority import PMR_BITS, PriorityMasking, masking_for
from verifier.util.errors import UserError
from verifier.util.files import read_toml
from verifier.util.paths import shown

SOURCES = ("el1t", "el1h", "el0_64", "el0_32")
KINDS = ("sync", "irq", "fiq", "serror")


@dataclass(frozen=True)
class Slot:
    index: int

    @property
    def source(self) -> str:
        return SOURCES[self.index // 4]

    @property
    def kind(self) -> str:
        return KINDS[self.index % 4]

    @property
    def name(self) -> str:
        return f"{self.source}_{self.kind}"

    @property
    def offset(self) -> int:
        return 0x80 * self.index

    @property
    def from_el0(self) -> bool:
        return self.source.startswith("el0")

    @property
    def synchronous(self) -> bool:
        return self.kind == "sync"


ALL_SLOTS = tuple(Slot(i) for i in range(16))


def slot_by_name(name: str) -> Slot:
    for slot in ALL_SLOTS:
        if slot.name == name:
            return slot
    raise UserError(f"unknown vector slot '{name}' (known: {' '.join(s.name for s in ALL_SLOTS)})")


@dataclass
class Initial:
    """The named initial values of one slot (what assumptions and counterexamples talk about)."""

    spsr: BV
    mdscr: BV
    esr: BV
    elr: BV
    task: BV
    flags: BV
    from_el0: bool
    caps: dict[int, z3.BoolRef]  # capability number -> its free boolean, filled in as sites are met


def classify_region(current_task: BV) -> Callable[[Region], str]:
    """The memory class a region belongs to, for contracts' `writes`."""
    task = str(current_task)

    def classify(region: Region) -> str:
        if not region.bases:
            return "image"
        if names.is_stack(region):
            return "stack"
        if names.is_regs(region):
            return "regs"
        if task in region.bases:
            return "task"
        if names.is_percpu(region):
            return "percpu"
        return "global"

    return classify


@dataclass(frozen=True)
class Assumption:
    id: str
    text: str
    constraint: str
    source: str  # file:line


def load_assumptions(path: str | Path) -> list[Assumption]:
    path = Path(path)
    data, raw = read_toml(path, "assumptions")
    out = []
    for entry in data.get("assumption", []):
        for key in ("id", "text", "constraint"):
            if key not in entry:
                raise UserError(f"an [[assumption]] needs '{key}'", str(path))
        line = _line_of(raw, entry["id"])
        out.append(Assumption(entry["id"], entry["text"], entry["constraint"], f"{shown(path)}:{line}"))
    return out


def _line_of(raw: str, needle: str) -> int:
    for number, line in enumerate(raw.splitlines(), start=1):
        if re.search(rf"id\s*=\s*\"{re.escape(needle)}\"", line):
            return number
    return 1


# Architecture facts (Arm ARM, exception entry), not assumptions: SPSR_EL1.M says where we came from.
_MODE = {"el1t": 0b00100, "el1h": 0b00101, "el0_64": 0b00000}


def architecture_facts(slot: Slot, spsr: z3.BitVecRef) -> list[z3.BoolRef]:
    mode = z3.Extract(4, 0, spsr)
    if slot.source in _MODE:
        return [mode == _MODE[slot.source]]
    return [z3.Extract(4, 4, spsr) == 1, z3.Extract(3, 0, spsr) == 0]  # AArch32 User mode


@dataclass
class SlotStart:
    """One slot at its vector: the initial values, the machine state, the address of its first instruction,
    the constraints on the context (architecture + assumptions) and their printable form."""

    initial: Initial
    state: State
    pc: int
    facts: list[z3.BoolRef]
    printed: list[str]
    context: Context  # the initial values by the names constraints and policy rules use
    priority: PriorityMasking  # whether the kernel masks interrupts with ICC_PMR_EL1, and what that masks


def build(slot: Slot, image: Image, contracts: Contracts, assumptions: list[Assumption], vectors: int) -> SlotStart:
    spsr, mdscr, esr, elr = (z3.BitVec(n, 64) for n in ("spsr0", "mdscr0", "esr0", "elr0"))
    sp0, task = names.initial_sp(), names.current_task()
    flags_offset = contracts.layout["TSK_TI_FLAGS"]
    flags = names.memory_word(Region((names.CURRENT_TASK,)), flags_offset & ~7)
    if flags_offset & 7:
        raise UserError("TSK_TI_FLAGS must be 8-byte aligned", contracts.path)
    initial = Initial(spsr, mdscr, esr, elr, task, flags, slot.from_el0, {})
    percpu_task = contracts.percpu_current
    printed: list[str] = []
    stack = task_stack(slot, contracts)
    if stack is not None:
        printed.append(stack[1])

    def initial_word(region: Region, word: int, epoch: int) -> z3.BitVecRef:
        if not region.bases:
            contents = image_word(image, word)
            if contents is not None:
                return contents
        if (epoch == 0 and slot.from_el0 and percpu_task and word == 0
                and region == names.percpu_region(percpu_task)):
            return task  # this CPU's entry task is the current task
        if stack is not None and word == stack[0] and region.bases == (names.CURRENT_TASK,):
            return sp0 - contracts.layout["THREAD_SIZE"]  # in every epoch: no call moves a running task's stack
        return names.memory_word(region, word, epoch)

    memory = Memory(initial=initial_word)
    memory.classify = classify_region(initial.task)

    def fresh_sysreg(encoding: int) -> z3.BitVecRef:
        return names.entry_value(sysregs.name_of(encoding))

    state = State(
        x=[names.entry_value(f"x{i}") for i in range(31)],
        sp_el1=sp0,
        sp_el0=names.entry_value("sp_el0") if slot.from_el0 else task,
        nzcv=names.entry_value("nzcv", 4),
        daif=bv(0xF, 4),  # exception entry masks D, A, I and F
        pstate_ss=bv(0, 1),
        # this CPU's per-CPU offset: in TPIDR_EL1, or with VHE in TPIDR_EL2 (the kernel's alternatives
        # pick the register; whichever is read holds the offset)
        sysregs={SPSR_EL1: spsr, ELR_EL1: elr, ESR_EL1: esr, MDSCR: mdscr,
                 sysregs.known("tpidr_el1"): names.percpu_offset(),
                 sysregs.known("tpidr_el2"): names.percpu_offset()},
        memory=memory,
        fresh_sysreg=fresh_sysreg,
    )
    facts = architecture_facts(slot, spsr)
    priority = masking_for(contracts.build.priority, initial.caps)
    pmr = priority.initial_pmr(names.entry_value("icc_pmr_el1.priority", PMR_BITS))
    if pmr is not None:
        state.sysregs[ICC_PMR_EL1] = pmr
        assumed = priority.assumption()
        assert assumed is not None  # the initial PMR rests on it
        printed.append(assumed)
    context = Context({"spsr": spsr, "mdscr": mdscr, "esr": esr, "elr": elr, "flags": flags}, contracts.tif,
                  z3.BoolVal(slot.from_el0), initial.caps)
    for assumption in assumptions:
        try:
            facts.append(compile_constraint(assumption.constraint, context))
        except ConstraintError as err:
            raise UserError(f"assumption {assumption.id}: {err}", assumption.source) from None
        printed.append(f"{assumption.id}: {assumption.text} [{assumption.constraint}] ({assumption.source})")
    return SlotStart(initial, state, vectors + slot.offset, facts, printed, context, priority)


def task_stack(slot: Slot, contracts: Contracts) -> tuple[int, str] | None:
    """Where the current task's stack pointer (task_struct.stack) is, and the assumption that relates it to
    SP_EL1 at the vector, for a slot taken from EL0 when the build gives TSK_STACK (asm-offsets.h) and
    THREAD_SIZE (<asm/memory.h>) and the current task is known at entry (the contracts' per-CPU entry task).
    A user task runs with SP_EL1 at the top of its kernel stack, where kernel_exit left it (`add sp, sp,
    #PT_REGS_SIZE` past the frame it restored, first built by copy_thread() at task_pt_regs()): so the frame
    kernel_entry builds is task_pt_regs(current), which C code reaches through current->stack."""
    offset, size = contracts.layout.get("TSK_STACK"), contracts.layout.get("THREAD_SIZE")
    if not slot.from_el0 or contracts.percpu_current is None or offset is None or size is None or offset & 7:
        return None
    text = (f"current-stack: from EL0, SP_EL1 at the vector is the top of the current task's kernel stack: "
            f"current->stack (TSK_STACK={offset}) is SP_EL1 - THREAD_SIZE ({size}), so task_pt_regs(current) is "
            "the frame kernel_entry builds; no call changes a running task's stack pointer "
            "(kernel_exit leaves SP_EL1 there on every return to EL0; copy_thread() starts a task so)")
    return offset, text


def image_word(image: Image, address: int) -> z3.BitVecRef | None:
    """The 64-bit word at a concrete address inside lifted read-only data (None: unknown, which it is for
    writable data: its link-time contents are not what it holds at run time)."""
    if image.writable(address):
        return None
    value = image.data_value(address, 8)
    if isinstance(value, DataValue):
        if value.target is None:
            return bv(value.value)
        if value.pcrel:
            return None
        placed = image.placed(address)
        assert placed is not None  # data_value() found the word in it
        target = image.address(value.target, placed.program)
        if target is None:
            assert isinstance(value.target, SymRef)  # only a symbol can be undefined
            return z3.simplify(names.symbol_address(value.target.symbol) + value.target.addend)
        return bv(target)
    raw = image.data_bytes(address, 8)
    if all(b is None for b in raw):
        return None
    known = [b for b in raw if b is not None]
    if len(known) == len(raw):
        return bv(int.from_bytes(bytes(known), "little"))
    # a word only partly inside lifted data (a table's last bytes): known bytes, the rest unknown
    unknown = names.memory_word(Region(()), address)
    parts = [bv(b, 8) if b is not None else z3.Extract(8 * i + 7, 8 * i, unknown) for i, b in enumerate(raw)]
    return z3.simplify(z3.Concat(*reversed(parts)))
