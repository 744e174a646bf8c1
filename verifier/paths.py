"""Showing this project's own files (proofs/, asm/) relative to the repository, so that reports and the
generated results do not depend on where the repository is checked out."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shown(path: str | Path) -> str:
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(ROOT))
    except ValueError:
        return str(path)
