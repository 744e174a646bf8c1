"""Shared fixtures: the real Debian kernel trees and the assembly Kbuild makes from them."""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import NoReturn

import pytest
from kernel_trees import VERSIONS, TreeUnavailable, ensure_tree, kernel_config, pseudo_nmi_config

from verifier.cli.main import GC_THRESHOLDS, main
from verifier.kernel import kbuild
from verifier.proof import check_store
from verifier.util.errors import UserError


def pytest_configure(config: pytest.Config) -> None:
    gc.set_threshold(*GC_THRESHOLDS)  # the tests prove in this process: collect as the command does


@pytest.fixture(autouse=True)
def own_contract_checks(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test keeps its contract checks to itself: one that patches the engine must not read back a check
    another test made (nor leave one behind)."""
    root = tmp_path_factory.mktemp("cache")
    monkeypatch.setattr(check_store, "cache_root", lambda: root)


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


@pytest.fixture(scope="session")
def debian_config(kernel_asm: Callable[..., dict[str, Path]]) -> Callable[[str, str], Path]:
    """`debian_config("7.3", "rt")` -> Debian's arm64 configuration of that flavour (generic, cloud, rt, 16k)
    from linux-config-7.3:arm64; `debian_config("7.3", "pseudo-nmi")` -> the tree's defconfig with
    CONFIG_ARM64_PSEUDO_NMI=y (made from the defconfig build's .config, olddefconfig does the rest)."""
    made: dict[tuple[str, str], Path] = {}

    def get(version: str, flavour: str) -> Path:
        _check_version(version)
        if (version, flavour) not in made:
            if flavour == "pseudo-nmi":
                defconfig = kernel_asm(version)["entry.S"].parents[3] / ".config"
                made[version, flavour] = pseudo_nmi_config(version, defconfig)
            else:
                try:
                    made[version, flavour] = kernel_config(version, flavour)
                except TreeUnavailable as err:
                    _unavailable(str(err))
        return made[version, flavour]

    return get


@pytest.fixture(scope="session")
def config_report(kernel_tree: Callable[[str], Path], debian_config: Callable[[str, str], Path],
                  tmp_path_factory: pytest.TempPathFactory) -> Callable[..., dict]:
    """`config_report("7.3", "rt", "el0_64_sync", ec=(0x3C,))` -> the JSON report of `entry-verify kernel` on
    that tree built with that configuration, under the proposed policy, for those slots (all when none) and
    exception classes; proved once per session."""
    reports: dict[tuple, dict] = {}
    tmp = tmp_path_factory.mktemp("config-reports")

    def get(version: str, flavour: str, *vectors: str, ec: tuple[int, ...] = ()) -> dict:
        key = (version, flavour, vectors, ec)
        if key not in reports:
            out = tmp / f"{version}-{flavour}-{len(reports)}.json"
            args = ["kernel", "--tree", str(kernel_tree(version)), "--config", str(debian_config(version, flavour)),
                    "--policy", str(POLICY), "--format", "json", "-o", str(out)]
            args += [f"--vector={vector}" for vector in vectors] + [f"--ec={number:#x}" for number in ec]
            status = main(args)
            reports[key] = json.loads(out.read_text()) | {"status": status}
        return reports[key]

    return get
