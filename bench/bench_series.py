"""A series run on a git repository made from the Debian 6.1 tree (three commits on the base: one touches no
lifted file, one breaks ss-restored, one fixes it), median of N runs each:

  cold -j1   no cached results or build memo (the scratch clone and its build dir stay): checkout, Kbuild,
             and every slot proof in one process -- the baseline
  cold -jN   the same with N worker processes
  warm       everything cached: what a second run, or a CI re-run, costs

and a commit that changes one C handler (el0_da() in entry-common.c, on the same lines), all 16 slots with the
proposed policy, -jN, each median of N:

  full       that commit proved with nothing cached (its own series, where it is the base; no kept contract
             checks either)
  handler    that commit after its parent's results: only what its change reaches is proved again
  after docs the same change in a commit whose parent only changed the README (served from its own parent's
             results)

Contracts are checked (the series default) in every run.

    .venv/bin/python bench/bench_series.py [--repeat 3] [--jobs 2] [--all-slots]

By default four vector slots (two from EL1, two from EL0) keep the cold runs short; --all-slots runs all 16.
Each run is a fresh `python -m verifier.cli.main` with its bytecode cached (in the bench's own directory), as
an installed tool has it: an environment that says PYTHONDONTWRITEBYTECODE would otherwise add the compiling
of every module (a tenth of a second) to each run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import common  # noqa: F401  (puts tests/ on the path)
from kernel_repos import commit_edits, git, user_repo

from verifier.kernel.kbuild import cache_dir

ENTRY = "arch/arm64/kernel/entry.S"
COMMON = "arch/arm64/kernel/entry-common.c"
POLICY = Path(__file__).resolve().parents[1] / "proofs" / "policies" / "proposed-2020.policy"
DA_DAIF = ("el0_da(struct pt_regs *regs, unsigned long esr)\n{\n\tunsigned long far = read_sysreg(far_el1);\n\n"
           "\tenter_from_user_mode(regs);\n\tlocal_daif_restore(DAIF_PROCCTX);",
           "el0_da(struct pt_regs *regs, unsigned long esr)\n{\n\tunsigned long far = read_sysreg(far_el1);\n\n"
           "\tenter_from_user_mode(regs);\n\tlocal_daif_restore(DAIF_PROCCTX_NOIRQ);")
REARM = "\tldr\tx19, [tsk, #TSK_TI_FLAGS]\t// re-check for single-step\n\tenable_step_tsk x19, x2\n"
NO_REARM = "\tldr\tx19, [tsk, #TSK_TI_FLAGS]\t// re-check for single-step\n"
SLOTS = ["el1h_irq", "el1h_sync", "el0_64_irq", "el0_64_fiq"]


SHARED = ("src", "debs", "configs", "apt", "kbuild", "lift", "lark")  # kept; contract checks are not


def cold_checks(into: Path) -> Path:
    """A cache root sharing the trees, builds and lifted files, with no kept contract checks."""
    into.mkdir(parents=True, exist_ok=True)
    for name in SHARED:
        if (cache_dir() / name).exists() and not (into / name).exists():
            (into / name).symlink_to(cache_dir() / name)
    shutil.rmtree(into / "checks", ignore_errors=True)
    return into


@dataclass(frozen=True)
class Where:
    """The repository, the series' cache, and the cache root (None: the default, with its kept checks)."""

    repo: Path
    cache: Path
    root: Path | None = None


