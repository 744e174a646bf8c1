"""Lifted files kept between runs: read back only for the same bytes at the same path, never for a file
that includes others."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from verifier.ir.serialize import program_json
from verifier.proof import lift_cache
from verifier.util.errors import UserError

ASM = Path(__file__).resolve().parents[1] / "asm"


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """The files actually lifted (not read back), with the cache in a fresh directory."""
    monkeypatch.setenv("ENTRY_VERIFY_CACHE", str(tmp_path / "cache"))
    lifts: list[Path] = []
    real = lift_cache.lift_file

    def lift_file(path: Path, root: str | None = None) -> object:
        lifts.append(Path(path))
        return real(path, root)

    monkeypatch.setattr(lift_cache, "lift_file", lift_file)
    return lifts


def flat(tmp_path: Path) -> Path:
    """A bundled subject with its include pasted in: a file that pulls in nothing."""
    text = (ASM / "entry-ok.s").read_text()
    text = text.replace('.include "entry-common.inc"', (ASM / "entry-common.inc").read_text())
    assert ".include" not in text
    path = tmp_path / "flat.s"
    path.write_text(text)
    return path


def test_the_same_file_is_read_back_and_an_edited_one_lifted_again(counted: list[Path], tmp_path: Path) -> None:
    path = flat(tmp_path)
    first = lift_cache.lifted(path, None)
    second = lift_cache.lifted(path, None)
    assert counted == [path]
    assert program_json(first) == program_json(second)
    call = "\tmov\tx0, sp\n\tbl\thandle_irq"
    path.write_text(path.read_text().replace(call, "\tnop\n" + call))
    edited = lift_cache.lifted(path, None)
    assert counted == [path, path] and program_json(edited) != program_json(first)


def test_a_file_that_includes_another_is_always_lifted(counted: list[Path], tmp_path: Path) -> None:
    for name in ("entry-ok.s", "entry-common.inc"):
        shutil.copy(ASM / name, tmp_path / name)
    lift_cache.lifted(tmp_path / "entry-ok.s", None)
    lift_cache.lifted(tmp_path / "entry-ok.s", None)
    assert len(counted) == 2


def test_a_file_that_does_not_lift_fails_again_with_the_same_error(counted: list[Path], tmp_path: Path) -> None:
    path = tmp_path / "bad.s"
    path.write_text("\t.text\nf:\n\tmov x0,, x1\n")
    errors = []
    for _ in range(2):
        with pytest.raises(UserError) as caught:
            lift_cache.lifted(path, None)
        errors.append(str(caught.value))
    assert len(counted) == 1 and errors[0] == errors[1] and "bad.s:3:9: error: unexpected" in errors[0]
