"""The full proof of a real tree -- `entry-verify kernel` with the proposed 2020 policy, every used contract checked
(the defaults), -j1 -- by this checkout and by a baseline revision of the tool, side by side in one run, median of
N runs each, both cold: each run gets a cache of its own for the contract checks (the kernel trees, Kbuild
output and lifted files are shared, as a second run of the command would find them).

The baseline is checked out into a temporary git worktree and run from there with the same interpreter and
packages (`python -m verifier.cli.main`), so only the tool's own code differs.

    .venv/bin/python bench/bench_baseline.py --baseline 9078621 [--repeat 3] [--version 6.1 --version 7.3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import ensure_tree

from verifier.kernel.kbuild import cache_dir

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "proofs" / "policies" / "proposed-2020.policy"
SHARED = ("src", "debs", "configs", "apt", "kbuild", "lift", "lark")  # what a second run would find cached


def cold_cache(into: Path) -> Path:
    """A cache root sharing the trees, builds and lifted files, with no kept contract checks."""
    for name in SHARED:
        if (cache_dir() / name).exists():
            (into / name).symlink_to(cache_dir() / name)
    return into


def run_once(code: Path, tree: Path, out: Path) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(code), "ENTRY_VERIFY_CACHE": str(cold_cache(Path(tmp)))}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "verifier.cli.main", "kernel", "--tree", str(tree), "--policy",
                        str(POLICY), "-j1", "--format", "json", "-o", str(out)], cwd=code, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        return time.perf_counter() - start, json.loads(out.read_text())


def counts(report: dict) -> str:
    verdicts = Counter(r["verdict"] for r in report["results"])
    closed = sum(1 for r in report["results"] if r["verdict"] in ("PROVED", "WAIVED") and not r.get("pending", []))
    return ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())) + (f"; {closed} closed" if
                                                                         "pending" in report["results"][0] else "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", required=True, help="git revision of the tool to compare with")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--version", action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base), args.baseline],
                       check=True)
        try:
            print(f"entry-verify kernel, policy, contracts checked, -j1, cold, median of {args.repeat}: "
                  f"this checkout vs {args.baseline}")
            print(f"{'tree':<6} {'baseline (s)':>13} {'this (s)':>9} {'ratio':>6}  verdicts (baseline | this)")
            for version in args.version or ["6.1", "7.3"]:
                tree = ensure_tree(version)
                times: dict[str, list[float]] = {"baseline": [], "this": []}
                reports: dict[str, dict] = {}
                for _ in range(args.repeat):  # interleaved, so a slower spell of the machine hits both
                    for name, code in (("baseline", base), ("this", ROOT)):
                        seconds, reports[name] = run_once(code, tree, Path(tmp) / f"{name}.json")
                        times[name].append(seconds)
                old, new = statistics.median(times["baseline"]), statistics.median(times["this"])
                print(f"{version:<6} {old:>13.1f} {new:>9.1f} {new / old:>5.2f}x  "
                      f"{counts(reports['baseline'])} | {counts(reports['this'])}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False)


if __name__ == "__main__":
    main()
