"""The verdicts recorded in tests/golden/ before the move to one package per stage stay what they were:
the Debian 6.1 and 6.12 trees with and without the proposed policy, and the bundled subjects' report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from golden_verdicts import GOLDEN, VERSIONS, bundled_args, golden_name, normalised_text, verdict_rows


@pytest.mark.kernel
@pytest.mark.parametrize("policy", [False, True], ids=["obligations", "policy"])
@pytest.mark.parametrize("version", VERSIONS)
def test_kernel_verdicts_are_the_recorded_ones(kernel_report: Callable[..., dict], version: str,
                                               policy: bool) -> None:
    # One proof per tree serves both: a policy run's built-in obligations are proved exactly as without the
    # policy (6.1 is also proved without it, which checks that claim).
    alone = not policy and version == VERSIONS[0]
    rows = verdict_rows(kernel_report(version, policy=not alone))
    if not policy:
        rows = [row for row in rows if row[1] is None]
    assert rows == json.loads((GOLDEN / golden_name(version, policy)).read_text())


@pytest.mark.parametrize("policy", [False, True], ids=["obligations", "policy"])
def test_bundled_report_is_the_recorded_one(policy: bool) -> None:
    # in a process of its own: a counterexample's model values depend on what the solver saw before in the
    # process (other tests' proofs), as a fresh run of the command does not
    run = subprocess.run([sys.executable, "-m", "verifier.cli.main", *bundled_args(policy)], capture_output=True,
                         text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, cwd=GOLDEN.parents[1])
    name = f"bundled{'-policy' if policy else ''}.txt"
    assert normalised_text(run.stdout) == (GOLDEN / name).read_text()
