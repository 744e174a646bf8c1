"""The names of the symbolic values, declared in one place.

Z3 constants are matched by name across stages: the memory model reads a region's bases from the names
of the constants an address is built from, a counterexample file stores a model as name -> value, the
explorer recognises a pointer loaded from a symbol by the name of the memory word it read. Every such
name is made, and recognised, here.
"""

from __future__ import annotations

import re

import z3

from verifier.semantics.state import BV, Region

INITIAL_SP = "sp0"  # SP_EL1 at the vector: the exception's stack, where kernel_entry builds pt_regs
CURRENT_TASK = "task"  # the current task_struct (SP_EL0 at an EL1 exception; read from per-CPU data at EL0)
PERCPU_OFFSET = "percpu_offset"  # this CPU's per-CPU offset (TPIDR_EL1, or TPIDR_EL2 with VHE)
REGS = "pt_regs"  # the exception's pt_regs frame, as a pointer a function checked from its entry is passed

_CAPABILITY = re.compile(r"cap(\d+)")


def initial_sp() -> BV:
    return z3.BitVec(INITIAL_SP, 64)


def current_task() -> BV:
    return z3.BitVec(CURRENT_TASK, 64)


def regs_pointer() -> BV:
    return z3.BitVec(REGS, 64)


def is_regs(region: Region) -> bool:
    return region.bases == (REGS,)


def percpu_offset() -> BV:
    return z3.BitVec(PERCPU_OFFSET, 64)


def symbol_base(symbol: str) -> str:
    """The name of an external symbol's address, a region base."""
    return f"&{symbol}"


def symbol_address(symbol: str) -> BV:
    return z3.BitVec(symbol_base(symbol), 64)


def percpu_region(symbol: str) -> Region:
    """Where this CPU's copy of the per-CPU variable `symbol` lives: &symbol + the per-CPU offset."""
    return Region(tuple(sorted((symbol_base(symbol), PERCPU_OFFSET))))


def memory_word(region: Region | str, word: int, epoch: int = 0) -> BV:
    """The initial content of the aligned 64-bit word at `region + word`; epoch > 0 after a contract
    havocked the memory class it belongs to."""
    suffix = f"@{epoch}" if epoch else ""
    return z3.BitVec(f"mem[{region}+{word:#x}]{suffix}", 64)


def parse_memory_word(name: str) -> tuple[tuple[str, ...], int, int] | None:
    """`mem[task+0x10]@1` -> (("task",), 0x10, 1): the bases of a memory word's region, its offset and its
    epoch; None for any other name. A base may itself be a loaded word (`mem[mem[task+0x10]+0x8]`)."""
    if not name.startswith("mem["):
        return None
    depth, close = 0, -1
    for i, char in enumerate(name):
        depth += (char == "[") - (char == "]")
        if depth == 0 and char == "]":
            close = i
            break
    inner, rest = name[4:close], name[close + 1:]
    if close < 0 or (rest and not rest[1:].isdigit()) or (rest and rest[0] != "@"):
        return None
    parts, depth, start = [], 0, 0
    for i, char in enumerate(inner):
        depth += (char == "[") - (char == "]")
        if char == "+" and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    parts.append(inner[start:])
    try:
        word = int(parts[-1], 16)
    except ValueError:
        return None
    bases = tuple(part for part in parts[:-1] if part != "abs")
    return bases, word, int(rest[1:]) if rest else 0


def sve_length_field() -> BV:
    """ZCR_EL1.LEN as the CPU has it: SVE's vector length is (LEN + 1) * 128 bits (LEN 0..15)."""
    return z3.BitVec("zcr_el1.len", 4)


def vector_length(streaming: bool) -> BV:
    """The vector length in bytes rdvl reads: SVE's, or SME's streaming one, each only one the architecture
    allows (a counterexample must be possible on some CPU): SVE's a multiple of 128 bits from 128 to 2048, SME's
    a power of two in that range."""
    if streaming:
        exponent = z3.BitVec("smcr_el1.svl_log2_quadwords", 3)  # 0..4: 128 << n bits
        return z3.If(z3.UGT(exponent, 4), z3.BitVecVal(256, 64), z3.BitVecVal(16, 64) << z3.ZeroExt(61, exponent))
    return (z3.ZeroExt(60, sve_length_field()) + 1) * 16


def entry_value(register: str, bits: int = 64) -> BV:
    """A register's (or system register's) value at the vector."""
    return z3.BitVec(f"{register}@entry", bits)


def capability(number: int) -> z3.BoolRef:
    """The free boolean that decides every alternative of CPU capability `number`."""
    return z3.Bool(f"cap{number}")


def capability_number(name: str) -> int | None:
    """`cap12` -> 12; None for any other name."""
    match = _CAPABILITY.fullmatch(name)
    return int(match.group(1)) if match else None


def loaded_from_symbol(value: BV) -> str | None:
    """For a value loaded from memory (a function pointer): the symbol whose memory it was read from. A value
    that merged paths made an if-then-else of loads counts when every branch loads from the same symbol."""
    symbols = {_loaded_from(leaf) for leaf in _ite_leaves(z3.simplify(value))}
    return symbols.pop() if len(symbols) == 1 else None


def _ite_leaves(value: z3.ExprRef) -> list[z3.ExprRef]:
    if z3.is_app_of(value, z3.Z3_OP_ITE):
        return _ite_leaves(value.arg(1)) + _ite_leaves(value.arg(2))
    return [value]


def _loaded_from(value: z3.ExprRef) -> str | None:
    name = str(value)
    prefix = "mem[" + symbol_base("")
    if not name.startswith(prefix):
        return None
    return name[len(prefix):].split("+")[0].split("]")[0]


def is_stack(region: Region) -> bool:
    return INITIAL_SP in region.bases


def is_percpu(region: Region) -> bool:
    return any(name.startswith(("tpidr", PERCPU_OFFSET)) for name in region.bases)
