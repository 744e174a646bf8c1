"""The acceptance check of the front end on the real kernel: Kbuild's assembly of entry.S,
entry-common.c and debug-monitors.c from the Debian 5.10, 6.1, 6.12, 7.2 and 7.3 trees lifts to exactly
what the build's assembler puts in the object, instruction by instruction, alternatives included: GNU as
for the GCC builds, LLVM's integrated assembler for 6.12 and 7.3 built with LLVM=-19 (whose .s GNU as
rejects: `.addrsig`)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from verifier.frontend.assembler import lift_file
from verifier.kernel.cmdfile import assembler_for
from verifier.objfront.assemblers import assemble
from verifier.objfront.crosscheck import compare_programs, crosscheck_file
from verifier.objfront.lift import lift_object

pytestmark = pytest.mark.kernel

# the generic entry code is lifted where the tree's entry runs through it (7.x); elsewhere the case skips
FILES = ["entry.S", "entry-common.c", "debug-monitors.c", "kernel/entry/common.c"]
BUILDS = [("5.10", None), ("6.1", None), ("6.12", None), ("7.2", None), ("7.3", None),
          pytest.param("6.12", "-19", id="6.12-llvm-19"), pytest.param("7.3", "-19", id="7.3-llvm-19")]
@pytest.mark.parametrize(("version", "llvm"), BUILDS)
@pytest.mark.parametrize("source", FILES)
def test_lark_lift_agrees_with_the_assembler(kernel_asm: Callable[..., dict[str, Path]], version: str,
                                             llvm: str | None, source: str) -> None:
    if source not in kernel_asm(version, llvm):
        pytest.skip(f"{version} does not run through {source}")
    asm = kernel_asm(version, llvm)[source]
    assembler = assembler_for(asm)  # as `entry-verify crosscheck` picks it: from the build's .cmd file
    assert assembler.kind == ("clang" if llvm else "gnu"), assembler.describe()
    report = crosscheck_file(asm, assembler)

    first = [f"{d.section}+{d.offset:#x}: {d.render(d.lark, d.lark_cover)} / {d.render(d.obj)}"
             for s in report.sections for d in s.differences[:3]]
    assert report.ok, "\n".join(first)
    assert report.sections, "no code section compared"
    for section in report.sections:
        # every code section: same instruction count as the object, and all of them agree
        assert section.lark_count == section.obj_count == section.agree > 0, section
    lark = lift_file(asm)
    assert not [i for s in lark.sections.values() for i in s.items if i.kind == "undecoded"]

    # the alternative sites the engine will branch on are the object's records, one for one
    with tempfile.TemporaryDirectory() as tmp:
        obj = lift_object(assemble(asm, Path(tmp) / "out.o", assembler))
    strip = [replace(site, src=None) for site in lark.alternatives]
    assert strip == [replace(site, src=None) for site in obj.alternatives]
    if source == "entry.S":
        assert len(lark.alternatives) > 100
        # alternative_cb sites are callbacks on both sides: bit 15 of cpufeature since 6.x, and the record's
        # shape (no replacement, alt_offset at a function) in 5.10, whose ARM64_CB_PATCH is ARM64_NCAPS
        assert any(site.callback for site in lark.alternatives)


def test_crosscheck_catches_a_front_end_mistake(kernel_asm: Callable[[str], dict[str, Path]]) -> None:
    """The comparison is not vacuous: one wrong instruction in the Lark lift is found, at its offset."""
    asm = kernel_asm("6.12")["entry.S"]
    lark = lift_file(asm)
    with tempfile.TemporaryDirectory() as tmp:
        obj = lift_object(assemble(asm, Path(tmp) / "out.o"))
    text = lark.sections[".entry.text"]
    target = next(i for i in text.items if i.insn is not None and i.insn.mnemonic == "eret")
    target.insn = replace(target.insn, mnemonic="ret")
    report = compare_programs(str(asm), lark, obj)
    bad = [d for s in report.sections for d in s.differences]
    assert [(d.section, d.offset) for d in bad] == [(".entry.text", target.offset)]
