"""verifier.canon: every alias rule, checked against GNU as and capstone.

For each (alias, base) pair gas must produce the same word (so the pair really is one encoding), and the
parsed source of both spellings and capstone's decode of the word must canonicalise to one Insn. Pairs of
different encodings with the same meaning, and pairs that must stay apart, are checked the same way.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.frontend.decode import decode_word
from verifier.frontend.expr import Lin, NotConstant
from verifier.frontend.operands import OperandScope, Pending, lower_operands, resolve_pending
from verifier.frontend.syntax import parse_operands
from verifier.ir.canon import canonical, same
from verifier.ir.program import Addr, Imm, Insn, Loc, Mem, Operand, Reg, Reloc, Shifted, SymRef
from verifier.objfront.assemblers import assemble

AS = "aarch64-linux-gnu-as"
ARCH = "\t.arch armv9.3-a+profile+lse\n"

pytestmark = pytest.mark.skipif(shutil.which(AS) is None, reason=f"{AS} not installed")

# (alias, base form): one encoding, two spellings.
SAME_ENCODING = [
    ("cmp x0, #1", "subs xzr, x0, #1"),
    ("cmp w1, w2, uxth", "subs wzr, w1, w2, uxth"),
    ("cmp x0, #-1", "adds xzr, x0, #1"),
    ("cmp w0, #0xf00000", "subs wzr, w0, #0xf00, lsl #12"),
    ("cmn x0, #1", "adds xzr, x0, #1"),
    ("tst w0, #0x200000", "ands wzr, w0, #0x200000"),
    ("tst x0, x1, lsl #2", "ands xzr, x0, x1, lsl #2"),
    ("neg x0, x1", "sub x0, xzr, x1"),
    ("negs w0, w1, lsl #3", "subs w0, wzr, w1, lsl #3"),
    ("ngc x0, x1", "sbc x0, xzr, x1"),
    ("mvn w3, w3", "orn w3, wzr, w3"),
    ("mov x0, x1", "orr x0, xzr, x1"),
    ("mov w0, w1", "orr w0, wzr, w1"),
    ("mov x0, sp", "add x0, sp, #0"),
    ("mov sp, x0", "add sp, x0, #0"),
    ("mov w0, wsp", "add w0, wsp, #0"),
    ("mov x0, #0x10000", "movz x0, #1, lsl #16"),
    ("mov x0, #-1", "movn x0, #0"),
    ("mov w0, #-1", "movn w0, #0"),
    ("mov w0, #0xffff0000", "movz w0, #0xffff, lsl #16"),
    ("mov x0, #0x5555555555555555", "orr x0, xzr, #0x5555555555555555"),
    ("and w0, w0, #-16", "and w0, w0, #0xfffffff0"),
    ("bic x0, x0, #0xf", "and x0, x0, #0xfffffffffffffff0"),
    ("lsl x0, x1, #3", "ubfm x0, x1, #61, #60"),
    ("lsl w0, w1, #3", "ubfm w0, w1, #29, #28"),
    ("lsr w1, w1, #4", "ubfm w1, w1, #4, #31"),
    ("asr x0, x1, #3", "sbfm x0, x1, #3, #63"),
    ("ubfx w1, w1, #16, #6", "ubfm w1, w1, #16, #21"),
    ("sbfx x0, x1, #0, #56", "sbfm x0, x1, #0, #55"),
    ("ubfiz x0, x1, #3, #4", "ubfm x0, x1, #61, #3"),
    ("sbfiz x0, x1, #3, #4", "sbfm x0, x1, #61, #3"),
    ("bfi x0, x1, #3, #4", "bfm x0, x1, #61, #3"),
    ("bfxil x0, x1, #3, #4", "bfm x0, x1, #3, #6"),
    ("bfc x0, #3, #4", "bfm x0, xzr, #61, #3"),
    ("uxtb w0, w1", "ubfm w0, w1, #0, #7"),
    ("uxth w0, w1", "ubfm w0, w1, #0, #15"),
    ("sxtb x0, w1", "sbfm x0, x1, #0, #7"),
    ("sxth w0, w1", "sbfm w0, w1, #0, #15"),
    ("sxtw x0, w1", "sbfm x0, x1, #0, #31"),
    ("lsl x1, x1, x3", "lslv x1, x1, x3"),
    ("lsr w1, w1, w3", "lsrv w1, w1, w3"),
    ("asr x3, x4, x3", "asrv x3, x4, x3"),
    ("ror x0, x1, x2", "rorv x0, x1, x2"),
    ("ror x0, x1, #3", "extr x0, x1, x1, #3"),
    ("cset x0, eq", "csinc x0, xzr, xzr, ne"),
    ("cset w0, cs", "csinc w0, wzr, wzr, lo"),
    ("csetm x0, hi", "csinv x0, xzr, xzr, ls"),
    ("cinc x0, x1, lt", "csinc x0, x1, x1, ge"),
    ("cinv w0, w1, mi", "csinv w0, w1, w1, pl"),
    ("cneg x0, x1, vs", "csneg x0, x1, x1, vc"),
    ("csel x0, x1, x2, cc", "csel x0, x1, x2, lo"),
    ("ccmp x2, x4, #0, cs", "ccmp x2, x4, #0, hs"),
    ("mul x0, x1, x2", "madd x0, x1, x2, xzr"),
    ("mneg x0, x1, x2", "msub x0, x1, x2, xzr"),
    ("smull x0, w1, w2", "smaddl x0, w1, w2, xzr"),
    ("umull x0, w1, w2", "umaddl x0, w1, w2, xzr"),
    ("nop", "hint #0"),
    ("yield", "hint #1"),
    ("wfe", "hint #2"),
    ("wfi", "hint #3"),
    ("sev", "hint #4"),
    ("sevl", "hint #5"),
    ("dgh", "hint #6"),
    ("xpaclri", "hint #7"),
    ("pacia1716", "hint #8"),
    ("autib1716", "hint #14"),
    ("esb", "hint #16"),
    ("psb csync", "hint #17"),
    ("tsb csync", "hint #18"),
    ("csdb", "hint #20"),
    ("clearbhb", "hint #22"),
    ("paciaz", "hint #24"),
    ("paciasp", "hint #25"),
    ("pacibz", "hint #26"),
    ("pacibsp", "hint #27"),
    ("autiaz", "hint #28"),
    ("autiasp", "hint #29"),
    ("autibz", "hint #30"),
    ("autibsp", "hint #31"),
    ("bti", "hint #32"),
    ("bti c", "hint #34"),
    ("bti j", "hint #36"),
    ("bti jc", "hint #38"),
    ("ret", "ret x30"),
    ("isb sy", "isb"),
    ("dsb #11", "dsb ish"),
    ("ssbb", "dsb #0"),
    ("pssbb", "dsb #4"),
    ("stclr x0, [x2]", "ldclr x0, xzr, [x2]"),
    ("stset x22, [x23]", "ldset x22, xzr, [x23]"),
    ("staddlb w0, [x2]", "ldaddlb w0, wzr, [x2]"),
    ("ldr x0, [x2, #-72]", "ldur x0, [x2, #-72]"),
    ("strb w0, [x1, #-1]", "sturb w0, [x1, #-1]"),
    ("prfm pldl1keep, [x1, #1]", "prfum pldl1keep, [x1, #1]"),
    ("add x0, x1, #0x4000", "add x0, x1, #4, lsl #12"),
    ("add x0, x1, #-8", "sub x0, x1, #8"),
    ("subs x0, x1, #-8", "adds x0, x1, #8"),
    ("add x0, x1, x2, lsl #0", "add x0, x1, x2"),
    ("ldr x0, [x1, #0]", "ldr x0, [x1]"),
    ("ldp x0, x1, [sp, #0]", "ldp x0, x1, [sp]"),
    ("add x0, sp, x1, uxtx #2", "add x0, sp, x1, lsl #2"),
    ("add w0, wsp, w1, uxtw", "add w0, wsp, w1"),
    ("add x0, x1, x2, sxtx", "add x0, x1, x2, sxtx #0"),
    ("ldr x0, [x1, x2, lsl #0]", "ldr x0, [x1, x2]"),
    ("beq .+8", "b.eq .+8"),
    ("b.cs .+8", "b.hs .+8"),
    ("bcc .-4", "b.lo .-4"),
    ("tbz x0, #3, .+8", "tbz w0, #3, .+8"),
    ("tbnz x1, #40, .+8", "tbnz x1, #0x28, .+8"),
    ("cbz w0, .+0x40", "cbz w0, .+64"),
]

# Different encodings, same meaning.
SAME_MEANING = [
    ("movn x29, #0, lsl #32", "mov x29, #-1"),
    ("movz x0, #0, lsl #32", "mov x0, #0"),
    ("ldrb w0, [x1, x2, lsl #0]", "ldrb w0, [x1, x2]"),
    ("ldur x0, [x1, #8]", "ldr x0, [x1, #8]"),
    ("ldrb w0, [x1, w2, uxtw]", "ldrb w0, [x1, w2, uxtw #0]"),
    ("ldr x0, [x1, x2, sxtx]", "ldr x0, [x1, x2]"),
]

# Must not compare equal.
DIFFERENT = [
    ("cset x0, eq", "cset x0, ne"),
    ("cset x0, hs", "cset x0, hi"),
    ("lsl x0, x1, #3", "lsl x0, x1, #4"),
    ("lsl x0, x1, #3", "lsr x0, x1, #3"),
    ("lsl w0, w1, #3", "lsl x0, x1, #3"),
    ("add x0, x1, #8", "sub x0, x1, #8"),
    ("adds x0, x1, #8", "add x0, x1, #8"),
    ("mov x0, #1", "mov x0, #2"),
    ("mov w0, #-1", "mov x0, #-1"),
    ("cmp x0, #1", "cmn x0, #1"),
    ("hint #25", "hint #29"),
    ("bti c", "bti j"),
    ("ldr x0, [x1, #8]", "ldr x0, [x1, #16]"),
    ("ldr x0, [x1, #8]", "ldr x0, [x1, #8]!"),
    ("ldr x0, [x1], #8", "ldr x0, [x1, #8]!"),
    ("ldp x0, x1, [sp], #16", "ldp x0, x1, [sp, #16]"),
    ("ldrb w0, [x1, w2, uxtw]", "ldrb w0, [x1, w2, sxtw]"),
    ("ldr x0, [x1, x2, lsl #3]", "ldr x0, [x1, x2]"),
    ("sxtb x0, w1", "uxtb w0, w1"),
    ("sxtb w0, w1", "sxtb x0, w1"),
    ("movk x0, #1, lsl #16", "movk x0, #1, lsl #32"),
    ("tbz w0, #3, .+8", "tbnz w0, #3, .+8"),
    ("b.hs .+8", "b.hi .+8"),
    ("add x0, sp, w1, uxtw", "add x0, sp, x1"),
    ("mov x0, sp", "mov x0, xzr"),
    ("isb", "dsb sy"),
    ("stclr x0, [x2]", "stset x0, [x2]"),
    ("ret", "ret x1"),
    ("bic x0, x0, #0xf", "and x0, x0, #0xf"),
    ("ror x0, x1, #3", "ror x0, x1, #4"),
]


class _SourceScope(OperandScope):
    """Numbers and `.` only: enough to parse the test lines the way the assembler side would."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def symbol(self, name: str) -> Lin:
        raise NotConstant(name)

    def here(self) -> Lin:
        return Lin(self.offset)

    def local_ref(self, text: str) -> Lin:
        raise NotConstant(text)


