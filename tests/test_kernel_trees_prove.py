"""Every Debian tree from 5.10 to 7.3, with no file in proofs/ written for it: every vector slot and
exception class gets PROVED, WAIVED or VIOLATED for every built-in obligation and every rule of the proposed
policy (no UNKNOWN), and each VIOLATED replays. 6.1 and 6.12 are checked against recorded verdicts in
test_golden_verdicts.py; here the other three, and the seed's bug on 5.10."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from verifier.proof.run import replay_counterexample
from verifier.spec.obligations import OBLIGATIONS
from verifier.spec.slots import ALL_SLOTS

pytestmark = pytest.mark.kernel

RULES = ("R1", "R2", "R3", "R4", "R5")


def unknowns(report: dict) -> list[str]:
    """The UNKNOWN results."""
    return [f"{r['property']} {r['vector']} {r['ec']}: {r['reason']}" for r in report["results"]
            if r["verdict"] == "UNKNOWN"]


@pytest.mark.parametrize("version", ["5.10", "7.2", "7.3"])
def test_every_slot_and_class_has_a_verdict(kernel_report: Callable[..., dict], version: str) -> None:
    report = kernel_report(version)
    # 5.10's do_debug_exception (mm/fault.c) sets the saved D bit for the Cortex-A76 erratum, against its contract:
    # the debug classes are proved through its code, and its call of the debug hook (`inf->fn`) is indirect
    followed = [line for line in report["assumptions"] if line.startswith("followed: contract do_debug_exception")]
    left = [line for line in unknowns(report) if not (followed and "arch/arm64/mm/fault.c" in line)]
    assert not left, "\n".join(left)
    assert bool(followed) == (version == "5.10"), followed
    covered = {(r["property"], r["vector"]) for r in report["results"]}
    for slot in ALL_SLOTS:
        for prop in OBLIGATIONS:
            assert (prop, slot.name) in covered, (prop, slot.name)
    assert {r["property"] for r in report["results"]} >= set(RULES)
    # what the verdicts rest on says what came from the build
    assert any(line.startswith("build: thread flags") for line in report["assumptions"])
    assert any(line.startswith("build: version " + version + ".") for line in report["assumptions"])


@pytest.mark.parametrize("version", ["5.10", "7.2", "7.3"])
def test_each_violation_replays(kernel_report: Callable[..., dict], version: str) -> None:
    for result in kernel_report(version)["results"]:
        if result["verdict"] == "VIOLATED":
            assert replay_counterexample(result["counterexample"]) is not None, (result["property"], result["vector"])


def test_seed_bug_is_found_on_5_10(kernel_report: Callable[..., dict]) -> None:
    """As on 6.1: a BRK from user space reaches do_debug_exception through el0_dbg with PSTATE.I masked."""
    r2 = [r for r in kernel_report("5.10")["results"] if r["property"] == "R2" and r["verdict"] == "VIOLATED"]
    brk = next(r for r in r2 if r["vector"] == "el0_64_sync" and 0x3C in r["ec"])
    cex = brk["counterexample"]
    assert "el0_dbg" in cex["functions"]
    assert cex["failing"]["insn"].endswith("<do_debug_exception>")
    assert "I" in cex["failing"]["daif"]


def test_r4_on_5_10_says_where_in_entry_s(kernel_report: Callable[..., dict]) -> None:
    """5.10 still handles EL1 interrupts in entry.S: el1_irq's el1_interrupt_handler unmasks D, A and F
    (enable_da_f, an assembler.h macro) with MDSCR_EL1.SS as the interrupted context left it, which R4 forbids;
    the verdict names el1_irq and that instruction."""
    r4 = [r for r in kernel_report("5.10")["results"] if r["property"] == "R4" and r["vector"] == "el1h_irq"]
    violated = [r for r in r4 if r["verdict"] == "VIOLATED"]
    assert violated and all(r["verdict"] in ("VIOLATED", "PROVED") for r in r4)
    for result in violated:
        failing = result["counterexample"]["failing"]
        assert failing["function"] == "el1_irq", failing
        assert failing["insn"].startswith("msr daifclr") and "enable_da_f" in failing["macros"], failing
        assert any(step["file"].endswith("entry.S") for step in result["counterexample"]["trace"])


def verdicts_by_class(report: dict) -> set[tuple]:
    return {(r["property"], r.get("rule"), r["vector"], ec, r["verdict"]) for r in report["results"] for ec in r["ec"]}


@pytest.mark.parametrize("version", ["6.12", "7.3"])
def test_clang_builds_get_the_verdicts_of_gcc_builds(kernel_report: Callable[..., dict], version: str) -> None:
    """LLVM=-19 compiles entry-common.c (and 7.x's kernel/entry/common.c) differently (other inlining, other
    registers, LSE atomics), yet every obligation and rule gets the gcc build's verdict for every slot and
    class; the clang build's line tables let the waiver see the inlined Cortex-A76 erratum handler."""
    clang, gcc = kernel_report(version, llvm="-19"), kernel_report(version)
    assert any(line.startswith("build: compiler Debian clang version 19") for line in clang["assumptions"])
    assert any(line.startswith("build: compiler aarch64-linux-gnu-gcc") for line in gcc["assumptions"])
    assert not unknowns(clang), "\n".join(unknowns(clang))
    assert verdicts_by_class(clang) == verdicts_by_class(gcc)
    for result in clang["results"]:
        if result["verdict"] == "VIOLATED":
            assert replay_counterexample(result["counterexample"]) is not None, (result["property"], result["vector"])
