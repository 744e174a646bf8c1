"""Shared by the benchmarks: the real kernel inputs (fetched and cached like the tests do) and timing."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from kernel_trees import ensure_tree  # noqa: E402

from verifier.kernel import kbuild  # noqa: E402

VERSIONS = ("6.1", "6.12")
REPEAT = 5


def kernel_asm(version: str) -> dict[str, Path]:
    tree = kbuild.check_tree(ensure_tree(version))
    job = kbuild.KbuildJob(
        tree=tree,
        build_dir=kbuild.check_build_dir(tree, kbuild.default_build_dir(tree)),
        config="defconfig",
        toolchain=kbuild.toolchain_from(None, llvm=False),
    )
    # the three entry files, then (7.x) the generic entry code they call
    return {str(PurePosixPath(out.relative_to(job.build_dir))): out for out in kbuild.build_asm(job)}


def median_seconds(fn: Callable[[], object], repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
