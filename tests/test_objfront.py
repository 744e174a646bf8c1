"""verifier.objfront: gas objects to the IR (mapping symbols, padding, relocations, symbols,
alternatives), the assembler's error path, and the crosscheck comparison on hand-made programs."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from verifier.cli.main import main
from verifier.frontend.assembler import lift_file
from verifier.ir.canon import canonical
from verifier.ir.program import (
    Addr,
    AlternativeSite,
    DataValue,
    Imm,
    Insn,
    Item,
    Loc,
    Mem,
    Program,
    Reg,
    Reloc,
    Section,
    SymRef,
)
from verifier.objfront.assemblers import Assembler, assemble, kind_of
from verifier.objfront.crosscheck import compare_programs, crosscheck_file
from verifier.objfront.lift import lift_object
from verifier.util.errors import UserError

AS = "aarch64-linux-gnu-as"
pytestmark = pytest.mark.skipif(shutil.which(AS) is None, reason=f"{AS} not installed")
NOP = Insn("nop", ())


def lift(tmp_path: Path, source: str) -> Program:
    src = tmp_path / "t.s"
    src.write_text(textwrap.dedent(source))
    return lift_object(assemble(src, tmp_path / "t.o"))


def layout(prog: Program, section: str = ".text") -> list[tuple[int, int, str, str]]:
    """(offset, size, kind, insn text or raw hex) per item."""
    out = []
    for it in prog.sections[section].items:
        what = str(it.insn) if it.insn else (it.raw.hex() if it.raw else "")
        out.append((it.offset, it.size, it.kind, what))
    return out


# ----------------------------------------------------------------------------------------- assemble


def test_missing_assembler_is_a_user_error(tmp_path: Path) -> None:
    src = tmp_path / "t.s"
    src.write_text("nop\n")
    with pytest.raises(UserError, match="not found"):
        assemble(src, tmp_path / "t.o", "no-such-aarch64-as")


def test_assembler_failure_carries_its_stderr(tmp_path: Path) -> None:
    src = tmp_path / "t.s"
    src.write_text("\tnop\n\tfrobnicate x0\n")
    with pytest.raises(UserError, match="unknown mnemonic `frobnicate'") as err:
        assemble(src, tmp_path / "t.o")
    assert err.value.file == str(src)
    assert not (tmp_path / "t.o").exists() or (tmp_path / "t.o").stat().st_size == 0


def test_not_an_aarch64_object(tmp_path: Path) -> None:
    path = tmp_path / "x.o"
    shutil.copy(shutil.which("true") or "/bin/true", path)  # a host ELF (x86-64 or whatever runs here)
    with pytest.raises(UserError, match="not an AArch64 object"):
        lift_object(path)


# ----------------------------------------------------------------------------------- mapping symbols


def test_mapping_symbols_split_code_and_data(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        .text
        nop
        .word 0xd503201f        // a NOP's bytes, but data: must not decode
        .byte 1, 2
        .align 2
        ret
        .section .rodata, "a"
        .word 0xd65f03c0        // data section: never decoded
    """)
    assert layout(prog) == [
        (0, 4, "insn", "nop"),
        (4, 6, "data", "1f2003d50102"),
        (10, 2, "data", "0000"),  # gas puts another `$d` on the alignment padding: its own item
        (12, 4, "insn", "ret"),
    ]
    assert [it.kind for it in prog.sections[".rodata"].items] == ["data"]
    assert [s.name for s in prog.code_sections()] == [".text"]