def _in_text(pending: Pending) -> Operand:
    return pending.with_target(Loc(".text", pending.value.value()))


def parse_source(line: str, offset: int) -> Insn:
    mnemonic, _, rest = line.strip().partition(" ")
    mnemonic = mnemonic.lower()
    trees = parse_operands(rest) if rest.strip() else []
    operands = lower_operands(mnemonic, trees, _SourceScope(offset))
    return resolve_pending(Insn(mnemonic, operands), _in_text)


def assemble_words(tmp_path: Path, lines: list[str]) -> list[int]:

    src = tmp_path / "t.s"
    src.write_text(ARCH + "".join(f"\t{line}\n" for line in lines))
    obj = assemble(src, tmp_path / "t.o")
    with open(obj, "rb") as fh:
        data = ELFFile(fh).get_section_by_name(".text").data()
    assert len(data) == 4 * len(lines), "every test line must be one instruction"
    return [int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data), 4)]


@pytest.fixture(scope="module")
def words(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], int]:
    """Every test line assembled once, at the offset its pair puts it: (line, offset) -> word."""
    lines = [line for table in (SAME_ENCODING, SAME_MEANING, DIFFERENT) for pair in table for line in pair]
    out = assemble_words(tmp_path_factory.mktemp("canon"), lines)
    return {(line, 4 * i): word for i, (line, word) in enumerate(zip(lines, out, strict=True))}


