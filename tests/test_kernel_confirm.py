"""On the real 6.1 tree: every counterexample of the vector slots with violations (el0_64_sync's R1/R2 and
mdscr-sync, el1h_irq's R4) is reproduced on Unicorn from the objects the build's assembler makes, and the
verdicts are those of the proof without Unicorn."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from verifier.cli.main import main

pytestmark = pytest.mark.kernel

POLICY = Path(__file__).resolve().parents[1] / "proofs" / "policies" / "proposed-2020.policy"
SLOTS = ("el0_64_sync", "el1h_irq")


def verdicts(data: dict) -> list[tuple]:
    return sorted((r["property"], r.get("rule"), r["vector"], tuple(r["ec"]), r["verdict"]) for r in data["results"]
                  if r["vector"] in SLOTS)


def test_every_counterexample_is_reproduced_on_unicorn(kernel_tree: Callable[[str], Path],
                                                       kernel_report: Callable[..., dict], tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    main(["kernel", "--tree", str(kernel_tree("6.1")), "--policy", str(POLICY), "--trust-contracts",
          *(f"--vector={slot}" for slot in SLOTS), "--format", "json", "-o", str(out)])
    data = json.loads(out.read_text())
    confirmed = [r for r in data["results"] if r.get("counterexample")]
    assert len(confirmed) >= 3
    for result in confirmed:
        unicorn = result["counterexample"]["unicorn"]
        assert unicorn["reproduced"], (result["rule"] or result["property"], unicorn["why"])
    assert verdicts(data) == verdicts(kernel_report("6.1"))