def test_alignment_padding_in_code_is_nops_at_every_word(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        .text
        ret
        .align 4
        add x0, x0, #1
    """)
    assert layout(prog) == [
        (0, 4, "insn", "ret"),
        (4, 4, "insn", "nop"),
        (8, 4, "insn", "nop"),
        (12, 4, "insn", "nop"),
        (16, 4, "insn", "add x0, x0, #1"),
    ]


def test_alignment_after_data_in_code_is_zeros_then_nops(tmp_path: Path) -> None:
    # gas: odd bytes are zero-filled under `$d`, then `$x` and NOPs up to the boundary
    prog = lift(tmp_path, """
        .text
        .byte 1
        .align 3
        ret
    """)
    assert layout(prog) == [
        (0, 1, "data", "01"),
        (1, 3, "data", "000000"),
        (4, 4, "insn", "nop"),
        (8, 4, "insn", "ret"),
    ]


def test_org_and_explicit_fill_in_code_stay_code(tmp_path: Path) -> None:
    # `.org` and `.balign N, fill` emit no mapping symbol: after an instruction the fill is `$x`
    prog = lift(tmp_path, """
        .text
        ret
        .org 0x10
        ret
        .balign 0x20, 0
        ret
        .space 4
        ret
    """)
    udf = Insn("udf", (Imm(0),))
    items = prog.sections[".text"].items
    assert [(it.offset, it.insn) for it in items[:5]] == [(0, Insn("ret", ())), (4, udf), (8, udf), (12, udf),
                                                          (16, Insn("ret", ()))]
    assert [it.insn for it in items if 20 <= it.offset < 32] == [udf] * 3
    # `.space` does switch to `$d`
    assert [(it.offset, it.kind) for it in items if it.offset >= 32] == [(32, "insn"), (36, "data"), (40, "insn")]


def test_undecodable_word_in_code(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        .text
        .inst 0xffffffff
        nop
    """)
    first, second = prog.sections[".text"].items
    assert first.kind == "undecoded" and first.raw == b"\xff\xff\xff\xff" and "0xffffffff" in first.reason
    assert second.insn == NOP


# ------------------------------------------------------------------------------------------ relocations


def test_instruction_relocations(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        .text
        .globl func
    func:
        bl schedule
        b other_local
        adrp x0, counter
        add x0, x0, :lo12:counter
        ldr x1, [x0, :lo12:counter + 8]
        bl func
        movz x2, #:abs_g1:schedule
        movk x2, #:abs_g0_nc:schedule
        .section .other, "ax"
        nop
    other_local:
        ret
        .data
        .quad 0
    counter:
        .quad 0
    """)
    insns = [it.insn for it in prog.sections[".text"].items]
    assert insns == [
        Insn("bl", (Addr(SymRef("schedule")),)),
        Insn("b", (Addr(Loc(".other", 4)),)),  # local label elsewhere: section symbol + addend
        Insn("adrp", (Reg("x0"), Reloc("page", Loc(".data", 8)))),
        Insn("add", (Reg("x0"), Reg("x0"), Reloc("lo12", Loc(".data", 8)))),
        Insn("ldr", (Reg("x1"), Mem(Reg("x0"), Reloc("lo12", Loc(".data", 16))))),
        Insn("bl", (Addr(Loc(".text", 0)),)),  # a global defined here: its section + value
        Insn("movz", (Reg("x2"), Reloc("abs_g1", SymRef("schedule")))),
        Insn("movk", (Reg("x2"), Reloc("abs_g0_nc", SymRef("schedule")))),
    ]


def test_data_relocations_and_alternatives(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        .text
    661: nop
    662:
        .pushsection .altinstructions, "a"
        .word 661b - .
        .word 663f - .
        .hword 42
        .byte 662b - 661b
        .byte 664f - 663f
        .word 661b - .
        .word patch_cb - .
        .hword (1 << 15) | 7
        .byte 4, 0
        .popsection
        .subsection 1
    663: isb
    664:
        .previous
        .section __ex_table, "a"
        .quad handler + 4
    """)
    alt = prog.sections[".altinstructions"]
    first = [it for it in alt.items if it.offset == 0][0]
    assert first.data == (DataValue(4, 0, Loc(".text", 0), pcrel=True),)
    assert prog.alternatives == [
        AlternativeSite(Loc(".text", 0), 4, Loc(".text", 4), 4, 42),
        AlternativeSite(Loc(".text", 0), 4, None, 0, 7, callback="patch_cb"),
    ]
    (ex,) = [it for it in prog.sections["__ex_table"].items if it.data]
    assert ex.data == (DataValue(8, 0, SymRef("handler", 4), pcrel=False),)


