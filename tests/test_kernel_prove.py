"""The prover on the real Debian 6.1 and 6.12 trees: a verdict for every obligation on every vector slot,
the Cortex-A76 erratum waiver, and seeded defects in a copy of a real tree."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kernel_trees import SUITES, results_title
from tree_edits import edit, linked_copy

from verifier.cli.main import main
from verifier.proof.run import replay_counterexample
from verifier.report.results import render, verdict_lines
from verifier.spec.obligations import OBLIGATIONS
from verifier.spec.slots import ALL_SLOTS
from verifier.spec.versions import version_key

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "proofs" / "policies" / "proposed-2020.policy"


def prove_kernel(tree: Path, tmp: Path, *extra: str, build_dir: Path | None = None) -> dict:
    out = tmp / f"report-{len(list(tmp.iterdir()))}.json"
    # the seeded defects are in the entry code: the contracts are trusted (their checks have their own tests)
    args = ["kernel", "--tree", str(tree), "--trust-contracts", "--format", "json", "-o", str(out), *extra]
    if build_dir is not None:
        args += ["--work-dir", str(build_dir)]
    status = main(args)
    data = json.loads(out.read_text())
    data["status"] = status
    return data


def table(data: dict) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for r in data["results"]:
        out.setdefault((r["property"], r["vector"]), set()).add(r["verdict"])
    return out


@pytest.fixture(scope="module")
def reports(kernel_report: Callable[..., dict]) -> dict[str, dict]:
    return {v: kernel_report(v) for v in ("6.1", "6.12")}


@pytest.mark.parametrize("version", ["6.1", "6.12"])
def test_every_obligation_on_every_slot_has_a_verdict(reports: dict[str, dict], version: str) -> None:
    data = reports[version]
    verdicts = table(data)
    assert {k for k in verdicts if k[0] in OBLIGATIONS} == {(p, s.name) for p in OBLIGATIONS for s in ALL_SLOTS}
    for result in data["results"]:
        # no path left unexplored for want of an instruction's semantics
        assert "no semantics" not in result["reason"], result
        assert "undecoded" not in result["reason"], result
    # every synchronous slot's results cover each of the 64 exception classes exactly once per obligation
    for prop in OBLIGATIONS:
        for slot in ALL_SLOTS:
            covered = [ec for r in data["results"] if r["property"] == prop and r["vector"] == slot.name
                       for ec in r["ec"]]
            assert sorted(covered) == (list(range(64)) if slot.synchronous else [])
    assert data["assumptions"] and any("contracts:" in a for a in data["assumptions"])


@pytest.mark.parametrize("version", ["6.1", "6.12"])
def test_counterexamples_replay(reports: dict[str, dict], version: str) -> None:
    for result in reports[version]["results"]:
        if result.get("counterexample"):
            assert replay_counterexample(result["counterexample"]) is not None, result["reason"]


def test_cortex_a76_erratum_is_waived_with_the_waiver_and_violated_without(
        kernel_tree: Callable[[str], Path], reports: dict[str, dict], tmp_path: Path) -> None:
    waived = [r for r in reports["6.12"]["results"] if r["verdict"] == "WAIVED"]
    assert any(r["property"] == "d-restored" and r["vector"] == "el1h_sync" and 0x33 in r["ec"] for r in waived)
    assert all("1463225" in r["reason"] for r in waived)
    data = prove_kernel(kernel_tree("6.12"), tmp_path, "--waivers", "none", "--vector", "el1h_sync")
    violated = [r for r in data["results"] if r["verdict"] == "VIOLATED"]
    assert [(r["property"], r["ec"]) for r in violated] == [("d-restored", [0x33])]
    functions = violated[0]["counterexample"]["functions"]
    assert "cortex_a76_erratum_1463225_debug_handler" in functions
    assert data["status"] == 1


# ------------------------------------------------------------------------- seeded defects in a copy


@pytest.fixture(scope="module")
def tree_copy(kernel_tree: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the 6.1 tree (symbolic links, except entry.S, which the tests rewrite)."""
    base = tmp_path_factory.mktemp("tree")
    yield linked_copy(kernel_tree("6.1"), base)
    shutil.rmtree(base, ignore_errors=True)


ENTRY = "arch/arm64/kernel/entry.S"


def with_edit(tree: Path, original: Path, old: str, new: str) -> None:
    text = (original / ENTRY).read_text()
    assert old in text, old
    target = tree / ENTRY
    target.unlink()
    target.write_text(text.replace(old, new, 1))


