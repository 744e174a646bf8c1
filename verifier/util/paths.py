"""Showing this project's own files (proofs/, asm/) relative to the repository, so that reports and the
generated results do not depend on where the repository is checked out."""

from __future__ import annotations

from pathlib import Path

# the repository: verifier/util/paths.py -> the directory holding verifier/, grammar/ and proofs/
ROOT = Path(__file__).resolve().parents[2]
GRAMMARS = ROOT / "grammar"
PROOFS = ROOT / "proofs"


def shown(path: str | Path) -> str:
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(ROOT))
    except ValueError:
        return str(path)
