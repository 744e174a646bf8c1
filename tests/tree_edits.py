"""A kernel tree copy made of symbolic links, and editing one file of it (the seeded-defect tests)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def linked_copy(tree: Path, base: Path) -> Path:
    """BASE/linux: a copy of TREE made of symbolic links, one per file; `edit` replaces the one it changes."""
    copy = base / "linux"
    shutil.copytree(tree, copy, symlinks=True, copy_function=os.symlink)
    return copy


def edit(tree: Path, original: Path, relative: str, old: str | None = None, new: str = "") -> None:
    """Replace `relative` in the copy by an edited copy of the original (old=None: an unedited copy). Always a
    new file, never the link back: make decides by modification time, and the original is older than the
    object built from the edit."""
    target = tree / relative
    target.unlink()
    text = (original / relative).read_text()
    if old is None:
        target.write_text(text)
        return
    assert old in text, old
    target.write_text(text.replace(old, new, 1))
