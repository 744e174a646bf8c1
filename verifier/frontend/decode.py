"""One AArch64 word to a raw `Insn`, through capstone.

Capstone's text goes through the same operand grammar and lowering as the source (verifier.frontend), so
both front ends share one operand model; what differs (aliases, hex vs decimal) is left to verifier.canon.
PC-relative operands come back from capstone as absolute addresses; we disassemble at the word's section
offset, so they become `Loc(section, address)` -- unless a relocation says where the word really points.
"""

from __future__ import annotations

from functools import cache

import capstone
from typing_extensions import override

from verifier.frontend.expr import Lin, NotConstant
from verifier.frontend.operands import (
    OperandError,
    OperandScope,
    Pending,
    Unsupported,
    address_position,
    lower_operands,
    resolve_pending,
)
from verifier.frontend.syntax import ParseError, parse_operands
from verifier.ir.program import Addr, Imm, Insn, Loc, Mem, Operand, Reg, Reloc, Target

_MASK64 = (1 << 64) - 1


class DecodeError(Exception):
    """Capstone decoded the word but we cannot represent it (or the relocation on it)."""


class _NumbersOnly(OperandScope):
    """Capstone prints numbers only; a name in an expression position means we misread its text."""

    @override
    def symbol(self, name: str) -> Lin:
        raise NotConstant(f"symbol '{name}' in disassembly")

    @override
    def here(self) -> Lin:
        raise NotConstant("'.' in disassembly")

    @override
    def local_ref(self, text: str) -> Lin:
        raise NotConstant(f"local label '{text}' in disassembly")


@cache
def _capstone() -> capstone.Cs:
    return capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM | capstone.CS_MODE_LITTLE_ENDIAN)


# Relocation types (R_AARCH64_ stripped) by what they do to the instruction.
_BRANCH_RELOCS = {"CALL26", "JUMP26", "CONDBR19", "TSTBR14", "ADR_PREL_LO21", "LD_PREL_LO19"}
_PAGE_RELOCS = {"ADR_PREL_PG_HI21": "page", "ADR_PREL_PG_HI21_NC": "page", "ADR_GOT_PAGE": "got"}
_LO12_RELOCS = {
    "ADD_ABS_LO12_NC": "lo12",
    "LDST8_ABS_LO12_NC": "lo12",
    "LDST16_ABS_LO12_NC": "lo12",
    "LDST32_ABS_LO12_NC": "lo12",
    "LDST64_ABS_LO12_NC": "lo12",
    "LDST128_ABS_LO12_NC": "lo12",
    "LD64_GOT_LO12_NC": "got_lo12",
}
_MOVW_RELOCS = {
    "MOVW_UABS_G0": "abs_g0",
    "MOVW_UABS_G0_NC": "abs_g0_nc",
    "MOVW_UABS_G1": "abs_g1",
    "MOVW_UABS_G1_NC": "abs_g1_nc",
    "MOVW_UABS_G2": "abs_g2",
    "MOVW_UABS_G2_NC": "abs_g2_nc",
    "MOVW_UABS_G3": "abs_g3",
    "MOVW_SABS_G0": "abs_g0_s",
    "MOVW_SABS_G1": "abs_g1_s",
    "MOVW_SABS_G2": "abs_g2_s",
}
RELOC_KINDS = frozenset(_BRANCH_RELOCS | set(_PAGE_RELOCS) | set(_LO12_RELOCS) | set(_MOVW_RELOCS))

# Literal loads: capstone prints the pool address as `#0x...`, which the grammar reads as an immediate.
_LITERAL = {"ldr", "ldrsw", "prfm"}


def reloc_name(kind: str) -> str:
    """`R_AARCH64_CALL26` and `CALL26` both name the same relocation."""
    kind = kind.upper()
    return kind[len("R_AARCH64_") :] if kind.startswith("R_AARCH64_") else kind


def _signed(value: int) -> int:
    value &= _MASK64
    return value - (1 << 64) if value >> 63 else value


def _movewide_mnemonic(word: int) -> str:
    # Capstone prints `mov` for movz/movn; with a relocation the opcode itself is what the source wrote.
    return {0: "movn", 2: "movz", 3: "movk"}.get((word >> 29) & 3, "mov")


