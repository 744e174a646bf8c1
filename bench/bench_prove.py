"""Full proof of each real tree (all 16 vector slots, median of N runs) next to the Kbuild time of the
same three objects (entry.o, entry-common.o, debug-monitors.o) in the same run.

    .venv/bin/python bench/bench_prove.py [--repeat 5] [--version 6.1 --version 6.12]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path

from common import kernel_asm

from verifier.kernel import kbuild
from verifier.kernel.info import kernel_info
from verifier.proof.config import ProveConfig
from verifier.proof.run import prove

OBJECTS = ["arch/arm64/kernel/entry.o", "arch/arm64/kernel/entry-common.o", "arch/arm64/kernel/debug-monitors.o"]


def build_seconds(tree: Path, build_dir: Path) -> float:
    for obj in OBJECTS:
        (build_dir / obj).unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "KBUILD_OUTPUT")}
    start = time.perf_counter()
    subprocess.run(["make", "-s", "-C", str(tree), "ARCH=arm64", f"CROSS_COMPILE={kbuild.DEFAULT_CROSS}",
                    f"O={build_dir}", "-j2", *OBJECTS], check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--version", action="append", default=[])
    args = parser.parse_args()
    versions = args.version or ["6.1", "6.12"]
    print(f"full proof (16 slots) vs Kbuild of the three objects, median of {args.repeat}")
    print(f"{'tree':<6} {'prove (s)':>10} {'kbuild (s)':>11} {'ratio':>7}  slowest slots")
    for version in versions:
        asm = kernel_asm(version)
        files = list(asm.values())
        build_dir = files[0].parents[3]
        tree = Path(os.path.realpath(build_dir / "source"))
        info = kernel_info(tree, build_dir)
        config = ProveConfig(files=files, contracts=info.contracts(), cap_names=info.cap_names, build=info.facts(),
                             root=str(tree))
        proofs, builds, slots = [], [], {}
        for _ in range(args.repeat):
            builds.append(build_seconds(tree, build_dir))
            start = time.perf_counter()
            report = prove(config)
            proofs.append(time.perf_counter() - start)
            slots = report.stats["slots"]
        slowest = sorted(slots.items(), key=lambda kv: -kv[1]["seconds"])[:3]
        p, b = statistics.median(proofs), statistics.median(builds)
        print(f"{version:<6} {p:>10.1f} {b:>11.1f} {p / b:>6.1f}x  "
              + ", ".join(f"{name} {st['seconds']:.1f}s" for name, st in slowest), flush=True)


if __name__ == "__main__":
    main()
