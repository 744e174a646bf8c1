"""The verdicts recorded in tests/golden/ before the move to one package per stage stay what they were:
the Debian 6.1 and 6.12 trees with and without the proposed policy, and the bundled subjects' report."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from golden_verdicts import GOLDEN, VERSIONS, bundled_args, golden_name, kernel_args, normalised_text, verdict_rows

from verifier.cli.main import main


@pytest.mark.kernel
@pytest.mark.parametrize("policy", [False, True], ids=["obligations", "policy"])
@pytest.mark.parametrize("version", VERSIONS)
def test_kernel_verdicts_are_the_recorded_ones(kernel_tree: Callable[[str], Path], tmp_path: Path, version: str,
                                               policy: bool) -> None:
    out = tmp_path / "report.json"
    main([*kernel_args(kernel_tree(version), policy), "--format", "json", "-o", str(out)])
    recorded = json.loads((GOLDEN / golden_name(version, policy)).read_text())
    assert verdict_rows(json.loads(out.read_text())) == recorded


@pytest.mark.parametrize("policy", [False, True], ids=["obligations", "policy"])
def test_bundled_report_is_the_recorded_one(capsys: pytest.CaptureFixture[str], policy: bool) -> None:
    main(bundled_args(policy))
    name = f"bundled{'-policy' if policy else ''}.txt"
    assert normalised_text(capsys.readouterr().out) == (GOLDEN / name).read_text()
