"""Showing this project's own files (proofs/, asm/) relative to the repository, so that reports and the
generated results do not depend on where the repository is checked out."""

from __future__ import annotations

import os
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


def cache_root() -> Path:
    """Where fetched trees, build dirs and lifted files are kept: $ENTRY_VERIFY_CACHE or ~/.cache/entry-verify."""
    env = os.environ.get("ENTRY_VERIFY_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "entry-verify"
