"""Editing one file of a kernel tree copy made of symbolic links (the seeded-defect tests)."""

from __future__ import annotations

from pathlib import Path


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