Decoded = tuple[int, Insn, Insn]  # word, parsed source, capstone's decode


def _pair(
    words: dict[tuple[str, int], int], table_index: int, i: int, pair: tuple[str, str]
) -> list[Decoded]:
    base = 8 * (sum(len(t) for t in (SAME_ENCODING, SAME_MEANING, DIFFERENT)[:table_index]) + i)
    out = []
    for line, offset in ((pair[0], base), (pair[1], base + 4)):
        decoded = decode_word(words[(line, offset)], ".text", offset)
        assert decoded is not None, f"capstone cannot decode {line}"
        out.append((words[(line, offset)], parse_source(line, offset), decoded))
    return out


def _moved_back(insn: Insn, shift: int) -> Insn:
    """The second line of a pair sits `shift` bytes later: its `.+8` target, as if it did not."""
    ops = tuple(
        Addr(Loc(op.target.section, op.target.offset - shift))
        if isinstance(op, Addr) and isinstance(op.target, Loc)
        else op
        for op in insn.operands
    )
    return Insn(insn.mnemonic, ops)


@pytest.mark.parametrize(("i", "pair"), list(enumerate(SAME_ENCODING)), ids=[p[0] for p in SAME_ENCODING])
def test_alias_and_base_form_are_one_encoding_and_one_canonical_insn(words, i, pair) -> None:
    (w1, src1, dec1), (w2, src2, dec2) = _pair(words, 0, i, pair)
    # Relative branch targets are the same distance; shift the second one back to compare.
    src2, dec2 = _moved_back(src2, 4), _moved_back(dec2, 4)
    assert w1 == w2, f"gas encodes '{pair[0]}' and '{pair[1]}' differently: the pair is wrong"
    expected = canonical(src2)
    assert canonical(src1) == expected
    assert canonical(dec1) == expected, f"capstone's '{dec1}'"
    assert canonical(dec2) == expected
    for insn in (src1, src2, dec1, dec2):
        assert canonical(canonical(insn)) == canonical(insn)