def test_symbols(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        .text
        nop
        .globl f
        .type f, %function
    f:  bl undefined_fn
        ret
        .size f, . - f
        .weak w
    w:  ret
    """)
    f = prog.symbols["f"]
    assert (f.loc, f.binding, f.kind, f.size) == (Loc(".text", 4), "global", "function", 8)
    assert prog.symbols["w"].binding == "weak"
    assert prog.symbols["undefined_fn"].loc is None
    assert not any(name.startswith("$") for name in prog.symbols)


# ---------------------------------------------------------------------------------------- crosscheck


def _program(*items: Item, name: str = ".text") -> Program:
    return Program("p", {name: Section(name, "ax", list(items))})


def test_compare_programs_agrees_up_to_aliases() -> None:
    lark = _program(Item(0, 4, "insn", Insn("cmp", (Reg("x0"), Imm(1)))), Item(4, 4, "insn", Insn("ret", ())))
    obj = _program(
        Item(0, 4, "insn", Insn("subs", (Reg("xzr"), Reg("x0"), Imm(1)))),
        Item(4, 4, "insn", Insn("ret", (Reg("x30"),))),
    )
    (report,) = compare_programs("p", lark, obj).sections
    assert (report.lark_count, report.obj_count, report.agree, report.differ) == (2, 2, 2, 0)


def test_compare_programs_reports_each_kind_of_difference() -> None:
    lark = _program(
        Item(0, 4, "insn", Insn("add", (Reg("x0"), Reg("x0"), Imm(1)))),
        Item(4, 8, "data", raw=bytes(8)),
        Item(12, 4, "insn", NOP),
        Item(12, 4, "insn", NOP),  # two items at one offset: a layout bug
    )
    obj = _program(
        Item(0, 4, "insn", Insn("add", (Reg("x0"), Reg("x0"), Imm(2)))),
        Item(4, 4, "insn", Insn("udf", (Imm(0),))),
        Item(8, 4, "insn", Insn("udf", (Imm(0),))),
        Item(12, 4, "insn", NOP),
    )
    report = compare_programs("p", lark, obj)
    assert not report.ok
    kinds = sorted(d.kind for d in report.sections[0].differences)
    assert kinds == [
        "code only on the object side (data on the assembler side)",
        "code only on the object side (data on the assembler side)",
        "different operands",
        "overlapping items",
    ]


def test_compare_programs_section_missing() -> None:
    lark = _program(Item(0, 4, "insn", NOP))
    obj = _program(Item(0, 4, "insn", NOP), name=".entry.text")
    report = compare_programs("p", lark, obj)
    assert [(s.name, s.differ) for s in report.sections] == [(".text", 1), (".entry.text", 1)]


def test_crosscheck_cli_on_a_small_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "small.s"
    src.write_text("\t.text\n\tcmp x0, #1\n\tb.cs 1f\n\tmov x1, sp\n1:\tret\n")
    assert main(["crosscheck", str(src)]) == 0
    out = capsys.readouterr().out
    assert ".text" in out and "agree" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.s"]  # nothing written next to the input
    assert main(["crosscheck", str(tmp_path / "missing.s")]) == 2


# ------------------------------------------------------------------------------ LLVM's assembler

CLANG = shutil.which("clang-19") or shutil.which("clang")
LLVM_MC = shutil.which("llvm-mc-19") or shutil.which("llvm-mc")
needs_clang = pytest.mark.skipif(CLANG is None, reason="clang-19 not installed (scripts/setup.sh installs it)")
needs_llvm_mc = pytest.mark.skipif(LLVM_MC is None, reason="llvm-mc-19 not installed (scripts/setup.sh installs it)")

# What `clang -S` writes and GNU as rejects or lays out otherwise: `.addrsig`, `.addrsig_sym`, LSE atomics
# without `.arch_extension` (the target flags enable them), `.p2align N, 0x0` and `.p2align N, , MAX`,
# `// %bb.N:` and `// @f` comments, `.Ltmp`/`.LBB`/`.Lfunc_end` labels, a jump table of label differences
# in .rodata, a `.local` + `.comm` static followed by more .bss (laid out where it stands, not after),
# `.xword`, `.ident`, a quoted section name.
CLANG_STYLE = r"""
	.text
	.section	.note.gnu.property,"a",@note
	.p2align	3, 0x0
	.word	4
	.word	16
	.word	5
	.asciz	"GNU"
	.word	3221225472
	.word	4
	.word	3
	.word	0
.Lsec_end0:
	.text
	.file	"t.c"
	.globl	f                               // -- Begin function f
	.p2align	2
	.type	f,@function
f:                                      // @f
// %bb.0:
	hint	#25
	stp	x29, x30, [sp, #-16]!           // 16-byte Folded Spill
	mov	x29, sp
	//APP
	mrs	x8, SP_EL0
	//NO_APP
	stclr	w2, [x0]
	ldclr	w2, w9, [x0]
	ldsetl	x3, x8, [x1]
	stset	w9, [x0]
	ldaddal	x8, x8, [x1]
	swpal	w9, w10, [x0]
	casal	x10, x8, [x1]
	ldadda	w1, w2, [x3]
	ldsmaxh	w1, w2, [x3]
	cash	w4, w5, [x6]
	cmp	w2, #2
	b.hi	.LBB0_4
// %bb.1:
	adrp	x9, .LJTI0_0
	add	x9, x9, :lo12:.LJTI0_0
.Ltmp0:
	adr	x10, .Ltmp0
	ldrsw	x11, [x9, x2, lsl #2]
	add	x10, x10, x11
	br	x10
.LBB0_2:
	hint	#36
	adrp	x8, counter
	ldr	w9, [x8, :lo12:counter]
	b	.LBB0_5
	.p2align	4, , 8
.LBB0_3:
	hint	#36
	adrp	x8, flags
	ldr	x9, [x8, :lo12:flags]
	b	.LBB0_5
.LBB0_4:
	mov	w0, wzr                         // =0x0
.LBB0_5:
	ldp	x29, x30, [sp], #16             // 16-byte Folded Reload
	hint	#29
	ret
.Lfunc_end0:
	.size	f, .Lfunc_end0-f
	.section	.rodata,"a",@progbits
	.p2align	2, 0x0
.LJTI0_0:
	.word	.LBB0_2-.Ltmp0
	.word	.LBB0_3-.Ltmp0
	.word	.LBB0_4-.Ltmp0
                                        // -- End function
	.type	counter,@object                 // @counter
	.local	counter
	.comm	counter,4,4
	.type	flags,@object                   // @flags
	.bss
	.globl	flags
	.p2align	3, 0x0
flags:
	.xword	0                               // 0x0
	.size	flags, 8

	.ident	"Debian clang version 19.1.7 (3~deb12u1)"
	.section	".note.GNU-stack","",@progbits
	.addrsig
	.addrsig_sym flags
"""

LSE = {"ldclr", "ldset", "ldadd", "swp", "cas", "ldsmax"}


def _llvm_assemblers() -> list:
    return [
        pytest.param(f"{CLANG} --target=aarch64-linux-gnu -Wa,-march=armv8.1-a", marks=needs_clang, id="clang"),
        pytest.param(f"{LLVM_MC} -mattr=+lse", marks=needs_llvm_mc, id="llvm-mc"),
    ]


def test_assembler_kind_from_the_program_name(tmp_path: Path) -> None:
    assert [kind_of(p) for p in ("aarch64-linux-gnu-as", "as", "clang", "clang-19", "/usr/lib/llvm-19/bin/clang",
                                 "llvm-mc-19", "llvm-mc")] == ["gnu", "gnu", "clang", "clang", "clang",
                                                                "llvm-mc", "llvm-mc"]
    src, out = tmp_path / "t.s", tmp_path / "t.o"
    inc = ["-I", str(tmp_path)]
    clang = Assembler.parse("clang-19 --target=aarch64-linux-gnu")
    assert clang.command(src, out) == ["clang-19", "-c", "-x", "assembler", "--target=aarch64-linux-gnu", *inc,
                                       str(src), "-o", str(out)]
    assert Assembler.parse("llvm-mc-19 -mattr=+lse").command(src, out) == [
        "llvm-mc-19", "-filetype=obj", "-triple=aarch64-linux-gnu", "-mattr=+lse", *inc, str(src), "-o", str(out)]
    assert Assembler.parse("aarch64-linux-gnu-as -EL").command(src, out) == [
        "aarch64-linux-gnu-as", "-EL", *inc, str(src), "-o", str(out)]
    with pytest.raises(UserError, match="install clang-19"):
        assemble(src, out, "clang-99")


@pytest.mark.parametrize("assembler", _llvm_assemblers())
def test_clang_style_assembly_agrees_with_llvm(tmp_path: Path, assembler: str) -> None:
    src = tmp_path / "t.s"
    src.write_text(CLANG_STYLE)
    report = crosscheck_file(src, assembler)
    assert report.ok, [(d.offset, d.render(d.lark), d.render(d.obj)) for s in report.sections for d in s.differences]
    (text,) = report.sections
    assert text.name == ".text" and text.lark_count == text.obj_count == text.agree == 36  # 2 NOPs of padding
    lark = lift_file(src)
    mnemonics = {canonical(it.insn).mnemonic for it in lark.sections[".text"].items if it.insn}
    assert {m.rstrip("abhl") for m in mnemonics} >= LSE  # stclr/stset are ldclr/ldset into zr, canonically
    # the static `counter` sits where clang's .comm put it, before `flags`, as in LLVM's object
    assert lark.symbols["counter"].loc == Loc(".bss", 0) and lark.symbols["flags"].loc == Loc(".bss", 8)


def test_gnu_as_rejects_clang_output(tmp_path: Path) -> None:
    """Why a clang build needs LLVM's assembler for its crosscheck: GNU as refuses `.addrsig`."""
    src = tmp_path / "t.s"
    src.write_text(CLANG_STYLE)
    with pytest.raises(UserError, match="addrsig"):
        assemble(src, tmp_path / "t.o")


@needs_clang
@pytest.mark.parametrize("dialect", ["gnu", "llvm"])
def test_local_common_is_laid_out_as_each_assembler_does(tmp_path: Path, dialect: str) -> None:
    """`.local a; .comm a,...` then more .bss: GNU as puts `a` after all of .bss, LLVM where it stands."""
    src = tmp_path / "t.s"
    src.write_text("\tadrp x0, a\n\tadrp x1, b\n\tadrp x2, c\n\t.bss\nb:\t.zero 8\n\t.local a\n"
                   "\t.comm a,4,16\n\t.bss\nc:\t.zero 4\n\t.comm d,8,8\n\t.text\n\tadrp x3, d\n")
    assembler = AS if dialect == "gnu" else f"{CLANG} --target=aarch64-linux-gnu"
    obj = lift_object(assemble(src, tmp_path / "t.o", assembler))
    lark = lift_file(src, dialect=dialect)  # type: ignore[arg-type]
    a, c = (0x10, 0x8) if dialect == "gnu" else (0x10, 0x14)
    targets = [it.insn.operands[1] for it in obj.sections[".text"].items if it.insn]
    assert targets == [Reloc("page", Loc(".bss", a)), Reloc("page", Loc(".bss", 0)), Reloc("page", Loc(".bss", c)),
                       Reloc("page", SymRef("d"))]
    assert lark.symbols["a"].loc == Loc(".bss", a) and lark.symbols["c"].loc == Loc(".bss", c)
    assert compare_programs(str(src), lark, obj).ok
    assert lark.symbols["d"].loc is None and lark.symbols["d"].binding == "global"  # a real common symbol


C_SOURCE = r"""
extern void g(int);
static int counter;
unsigned long flags;
int f(int *p, long *q, int x, unsigned long m)
{
    __atomic_fetch_and(p, ~x, __ATOMIC_RELAXED);
    __atomic_fetch_or(&flags, m, __ATOMIC_RELEASE);
    long old = __atomic_fetch_add(q, 5, __ATOMIC_SEQ_CST);
    int prev = __atomic_exchange_n(p, 7, __ATOMIC_SEQ_CST);
    long expected = 3;
    __atomic_compare_exchange_n(q, &expected, old, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    switch (x) {
    case 0: g(1); break; case 1: g(3); break; case 2: g(9); break; case 3: g(4); break;
    case 4: g(11); break; case 5: g(2); break; default: g(0);
    }
    counter++;
    return prev + (int)expected;
}

static int a;
int b;
static int c;
long d;
int *h(int i) { return i ? (i > 1 ? &a : &c) : (i < -1 ? &b : (int *)&d); }
"""


@needs_clang
def test_clang_output_of_c_code_agrees_with_llvm(tmp_path: Path) -> None:
    """Whatever this clang writes for atomics, a switch and statics, the Lark lift reads as LLVM assembles it."""
    c_file, src = tmp_path / "t.c", tmp_path / "t.s"
    c_file.write_text(C_SOURCE)
    flags = ["--target=aarch64-linux-gnu", "-march=armv8.1-a", "-mbranch-protection=pac-ret+bti"]
    subprocess.run([str(CLANG), *flags, "-O2", "-S", "-ffreestanding", "-fverbose-asm", str(c_file), "-o", str(src)],
                   check=True, capture_output=True)
    report = crosscheck_file(src, f"{CLANG} --target=aarch64-linux-gnu -Wa,-march=armv8.1-a")
    assert report.ok, [(d.offset, d.render(d.lark), d.render(d.obj)) for s in report.sections for d in s.differences]
    assert all(s.lark_count == s.obj_count == s.agree > 0 for s in report.sections)
    mnemonics = {canonical(it.insn).mnemonic for s in lift_file(src).sections.values() for it in s.items if it.insn}
    assert any(m.startswith(("ldclr", "ldset", "ldadd", "swp", "cas")) for m in mnemonics), sorted(mnemonics)


def test_crosscheck_cli_says_which_assembler(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "small.s"
    src.write_text("\t.text\n\tcmp x0, #1\n\tret\n")
    assert main(["crosscheck", str(src)]) == 0
    assert "assembler: aarch64-linux-gnu-as (default: no .cmd file)" in capsys.readouterr().out
    assert main(["crosscheck", "--as", "aarch64-linux-gnu-as", "--llvm=1", str(src)]) == 2
    if CLANG is not None and Path(CLANG).name == "clang-19":
        assert main(["crosscheck", "--llvm=-19", str(src)]) == 0
        assert "assembler: clang-19 --target=aarch64-linux-gnu" in capsys.readouterr().out


# ---------------------------------------------------------------------------------- the real kernel


@pytest.mark.kernel
@pytest.mark.parametrize("version", ["6.1", "6.12"])
def test_kernel_objects_decode_completely(
    version: str, kernel_asm: Callable[[str], dict[str, Path]], tmp_path: Path
) -> None:
    for name, path in kernel_asm(version).items():
        prog = lift_object(assemble(path, tmp_path / (name + ".o")))
        code = [it for s in prog.code_sections() for it in s.items if it.kind != "data"]
        assert len(code) > 100, name
        undecoded = [(it.offset, it.reason) for it in code if it.kind == "undecoded"]
        assert undecoded == [], name
        for item in code:
            assert item.insn is not None
            once = canonical(item.insn)
            assert canonical(once) == once, (name, item.offset, str(item.insn))
        if name == "entry.S":
            assert len(prog.alternatives) > 100
            assert all(site.orig.section in prog.sections for site in prog.alternatives)