SEEDED = [
    # the return to the kernel no longer masks exceptions before writing SPSR/ELR
    ("eret-integrity", "el1h_irq", "\t.if\t\\el != 0\n\tdisable_daif\n\t.endif\n", "\n"),
    # the return to user no longer re-arms MDSCR_EL1.SS for a stepped task
    ("ss-restored", "el0_64_irq", "\tenable_step_tsk x19, x2\n", "\n"),
    # ELR and SPSR swapped
    ("d-restored", "el1h_irq", "\tmsr\telr_el1, x21\t\t\t// set up the return data\n\tmsr\tspsr_el1, x22\n",
     "\tmsr\telr_el1, x22\t\t\t// set up the return data\n\tmsr\tspsr_el1, x21\n"),
]

PRESERVING = [
    ("duplicated-mask", "\t.if\t\\el != 0\n\tdisable_daif\n\t.endif\n",
     "\t.if\t\\el != 0\n\tdisable_daif\n\tdisable_daif\n\t.endif\n"),
    ("extra-isb", "\tmsr\tspsr_el1, x22\n", "\tmsr\tspsr_el1, x22\n\tisb\n"),
]


def test_seeded_defects_in_a_copy_of_a_real_tree(kernel_tree: Callable[[str], Path], tree_copy: Path,
                                                 reports: dict[str, dict], tmp_path: Path) -> None:
    original = kernel_tree("6.1")
    build = tmp_path / "build"
    baseline = table(reports["6.1"])
    for prop, vector, old, new in SEEDED:
        with_edit(tree_copy, original, old, new)
        data = prove_kernel(tree_copy, tmp_path, "--vector", vector, build_dir=build)
        verdicts = table(data)
        assert "VIOLATED" in verdicts[(prop, vector)], (prop, vector, verdicts)
        assert "VIOLATED" not in baseline[(prop, vector)]
        cex = next(r["counterexample"] for r in data["results"]
                   if r["verdict"] == "VIOLATED" and r["property"] == prop)
        assert cex["failing"]["file"] == ENTRY or cex["failing"]["file"].endswith(".S")
    for _name, old, new in PRESERVING:
        with_edit(tree_copy, original, old, new)
        for vector in ("el1h_irq", "el0_64_irq"):
            data = prove_kernel(tree_copy, tmp_path, "--vector", vector, build_dir=build)
            got = {k: v for k, v in table(data).items() if k[1] == vector}
            assert got == {k: v for k, v in baseline.items() if k[1] == vector and k[0] in OBLIGATIONS}
    # the tree the tests edited is a copy: the real one is untouched
    assert not (original / ENTRY).is_symlink() and "disable_daif" in (original / ENTRY).read_text()


# ------------------------------------------------------------------------------------- the policy


def test_seed_bug_is_found_by_proof_on_6_1(reports: dict[str, dict]) -> None:
    """On 6.1 a BRK from user space reaches do_debug_exception through el0_dbg with PSTATE.I masked."""
    r2 = [r for r in reports["6.1"]["results"] if r["property"] == "R2" and r["verdict"] == "VIOLATED"]
    brk = next(r for r in r2 if r["vector"] == "el0_64_sync" and 0x3C in r["ec"])
    assert brk["policy"] == "proposed-2020"
    cex = brk["counterexample"]
    assert "el0_dbg" in cex["functions"]  # do_debug_exception (mm/fault.c) is not lifted: its call is the event
    assert cex["failing"]["insn"].endswith("<do_debug_exception>")
    assert "I" in cex["failing"]["daif"]  # interrupts masked at the call (upper case = masked)
    assert replay_counterexample(cex) is not None


def test_brk64_and_software_step_from_user_satisfy_r2_on_6_12(reports: dict[str, dict]) -> None:
    r2 = [r for r in reports["6.12"]["results"] if r["property"] == "R2" and r["vector"] == "el0_64_sync"]
    proved = {ec for r in r2 if r["verdict"] == "PROVED" for ec in r["ec"]}
    assert {0x3C, 0x32} <= proved


@pytest.mark.parametrize("version", sorted(SUITES, key=version_key))
def test_results_tables_are_current(kernel_report: Callable[..., dict], version: str) -> None:
    committed = ROOT / "proofs" / "results" / f"linux-{version}.md"
    assert committed.is_file(), "run `make results` and commit"
    current = verdict_lines(render(kernel_report(version), results_title(version)))
    assert verdict_lines(committed.read_text()) == current, "run `make results` and commit"


COMMON = "arch/arm64/kernel/entry-common.c"

