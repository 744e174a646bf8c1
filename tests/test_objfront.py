"""verifier.objfront: gas objects to the IR (mapping symbols, padding, relocations, symbols,
alternatives), the assembler's error path, and the crosscheck comparison on hand-made programs."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from verifier.cli.main import main
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
from verifier.objfront.crosscheck import compare_programs
from verifier.objfront.lift import assemble, lift_object
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
        assemble(src, tmp_path / "t.o", as_cmd="no-such-aarch64-as")


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
