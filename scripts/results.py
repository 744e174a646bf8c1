"""Regenerate proofs/results/: `make results` for every tree the tests run with defconfig and each configuration
of tests/test_kernel_configs.py, or `scripts/results.py 7.3 7.3:rt` for some (the kernel trees and Debian's
configurations are fetched and cached like the tests')."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from kernel_trees import (  # noqa: E402
    SUITES,
    ensure_tree,
    kernel_config,
    pseudo_nmi_config,
    results_name,
    results_title,
)
from test_kernel_configs import CONFIGURATIONS  # noqa: E402

from verifier.kernel import kbuild  # noqa: E402
from verifier.report.results import render  # noqa: E402

POLICY = ROOT / "proofs" / "policies" / "proposed-2020.policy"


def defconfig_of(version: str) -> Path:
    """The .config of the tree's defconfig build (built first if need be)."""
    tree = ensure_tree(version)
    entry = ROOT / ".venv" / "bin" / "entry-verify"
    subprocess.run([str(entry), "kernel-asm", "--tree", str(tree)], check=True, stdout=subprocess.DEVNULL)
    return kbuild.default_build_dir(tree, kbuild.toolchain_from(None, False)) / ".config"


def generate(version: str, flavour: str | None) -> str:
    tree = ensure_tree(version)
    args = [str(ROOT / ".venv" / "bin" / "entry-verify"), "kernel", "--tree", str(tree), "--policy", str(POLICY)]
    if flavour == "pseudo-nmi":
        args += ["--config", str(pseudo_nmi_config(version, defconfig_of(version)))]
    elif flavour:
        args += ["--config", str(kernel_config(version, flavour))]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        subprocess.run([*args, "--format", "json", "-o", str(out)], check=False)
        data = json.loads(out.read_text())
    return render(data, results_title(version, flavour))


def main() -> None:
    target = ROOT / "proofs" / "results"
    target.mkdir(exist_ok=True)
    wanted = sys.argv[1:] or [*SUITES, *(f"{version}:{flavour}" for version, flavour, _, _ in CONFIGURATIONS)]
    for spec in wanted:
        version, _, flavour = spec.partition(":")
        path = target / results_name(version, flavour or None)
        path.write_text(generate(version, flavour or None))
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
