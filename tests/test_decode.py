"""verifier.decode: one word to a raw Insn, pc-relative targets, and what a relocation does to it."""

from __future__ import annotations

import pytest

from verifier.frontend.decode import DecodeError, decode_word, decode_word_checked
from verifier.ir.canon import canonical
from verifier.ir.program import Addr, Imm, Insn, Loc, Mem, Name, Reg, Reloc, Shifted, SymRef, SysReg
from verifier.ir.sysregs import encode

S = SymRef("schedule")

# Words from GNU as 2.40 (the comments are its source).
B_0 = 0x14000000  # b .       (imm 0)
BL_PLUS_0x180 = 0x9400005F  # bl .+0x17c from offset 4
B_BACK_4 = 0x17FFFFFF  # b .-4
ADRP_X0 = 0x90000000  # adrp x0, <page 0>
ADD_X0_X0_0 = 0x91000000  # add x0, x0, #0
MOV_SP_X0 = 0x9100001F  # add sp, x0, #0 (capstone: mov sp, x0)
LDR_X0_X1 = 0xF9400020  # ldr x0, [x1]
STRB_WZR_X1 = 0x3900003F  # strb wzr, [x1]
MOVZ_X0_0 = 0xD2800000  # movz x0, #0 (capstone: mov x0, #0)
MOVK_X0_0_LSL16 = 0xF2A00000  # movk x0, #0, lsl #16
LDR_LITERAL = 0x58000B1E  # ldr x30, .+0x160
TBZ_W0_4 = 0x3627FB20  # tbz w0, #4, .-0x9c
CBZ_W0 = 0x34000200  # cbz w0, .+0x40


def test_branch_targets_become_section_locations() -> None:
    assert decode_word(B_0, ".text", 0x40) == Insn("b", (Addr(Loc(".text", 0x40)),))
    assert decode_word(BL_PLUS_0x180, ".entry.text", 4) == Insn("bl", (Addr(Loc(".entry.text", 0x180)),))
    assert decode_word(CBZ_W0, ".text", 0x10) == Insn("cbz", (Reg("w0"), Addr(Loc(".text", 0x50))))
    assert decode_word(TBZ_W0_4, ".text", 0x9C) == Insn("tbz", (Reg("w0"), Imm(4), Addr(Loc(".text", 0))))


def test_backward_branch_past_the_section_start_stays_negative() -> None:
    # capstone wraps to 0xffff...fffc; a section offset of -4 is what the word says (a relocation fixes it)
    assert decode_word(B_BACK_4, ".text", 0) == Insn("b", (Addr(Loc(".text", -4)),))


def test_literal_load_is_an_address() -> None:
    assert decode_word(LDR_LITERAL, ".text", 0x20) == Insn("ldr", (Reg("x30"), Addr(Loc(".text", 0x180))))


def test_adrp_without_relocation_is_a_page_of_this_section() -> None:
    assert decode_word(ADRP_X0, ".text", 0x1234) == Insn("adrp", (Reg("x0"), Reloc("page", Loc(".text", 0x1000))))