POLICY_SEEDED = [
    # a handler called before D is unmasked
    ("R1", "el0_64_sync", "\tenter_from_user_mode(regs);\n\tlocal_daif_restore(DAIF_PROCCTX);\n\tdo_mem_abort(",
     "\tenter_from_user_mode(regs);\n\tdo_mem_abort("),
    # D unmasked in an EL1 debug exception
    ("R5", "el1h_sync", "\tif (!cortex_a76_erratum_1463225_debug_handler(regs))\n\t\tdo_debug_exception(",
     "\tlocal_daif_restore(DAIF_PROCCTX_NOIRQ);\n\tif (!cortex_a76_erratum_1463225_debug_handler(regs))\n"
     "\t\tdo_debug_exception("),
    # I unmasked while handling an EL1 interrupt
    ("R4", "el1h_irq", "\twrite_sysreg(DAIF_PROCCTX_NOIRQ, daif);", "\twrite_sysreg(DAIF_PROCCTX, daif);"),
]


def test_seeded_policy_defects_in_a_copy_of_a_real_tree(kernel_tree: Callable[[str], Path], tree_copy: Path,
                                                        reports: dict[str, dict], tmp_path: Path) -> None:
    original = kernel_tree("6.1")
    build = tmp_path / "build"
    edit(tree_copy, original, ENTRY, None)
    baseline = table(reports["6.1"])
    for rule, vector, old, new in POLICY_SEEDED:
        edit(tree_copy, original, COMMON, old, new)
        data = prove_kernel(tree_copy, tmp_path, "--policy", str(POLICY), "--vector", vector, build_dir=build)
        verdicts = table(data)
        assert "VIOLATED" in verdicts[(rule, vector)], (rule, vector, verdicts)
        before = [r for r in reports["6.1"]["results"] if r["property"] == rule and r["vector"] == vector
                  and r["verdict"] == "VIOLATED"]
        after = [r for r in data["results"] if r["property"] == rule and r["vector"] == vector
                 and r["verdict"] == "VIOLATED"]
        # the defect adds violations (R4 already fails on 6.1, at the SS stash; now the handler runs with I on)
        assert {r.get("rule") for r in after} - {r.get("rule") for r in before} or len(after) > len(before) or (
            sum(len(r["ec"]) for r in after) > sum(len(r["ec"]) for r in before)), (before, after)
    # a behaviour-preserving edit of the C code: a duplicated local_daif_restore
    edit(tree_copy, original, COMMON, "\tlocal_daif_restore(DAIF_PROCCTX);\n\tdo_mem_abort(",
         "\tlocal_daif_restore(DAIF_PROCCTX);\n\tlocal_daif_restore(DAIF_PROCCTX);\n\tdo_mem_abort(")
    data = prove_kernel(tree_copy, tmp_path, "--policy", str(POLICY), "--vector", "el0_64_sync", build_dir=build)
    assert {k: v for k, v in table(data).items() if k[1] == "el0_64_sync"} == {
        k: v for k, v in baseline.items() if k[1] == "el0_64_sync"}
    edit(tree_copy, original, COMMON, None)


ENTER_PROBE = """policy "enter-probe"
role erratum { linux: "cortex_a76_erratum_1463225_debug_handler" }
rule P1 "D unmasked on entering the inlined erratum handler (false: EL1 debug keeps D masked)"
    when sync from el1 ec debug
    at enter erratum
    require D == 0
"""


def test_at_enter_sees_functions_the_compiler_inlined(kernel_tree: Callable[[str], Path],
                                                      tmp_path: Path) -> None:
    """`at enter F` fires at the first instruction of F's code though no call of F exists: 6.1's el1_dbg
    inlines cortex_a76_erratum_1463225_debug_handler (its source lines say so), and the rule fails there."""
    policy = tmp_path / "probe.policy"
    policy.write_text(ENTER_PROBE)
    data = prove_kernel(kernel_tree("6.1"), tmp_path, "--policy", str(policy), "--vector", "el1h_sync",
                        "--ec", "0x33")
    entry_common = next(p for p in data["inputs"] if p["path"].endswith("entry-common.s"))["path"]
    assert "bl\tcortex_a76_erratum_1463225_debug_handler" not in Path(entry_common).read_text()  # inlined
    p1 = next(r for r in data["results"] if r.get("rule") == "P1")
    assert p1["verdict"] == "VIOLATED", p1
    failing = p1["counterexample"]["failing"]
    assert failing["what"] == "P1 fails on entering cortex_a76_erratum_1463225_debug_handler"
    assert "cortex_a76_erratum_1463225_debug_handler" in {
        step.get("source_function") for step in p1["counterexample"]["trace"]}
    assert replay_counterexample(p1["counterexample"]) is not None
