"""What contract checking costs: the full proof of a real tree (16 vector slots, the proposed policy) with
every contract trusted, next to the same proof with each used contract checked against its callee's code
(--check-contracts, depth 1), median of N runs of each, alternating, in one run.

    .venv/bin/python bench/bench_contracts.py [--repeat 5] [--version 6.1 --version 7.3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from dataclasses import replace

from common import REPEAT, ensure_tree

from verifier.kernel import kbuild
from verifier.kernel.info import kernel_info
from verifier.proof.config import ProveConfig
from verifier.proof.run import prove
from verifier.util.paths import PROOFS

POLICY = PROOFS / "policies" / "proposed-2020.policy"


def configs(version: str, jobs: int) -> tuple[ProveConfig, ProveConfig]:
    tree = kbuild.check_tree(ensure_tree(version))
    job = kbuild.KbuildJob(tree=tree, build_dir=kbuild.check_build_dir(tree, kbuild.default_build_dir(tree)),
                           config="defconfig", toolchain=kbuild.toolchain_from(None, llvm=False), jobs=jobs)
    files = kbuild.build_asm(job)
    ring = kbuild.build_callee_ring(job, files)
    info = kernel_info(tree, job.build_dir)
    trusted = ProveConfig(files=files, contracts=info.contracts(), cap_names=info.cap_names, build=info.facts(),
                          root=str(tree), policy=POLICY)
    return trusted, replace(trusted, callees=ring.outputs, callee_missing=ring.missing, contract_depth=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=REPEAT)
    parser.add_argument("--version", action="append", default=[])
    parser.add_argument("-j", "--jobs", type=int, default=2)
    args = parser.parse_args()
    print(f"full proof, contracts trusted vs checked (depth 1), median of {args.repeat}, -j{args.jobs}")
    print(f"{'tree':<6} {'trusted (s)':>12} {'checked (s)':>12} {'ratio':>6}  checks (s)  contract verdicts")
    for version in args.version or ["6.1"]:
        trusted, checked = configs(version, args.jobs)
        times: dict[str, list[float]] = {"trusted": [], "checked": []}
        check_seconds, verdicts = [], Counter()
        for _ in range(args.repeat):
            for name, config in (("trusted", trusted), ("checked", checked)):
                start = time.perf_counter()
                report = prove(config, jobs=args.jobs)
                times[name].append(time.perf_counter() - start)
                if name == "checked":
                    check_seconds.append(report.stats["contract_seconds"])
                    verdicts = Counter(c.verdict for c in report.contracts if c.depth == 1)
        t, c = statistics.median(times["trusted"]), statistics.median(times["checked"])
        print(f"{version:<6} {t:>12.1f} {c:>12.1f} {c / t:>5.2f}x  {statistics.median(check_seconds):>10.1f}  "
              + ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())), flush=True)


if __name__ == "__main__":
    main()