@pytest.mark.parametrize(("i", "pair"), list(enumerate(SAME_MEANING)), ids=[p[0] for p in SAME_MEANING])
def test_different_encodings_of_one_meaning_canonicalise_together(words, i, pair) -> None:
    (w1, src1, dec1), (w2, src2, dec2) = _pair(words, 1, i, pair)
    assert w1 != w2
    assert canonical(src1) == canonical(src2) == canonical(dec1) == canonical(dec2)


@pytest.mark.parametrize(("i", "pair"), list(enumerate(DIFFERENT)), ids=[f"{a} | {b}" for a, b in DIFFERENT])
def test_different_instructions_stay_different(words, i, pair) -> None:
    (w1, src1, dec1), (w2, src2, dec2) = _pair(words, 2, i, pair)
    src2, dec2 = _moved_back(src2, 4), _moved_back(dec2, 4)
    assert w1 != w2
    assert canonical(src1) != canonical(src2)
    assert canonical(dec1) != canonical(dec2)
    assert canonical(src1) == canonical(dec1)  # and each still matches its own decode


# ---------------------------------------------------------------------------- forms only one side makes


@pytest.mark.parametrize(
    ("kind", "mnemonic", "value"),
    [
        ("abs_g1_s", "movz", 0x12345678),
        ("abs_g1_s", "movz", -0x20000),  # gas makes this a movn
        ("abs_g2_s", "movz", -0x123456789),
        ("abs_g3", "movz", 0xFFFF000000000000),
        ("abs_g0_nc", "movk", 0x12345678),
        ("abs_g1_nc", "movk", 0x12345678),
        ("abs_g2_nc", "movk", 0x1234567890),
    ],
)
def test_move_wide_with_constant_relocation_is_computed_like_gas(
    tmp_path: Path, kind: str, mnemonic: str, value: int
) -> None:
    # mov_q in the kernel: `movz x0, :abs_g1_s:VAL` with a constant VAL; the assembler side may hand it
    # over as a relocation against the constant.
    (word,) = assemble_words(tmp_path, [f"{mnemonic} x0, #:{kind}:{value}"])
    decoded = decode_word(word, ".text", 0)
    assert decoded is not None
    lark = Insn(mnemonic, (Reg("x0"), Reloc(kind, Loc("*ABS*", value))))
    assert canonical(lark) == canonical(decoded)
    assert canonical(lark).mnemonic == ("movk" if mnemonic == "movk" else "mov")