@pytest.mark.parametrize(
    ("word", "reloc", "expected"),
    [
        (BL_PLUS_0x180, "R_AARCH64_CALL26", Insn("bl", (Addr(S),))),
        (B_0, "JUMP26", Insn("b", (Addr(S),))),
        (CBZ_W0, "R_AARCH64_CONDBR19", Insn("cbz", (Reg("w0"), Addr(S)))),
        (TBZ_W0_4, "R_AARCH64_TSTBR14", Insn("tbz", (Reg("w0"), Imm(4), Addr(S)))),
        (LDR_LITERAL, "R_AARCH64_LD_PREL_LO19", Insn("ldr", (Reg("x30"), Addr(S)))),
        (ADRP_X0, "R_AARCH64_ADR_PREL_PG_HI21", Insn("adrp", (Reg("x0"), Reloc("page", S)))),
        (ADD_X0_X0_0, "R_AARCH64_ADD_ABS_LO12_NC", Insn("add", (Reg("x0"), Reg("x0"), Reloc("lo12", S)))),
        (MOV_SP_X0, "R_AARCH64_ADD_ABS_LO12_NC", Insn("add", (Reg("sp"), Reg("x0"), Reloc("lo12", S)))),
        (LDR_X0_X1, "R_AARCH64_LDST64_ABS_LO12_NC", Insn("ldr", (Reg("x0"), Mem(Reg("x1"), Reloc("lo12", S))))),
        (STRB_WZR_X1, "R_AARCH64_LDST8_ABS_LO12_NC", Insn("strb", (Reg("wzr"), Mem(Reg("x1"), Reloc("lo12", S))))),
        (MOVZ_X0_0, "R_AARCH64_MOVW_UABS_G0", Insn("movz", (Reg("x0"), Reloc("abs_g0", S)))),
        (MOVZ_X0_0, "R_AARCH64_MOVW_SABS_G1", Insn("movz", (Reg("x0"), Reloc("abs_g1_s", S)))),
        (MOVK_X0_0_LSL16, "R_AARCH64_MOVW_UABS_G1_NC", Insn("movk", (Reg("x0"), Reloc("abs_g1_nc", S)))),
    ],
)  # fmt: skip
def test_relocation_replaces_the_patched_operand(word: int, reloc: str, expected: Insn) -> None:
    assert decode_word(word, ".text", 4, (reloc, S)) == expected


def test_relocation_target_can_be_a_location() -> None:
    insn = decode_word(BL_PLUS_0x180, ".text", 4, ("R_AARCH64_CALL26", Loc(".entry.text", 0x18D0)))
    assert insn == Insn("bl", (Addr(Loc(".entry.text", 0x18D0)),))


def test_relocation_that_does_not_fit_the_instruction_is_an_error() -> None:
    with pytest.raises(DecodeError, match="no address operand"):
        decode_word_checked(LDR_X0_X1, ".text", 0, ("R_AARCH64_CALL26", SymRef("f")))
    with pytest.raises(DecodeError, match="unsupported relocation"):
        decode_word_checked(ADD_X0_X0_0, ".text", 0, ("R_AARCH64_TLSLE_ADD_TPREL_HI12", SymRef("f")))
    # decode_word hides the reason: the caller records an undecoded word
    assert decode_word(LDR_X0_X1, ".text", 0, ("R_AARCH64_CALL26", SymRef("f"))) is None


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        (0xD53B4220, Insn("mrs", (Reg("x0"), SysReg(encode("daif") or -1)))),
        (0xD5034FDF, Insn("msr", (Name("daifset"), Imm(15)))),
        (0xD503245F, Insn("bti", (Name("c"),))),
        (0xD503233F, Insn("paciasp", ())),
        (0xD5033FDF, Insn("isb", ())),
        (0xD5033B9F, Insn("dsb", (Name("ish"),))),
        (0xFA443040, Insn("ccmp", (Reg("x2"), Reg("x4"), Imm(0), Name("lo")))),
        (0x8B216BE0, Insn("add", (Reg("x0"), Reg("sp"), Shifted(Reg("x1"), "lsl", 2)))),
        (0x38624820, Insn("ldrb", (Reg("w0"), Mem(Reg("x1"), Shifted(Reg("w2"), "uxtw", None))))),
        (0xA9BF07E0, Insn("stp", (Reg("x0"), Reg("x1"), Mem(Reg("sp"), Imm(-16), "pre")))),
        (0xD508871F, Insn("tlbi", (Name("vmalle1"),))),
        (0xF8801020, Insn("prfum", (Name("pldl1keep"), Mem(Reg("x1"), Imm(1))))),
        (0xD53CF200, Insn("mrs", (Reg("x0"), SysReg(encode("s3_4_c15_c2_0") or -1)))),
    ],
)
def test_operand_forms(word: int, expected: Insn) -> None:
    assert decode_word(word, ".text", 0) == expected