def _apply_reloc(insn: Insn, word: int, kind: str, target: Target) -> Insn:
    name = reloc_name(kind)
    ops = list(insn.operands)
    if name in _BRANCH_RELOCS:
        for i, op in enumerate(ops):
            if isinstance(op, Addr):
                ops[i] = Addr(target)
                return Insn(insn.mnemonic, tuple(ops))
        raise DecodeError(f"{name} relocation on '{insn}', which has no address operand")
    if name in _PAGE_RELOCS:
        if insn.mnemonic != "adrp" or len(ops) != 2:
            raise DecodeError(f"{name} relocation on '{insn}'")
        return Insn("adrp", (ops[0], Reloc(_PAGE_RELOCS[name], target)))
    if name in _LO12_RELOCS:
        reloc = Reloc(_LO12_RELOCS[name], target)
        for i, op in enumerate(ops):
            if isinstance(op, Mem):
                ops[i] = Mem(op.base, reloc, op.mode)
                return Insn(insn.mnemonic, tuple(ops))
        if insn.mnemonic in ("add", "adds", "mov") and ops:
            if insn.mnemonic == "mov":  # `add x0, x1, #0` to/from sp prints as mov
                return Insn("add", (ops[0], ops[1], reloc))
            ops[-1] = reloc
            return Insn(insn.mnemonic, tuple(ops))
        raise DecodeError(f"{name} relocation on '{insn}'")
    if name in _MOVW_RELOCS:
        mnemonic = _movewide_mnemonic(word)
        if not ops or mnemonic == "mov":
            raise DecodeError(f"{name} relocation on '{insn}', which is no move-wide instruction")
        return Insn(mnemonic, (ops[0], Reloc(_MOVW_RELOCS[name], target)))
    raise DecodeError(f"unsupported relocation {kind} on '{insn}'")


def _resolve(pending: Pending, section: str) -> Operand:
    """Capstone prints an address as the absolute number we disassembled at: a place in `section`."""
    if not pending.value.is_const():
        raise DecodeError("non-constant address in disassembly")
    return pending.with_target(Loc(section, _signed(pending.value.const)))


def decode_text(mnemonic: str, op_str: str) -> tuple[Operand, ...]:
    """Capstone's operand text through the shared grammar; errors become DecodeError."""
    try:
        trees = parse_operands(op_str) if op_str.strip() else []
        return lower_operands(mnemonic, trees, _NumbersOnly())
    except (ParseError, OperandError, Unsupported, NotConstant) as err:
        raise DecodeError(f"cannot read capstone's '{mnemonic} {op_str}': {err}") from None


def decode_word_checked(
    word: int, section: str, offset: int, reloc: tuple[str, Target] | None = None
) -> Insn | None:
    """Like decode_word, but raises DecodeError (with the reason) when capstone's output or the
    relocation cannot be represented; None still means capstone does not know the word."""
    found = list(_capstone().disasm(word.to_bytes(4, "little"), offset, 1))
    if not found:
        return _unprivileged_same_register(word, section, offset)
    cs = found[0]
    mnemonic = cs.mnemonic.lower()
    operands = decode_text(mnemonic, cs.op_str)
    if (
        mnemonic in _LITERAL
        and len(operands) >= 2
        and isinstance(operands[1], Imm)
        and address_position(mnemonic) is None
    ):
        operands = (operands[0], Addr(Loc(section, _signed(operands[1].value))), *operands[2:])
    insn = resolve_pending(Insn(mnemonic, operands), lambda pending: _resolve(pending, section))
    if reloc is not None:
        insn = _apply_reloc(insn, word, *reloc)
    return insn


# LDTR/STTR family (unprivileged, unscaled 9-bit offset, no writeback): size:111:0:00:x:0:imm9:10:Rn:Rt.
_UNPRIV_MASK, _UNPRIV_BITS = 0x3F200C00, 0x38000800


def _unprivileged_same_register(word: int, section: str, offset: int) -> Insn | None:
    """Capstone 5 rejects `ldtr w3, [x3]` (Rt == Rn), as if it wrote back; these forms do not write
    back, gas accepts them and the kernel's uaccess helpers use them. Decode with another Rt, put it back."""
    rt, rn = word & 31, (word >> 5) & 31
    if (word & _UNPRIV_MASK) != _UNPRIV_BITS or rt != rn or rt == 31:
        return None
    other = decode_word_checked((word & ~31) | ((rt + 1) % 31), section, offset)
    if other is None or not other.operands or not isinstance(other.operands[0], Reg):
        return None
    prefix = other.operands[0].name[0]
    return Insn(other.mnemonic, (Reg(f"{prefix}{rt}"), *other.operands[1:]))


def decode_word(word: int, section: str, offset: int, reloc: tuple[str, Target] | None = None) -> Insn | None:
    """The raw Insn for one little-endian instruction word at `section`+`offset`, or None when capstone
    cannot decode it or its operands are not representable (the caller records an undecoded item).
    `reloc` is (relocation type, target), e.g. ("R_AARCH64_CALL26", SymRef("schedule")); it replaces the
    operand the relocation patches."""
    try:
        return decode_word_checked(word, section, offset, reloc)
    except DecodeError:
        return None
