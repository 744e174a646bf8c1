"""Lifted files kept between runs: a `.s` file whose bytes, path, source root and the tool's own code are
unchanged is read back instead of lifted again (the callee ring's twenty files take seconds to lift, and most
of a developer's re-runs change one file or none). Files that pull in others (`.include`, `.incbin`) are
always lifted: their key would not cover what they include."""

from __future__ import annotations

import copy
import hashlib
import os
import pickle
import tempfile
from functools import cache
from pathlib import Path

from verifier.frontend.assembler import lift_file
from verifier.ir.program import Program
from verifier.util.errors import UserError
from verifier.util.paths import GRAMMARS, ROOT, cache_root

KEEP = 512  # lifted files kept; the oldest go first
_IN_MEMORY = 64  # files kept in this process too: a series reads each commit's files for its digests and its proofs
_memory: dict[str, Program] = {}
_PULLS_IN = (b".include", b".incbin")


def _store() -> Path:
    return cache_root() / "lift"


@cache
def lifter_digest() -> str:
    """A digest of the code and grammars that decide what a file lifts to."""
    digest = hashlib.sha256()
    files = sorted(f for part in ("frontend", "ir", "util") for f in (ROOT / "verifier" / part).rglob("*.py"))
    for path in [*files, *sorted(GRAMMARS.glob("*.lark"))]:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def lifted(path: Path, root: str | None) -> Program:
    """`lift_file(path, root)`, from the cache when the same file was lifted before."""
    data = path.read_bytes() if path.is_file() else None
    if data is None or any(word in data for word in _PULLS_IN):
        return lift_file(path, root)
    key = hashlib.sha256(b"\0".join([lifter_digest().encode(), str(path.resolve()).encode(),
                                     str(root).encode(), data])).hexdigest()[:32]
    if key in _memory:
        return copy.copy(_memory[key])  # a proof may set the copy's source root; the sections are never changed
    entry = _store() / f"{key}.pickle"
    try:
        with entry.open("rb") as handle:
            kept = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
        kept = None
    if isinstance(kept, Program | UserError):
        os.utime(entry)
        if isinstance(kept, UserError):
            raise kept  # a file that does not lift fails the same way again
        return _remember(key, kept)
    try:
        program = lift_file(path, root)
    except UserError as err:
        _keep(entry, err)
        raise
    _keep(entry, program)
    return _remember(key, program)


def _remember(key: str, program: Program) -> Program:
    while len(_memory) >= _IN_MEMORY:
        _memory.pop(next(iter(_memory)))
    _memory[key] = program
    return copy.copy(program)


def _keep(entry: Path, program: Program | UserError) -> None:
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".lift.", dir=entry.parent)
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(program, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, entry)
        kept = sorted(entry.parent.glob("*.pickle"), key=lambda p: p.stat().st_mtime)
        for old in kept[:-KEEP]:
            old.unlink(missing_ok=True)
    except OSError:  # a cache that cannot be written only costs time
        return