@pytest.mark.parametrize(
    ("word", "printed", "base"),
    [
        (0xD503427F, "smstop sm", Insn("msr", (Name("svcrsm"), Imm(0)))),  # the kernel's sme_smstop_sm()
        (0xD503437F, "smstart sm", Insn("msr", (Name("svcrsm"), Imm(1)))),
        (0xD503447F, "smstop za", Insn("msr", (Name("svcrza"), Imm(0)))),
        (0xD503457F, "smstart za", Insn("msr", (Name("svcrza"), Imm(1)))),
        (0xD503467F, "smstop", Insn("msr", (Name("svcrsmza"), Imm(0)))),
        (0xD503477F, "smstart", Insn("msr", (Name("svcrsmza"), Imm(1)))),
        (0xD53B4240, "mrs x0, svcr", Insn("mrs", (Reg("x0"), SysReg(encode("svcr") or -1)))),
        (0x04BF5020, "rdvl x0, #1", Insn("rdvl", (Reg("x0"), Imm(1)))),
    ],
)
def test_sme_mode_changes_are_msr_to_the_svcr_fields(word: int, printed: str, base: Insn) -> None:
    insn = decode_word(word, ".text", 0)
    assert insn is not None and str(insn) == printed
    assert canonical(insn) == base


@pytest.mark.parametrize(
    ("word", "base"),
    [
        (0x4EA11C20, Insn("orr", (Reg("v0.16b"), Reg("v1.16b"), Reg("v1.16b")))),  # capstone: mov v0.16b, v1.16b
        (0x4EA21C20, Insn("orr", (Reg("v0.16b"), Reg("v1.16b"), Reg("v2.16b")))),
        (0x2518E403, Insn("pfalse", (Reg("p3.b"),))),
        (0x25289000, Insn("wrffr", (Reg("p0.b"),))),
        (0x4EA28420, Insn("add", (Reg("v0.4s"), Reg("v1.4s"), Reg("v2.4s")))),  # decoded; no semantics
    ],
)
def test_vector_and_predicate_registers_are_registers(word: int, base: Insn) -> None:
    insn = decode_word(word, ".text", 0)
    assert insn is not None and canonical(insn) == base


def test_post_index_is_one_memory_operand_after_canonical() -> None:
    # the shared lowering gives `[sp], #16` as two operands; canon folds them into the IR's post-index Mem
    insn = decode_word(0xA8C107E0, ".text", 0)
    assert insn is not None
    assert canonical(insn) == Insn("ldp", (Reg("x0"), Reg("x1"), Mem(Reg("sp"), Imm(16), "post")))
    assert canonical(decode_word(0xF8408420, ".text", 0)) == Insn("ldr", (Reg("x0"), Mem(Reg("x1"), Imm(8), "post")))


def test_unprivileged_load_with_rt_equal_rn() -> None:
    # capstone 5 refuses `ldtr w3, [x3]`; the kernel's get_user makes exactly that
    assert decode_word(0xB8400863, ".text", 0) == Insn("ldtr", (Reg("w3"), Mem(Reg("x3"))))
    assert decode_word(0x78400821, ".text", 0) == Insn("ldtrh", (Reg("w1"), Mem(Reg("x1"))))
    assert decode_word(0xF8400863, ".text", 0) == Insn("ldtr", (Reg("x3"), Mem(Reg("x3"))))
    # but a real writeback with Rt == Rn stays undecodable
    assert decode_word(0xF8408463, ".text", 0) is None


@pytest.mark.parametrize(
    ("word", "why"),
    [(0xFFFFFFFF, "unallocated"), (0x4C407000, "a SIMD register list"), (0x04C00020, "an SVE predicate /m"),
     (0x4E0C1C00, "a SIMD element index"), (0x1E6E1000, "floating-point immediate")],
)
def test_undecodable_words(word: int, why: str) -> None:
    assert decode_word(word, ".text", 0) is None, why


def test_zero_word_is_udf() -> None:
    # gas's `.org`/explicit-fill padding in code is zeros under `$x`: it decodes, as udf
    assert decode_word(0, ".text", 0) == Insn("udf", (Imm(0),))
