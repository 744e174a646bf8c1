"""Alternative sites from the `.altinstructions` records the kernel's `alternative_*` macros emit.

Each record is `struct alt_instr` (arch/arm64/include/asm/alternative.h): s32 orig_offset and s32
alt_offset (both relative to the field), u16 cpufeature, u8 orig_len, u8 alt_len. With ARM64_CB_BIT
(bit 15) set in cpufeature, alt_offset points at a callback that patches the original code at boot.
"""

from __future__ import annotations

from verifier.ir.program import AlternativeSite, DataValue, Loc, Program, SrcLoc, SymRef

RECORD_SIZE = 12
CB_BIT = 1 << 15
SECTION = ".altinstructions"


def _fields(program: Program) -> tuple[dict[int, DataValue], dict[int, SrcLoc]]:
    fields: dict[int, DataValue] = {}
    where: dict[int, SrcLoc] = {}
    section = program.sections.get(SECTION)
    if section is None:
        return fields, where
    for item in section.items:
        if item.kind != "data":
            continue
        if item.data:
            offset = item.offset
            for value in item.data:
                fields[offset] = value
                if item.src:
                    where[offset] = item.src
                offset += value.size
        elif item.raw:
            for i, byte in enumerate(item.raw):
                fields[item.offset + i] = DataValue(1, byte)
    return fields, where


def _int(fields: dict[int, DataValue], offset: int, size: int) -> int | None:
    value = fields.get(offset)
    if value is not None and value.size == size and value.target is None:
        return value.value & ((1 << (8 * size)) - 1)
    if all(fields.get(offset + i) is not None and fields[offset + i].size == 1 for i in range(size)):
        return sum((fields[offset + i].value & 0xFF) << (8 * i) for i in range(size))
    return None


def _symbol_at(program: Program, loc: Loc) -> str | None:
    for symbol in program.symbols.values():
        if symbol.loc == loc:
            return symbol.name
    return None


def _is_callback_record(repl: object, repl_len: int) -> bool:
    """Before ARM64_CB_BIT (up to 5.x) a callback record has cpufeature ARM64_CB_PATCH (= ARM64_NCAPS, which
    differs per version) and no replacement: its alt_offset points at a function, not into the replacement
    code. Recognised by that shape, so no capability count is needed."""
    target = getattr(repl, "target", None)
    if repl_len != 0:
        return False
    if isinstance(target, SymRef):
        return True
    return isinstance(target, Loc) and not target.section.startswith(".altinstr_replacement")


def decode_alternatives(program: Program) -> list[AlternativeSite]:
    fields, where = _fields(program)
    if not fields:
        return []
    end = max(fields) + 1
    sites = []
    for base in range(0, end, RECORD_SIZE):
        orig, repl = fields.get(base), fields.get(base + 4)
        cap = _int(fields, base + 8, 2)
        orig_len, repl_len = _int(fields, base + 10, 1), _int(fields, base + 11, 1)
        if orig is None or repl is None or cap is None or orig_len is None or repl_len is None:
            continue
        if not (orig.pcrel and isinstance(orig.target, Loc)):
            continue
        callback = None
        repl_loc = repl.target if repl.pcrel and isinstance(repl.target, Loc) else None
        if cap & CB_BIT or _is_callback_record(repl, repl_len):
            if isinstance(repl.target, SymRef):
                callback = repl.target.symbol
            elif repl_loc is not None:
                callback = _symbol_at(program, repl_loc) or str(repl_loc)
            repl_loc = None
        sites.append(
            AlternativeSite(orig.target, orig_len, repl_loc, repl_len, cap & ~CB_BIT, callback, where.get(base))
        )
    return sites
