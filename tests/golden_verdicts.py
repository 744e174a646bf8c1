"""Verdicts recorded before a change that must not alter them, and the comparison with today's.

`python tests/golden_verdicts.py` (with the kernel trees cached) records, into tests/golden/:
- `linux-VERSION.json` and `linux-VERSION-policy.json`: per result of `entry-verify kernel` on the Debian
  tree (defconfig, gcc), its property, rule, vector slot, exception classes, verdict, reason and, for a
  VIOLATED or WAIVED one, where the counterexample fails (function and event);
- `bundled.txt` and `bundled-policy.txt`: the text report of `entry-verify prove` on asm/, with the repository
  path and the timing left out.
Which model the solver picks may differ between runs; what is recorded does not depend on it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from kernel_trees import ensure_tree

from verifier.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
POLICY = ROOT / "proofs" / "policies" / "proposed-2020.policy"
VERSIONS = ("6.1", "6.12")


def verdict_rows(report: dict[str, Any]) -> list[list[Any]]:
    """A report's results as sorted rows that stay equal when only the solver's model differs: one row per
    property, rule, vector slot and verdict with its reason and failing place, listing its exception classes
    (how the results group the classes, by the calls their paths rest on, is not recorded)."""
    rows: dict[str, list[Any]] = {}
    for result in report["results"]:
        failing = (result.get("counterexample") or {}).get("failing") or {}
        where = [failing.get("function"), failing.get("what")] if result["verdict"] in ("VIOLATED", "WAIVED") else []
        row = [result["property"], result.get("rule"), result["vector"], [], result["verdict"], result["reason"], where]
        rows.setdefault(json.dumps(row), row)[3].extend(result["ec"])
    for row in rows.values():
        row[3] = sorted(row[3])
    return sorted(rows.values(), key=json.dumps)


def normalised_text(report: str) -> str:
    """The bundled report without what changes from run to run or checkout to checkout."""
    text = report.replace(str(ROOT) + "/", "")
    return re.sub(r"^(summary: .*) in [0-9.]+s$", r"\1", text, flags=re.M)


def golden_name(version: str, policy: bool) -> str:
    return f"linux-{version}{'-policy' if policy else ''}.json"


def kernel_args(tree: Path, policy: bool) -> list[str]:
    return ["kernel", "--tree", str(tree), *(["--policy", str(POLICY)] if policy else [])]


def bundled_args(policy: bool) -> list[str]:
    # --verbose: every step of each path and every assumption is recorded, not only what the default shows
    return ["prove", "--verbose", *(["--policy", str(POLICY)] if policy else [])]


def record() -> None:
    GOLDEN.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for version in VERSIONS:
            for policy in (False, True):
                out = Path(tmp) / "report.json"
                main([*kernel_args(ensure_tree(version), policy), "--format", "json", "-o", str(out)])
                rows = verdict_rows(json.loads(out.read_text()))
                (GOLDEN / golden_name(version, policy)).write_text(
                    "[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n")
    for policy in (False, True):  # each in a process of its own, as the test runs it
        run = subprocess.run([sys.executable, "-m", "verifier.cli.main", *bundled_args(policy)], capture_output=True,
                             text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, cwd=GOLDEN.parents[1])
        (GOLDEN / f"bundled{'-policy' if policy else ''}.txt").write_text(normalised_text(run.stdout))


if __name__ == "__main__":
    record()
