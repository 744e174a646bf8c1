"""The Lark front end on small inputs: each directive and operand form, and the error path."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import z3

from verifier.engine.image import Image
from verifier.engine.memory import MemoryAccess
from verifier.engine.paths import Path as EnginePath
from verifier.frontend.assembler import lift_file
from verifier.ir.canon import canonical
from verifier.ir.program import (
    Addr,
    DataValue,
    Imm,
    Insn,
    Loc,
    Mem,
    Name,
    Program,
    Reg,
    Reloc,
    Shifted,
    SymRef,
    SysReg,
    Target,
)
from verifier.objfront.assemblers import assemble
from verifier.objfront.crosscheck import compare_programs
from verifier.objfront.lift import lift_object
from verifier.proof.config import BUNDLED_CONTRACTS
from verifier.semantics.names import symbol_address
from verifier.semantics.state import bv
from verifier.semantics.table import Next, execute
from verifier.spec.contracts import load_contracts
from verifier.spec.slots import build, slot_by_name
from verifier.util.errors import UserError

AS = "aarch64-linux-gnu-as"
needs_gas = pytest.mark.skipif(shutil.which(AS) is None, reason=f"{AS} not installed")


def lift(tmp_path: Path, source: str) -> Program:
    path = tmp_path / "t.s"
    path.write_text(textwrap.dedent(source))
    return lift_file(path)


def insns(program: Program, section: str = ".text") -> list[Insn]:
    return [item.insn for item in program.sections[section].items if item.kind == "insn"]


def text(program: Program, section: str = ".text") -> list[str]:
    return [str(i) for i in insns(program, section)]


def data_contents(program: Program, section: str) -> tuple[dict[int, int], dict[int, DataValue]]:
    """A section's data as (constant bytes by offset, relocated fields by offset): the same however the
    bytes are split into items, so the two front ends compare."""
    raw: dict[int, int] = {}
    fields: dict[int, DataValue] = {}
    for item in program.sections[section].items:
        if item.kind != "data":
            continue
        relocated: set[int] = set()
        offset = item.offset
        for value in item.data:
            if value.target is not None:
                fields[offset] = value
                relocated.update(range(offset, offset + value.size))
            offset += value.size
        for i, byte in enumerate(item.raw or b""):
            if item.offset + i not in relocated:
                raw[item.offset + i] = byte
    return raw, fields


def crosschecked(tmp_path: Path, source: str) -> Program:
    """The Lark lift of `source`, after checking it against GNU as: every instruction (as the crosscheck
    does) and every data byte and relocated field."""
    path = tmp_path / "t.s"
    path.write_text(textwrap.dedent(source))
    lark = lift_file(path)
    obj = lift_object(assemble(path, tmp_path / "t.o"))
    report = compare_programs(str(path), lark, obj)
    assert report.ok, [(d.section, hex(d.offset), d.render(d.lark), d.render(d.obj))
                       for s in report.sections for d in s.differences]
    for name in set(lark.sections) | set(obj.sections):
        if name in lark.sections and name in obj.sections:
            assert data_contents(lark, name) == data_contents(obj, name), name
        else:  # a section only one side has must be empty
            only = lark.sections.get(name) or obj.sections[name]
            assert only.size == 0, name
    return lark


# ------------------------------------------------------------------------------------------ operands


def test_register_and_immediate_forms(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        mov x0, sp
        add w1, wzr, #0x10
        sub x2, x3, 16
        and x4, x5, #-2
    """)
    ops = insns(prog)
    assert ops[0] == Insn("mov", (Reg("x0"), Reg("sp")))
    assert ops[1] == Insn("add", (Reg("w1"), Reg("wzr"), Imm(16)))
    assert ops[2] == Insn("sub", (Reg("x2"), Reg("x3"), Imm(16)))  # gcc writes immediates without '#'
    assert ops[3].operands[2] == Imm(-2)


