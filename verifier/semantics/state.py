"""Machine state over Z3 bit-vectors: what one instruction reads and writes.

Registers, flags and PSTATE are Z3 terms (constants when the state is concrete). Memory is byte
cells keyed by a *region* (the symbolic base an address is built from: the initial stack pointer,
the current task, a symbol's address, a loaded pointer) and a concrete offset, so that a store to
`[sp, #S_PSTATE]` and a later load of it agree without an SMT array. A byte never written reads as a
fresh constant named after its region and offset (the initial memory), memoised so two reads agree.
Accesses whose address is not `base + constant` are recorded, never silently dropped: a load returns
a fresh value (sound: any value is possible), a store is reported to the engine, which decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias, cast

import z3

from verifier.ir import sysregs

BV: TypeAlias = z3.BitVecRef
GPR_NAMES = [f"x{i}" for i in range(31)]

# PSTATE.{D,A,I,F} as a 4-bit vector, bit 3 = D .. bit 0 = F: the layout of `msr daifset, #imm`.
DAIF_D, DAIF_A, DAIF_I, DAIF_F = 8, 4, 2, 1

MDSCR = sysregs.known("mdscr_el1")
SPSR_EL1 = sysregs.known("spsr_el1")
ELR_EL1 = sysregs.known("elr_el1")
ESR_EL1 = sysregs.known("esr_el1")
SP_EL0 = sysregs.known("sp_el0")
DAIF_REG = sysregs.known("daif")
NZCV_REG = sysregs.known("nzcv")
# The GIC CPU interface's priority mask: Priority is bits 7:0, bits 63:8 are RES0 and read as 0
ICC_PMR_EL1 = sysregs.known("icc_pmr_el1")


def bv(value: int, bits: int = 64) -> BV:
    return z3.BitVecVal(value, bits)


class MemoryError_(Exception):
    """An access the memory model cannot place (the engine reports it)."""


@dataclass(frozen=True)
class Region:
    """The base an address is built from: a sorted tuple of Z3 constant names added together
    (`("sp0",)`, `("&__per_cpu_offset", "tpidr_el1@0")`), or () for absolute addresses."""

    bases: tuple[str, ...]

    def __str__(self) -> str:
        return "+".join(self.bases) or "abs"


def split_address(addr: BV) -> tuple[Region, int] | None:
    """`base1 + base2 + k` -> (Region((base1, base2)), k); None when the address has any other shape
    (a symbolic index, a masked pointer)."""
    addr = z3.simplify(addr)
    bases: list[str] = []
    const = 0

    def walk(term: z3.ExprRef, sign: int) -> bool:
        nonlocal const
        if z3.is_bv_value(term):
            const += sign * cast(z3.BitVecNumRef, term).as_long()  # z3's is_bv_value() does not narrow
            return True
        if z3.is_app_of(term, z3.Z3_OP_BADD):
            return all(walk(child, sign) for child in term.children())
        if z3.is_const(term) and sign == 1:
            bases.append(str(term))
            return True
        return False

    if not walk(addr, 1):
        return None
    return Region(tuple(sorted(bases))), const & ((1 << 64) - 1)


Cell = tuple[BV, int]  # (a value, which byte of it)
Epoch = int | tuple  # int, or (guard, Epoch, Epoch)


def _key(epoch: Epoch) -> int | tuple[int]:
    return epoch if isinstance(epoch, int) else (id(epoch),)


class EpochTable:
    """The epochs of one memory and of every copy and merge of it, interned: the merge of two epochs under
    one guard is one node, and the next epoch of a node and a word's value in it are built once. Both sides
    of a merge come from one earlier epoch, so their epochs share sub-epochs; walked as trees, the shared
    parts are repeated, exponentially in the number of merges (a loop whose iterations call functions that
    forget memory, merged at each turn). The values are the same terms either way. The epochs given to it
    are ints or its own nodes (a memory's copies and merges share its table)."""

    def __init__(self) -> None:
        self._nodes: dict[tuple, tuple] = {}  # (guard id, key of first, key of second) -> the node; keeps ids alive
        self._next: dict[int, Epoch] = {}  # id of a node -> the node one call later
        self._words: dict[tuple[Region, int], dict[int | tuple[int], BV]] = {}  # (region, word) -> key -> value

    def merge(self, guard: z3.BoolRef, first: Epoch, second: Epoch) -> Epoch:
        """The epoch of two merged paths, the first taken under `guard`."""
        if first is second or (isinstance(first, int) and first == second):
            return first
        key = (guard.get_id(), _key(first), _key(second))
        node = self._nodes.get(key)
        if node is None:
            node = self._nodes[key] = (guard, first, second)
        return node

    def next(self, epoch: Epoch) -> Epoch:
        """One more call that forgets the memory class, on every path the epoch stands for."""
        if isinstance(epoch, int):
            return epoch + 1
        done = self._next.get(id(epoch))
        if done is None:
            guard, first, second = epoch
            done = self._next[id(epoch)] = self.merge(guard, self.next(first), self.next(second))
        return done

    def value(self, initial: Callable[[Region, int, int], BV], region: Region, word: int, epoch: Epoch) -> BV:
        """The initial 64-bit word at `region + word` in `epoch`: If(guard, ...) over the epochs merged."""
        memo = self._words.setdefault((region, word), {})
        return self._value(initial, region, word, epoch, memo)

    def _value(self, initial: Callable[[Region, int, int], BV], region: Region, word: int, epoch: Epoch,
               memo: dict[int | tuple[int], BV]) -> BV:
        key = _key(epoch)
        value = memo.get(key)
        if value is None:
            if isinstance(epoch, int):
                value = initial(region, word, epoch)
            else:
                guard, first, second = epoch
                a = self._value(initial, region, word, first, memo)
                b = self._value(initial, region, word, second, memo)
                value = a if a.eq(b) else z3.If(guard, a, b)
            memo[key] = value
        return value


@dataclass
class Memory:
    """Byte cells per region. A cell remembers the value it is a byte of (and which byte), so a load of
    the bytes of one stored value gives that value back as it was, not a concatenation of pieces.
    A byte never written is a byte of its aligned 64-bit word's initial value (`initial(region,
    word_offset, epoch)`), whatever the access size, so that two states reading the same untouched
    memory with different widths agree and can be merged."""

    # Written cells: `base` is shared with sibling paths and never modified; `cells` holds this path's
    # own writes on top of it, so that merging two siblings only has to look at what each wrote.
    cells: dict[tuple[Region, int], Cell] = field(default_factory=dict)
    # (region, 8-aligned offset, epoch of the region's class) -> 64-bit value
    initial: Callable[[Region, int, int], BV] | None = None
    # A call that may write a whole class of memory (the current task, per-CPU data) starts a new epoch
    # for it: bytes not written since read as new unknowns. `classify` names a region's class.
    # An epoch is a number (how many such calls this path made) or, after paths that made different
    # numbers of them merged, (guard, epoch of the first, epoch of the second): a byte not written since
    # is then If(guard, its value in one epoch, in the other), named exactly as on each single path.
    epochs: dict[str, Epoch] = field(default_factory=dict)
    classify: Callable[[Region], str] = lambda _region: "all"
    base: dict[tuple[Region, int], Cell] = field(default_factory=dict)
    epoch_table: EpochTable = field(default_factory=EpochTable)  # shared by copies and merges

    def copy(self) -> Memory:
        if self.cells:
            self.base = {**self.base, **self.cells}  # freeze: from now on shared with the copy
            self.cells = {}
        return Memory({}, self.initial, dict(self.epochs), self.classify, self.base, self.epoch_table)

    def written(self) -> dict[tuple[Region, int], Cell]:
        return {**self.base, **self.cells}

    def cell(self, region: Region, offset: int) -> Cell:
        key = (region, offset)
        cell = self.cells.get(key)
        if cell is None:
            cell = self.base.get(key)
        if cell is not None:
            return cell
        assert self.initial is not None
        word = offset & ~7
        epoch = self.epochs.get(self.classify(region), 0)
        return self.epoch_table.value(self.initial, region, word, epoch), offset - word

    def byte(self, region: Region, offset: int) -> BV:
        value, index = self.cell(region, offset)
        return z3.Extract(8 * index + 7, 8 * index, value)

    def load(self, region: Region, offset: int, size: int) -> BV:
        """A little-endian load of `size` bytes."""
        cells = [self.cell(region, offset + i) for i in range(size)]
        first_value, first_index = cells[0]
        if all((v is first_value or v.eq(first_value)) and index == first_index + i
               for i, (v, index) in enumerate(cells)):
            if first_index == 0 and first_value.size() == 8 * size:
                return first_value
            return z3.simplify(z3.Extract(8 * (first_index + size) - 1, 8 * first_index, first_value))
        parts = [z3.Extract(8 * index + 7, 8 * index, v) for v, index in reversed(cells)]
        return z3.simplify(z3.Concat(*parts)) if size > 1 else z3.simplify(parts[0])

    def store(self, region: Region, offset: int, value: BV, size: int) -> None:
        value = z3.simplify(value)
        if value.size() != 8 * size:
            value = z3.simplify(z3.Extract(8 * size - 1, 0, value))
        for i in range(size):
            self.cells[(region, offset + i)] = (value, i)

    def havoc_class(self, cls: str, keep: Callable[[Region, int], bool] = lambda _region, _offset: False) -> None:
        """Forget everything in a class of memory: a new epoch, and its written bytes dropped, except
        those `keep` names (they stay written, so the new epoch does not reach them)."""
        self.epochs[cls] = self.epoch_table.next(self.epochs.get(cls, 0))

        def dropped(key: tuple[Region, int]) -> bool:
            return self.classify(key[0]) == cls and not keep(*key)

        if any(dropped(k) for k in self.base):
            self.base = {k: v for k, v in self.base.items() if not dropped(k)}
        for key in [k for k in self.cells if dropped(k)]:
            del self.cells[key]


@dataclass
class State:
    """The architectural state of one (possibly merged) execution."""

    x: list[BV]  # x0..x30, 64 bits each
    sp_el1: BV
    sp_el0: BV
    nzcv: BV  # 4 bits: N Z C V = bits 3..0
    daif: BV  # 4 bits: D A I F = bits 3..0
    pstate_ss: BV  # 1 bit
    sysregs: dict[int, BV]  # by encoding; one never written reads via `fresh_sysreg`
    memory: Memory
    fresh_sysreg: Callable[[int], BV] | None = None
    el: int = 1
    spsel: int = 1  # SP_EL1 in use at EL1h

    def copy(self) -> State:
        return State(list(self.x), self.sp_el1, self.sp_el0, self.nzcv, self.daif, self.pstate_ss,
                     dict(self.sysregs), self.memory.copy(), self.fresh_sysreg, self.el, self.spsel)

    # ---------------------------------------------------------------------------- registers

    def read_reg(self, name: str) -> BV:
        """x0..x30 (64 bits), w0..w30 (32 bits), sp/wsp, xzr/wzr."""
        name = name.lower()
        if name in ("xzr", "wzr"):
            return bv(0, 64 if name == "xzr" else 32)
        if name in ("sp", "wsp"):
            value = self.sp_el1 if self.spsel else self.sp_el0
            return value if name == "sp" else z3.Extract(31, 0, value)
        index = int(name[1:])
        value = self.x[index]
        return value if name[0] == "x" else z3.simplify(z3.Extract(31, 0, value))

    def write_reg(self, name: str, value: BV) -> None:
        """A w-register write zero-extends; writes to xzr/wzr are dropped."""
        name = name.lower()
        if name in ("xzr", "wzr"):
            return
        if value.size() == 32:
            value = z3.ZeroExt(32, value)
        value = z3.simplify(value)
        if name in ("sp", "wsp"):
            if self.spsel:
                self.sp_el1 = value
            else:
                self.sp_el0 = value
            return
        self.x[int(name[1:])] = value

    # --------------------------------------------------------------------------- sysregs

    def read_sysreg(self, encoding: int) -> BV:
        if encoding == SP_EL0:
            return self.sp_el0
        if encoding == DAIF_REG:
            return z3.simplify(z3.ZeroExt(54, z3.Concat(self.daif, bv(0, 6))))
        if encoding == NZCV_REG:
            return z3.simplify(z3.ZeroExt(32, z3.Concat(self.nzcv, bv(0, 28))))
        if encoding not in self.sysregs:
            assert self.fresh_sysreg is not None
            value = self.fresh_sysreg(encoding)
            if encoding == ICC_PMR_EL1:
                value = z3.simplify(z3.ZeroExt(56, z3.Extract(7, 0, value)))
            self.sysregs[encoding] = value
        return self.sysregs[encoding]

    def write_sysreg(self, encoding: int, value: BV) -> None:
        value = z3.simplify(value)
        if encoding == SP_EL0:
            self.sp_el0 = value
        elif encoding == DAIF_REG:
            self.daif = z3.simplify(z3.Extract(9, 6, value))
        elif encoding == NZCV_REG:
            self.nzcv = z3.simplify(z3.Extract(31, 28, value))
        elif encoding == ICC_PMR_EL1:
            self.sysregs[encoding] = z3.simplify(z3.ZeroExt(56, z3.Extract(7, 0, value)))
        else:
            self.sysregs[encoding] = value


def concrete_state(regs: dict[str, int] | None = None, nzcv: int = 0, daif: int = 0xF) -> State:
    """A fully concrete state (for differential tests and replay): unwritten memory and sysregs read 0."""
    regs = regs or {}
    memory = Memory(initial=lambda _region, _word, _epoch: bv(0))
    return State(
        x=[bv(regs.get(f"x{i}", 0)) for i in range(31)],
        sp_el1=bv(regs.get("sp", 0)),
        sp_el0=bv(regs.get("sp_el0", 0)),
        nzcv=bv(nzcv, 4),
        daif=bv(daif, 4),
        pstate_ss=bv(0, 1),
        sysregs={},
        memory=memory,
        fresh_sysreg=lambda _enc: bv(0),
    )
