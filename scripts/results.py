"""Regenerate proofs/results/: `make results` for every tree the tests run, or `scripts/results.py 7.3` for
one (the kernel trees are fetched and cached like the tests')."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from kernel_trees import SUITES, ensure_tree, results_title  # noqa: E402

from verifier.report.results import render  # noqa: E402

POLICY = ROOT / "proofs" / "policies" / "proposed-2020.policy"


def generate(version: str) -> str:
    tree = ensure_tree(version)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        subprocess.run([str(ROOT / ".venv" / "bin" / "entry-verify"), "kernel", "--tree", str(tree), "--policy",
                        str(POLICY), "--format", "json", "-o", str(out)], check=False)
        data = json.loads(out.read_text())
    return render(data, results_title(version))


def main() -> None:
    target = ROOT / "proofs" / "results"
    target.mkdir(exist_ok=True)
    for version in sys.argv[1:] or list(SUITES):
        (target / f"linux-{version}.md").write_text(generate(version))
        print(f"wrote {target / f'linux-{version}.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
