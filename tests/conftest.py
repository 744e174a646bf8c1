"""Shared fixtures: the real Debian kernel trees and the assembly Kbuild makes from them."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import NoReturn

import pytest
from kernel_trees import VERSIONS, TreeUnavailable, ensure_tree

from verifier.cli.main import main
from verifier.kernel import kbuild
from verifier.util.errors import UserError


def _unavailable(reason: str) -> NoReturn:
    # CI must run the kernel tests, so a missing prerequisite there is a failure, not a skip.
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"kernel test prerequisite missing under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _check_version(version: str) -> None:
    if version not in VERSIONS:
        raise ValueError(f"unknown kernel version {version!r}; known: {', '.join(VERSIONS)}")


@pytest.fixture(scope="session")
def kernel_tree() -> Callable[[str], Path]:
    """`kernel_tree("6.1")` -> the extracted linux-source-6.1 tree (fetched once, then cached)."""
    trees: dict[str, Path] = {}

    def get(version: str) -> Path:
        _check_version(version)
        if version not in trees:
            try:
                trees[version] = ensure_tree(version)
            except TreeUnavailable as err:
                _unavailable(str(err))
        return trees[version]

    return get


@pytest.fixture(scope="session")
def kernel_asm(kernel_tree: Callable[[str], Path]) -> Callable[..., dict[str, Path]]:
    """`kernel_asm("6.12")` -> {'entry.S': .s, 'entry-common.c': .s, 'debug-monitors.c': .s},
    built with defconfig in the cached build dir that `entry-verify kernel-asm` also uses;
    `kernel_asm("6.12", llvm="-19")` the same built with LLVM=-19 (clang-19), in that toolchain's own dir."""
    built: dict[tuple[str, str | None], dict[str, Path]] = {}

    def get(version: str, llvm: str | None = None) -> dict[str, Path]:
        if (version, llvm) in built:
            return built[version, llvm]
        tree = kbuild.check_tree(kernel_tree(version))
        toolchain = kbuild.toolchain_from(None, llvm=llvm or False)
        try:
            toolchain.check()
        except UserError as err:
            _unavailable(err.message)
        job = kbuild.KbuildJob(
            tree=tree,
            build_dir=kbuild.check_build_dir(tree, kbuild.default_build_dir(tree, toolchain)),
            config="defconfig",
            toolchain=toolchain,
        )
        outputs = kbuild.build_asm(job)
        defaults, generic = outputs[:len(kbuild.DEFAULT_FILES)], outputs[len(kbuild.DEFAULT_FILES):]
        asm = {PurePosixPath(src).name: out for src, out in zip(kbuild.DEFAULT_FILES, defaults, strict=True)}
        # and the generic entry code the tree's entry calls into (7.x: kernel/entry/common.c)
        asm |= {f"kernel/entry/{out.with_suffix('.c').name}": out for out in generic}
        built[version, llvm] = asm
        return asm

    return get


POLICY = Path(__file__).resolve().parents[1] / "proofs" / "policies" / "proposed-2020.policy"


@pytest.fixture(scope="session")
def kernel_report(kernel_tree: Callable[[str], Path], kernel_asm: Callable[..., dict[str, Path]],
                  tmp_path_factory: pytest.TempPathFactory) -> Callable[..., dict]:
    """`kernel_report("7.3")` -> the JSON report of `entry-verify kernel` on that tree (defconfig, all 16
    slots, the proposed policy as well as the built-in obligations), proved once per session and shared by
    every test that reads it; `policy=False` for the obligations alone, `llvm="-19"` for a clang build."""
    reports: dict[tuple[str, bool, str | None], dict] = {}
    tmp = tmp_path_factory.mktemp("kernel-reports")

    def get(version: str, policy: bool = True, llvm: str | None = None) -> dict:
        key = (version, policy, llvm)
        if key not in reports:
            kernel_asm(version, llvm=llvm)  # the toolchain is there (or skip / fail under CI)
            out = tmp / f"{version}-{policy}-{llvm}.json"
            args = ["kernel", "--tree", str(kernel_tree(version)), "--format", "json", "-o", str(out)]
            args += ["--policy", str(POLICY)] if policy else []
            args += [f"--llvm={llvm}"] if llvm else []
            status = main(args)
            reports[key] = json.loads(out.read_text()) | {"status": status}
        return reports[key]

    return get