def test_move_wide_with_symbol_keeps_the_relocation() -> None:
    insn = Insn("movz", (Reg("x0"), Reloc("abs_g1_s", SymRef("sym"))))
    assert canonical(insn) == insn
    # capstone prints a hw=0 movz as `mov`; the decoder restores movz when a relocation applies
    assert canonical(Insn("movk", (Reg("x0"), Shifted(Imm(5), "lsl", 32)))) == Insn(
        "movk", (Reg("x0"), Shifted(Imm(5), "lsl", 32))
    )


def test_constant_expressions_lower_to_int_immediates() -> None:
    # `.` is known here, so the immediate is an int at once (a label laid out later would be a Pending)
    operands = lower_operands("add", parse_operands("x0, x1, #(. - 0x3c)"), _SourceScope(0x40))
    assert operands == (Reg("x0"), Reg("x1"), Imm(4))


def test_zero_offset_kept_on_writeback() -> None:
    pre = Insn("ldr", (Reg("x0"), Mem(Reg("x1"), Imm(0), "pre")))
    assert canonical(pre).operands[1] == Mem(Reg("x1"), Imm(0), "pre")
    assert not same(pre, Insn("ldr", (Reg("x0"), Mem(Reg("x1")))))


@settings(max_examples=3000, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_canonical_is_a_fixed_point_on_any_decodable_word(word: int) -> None:
    insn = decode_word(word, ".text", 0x100)
    if insn is not None:
        once = canonical(insn)
        assert canonical(once) == once


def test_canonical_forms_reassemble_to_an_equivalent_word(tmp_path: Path) -> None:
    """Random decodable words: gas must read each canonical form back as the same word, or as a word
    whose decode canonicalises the same (different encodings of one meaning, or ignored field bits)."""
    rng = random.Random(20240601)
    samples: list[tuple[int, Insn]] = []
    while len(samples) < 1500:
        word = rng.getrandbits(32)
        insn = decode_word(word, ".text", 0)
        if insn is None:
            continue
        form = canonical(insn)
        if any(isinstance(op, Addr | Reloc) for op in form.operands):
            continue  # pc-relative: covered by the pairs above
        samples.append((word, form))
    src = tmp_path / "rt.s"
    # every extension a random SIMD or SVE word can need, now that vector registers decode
    arch = "\t.arch armv9.3-a+profile+lse+memtag+sve2+sme+crc+sha3+sm4+sve2-aes+sve2-sha3+sve2-sm4+sve2-bitperm\n"
    src.write_text(arch + "".join(f"\t{f}\n" for _, f in samples))

    with open(assemble(src, tmp_path / "rt.o"), "rb") as fh:
        data = ELFFile(fh).get_section_by_name(".text").data()
    assert len(data) == 4 * len(samples)
    for n, (word, form) in enumerate(samples):
        again = int.from_bytes(data[4 * n : 4 * n + 4], "little")
        if again != word:
            redecoded = decode_word(again, ".text", 0)
            assert redecoded is not None and canonical(redecoded) == form, (hex(word), str(form), hex(again))
