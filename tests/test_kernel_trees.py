"""The test helpers that fetch Debian's kernel source packages: a private apt configuration built from this
machine's mirror, every suite the trees come from, and "the newest 7.x" resolved at run time."""

from __future__ import annotations

from pathlib import Path

import pytest
from kernel_trees import SUITES, VERSIONS, available_versions, machine_mirror, package_version


def test_the_mirror_is_read_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n")
    assert machine_mirror(tmp_path) == "http://mirror.example/debian"


def test_the_mirror_is_read_from_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://other.example/debian bookworm main\n")
    assert machine_mirror(tmp_path) == "http://other.example/debian"


def test_every_tree_has_a_suite() -> None:
    assert set(VERSIONS) == {"5.10", "6.1", "6.12", "7.2", "7.3"}
    assert {SUITES[v] for v in VERSIONS} >= {"bullseye", "bookworm", "trixie"}


@pytest.mark.kernel
def test_the_newest_7x_is_resolved_from_the_mirror(kernel_tree) -> None:  # noqa: ANN001
    sevens = available_versions("7.")
    assert sevens and all(v.startswith("7.") for v in sevens)
    assert sevens == sorted(sevens, key=lambda v: tuple(int(n) for n in v.split(".")))
    latest = sevens[-1]
    if latest in VERSIONS:
        kernel_tree(latest)
        assert package_version(latest).startswith(latest + ".")
