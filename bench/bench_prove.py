"""Full proof of each real tree -- all 16 vector slots, the proposed 2020 policy, every used contract checked
against its callee's code (depth 1) -- next to a Kbuild of the objects it reads, in the same run, -j1 for both,
median of N runs each:

  kbuild entry   the entry objects the slots lift (entry.o, entry-common.o, debug-monitors.o; 7.x: the generic
                 entry code too)
  kbuild +ring   those and the callee ring's objects the contract checks lift (the objects the proof reads)

The proof is cold (every contract checked again, `keep_checks=False`; lifted files come from the lift cache,
as a rebuilt object's headers come from the page cache); `re-run` is the same proof again with the checks
kept from an earlier run (what a developer's second run after an entry.S edit costs).

    .venv/bin/python bench/bench_prove.py [--repeat 5] [--version 6.1 --version 7.3]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from bench_contracts import configs

from verifier.cli.main import GC_THRESHOLDS
from verifier.kernel import kbuild
from verifier.proof.config import ProveConfig
from verifier.proof.run import prove


def objects_of(config: ProveConfig, build_dir: Path) -> list[str]:
    """The .o targets whose assembly the proof reads (the .s files sit beside them in the build dir)."""
    files = [*config.files, *config.callees]
    return [str(Path(os.path.relpath(f, build_dir)).with_suffix(".o")) for f in files]


def build_seconds(tree: Path, build_dir: Path, objects: list[str]) -> float:
    for obj in objects:
        (build_dir / obj).unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "KBUILD_OUTPUT")}
    start = time.perf_counter()
    subprocess.run(["make", "-s", "-C", str(tree), "ARCH=arm64", f"CROSS_COMPILE={kbuild.DEFAULT_CROSS}",
                    f"O={build_dir}", "-j1", *objects], check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--version", action="append", default=[])
    args = parser.parse_args()
    gc.set_threshold(*GC_THRESHOLDS)  # as the command runs
    print(f"full proof (16 slots, policy, contracts checked) vs Kbuild of its objects, -j1, median of {args.repeat}")
    print(f"{'tree':<6} {'prove (s)':>10} {'kbuild entry':>13} {'kbuild +ring':>13} {'ratio':>12} {'re-run':>7}  "
          "verdicts; slowest slots")
    for version in args.version or ["6.1", "7.3"]:
        _, config = configs(version, 1)
        build_dir = config.files[0].parents[3]
        tree = Path(os.path.realpath(build_dir / "source"))
        entry = objects_of(config, build_dir)[:len(config.files)]
        everything = objects_of(config, build_dir)
        proofs, entries, rings, reruns = [], [], [], []
        slots: dict = {}
        verdicts: list[Counter] = []
        prove(config, jobs=1)  # the checks kept for the re-runs
        for _ in range(args.repeat):
            entries.append(build_seconds(tree, build_dir, entry))
            rings.append(build_seconds(tree, build_dir, everything))
            start = time.perf_counter()
            report = prove(replace(config, keep_checks=False), jobs=1)
            proofs.append(time.perf_counter() - start)
            slots = report.stats["slots"]
            verdicts.append(Counter(r.verdict for r in report.results))
            start = time.perf_counter()
            again = prove(config, jobs=1)
            reruns.append(time.perf_counter() - start)
            verdicts.append(Counter(r.verdict for r in again.results))
        if any(v != verdicts[0] for v in verdicts):
            raise SystemExit(f"{version}: the verdicts differ between runs: {verdicts}")
        slowest = sorted(slots.items(), key=lambda kv: -kv[1]["seconds"])[:3]
        p, e, r = statistics.median(proofs), statistics.median(entries), statistics.median(rings)
        print(f"{version:<6} {p:>10.1f} {e:>13.1f} {r:>13.1f} {p / e:>5.1f}x/{p / r:>4.1f}x "
              f"{statistics.median(reruns):>7.1f}  "
              + ", ".join(f"{n} {c}" for n, c in sorted(verdicts[0].items())) + "; "
              + ", ".join(f"{name} {st['seconds']:.1f}s" for name, st in slowest), flush=True)


if __name__ == "__main__":
    main()
