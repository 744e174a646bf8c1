"""Seeded defects in a copy of the newest tree (Debian 7.3): one per built-in obligation and one per rule of
the proposed policy, each caught in the slot (and exception class) it breaks; and two edits that keep the
behaviour, which change no verdict. Each case proves one slot, with --ec where a synchronous slot's class is
known, against the unedited tree's verdicts of the same slot."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tree_edits import edit, linked_copy

from verifier.cli.main import main

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "proofs" / "policies" / "proposed-2020.policy"
VERSION = "7.3"
ENTRY = "arch/arm64/kernel/entry.S"
COMMON = "arch/arm64/kernel/entry-common.c"
ASSEMBLER = "arch/arm64/include/asm/assembler.h"
SPSR = "\tmsr\tspsr_el1, x22\n"

# (the obligation or rule it breaks, slot, exception classes, file, text, replacement)
SEEDED = [
    # an interrupt can be taken between the writes of ELR/SPSR and the eret that consumes them
    ("eret-integrity", "el1h_irq", [], ENTRY, SPSR, SPSR + "\tmsr\tdaifclr, #2\n"),
    # the return to user no longer re-arms MDSCR_EL1.SS for a stepped task
    ("ss-restored", "el0_64_irq", [], ENTRY, "\tenable_step_tsk x19, x2\n", "\n"),
    # ELR and SPSR swapped
    ("d-restored", "el1h_irq", [], ENTRY, "\tmsr\telr_el1, x21\t\t\t// set up the return data\n" + SPSR,
     "\tmsr\telr_el1, x22\t\t\t// set up the return data\n\tmsr\tspsr_el1, x21\n"),
    # an EL1 interrupt handled with I unmasked and D masked
    ("daif-order", "el1h_irq", [], COMMON, "\twrite_sysreg(DAIF_PROCCTX_NOIRQ, daif);",
     "\twrite_sysreg(PSR_D_BIT, daif);"),
    # SS cleared on entry from a stepped task without the isb before D is unmasked
    ("mdscr-sync", "el0_64_irq", [], ASSEMBLER,
     "\tmsr\tmdscr_el1, \\tmp\n\tisb\t// Take effect before a subsequent clear of DAIF.D\n",
     "\tmsr\tmdscr_el1, \\tmp\n"),
    # R1: a data abort's handler called before D is unmasked
    ("R1", "el0_64_sync", [0x24], COMMON, "\tlocal_daif_restore(DAIF_PROCCTX);\n\tdo_mem_abort(far, esr, regs);\n"
     "\tarm64_exit_to_user_mode(regs);", "\tdo_mem_abort(far, esr, regs);\n\tarm64_exit_to_user_mode(regs);"),
    # R2: a BRK from user space handled with I masked
    ("R2", "el0_64_sync", [0x3C], COMMON, "\tlocal_daif_restore(DAIF_PROCCTX);\n\tdo_el0_brk64(",
     "\tlocal_daif_restore(DAIF_PROCCTX_NOIRQ);\n\tdo_el0_brk64("),
    # R3: an EL1 data abort no longer inherits the interrupted context's D
    ("R3", "el1h_sync", [0x25], COMMON, "\tlocal_daif_inherit(regs);\n\tdo_mem_abort(", "\tdo_mem_abort("),
    # R4: I unmasked while handling an EL1 interrupt
    # (R4 itself already fails on 7.3, at the SS stash: the seed is caught by its handler rule)
    ("R4-handler", "el1h_irq", [], COMMON, "\twrite_sysreg(DAIF_PROCCTX_NOIRQ, daif);",
     "\twrite_sysreg(DAIF_PROCCTX, daif);"),
    # R5: D and I unmasked in an EL1 BRK
    ("R5", "el1h_sync", [0x3C], COMMON, "\tdebug_exception_enter(regs);\n\tdo_el1_brk64(",
     "\tdebug_exception_enter(regs);\n\tlocal_daif_restore(DAIF_PROCCTX);\n\tdo_el1_brk64("),
]

PRESERVING = [
    ("duplicated-mask", "el1h_irq", COMMON, "\twrite_sysreg(DAIF_PROCCTX_NOIRQ, daif);",
     "\twrite_sysreg(DAIF_PROCCTX_NOIRQ, daif);\n\twrite_sysreg(DAIF_PROCCTX_NOIRQ, daif);"),
    ("extra-isb", "el0_64_irq", ENTRY, SPSR, SPSR + "\tisb\n"),
]


@pytest.fixture(scope="module")
def tree_copy(kernel_tree: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the tree made of symbolic links; the tests replace the one file they edit."""
    base = tmp_path_factory.mktemp("tree7")
    yield linked_copy(kernel_tree(VERSION), base)
    shutil.rmtree(base, ignore_errors=True)


def prove(tree: Path, tmp: Path, vector: str, ecs: list[int]) -> dict[tuple[str, str], set[str]]:
    out = tmp / f"r{len(list(tmp.glob('r*.json')))}.json"
    # the seeded defects are in the entry code: the contracts are trusted (their checks have their own tests)
    args = ["kernel", "--tree", str(tree), "--trust-contracts", "--work-dir", str(tmp / "build"),
            "--policy", str(POLICY), "--vector", vector, "--format", "json", "-o", str(out),
            *(f"--ec={ec}" for ec in ecs)]
    main(args)
    verdicts: dict[tuple[str, str], set[str]] = {}
    for r in json.loads(out.read_text())["results"]:
        verdicts.setdefault((r.get("rule") or r["property"], r["vector"]), set()).add(r["verdict"])
    return verdicts


def test_seeded_defects_are_caught_and_preserving_edits_change_nothing(
        kernel_tree: Callable[[str], Path], tree_copy: Path, tmp_path: Path) -> None:
    original = kernel_tree(VERSION)
    baselines: dict[tuple[str, tuple[int, ...]], dict[tuple[str, str], set[str]]] = {}

    def baseline(vector: str, ecs: list[int]) -> dict[tuple[str, str], set[str]]:
        key = (vector, tuple(ecs))
        if key not in baselines:
            baselines[key] = prove(tree_copy, tmp_path, vector, ecs)
        return baselines[key]

    missed = []
    for prop, vector, ecs, relative, old, new in SEEDED:
        before = baseline(vector, ecs)
        assert "VIOLATED" not in before.get((prop, vector), set()), (prop, vector, before)
        edit(tree_copy, original, relative, old, new)
        after = prove(tree_copy, tmp_path, vector, ecs)
        edit(tree_copy, original, relative)
        if "VIOLATED" not in after.get((prop, vector), set()):
            missed.append((prop, vector, after))
    assert not missed, missed
    for _name, vector, relative, old, new in PRESERVING:
        edit(tree_copy, original, relative, old, new)
        after = prove(tree_copy, tmp_path, vector, [])
        edit(tree_copy, original, relative)
        assert after == baseline(vector, [])
    # the copy's edits never reached the real tree
    assert "enable_step_tsk x19, x2" in (original / ENTRY).read_text()
