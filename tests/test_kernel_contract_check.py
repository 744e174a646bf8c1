"""Contract checking on real trees: defects seeded inside a callee (do_sp_pc_abort() in arch/arm64/mm/fault.c,
which entry-common.c calls for a PC or SP alignment fault) turn its contract VIOLATED, with a counterexample
in fault.c, and the slot that rested on it is proved again through fault.c's code (never PROVED on the false
summary): a defect the obligations see (the saved D bit set, MDSCR_EL1.SS set) is VIOLATED there, confirmed
on Unicorn; an edit that keeps the contract changes nothing. In copies of the 6.1 and 7.3 trees, each built
in its own build dir."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tree_edits import edit, linked_copy

from verifier.cli.main import main
from verifier.engine.image import Image
from verifier.proof.check_store import CheckStore, Kept

pytestmark = pytest.mark.kernel

FAULT = "arch/arm64/mm/fault.c"
CALL = '\tarm64_notify_die("SP/PC alignment exception", regs, SIGBUS, BUS_ADRALN,\n\t\t\t addr, esr);\n'
PC_ALIGN = 0x22

# (what, the vector that calls it with DAIF such that the defect shows, the edit after the call, the obligation
# the defect breaks once the slot runs through fault.c's code, if any)
SEEDED = [
    ("daif", "el0_64_sync", "\tlocal_daif_mask();\n", None),  # returns with DAIF masked (called with it clear)
    # briefly unmasks D, then puts DAIF back (el1_pc calls it with the interrupted context's DAIF, D masked
    # among them)
    ("unmasks", "el1h_sync",
     '\tasm volatile("mrs x9, daif\\n\\tmsr daifclr, #8\\n\\tmsr daif, x9" ::: "x9", "memory");\n', None),
    # sets SS (bit 0): the return to user space leaves it set for a task not being stepped
    ("mdscr", "el0_64_sync", "\twrite_sysreg(read_sysreg(mdscr_el1) | 1, mdscr_el1);\n", "ss-restored"),
    # sets the saved PSTATE's D bit: the eret returns to user space with debug exceptions masked
    ("writes", "el0_64_sync", "\tregs->pstate |= PSR_D_BIT;\n", "d-restored"),
]
# masks everything and puts DAIF back: the contract still holds
PRESERVING = "\t{\n\t\tunsigned long flags = local_daif_save();\n\n\t\tlocal_daif_restore(flags);\n\t}\n"


@pytest.fixture(scope="module", params=["6.1", "7.3"])
def tree_copy(request: pytest.FixtureRequest, kernel_tree: Callable[[str], Path],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    version = request.param
    base = tmp_path_factory.mktemp(f"tree-contracts-{version}")
    yield version, linked_copy(kernel_tree(version), base), base / "build"
    shutil.rmtree(base, ignore_errors=True)


def prove(tree: Path, build: Path, vector: str) -> dict:
    out = build.parent / f"report-{len(list(build.parent.glob('report-*.json')))}.json"
    main(["kernel", "--tree", str(tree), "--work-dir", str(build), "--check-contracts", "--vector", vector,
          f"--ec={PC_ALIGN:#x}", "--format", "json", "-o", str(out)])
    return json.loads(out.read_text())


def contract(report: dict, name: str = "do_sp_pc_abort") -> dict:
    return next(c for c in report["contracts"] if c["function"] == name)


def test_defects_inside_a_callee_are_caught_through_its_contract(
        tree_copy: tuple[str, Path, Path], kernel_tree: Callable[[str], Path]) -> None:
    version, tree, build = tree_copy
    original = kernel_tree(version)
    baseline: dict[str, dict] = {}
    edit(tree, original, FAULT)  # unedited, but a file of the copy: the edits below then rebuild it
    for vector in ("el0_64_sync", "el1h_sync"):
        baseline[vector] = prove(tree, build, vector)
        assert contract(baseline[vector])["verdict"] == "PROVED", contract(baseline[vector])
        assert contract(baseline[vector])["source"] == FAULT
        assert {r["verdict"] for r in baseline[vector]["results"]} <= {"PROVED", "WAIVED"}
    for part, vector, seeded, breaks in SEEDED:
        edit(tree, original, FAULT, CALL, CALL + seeded)
        report = prove(tree, build, vector)
        found = contract(report)
        assert found["verdict"] == "VIOLATED", (part, found)
        cex = found["counterexample"]
        assert cex["part"] == f"contract:{part}"
        assert any(step["file"].endswith(FAULT) for step in cex["trace"]), part
        # proved again through fault.c: no verdict rests on the false summary
        assert any(line.startswith("followed: contract do_sp_pc_abort is violated by its code")
                   for line in report["assumptions"]), part
        assert report["results"] and not any("do_sp_pc_abort" in r["rests_on"] for r in report["results"]), part
        assert not any("rests on the contract" in r["reason"] for r in report["results"]), part
        violated = [r for r in report["results"] if r["verdict"] == "VIOLATED"]
        broken = {r["property"] for r in violated}  # setting SS without an isb breaks mdscr-sync as well
        assert (breaks in broken) if breaks else not broken, (part, broken)
        for result in violated:
            assert result["counterexample"]["unicorn"]["reproduced"], result["counterexample"]["unicorn"]
            assert any(step["file"].endswith(FAULT) for step in result["counterexample"]["trace"]), part
    edit(tree, original, FAULT, CALL, CALL + PRESERVING)
    for vector in ("el0_64_sync", "el1h_sync"):
        report = prove(tree, build, vector)
        assert contract(report)["verdict"] == "PROVED"
        assert [(r["property"], r["verdict"]) for r in report["results"]] == \
            [(r["property"], r["verdict"]) for r in baseline[vector]["results"]]
    assert not (original / FAULT).is_symlink() and "local_daif_save" not in (original / FAULT).read_text()


def test_a_kept_check_is_read_back_only_while_its_code_is_unchanged(
        tree_copy: tuple[str, Path, Path], kernel_tree: Callable[[str], Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A second run reads every check and derivation back (same report); an edit inside do_sp_pc_abort() that
    keeps its contract checks that function again and reads the others back."""
    version, tree, build = tree_copy
    original = kernel_tree(version)
    edit(tree, original, FAULT)
    made: list[str] = []  # checks and derivations made (explored, then kept)
    read: list[str] = []  # read back

    def what(kept: Kept) -> str:
        return f"derived {kept.check['derived']}" if "derived" in kept.check else kept.check["function"]

    real_get, real_put = CheckStore.get, CheckStore.put

    def get(self: CheckStore, key: str, image: Image) -> Kept | None:
        kept = real_get(self, key, image)
        if kept is not None:
            read.append(what(kept))
        return kept

    def put(self: CheckStore, key: str, kept: Kept, image: Image, functions: set[str]) -> None:
        made.append(what(kept))
        real_put(self, key, kept, image, functions)

    monkeypatch.setattr(CheckStore, "get", get)
    monkeypatch.setattr(CheckStore, "put", put)
    first = prove(tree, build, "el0_64_sync")
    assert "do_sp_pc_abort" in made and any(m.startswith("derived ") for m in made) and read == []
    kept = sorted(made)
    made.clear()
    again = prove(tree, build, "el0_64_sync")
    assert made == [] and sorted(read) == kept
    assert again["contracts"] == first["contracts"]
    assert [r["verdict"] for r in again["results"]] == [r["verdict"] for r in first["results"]]
    read.clear()
    edit(tree, original, FAULT, CALL, CALL + PRESERVING)
    edited = prove(tree, build, "el0_64_sync")
    assert made == ["do_sp_pc_abort"] and sorted(read) == sorted(set(kept) - {"do_sp_pc_abort"})
    assert contract(edited)["verdict"] == "PROVED"
    edit(tree, original, FAULT)