def run(where: Where, jobs: int, slots: list[str], span: str = "base..series", *extra: str) -> float:
    repo, cache, root = where.repo, where.cache, where.root
    vectors = [arg for slot in slots for arg in ("--vector", slot)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if root is not None:
        env["ENTRY_VERIFY_CACHE"] = str(root)
    env["PYTHONPYCACHEPREFIX"] = str(repo.parent / "pycache")
    cache.mkdir(parents=True, exist_ok=True)  # -o is checked before any work: its directory must be there
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "verifier.cli.main", "series", "--tree", str(repo), "--range",
                             span, "--cache-dir", str(cache), "-j", str(jobs), "--format", "json",
                             "-o", str(cache / "out.json"), *vectors, *extra], capture_output=True, text=True,
                            env=env)
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
        run(Where(repo, cache), args.jobs, slots)  # the scratch clone, its checkout and build dir, once

        def cold(jobs: int) -> float:
            for part in ("results", "built"):
                shutil.rmtree(cache / part, ignore_errors=True)
            return run(Where(repo, cache), jobs, slots)

        timings: dict[str, list[float]] = {"cold -j1": [], f"cold -j{args.jobs}": [], "warm": []}
        for _ in range(args.repeat):
            timings["cold -j1"].append(cold(1))
            timings[f"cold -j{args.jobs}"].append(cold(args.jobs))
            timings["warm"].append(run(Where(repo, cache), args.jobs, slots))
        handler = commit_edits(repo, base, {COMMON: [DA_DAIF]}, "el0_da", "handler")
        commit_edits(repo, handler, {"README": [("Linux kernel", "The Linux kernel")]}, "README", "after")
        docs = commit_edits(repo, base, {"README": [("Linux kernel", "The Linux kernel")]}, "README", "docs")
        commit_edits(repo, docs, {COMMON: [DA_DAIF]}, "el0_da", "docs-handler")
        policy = ("--policy", str(POLICY))
        full_cache, step_cache, docs_cache = tmp / "full", tmp / "step", tmp / "docs"
        run(Where(repo, full_cache), args.jobs, [], "handler..after", *policy)  # builds and snapshots, once
        run(Where(repo, step_cache), args.jobs, [], "base..handler", *policy)
        run(Where(repo, docs_cache), args.jobs, [], "base..docs-handler", *policy)
        handler_key = docs_key = None
        for _ in range(args.repeat):
            shutil.rmtree(full_cache / "results", ignore_errors=True)
            timings.setdefault("full", []).append(run(Where(repo, full_cache, cold_checks(tmp / "cold-root")),
                                                      args.jobs, [], "handler..after", *policy))
            for name, cache, span in (("handler", step_cache, "base..handler"),
                                      ("after docs", docs_cache, "base..docs-handler")):
                keys = {p.name for p in (cache / "results").iterdir()}
                newest = _newest(cache / "results")
                if name == "handler":
                    handler_key = handler_key or newest
                    drop = handler_key
                else:
                    docs_key = docs_key or newest
                    drop = docs_key
                shutil.rmtree(cache / "results" / drop, ignore_errors=True)
                timings.setdefault(name, []).append(run(Where(repo, cache), args.jobs, [], span, *policy))
                assert {p.name for p in (cache / "results").iterdir()} == keys
    baseline = statistics.median(timings["cold -j1"])
    what = "all 16 slots" if args.all_slots else f"{len(slots)} slots"
    print(f"series of 3 commits on Debian 6.1 ({what}), median of {args.repeat}; baseline cold -j1")
    print(f"{'run':<10} {'seconds':>8} {'speedup':>8}")
    for name, values in timings.items():
        if name in ("full", "handler", "after docs"):
            continue
        median = statistics.median(values)
        print(f"{name:<10} {median:>8.2f} {baseline / median:>7.1f}x", flush=True)
    full, step = statistics.median(timings["full"]), statistics.median(timings["handler"])
    after_docs = statistics.median(timings["after docs"])
    print(f"one C handler changed (el0_da), 16 slots, policy, contracts checked, -j{args.jobs}: full {full:.2f} s, "
          f"after its parent {step:.2f} s = {step / full:.3f}x of the full proof; after a docs-only parent "
          f"{after_docs:.2f} s = {after_docs / full:.3f}x", flush=True)


def _newest(results: Path) -> str:
    """The results directory written last: the handler commit's (the base's came first)."""
    return max(results.iterdir(), key=lambda p: p.stat().st_mtime).name


if __name__ == "__main__":
    main()
