"""The user's own Kbuild output directory, as a kernel developer points the tool at it (--build-dir, O=):
its configuration is proved, and not a byte of it, or of the tree, changes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from verifier.cli.main import main
from verifier.kernel import kbuild

pytestmark = pytest.mark.kernel

ERRATUM = "CONFIG_ARM64_ERRATUM_1463225"


def digest(directory: Path) -> dict[str, str]:
    """Every file's content (and every symlink's target) under `directory`."""
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = Path(root) / name
            if path.is_symlink():
                out[str(path.relative_to(directory))] = "-> " + os.readlink(path)
            else:
                out[str(path.relative_to(directory))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_a_configured_build_dir_is_proved_as_configured_and_left_alone(kernel_tree: Callable[[str], Path],
                                                                       tmp_path: Path) -> None:
    tree = kernel_tree("6.1")
    mine = tmp_path / "build"
    toolchain = kbuild.toolchain_from(None, False)
    subprocess.run(["make", "-s", "-C", str(tree), f"O={mine}", "ARCH=arm64", *toolchain.make_vars(), "defconfig"],
                   check=True, stdout=subprocess.DEVNULL, env={**os.environ, "MAKEFLAGS": ""})
    config = mine / ".config"
    text = config.read_text()
    assert f"{ERRATUM}=y" in text
    # an option of ours off (the Cortex-A76 erratum's workaround in the syscall path) and a line of our own
    config.write_text(text.replace(f"{ERRATUM}=y", f"# {ERRATUM} is not set") + "# tuned by hand\n")
    tree_before, mine_before = digest(tree), digest(mine)
    reports = []
    for way in (["--build-dir", str(mine)], [f"O={mine}"]):
        out = tmp_path / f"report-{len(reports)}.json"
        status = main(["kernel", "--tree", str(tree), *way, "--trust-contracts", "--vector", "el0_64_sync",
                       "--ec", "0x15", "--format", "json", "-o", str(out)])
        assert status in (0, 1, 4), status
        reports.append(json.loads(out.read_text()))
    for report in reports:
        assert any(line.startswith("build:") and str(config.resolve()) in line for line in report["assumptions"])
        mdscr = {r["verdict"] for r in report["results"] if r["property"] == "mdscr-sync"}
        # without the erratum's workaround no step is armed on the syscall path: nothing to waive
        assert mdscr == {"PROVED"}, mdscr
    assert digest(mine) == mine_before
    assert digest(tree) == tree_before
