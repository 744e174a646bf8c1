"""A series run on a git repository made from the Debian 6.1 tree (three commits on the base: one touches no
lifted file, one breaks ss-restored, one fixes it), median of N runs each:

  cold -j1   no cached results or build memo (the scratch clone and its build dir stay): checkout, Kbuild,
             and every slot proof in one process -- the baseline
  cold -jN   the same with N worker processes
  warm       everything cached: what a second run, or a CI re-run, costs

    .venv/bin/python bench/bench_series.py [--repeat 3] [--jobs 2] [--all-slots]

By default four vector slots (two from EL1, two from EL0) keep the cold runs short; --all-slots runs all 16.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (puts tests/ on the path)
from kernel_repos import commit_edits, git, user_repo

ENTRY = "arch/arm64/kernel/entry.S"
REARM = "\tldr\tx19, [tsk, #TSK_TI_FLAGS]\t// re-check for single-step\n\tenable_step_tsk x19, x2\n"
NO_REARM = "\tldr\tx19, [tsk, #TSK_TI_FLAGS]\t// re-check for single-step\n"
SLOTS = ["el1h_irq", "el1h_sync", "el0_64_irq", "el0_64_fiq"]


def run(repo: Path, cache: Path, jobs: int, slots: list[str]) -> float:
    vectors = [arg for slot in slots for arg in ("--vector", slot)]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "verifier.cli.main", "series", "--tree", str(repo), "--range",
                             "base..series", "--cache-dir", str(cache), "-j", str(jobs), "--format", "json",
                             "-o", str(cache / "out.json"), *vectors], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode not in (0, 1):
        raise SystemExit(result.stderr)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--all-slots", action="store_true")
    args = parser.parse_args()
    slots = [] if args.all_slots else SLOTS
    with tempfile.TemporaryDirectory(prefix="bench-series-") as tmp_name:
        tmp = Path(tmp_name)
        repo = user_repo(tmp, "6.1")
        base = git(repo, "rev-parse", "base")
        first = commit_edits(repo, base, {"README": [("Linux kernel", "The Linux kernel")]}, "README", "series")
        second = commit_edits(repo, first, {ENTRY: [(REARM, NO_REARM)]}, "break", "series")
        commit_edits(repo, second, {ENTRY: [(NO_REARM, REARM)]}, "fix", "series")
        cache = tmp / "cache"
        run(repo, cache, args.jobs, slots)  # the scratch clone, its checkout and build dir, once

        def cold(jobs: int) -> float:
            for part in ("results", "built"):
                shutil.rmtree(cache / part, ignore_errors=True)
            return run(repo, cache, jobs, slots)

        timings: dict[str, list[float]] = {"cold -j1": [], f"cold -j{args.jobs}": [], "warm": []}
        for _ in range(args.repeat):
            timings["cold -j1"].append(cold(1))
            timings[f"cold -j{args.jobs}"].append(cold(args.jobs))
            timings["warm"].append(run(repo, cache, args.jobs, slots))
    baseline = statistics.median(timings["cold -j1"])
    what = "all 16 slots" if args.all_slots else f"{len(slots)} slots"
    print(f"series of 3 commits on Debian 6.1 ({what}), median of {args.repeat}; baseline cold -j1")
    print(f"{'run':<10} {'seconds':>8} {'speedup':>8}")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"{name:<10} {median:>8.2f} {baseline / median:>7.1f}x", flush=True)


if __name__ == "__main__":
    main()
