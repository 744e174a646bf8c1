"""Any tree, older than the contracts and bindings were written against: a copy of 5.10 whose Makefile calls
it 5.4 gets the verdicts the pristine tree gets (no version floor refuses it, nothing is bound by the number
alone that the tree's code does not bear out)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from tree_edits import edit, linked_copy

from verifier.cli.main import main

pytestmark = pytest.mark.kernel

POLICY = Path(__file__).resolve().parents[1] / "proofs" / "policies" / "proposed-2020.policy"


def cells(report: dict) -> dict[tuple[str, str, str | None, int], str]:
    return {(r["vector"], r["property"], r.get("rule"), ec): r["verdict"]
            for r in report["results"] for ec in (r.get("ec") or [-1])}


def test_a_tree_that_calls_itself_5_4_gets_the_verdicts_of_5_10(kernel_tree: Callable[[str], Path],
                                                                  kernel_report: Callable[..., dict],
                                                                  tmp_path: Path) -> None:
    original = kernel_tree("5.10")
    copy = linked_copy(original, tmp_path)
    makefile = (original / "Makefile").read_text()
    assert "\nPATCHLEVEL = 10\n" in makefile
    edit(copy, original, "Makefile", "\nPATCHLEVEL = 10\n", "\nPATCHLEVEL = 4\n")
    out = tmp_path / "report.json"
    status = main(["kernel", "--tree", str(copy), "--work-dir", str(tmp_path / "build"), "--policy", str(POLICY),
                   "--format", "json", "-o", str(out)])
    report = json.loads(out.read_text())
    assert status != 2
    assert any(line.startswith("build: version 5.4.") for line in report["assumptions"]), "which tree it proved"
    assert any("applies >= 5.10" in line for line in report["assumptions"]), "and which range the contracts name"
    assert cells(report) == cells(kernel_report("5.10"))