def test_shifts_and_extends(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        add x0, x1, x2, lsl #3
        add x0, sp, w2, uxtw 2
        movk x0, #0x1234, lsl #16
        ldr w0, [x1, w2, sxtw #2]
    """)
    ops = insns(prog)
    assert ops[0].operands[2] == Shifted(Reg("x2"), "lsl", 3)
    assert ops[1].operands[2] == Shifted(Reg("w2"), "uxtw", 2)
    assert ops[2].operands[1] == Shifted(Imm(0x1234), "lsl", 16)
    assert ops[3].operands[1] == Mem(Reg("x1"), Shifted(Reg("w2"), "sxtw", 2))


def test_addressing_modes(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        ldr x0, [x1]
        ldr x0, [x1, #8]
        stp x29, x30, [sp, #-16]!
        ldp x29, x30, [sp], #16
        ldr x0, [x1, x2]
        ldr x0, [x1, x2, lsl #3]
    """)
    ops = [i.operands[-1] for i in insns(prog)]
    assert ops[0] == Mem(Reg("x1"))
    assert ops[1] == Mem(Reg("x1"), Imm(8))
    assert ops[2] == Mem(Reg("sp"), Imm(-16), "pre")
    # post-index: the offset is a separate operand, as written
    assert insns(prog)[3].operands[2:] == (Mem(Reg("sp")), Imm(16))
    assert ops[4] == Mem(Reg("x1"), Reg("x2"))
    assert ops[5] == Mem(Reg("x1"), Shifted(Reg("x2"), "lsl", 3))


def test_system_registers_pstate_and_options(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        mrs x0, mdscr_el1
        msr S2_0_C0_C2_2, x1
        msr daifset, #0xf
        dsb ish
        tlbi vale1is, x0
        csel x0, x1, x2, ne
    """)
    ops = insns(prog)
    assert ops[0].operands[1] == SysReg(0x8012)
    assert ops[1].operands[0] == SysReg(0x8012)  # the generic name of the same register
    assert ops[2].operands == (Name("daifset"), Imm(15))
    assert ops[3].operands == (Name("ish"),)
    assert ops[4].operands[0] == Name("vale1is")
    assert ops[5].operands[3] == Name("ne")


def test_unknown_system_register_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown system register 'foo_el1'"):
        lift(tmp_path, "mrs x0, foo_el1\n")


def test_relocation_operators(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        adrp x0, sym
        add x0, x0, :lo12:sym
        ldr x1, [x0, #:lo12:sym+8]
        movz x2, :abs_g1_s:0x12345678
        movk x2, :abs_g0_nc:0x12345678
        movz x3, :abs_g1_s:-2
    """)
    ops = insns(prog)
    assert ops[0].operands[1] == Reloc("page", SymRef("sym"))
    assert ops[1].operands[2] == Reloc("lo12", SymRef("sym"))
    assert ops[2].operands[1] == Mem(Reg("x0"), Reloc("lo12", SymRef("sym", 8)))
    # constants are resolved the way gas does it (and a negative value turns movz into movn)
    assert ops[3] == Insn("movz", (Reg("x2"), Shifted(Imm(0x1234), "lsl", 16)))
    assert ops[4] == Insn("movk", (Reg("x2"), Imm(0x5678)))
    assert ops[5] == Insn("movn", (Reg("x3"), Shifted(Imm(0), "lsl", 16)))


def test_labels_named_local_and_numeric(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
    start:
        b .Lnext
    .Lnext:
    1:  cbz x0, 1f
        b 1b
    1:  tbnz w0, #3, start
        bl external_fn
        adr x0, .Lnext
    """)
    ops = insns(prog)
    assert ops[0].operands == (Addr(Loc(".text", 4)),)
    assert ops[1].operands[1] == Addr(Loc(".text", 12))
    assert ops[2].operands == (Addr(Loc(".text", 4)),)
    assert ops[3].operands[2] == Addr(Loc(".text", 0))
    assert ops[4].operands == (Addr(SymRef("external_fn")),)
    assert ops[5].operands[1] == Addr(Loc(".text", 4))
    assert prog.symbols["start"].loc == Loc(".text", 0)


def test_expressions_follow_gas_precedence(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        .set a, 1 + 2 | 4        // gas: + binds looser than |, so 1 + (2|4)
        .set b, (1 << 15) | 3
        .set c, 2 * 3 + 1
        .set d, 010              // octal
        .set e, (3 > 2) + 0
        .set f, -1 >> 60          // gas shifts the unsigned value
        mov x0, #a
        mov x0, #b
        mov x0, #c
        mov x0, #d
        mov x0, #e
        mov x0, #f
    """)
    values = [i.operands[1].value for i in insns(prog)]
    assert values == [7, (1 << 15) | 3, 7, 8, -1, 15]


# ----------------------------------------------------------------------------------------- macros


def test_macro_defaults_required_vararg_counter_and_separator(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        .macro op name, reg:req, imm=7, rest:vararg
    .Lm\\@_\\name\\()_end:
        add \\reg, \\reg, #\\imm
        .ifnb \\rest
        orr \\rest
        .endif
        .endm
        op first, x1
        op second, x2, 3, x3, x4, x5
    """)
    assert text(prog) == ["add x1, x1, #7", "add x2, x2, #3", "orr x3, x4, x5"]


def test_macro_missing_required_argument(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="missing value for required parameter 'reg'"):
        lift(tmp_path, """
            .macro op reg:req
            mov \\reg, xzr
            .endm
            op
        """)


def test_macro_keyword_arguments_and_purgem(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        .macro m a, b
        sub \\a, \\a, \\b
        .endm
        m b=x2, a=x1
        .purgem m
        .macro m a
        neg \\a, \\a
        .endm
        m x3
    """)
    assert text(prog) == ["sub x1, x1, x2", "neg x3, x3"]


def test_irp_irpc_rept(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        .irp r, x0, x1
        mov \\r, xzr
        .endr
        .irpc n, 23
        mov x\\n, xzr
        .endr
        .rept 2
        nop
        .endr
    """)
    assert text(prog) == ["mov x0, xzr", "mov x1, xzr", "mov x2, xzr", "mov x3, xzr", "nop", "nop"]


def test_conditionals(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        .set v, 2
        .if v == 1
        mov x0, #1
        .elseif v == 2
        mov x0, #2
        .else
        mov x0, #3
        .endif
        .ifeq v - 2
        mov x1, #1
        .endif
        .ifc abc, abc
        mov x2, #1
        .endif
        .ifnc abc, abd
        mov x3, #1
        .endif
        .ifdef v
        mov x4, #1
        .endif
        .ifndef w
        mov x5, #1
        .endif
        .ifb
        mov x6, #1
        .endif
        .if 0
        .if 1
        mov x7, #1
        .endif
        .else
        mov x8, #1
        .endif
    """)
    assert [str(i.operands[0]) for i in insns(prog)] == ["x0", "x1", "x2", "x3", "x4", "x5", "x6", "x8"]
    assert insns(prog)[0].operands[1] == Imm(2)


@needs_gas
def test_a_label_before_a_conditional_on_its_line_is_defined(tmp_path: Path) -> None:
    prog = crosschecked(tmp_path, """
        nop
    1:  .if 1
        nop
        .endif
        .if 0
    2:  nop
        .endif
    lab: .if 0
        .endif
        .section .d, "a"
        .long 1b - .
        .quad lab
    """)
    assert data_contents(prog, ".d")[1] == {0: DataValue(4, 0, Loc(".text", 4), pcrel=True),
                                            4: DataValue(8, 0, Loc(".text", 8))}


def test_req_and_unreq(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
    tsk .req x28
        ldr x0, [tsk, #8]
        mov tsk, x1
        .unreq tsk
    """)
    assert insns(prog)[0].operands[1] == Mem(Reg("x28"), Imm(8))
    assert insns(prog)[1].operands[0] == Reg("x28")


def test_set_equ_and_assignment(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        .equ A, 4
        B = A * 2
        .set A, A + 1
        mov x0, #A
        mov x0, #B
    """)
    assert [i.operands[1] for i in insns(prog)] == [Imm(5), Imm(8)]


# ------------------------------------------------------------------------------- sections and layout


def test_sections_push_pop_previous_subsection(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        .text
        nop
        .pushsection .other, "ax"
        isb
        .popsection
        .subsection 1
        yield
        .previous
        wfi
        .section .rodata, "a"
        .word 1
        .previous
        wfe
    """)
    assert text(prog) == ["nop", "wfi", "wfe", "yield"]  # subsection 1 is laid out after subsection 0
    assert text(prog, ".other") == ["isb"]
    assert prog.sections[".rodata"].items[0].raw == (1).to_bytes(4, "little")


def test_alignment_in_code_is_nop_padding(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        nop
        .align 4
    x:  ret
        .p2align 3
        .balign 32
    y:  ret
        .section .rodata, "a"
        .byte 1
        .balign 4
        .byte 2
    """)
    assert prog.symbols["x"].loc == Loc(".text", 16)
    assert prog.symbols["y"].loc == Loc(".text", 32)
    assert text(prog).count("nop") == 1 + 3 + 3
    assert b"".join(i.raw or b"" for i in prog.sections[".rodata"].items) == b"\x01\x00\x00\x00\x02"


@needs_gas
def test_explicit_fill_alignment_after_data_in_code_is_code(tmp_path: Path) -> None:
    # gas makes every alignment in a code section `$x`, also with a fill and after data
    prog = crosschecked(tmp_path, """
        nop
        .word 1
        .balign 16, 0
        nop
        .section .rodata, "a"
        .word 2
        .balign 16, 0
    """)
    udf = Insn("udf", (Imm(0),))
    assert [(it.offset, it.kind, it.insn) for it in prog.sections[".text"].items[2:4]] == [
        (8, "insn", udf), (12, "insn", udf)]
    assert [it.kind for it in prog.sections[".rodata"].items] == ["data", "data"]


def test_org_pads_and_checks_backwards(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        .align 7
    start:
        nop
        .org start + 16
        ret
    """)
    # after code, gas's padding is code too: zero words that decode as `udf #0`, as in the object
    items = prog.sections[".text"].items
    assert [(i.offset, str(i.insn)) for i in items] == [
        (0, "nop"), (4, "udf #0"), (8, "udf #0"), (12, "udf #0"), (16, "ret")]
    prog = lift(tmp_path, """
        .section .rodata, "a"
    d:  .byte 1
        .org d + 4
    """)
    assert [i.kind for i in prog.sections[".rodata"].items] == ["data", "data"]
    with pytest.raises(UserError, match="attempt to move .org backwards"):
        lift(tmp_path, "s:\n nop\n nop\n .org s + 4\n")


def test_data_directives(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        .section .rodata, "a"
    d:
        .byte 1, 2
        .hword 0x304
        .word 5
        .quad 6
        .ascii "ab"
        .asciz "c\\n"
        .string "d"
        .zero 2
        .space 1, 0xff
        .fill 2, 2, 0x0708
        .quad d + 4
    """)
    items = prog.sections[".rodata"].items
    raw = b"".join(i.raw for i in items[:-1])
    assert raw == bytes([1, 2, 4, 3, 5, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]) + b"abc\n\0d\0\0\0\xff\x08\x07\x08\x07"
    assert items[-1].data[0].target == Loc(".rodata", 4)


@needs_gas
def test_dot_in_a_list_of_data_values_is_each_fields_own_address(tmp_path: Path) -> None:
    # the kernel's __jump_table entries: `.long 1b - ., %l[l_yes] - .` on one line
    prog = crosschecked(tmp_path, """
        nop
    1:  nop
        .section .d, "a"
        .long 1b - ., 1b - .
    2:  .quad 1b - ., . - 2b
    """)
    raw, fields = data_contents(prog, ".d")
    assert [(offset, value.target) for offset, value in sorted(fields.items())] == [
        (0, Loc(".text", 4)), (4, Loc(".text", 4)), (8, Loc(".text", 4))]
    assert raw[16] == 8  # `. - 2b` in the second field is 8, not 0


def test_inst_words_are_decoded_as_instructions(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        .inst 0xd503201f
        .inst 0xd5380000 | (2 << 0)
    """)
    kinds = [(i.kind, str(i.insn) if i.insn else None) for i in prog.sections[".text"].items]
    assert kinds[0] == ("insn", "nop")
    assert kinds[1][0] == "insn" and kinds[1][1] is not None and kinds[1][1].startswith("mrs x2")


def test_jump_table_difference_resolved_after_layout(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        .section .rodata, "a"
        .align 0
    .Ltab:
        .byte (.L2 - .Lbase) / 4
        .text
    .Lbase:
        nop
        .p2align 3
    .L2:
        ret
    """)
    assert prog.sections[".rodata"].items[0].data[0].value == 2


def test_alternative_records_are_decoded(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        .macro altinstruction_entry orig_offset alt_offset feature orig_len alt_len
        .word \\orig_offset - .
        .word \\alt_offset - .
        .hword (\\feature)
        .byte \\orig_len
        .byte \\alt_len
        .endm
        nop
    661:
        dmb ish
    662:
        .pushsection .altinstructions, "a"
        altinstruction_entry 661b, 663f, 7, 662b-661b, 664f-663f
        .popsection
        .subsection 1
    663:
        nop
    664:
        .previous
        .pushsection .altinstructions, "a"
        altinstruction_entry 662b, my_callback, (1 << 15) | 3, 4, 0
        .popsection
    """)
    first, second = prog.alternatives
    assert (first.orig, first.orig_len, first.repl, first.repl_len, first.cap) == (
        Loc(".text", 4), 4, Loc(".text", 8), 4, 7)
    assert first.callback is None
    assert (second.callback, second.cap, second.repl) == ("my_callback", 3, None)


def test_source_locations_through_cpp_markers_and_macros(tmp_path: Path) -> None:
    prog = lift(tmp_path, """\
        # 1 "/src/linux/arch/arm64/kernel/entry.S"
        .macro m
        isb
        .endm

        m
        # 40 "/src/linux/arch/arm64/include/asm/assembler.h"
        nop
    """)
    first, second = prog.sections[".text"].items
    # paths are shown relative to the kernel tree, as objtool and the compiler do
    assert (first.src.file, first.src.line) == ("arch/arm64/kernel/entry.S", 2)
    assert first.src.macros == (("m", "arch/arm64/kernel/entry.S:5"),)
    assert (second.src.file, second.src.line) == ("arch/arm64/include/asm/assembler.h", 40)
    assert first.src.asm_line == 3


def test_gcc_verbose_asm_comments_and_app_blocks(tmp_path: Path) -> None:
    prog = lift(tmp_path, """\
        // /tree/arch/arm64/kernel/entry-common.c:235: 	regs->x = 0;
        str	xzr, [x0, 320]	//, regs_2(D)->lockdep_hardirqs
        #APP
        // 19 "/tree/arch/arm64/include/asm/current.h" 1
        mrs x19, sp_el0	// sp_el0
        // 0 "" 2
        #NO_APP
    """)
    first, second = prog.sections[".text"].items
    assert first.src.line == 235 and first.src.file.endswith("arch/arm64/kernel/entry-common.c")
    assert second.src.line == 19 and second.src.file.endswith("arch/arm64/include/asm/current.h")


def test_clang_comments_labels_and_lse_atomics(tmp_path: Path) -> None:
    """clang's -S forms: `// @f` and `// %bb.N:` comments, `//APP`, `.Ltmp` labels, `.p2align N, 0x0` and
    `.p2align N, , MAX`, LSE atomics written bare, `.addrsig`, `.addrsig_sym`, a quoted section name."""
    prog = lift(tmp_path, """\
        \t.globl\tf                               // -- Begin function f
        \t.p2align\t2
        \t.type\tf,@function
        f:                                      // @f
        // %bb.0:
        \t//APP
        \tmrs\tx8, SP_EL0
        \t//NO_APP
        .Ltmp0:
        \tstclr\tw8, [x9]
        \tldaddal\tx1, x2, [x3]
        \tswpl\tw1, w2, [x3]
        \tcasa\tx1, x2, [x3]
        \t.p2align\t4, , 8
        \tb\t.Ltmp0
        .Lfunc_end0:
        \t.size\tf, .Lfunc_end0-f
        \t.p2align\t3, 0x0
        \t.section\t".note.GNU-stack","",@progbits
        \t.addrsig
        \t.addrsig_sym f
    """)
    assert text(prog)[1:5] == ["stclr w8, [x9]", "ldaddal x1, x2, [x3]", "swpl w1, w2, [x3]", "casa x1, x2, [x3]"]
    assert text(prog)[5:] == ["b <.text+0x4>"]  # at 0x14 the next 16 is 12 bytes away, more than 8: no padding
    assert prog.symbols["f"].size == 0x18
    assert ".note.GNU-stack" not in prog.sections or not prog.sections[".note.GNU-stack"].items


def test_local_common_in_bss_as_gas_or_llvm_lays_it_out(tmp_path: Path) -> None:
    source = "\t.bss\nb:\t.zero 8\n\t.local a\n\t.comm a,4,16\n\t.bss\nc:\t.zero 4\n\t.comm d,8,8\n"
    path = tmp_path / "t.s"
    path.write_text(source)
    gnu, llvm = lift_file(path, dialect="gnu"), lift_file(path, dialect="llvm")
    assert (gnu.symbols["a"].loc, gnu.symbols["c"].loc) == (Loc(".bss", 0x10), Loc(".bss", 0x8))  # after all .bss
    assert (llvm.symbols["a"].loc, llvm.symbols["c"].loc) == (Loc(".bss", 0x10), Loc(".bss", 0x14))  # in place
    assert gnu.symbols["a"].size == 4 and gnu.symbols["a"].binding == "local"
    assert gnu.symbols["d"].loc is None and gnu.symbols["d"].binding == "global"  # the linker's common symbol
    assert lift_file(path).symbols["a"].loc == Loc(".bss", 0x10) == gnu.symbols["a"].loc  # no .addrsig: gas
    path.write_text(source + "\t.addrsig\n")
    assert lift_file(path).symbols["c"].loc == Loc(".bss", 0x14)  # clang's output: LLVM's layout


def test_simd_operand_is_recorded_undecoded_not_dropped(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        nop
        add z0.d, p0/m, z0.d, z1.d
        nop
    """)
    items = prog.sections[".text"].items
    assert [i.kind for i in items] == ["insn", "undecoded", "insn"]
    assert items[1].offset == 4 and "SIMD" in items[1].reason


@needs_gas
def test_vector_and_predicate_registers_lift_as_gas_encodes_them(tmp_path: Path) -> None:
    # what the kernel's sve_flush_live() makes: FOR_EACH_Z_REG mov v\n.16b, v\n.16b; pfalse p\n.b; wrffr p0.b
    prog = crosschecked(tmp_path, """
        .arch_extension sve
        mov v0.16b, v0.16b
        mov v31.16b, v30.16b
        orr v1.16b, v2.16b, v3.16b
        pfalse p15.b
        wrffr p0.b
    """)
    assert [str(canonical(i)) for i in insns(prog)] == [
        "orr v0.16b, v0.16b, v0.16b", "orr v31.16b, v30.16b, v30.16b", "orr v1.16b, v2.16b, v3.16b", "pfalse p15.b",
        "wrffr p0.b"]


@needs_gas
def test_sme_mode_changes_lift_as_gas_encodes_them(tmp_path: Path) -> None:
    prog = crosschecked(tmp_path, """
        .arch_extension sme
        smstart
        smstop sm
        smstart za
        msr svcrsm, #1
        .inst 0xd503427f     // what the kernel's __msr_s(SYS_SVCR_SMSTOP_SM_EL0, "xzr") makes
        mrs x0, svcr
        rdvl x1, #-2
    """)
    assert [str(canonical(i)) for i in insns(prog)] == [
        "msr svcrsmza, #1", "msr svcrsm, #0", "msr svcrza, #1", "msr svcrsm, #1", "msr svcrsm, #0", "mrs x0, svcr",
        "rdvl x1, #-2"]


# ------------------------------------------------------------------------------------ literal pools


def literal_loads(program: Program, section: str = ".text") -> dict[str, Target]:
    """Each LDR (literal)'s destination register -> the pool entry it loads."""
    return {str(i.operands[0]): i.operands[1].target for i in insns(program, section)
            if i.mnemonic in ("ldr", "ldrsw") and isinstance(i.operands[-1], Addr)}


@needs_gas
def test_ltorg_dumps_the_pools_there_4_byte_entries_first(tmp_path: Path) -> None:
    prog = crosschecked(tmp_path, """
        ldr x0, =sym
        ldr w1, =0x12
        nop
        .ltorg
        ldr x2, =sym
        .pool
        ret
    """)
    # 12: the 4-byte pool, 16: the 8-byte one; after `.ltorg` a new pool, aligned with zeros (`udf #0`)
    assert literal_loads(prog) == {"x0": Loc(".text", 16), "w1": Loc(".text", 12), "x2": Loc(".text", 32)}
    raw, fields = data_contents(prog, ".text")
    assert fields == {16: DataValue(8, 0, SymRef("sym")), 32: DataValue(8, 0, SymRef("sym"))}
    assert bytes(raw[o] for o in range(12, 16)) == (0x12).to_bytes(4, "little")
    assert [str(i) for i in insns(prog)][-2:] == ["udf #0", "ret"]


@needs_gas
def test_pools_left_at_the_end_go_to_the_end_of_their_section_and_subsection(tmp_path: Path) -> None:
    prog = crosschecked(tmp_path, """
        .text
        ldr x0, =sym
        .section .other, "ax"
        ldr w0, =sym
        ldr x1, =other
        nop
    other:
        .text 1
        ldr x3, =sym
        .text
        ldr x1, =sym
        nop
    """)
    # .text: subsection 0 (two loads, nop, padding, its pool at 16), then subsection 1 (a load, its pool)
    assert literal_loads(prog) == {"x0": Loc(".text", 16), "x1": Loc(".text", 16), "x3": Loc(".text", 32)}
    assert literal_loads(prog, ".other") == {"w0": Loc(".other", 12), "x1": Loc(".other", 16)}
    assert data_contents(prog, ".other")[1] == {12: DataValue(4, 0, SymRef("sym")),
                                                16: DataValue(8, 0, Loc(".other", 12))}


@needs_gas
def test_pool_entries_are_shared_as_gas_compares_them(tmp_path: Path) -> None:
    prog = crosschecked(tmp_path, """
        .set abs, 0x12
    lab:
    1:  ldr x0, =-1
        ldr x1, =0xffffffffffffffff  // the same bits, but gas keeps a constant's signedness as written
        ldr x2, =~0
        ldr x3, =1 - 2
        ldr x4, =0x10 + 2
        ldr x5, =abs
        ldr x6, =sym + 8
        ldr x7, =8 + sym
        ldr x8, =lab
        ldr x9, =1b                  // the same place by another symbol
        ldr x10, =fwd
        ldr x11, =fwd
        ldr x12, =.
        ldr x13, =sym + abs          // abs is a constant already: sym + 0x12
        ldr x14, =sym + 0x12
        .set fwd, 5
    """)
    at = literal_loads(prog)
    shared = {frozenset(r for r in at if at[r] == at[first]) for first in at}
    assert shared == {frozenset(g) for g in ({"x0"}, {"x1", "x2", "x3"}, {"x4", "x5"}, {"x6", "x7"}, {"x8"}, {"x9"},
                                             {"x10", "x11"}, {"x12"}, {"x13", "x14"})}
    fields = data_contents(prog, ".text")[1]
    assert fields[at["x8"].offset] == fields[at["x9"].offset] == DataValue(8, 0, Loc(".text", 0))
    assert fields[at["x12"].offset] == DataValue(8, 0, Loc(".text", 48))  # `.` is the ldr's own address


@needs_gas
def test_pool_entry_size_follows_the_register(tmp_path: Path) -> None:
    prog = crosschecked(tmp_path, """
        ldr w0, =0x11223344
        ldr s1, =0x11223344
        ldrsw x2, =0x11223344   // LDRSW loads 4 bytes: the 4-byte pool
        ldr x3, =0x11223344
        ldr d4, =0x11223344
        ldr q5, =-1             // a 16-byte entry is the value sign-extended ...
        ldr q6, =0xffffffffffffffff  // ... or zero-extended, by its signedness
        ldr q7, =0x112233445566778899aabbccddeeff00
        ldr w8, =sym
    """)
    at = literal_loads(prog)
    assert at["w0"] == at["s1"] == at["x2"] != at["x3"] == at["d4"]
    raw, fields = data_contents(prog, ".text")

    def entry(register: str, size: int) -> bytes:
        return bytes(raw[at[register].offset + i] for i in range(size))

    assert entry("w0", 4) == entry("x3", 8)[:4] == (0x11223344).to_bytes(4, "little")
    assert entry("q5", 16) == b"\xff" * 16
    assert entry("q6", 16) == b"\xff" * 8 + bytes(8)
    assert entry("q7", 16) == (0x112233445566778899AABBCCDDEEFF00).to_bytes(16, "little")
    assert at["q5"].offset % 16 == 0
    assert fields == {at["w8"].offset: DataValue(4, 0, SymRef("sym"))}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ldr x0, =2f - 1f", "constant expression expected"),
        ("ldr h0, =1", "operand mismatch"),
        ("ldrsw w0, =1", "operand mismatch"),
        ("ldr sp, =1", "operand mismatch"),
        ("ldrb w0, =1", "invalid addressing mode"),
        ("prfm pldl1keep, =1", "invalid addressing mode"),
        ("ldr q0, =sym", "cannot do 16-byte relocation"),
        (".set n, 0\n.rept 1025\nldr x0, =n\n.set n, n + 1\n.endr", "literal pool insertion failed"),
    ],
)
def test_literal_pool_errors_are_gas_errors(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        lift(tmp_path, line + "\n")


def test_the_engine_loads_what_the_pool_entry_holds(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        ldr x0, =sym + 8
        ldr x1, =here
        ldr w2, =0x12345678
    here:
        ret
    """)
    image = Image.link([prog])
    base = image.section_base(0, ".text")
    pool = base + literal_loads(prog)["x0"].offset
    assert image.data_value(pool, 8) == DataValue(8, 0, SymRef("sym", 8))
    start = build(slot_by_name("el1h_sync"), image, load_contracts(BUNDLED_CONTRACTS), [], base)
    state = start.state
    for offset in (0, 4, 8):
        code = image.code(base + offset)
        assert code is not None and code.item.insn is not None
        path = EnginePath(state, z3.BoolVal(True), (), code.address, [])
        assert isinstance(execute(code.item.insn, state, MemoryAccess(image, path, code, lambda p, v: None)), Next)
    assert z3.simplify(state.read_reg("x0") - symbol_address("sym")).eq(bv(8))
    assert state.read_reg("x1").eq(bv(base + 12))
    assert state.read_reg("x2").eq(bv(0x12345678, 64))


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("source", "message", "line", "col"),
    [
        ("nop\n\tmov x0, [x1\n", "unexpected end of line", 2, 13),
        ("\tadd x0, x1, #)\n", "unexpected ')'", 1, 15),
        ("\t.bogus 1\n", "unknown pseudo-op '.bogus'", 1, 2),
        ("\t.if 1\n\tnop\n", "missing .endif", None, None),
        ("\t.macro m\n\tnop\n", "missing .endm", 1, 2),
        ("\t.endif\n", ".endif without .if", 1, 2),
        ("x:\nx:\n", "symbol 'x' is already defined", 2, 1),
        ('\t.error "stop here"\n', "stop here", 1, 2),
        ("\tb 1b\n", "no previous definition of local label 1", 1, 2),
        ("\t.comm 4, 4\n", "expected a symbol name", 1, 2),
        ("\t.comm x\n", "expected `symbol, size[, alignment]`", 1, 2),
    ],
)
def test_errors_have_file_line_col(tmp_path: Path, source: str, message: str, line: int | None,
                                   col: int | None) -> None:
    path = tmp_path / "bad.s"
    path.write_text(source)
    with pytest.raises(UserError) as info:
        lift_file(path)
    err = info.value
    assert message in err.message
    assert err.file == str(path)
    assert err.line == line
    if col is not None:
        assert err.col == col
        assert str(err).startswith(f"{path}:{line}:{col}: error: ")


def test_include_is_read_relative_to_the_including_file(tmp_path: Path) -> None:
    (tmp_path / "defs.inc").write_text(".macro twice r\n add \\r, \\r, \\r\n.endm\n")
    prog = lift(tmp_path, """
        .include "defs.inc"
        twice x3
    """)
    assert text(prog) == ["add x3, x3, x3"]
    assert prog.sections[".text"].items[0].src.asm_file == str(tmp_path / "defs.inc")
    with pytest.raises(UserError, match="cannot find include file"):
        lift(tmp_path, '.include "missing.inc"\n')


def test_bundled_subjects_lift_and_differ_only_in_kernel_exit() -> None:
    root = Path(__file__).resolve().parents[1] / "asm"
    ok, bad = lift_file(root / "entry-ok.s"), lift_file(root / "entry-bad.s")
    ok_ops = [i.insn.mnemonic for i in ok.sections[".entry.text"].items]
    bad_ops = [i.insn.mnemonic for i in bad.sections[".entry.text"].items]
    assert ok_ops != bad_ops
    assert sorted(ok_ops) == sorted(bad_ops)  # the same instructions, in another order


def test_inst_branch_target_is_relative_to_its_final_offset(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
        nop
        nop
        .inst 0x14000002    // b . + 8
    """)
    assert insns(prog)[2].operands == (Addr(Loc(".text", 16)),)


def test_gcc_condition_spelling_is_a_branch(tmp_path: Path) -> None:
    prog = lift(tmp_path, """
    .L1:
        beq .L1
    """)
    assert insns(prog)[0].operands == (Addr(Loc(".text", 0)),)


def test_clang_line_tables_give_source_lines(tmp_path: Path) -> None:
    """clang -gline-tables-only: `.file N "dir" "path"` and `.loc N LINE` name each instruction's C line (the
    tree-relative path, as gcc's comments give it); line 0 is no line; the empty .debug_line keeps its label."""
    tree = tmp_path / "linux"
    path = tmp_path / "build" / "arch" / "arm64" / "kernel" / "entry-common.s"
    path.parent.mkdir(parents=True)
    path.write_text(textwrap.dedent(f"""\
        \t.text
        \t.file\t0 "{tmp_path}/build" "{tree}/arch/arm64/kernel/entry-common.c" md5 0x1
        \t.file\t1 "{tmp_path}" "linux/arch/arm64/kernel/entry-common.c" md5 0x1
        \t.file\t2 "{tmp_path}" "linux/arch/arm64/include/asm/irqflags.h" md5 0x2
        f:
        \t.loc\t1 190 0 prologue_end
        \tnop
        \t.loc\t2 57 3 is_stmt 0
        \tmsr\tdaifset, #3
        \t.loc\t1 0 0
        \tret
        \t.section\t.debug_line,"",@progbits
        .Lline_table_start0:
    """))
    prog = lift_file(path, root=str(tree))
    first, second, third = prog.sections[".text"].items
    assert (first.src.file, first.src.line) == ("arch/arm64/kernel/entry-common.c", 190)
    assert (second.src.file, second.src.line) == ("arch/arm64/include/asm/irqflags.h", 57)
    assert third.src.line != 0
    assert prog.symbols[".Lline_table_start0"].loc == Loc(".debug_line", 0)
    assert "f" in Image.link([prog]).locals[0]  # linking places the label's section too
