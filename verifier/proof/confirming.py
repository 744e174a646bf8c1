"""A counterexample confirmed on Unicorn (verifier.confirm): the regions placed apart and the violation
solved again with them pinned, the pinned model replayed, the inputs assembled and linked as the proof
laid them out, and the path run on Unicorn in lockstep with the replay."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import z3

from verifier.confirm.layout import KEEPS, pins, place, region_bases
from verifier.confirm.machine import Confirmation, confirm
from verifier.confirm.objects import Linked, NotLinkable, link
from verifier.engine.image import Image
from verifier.engine.replay import Replayed
from verifier.objfront.assemblers import GNU_AS, Assembler, assemble
from verifier.util.errors import UserError

ROUNDS = 4  # placements of the regions before giving up

# Solves the violation again under extra constraints: a model, or None.
Resolve = Callable[[list[z3.BoolRef]], z3.ModelRef | None]


@dataclass(frozen=True)
class Another:
    """How to get another counterexample of the same violation: solve it again under extra constraints (a
    model, or None), and replay a model (the replay and its counterexample, None where it does not)."""

    solve: Resolve
    replay: Callable[[z3.ModelRef], tuple[Replayed | None, dict[str, Any] | None]]


class Objects:
    """The inputs assembled once per process, into a directory of our own (never beside the inputs)."""

    def __init__(self, files: list[Path], assemblers: list[tuple[str, ...] | None]) -> None:
        self.files, self.assemblers = files, assemblers
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._paths: list[Path] | None = None
        self.error: str | None = None

    def paths(self) -> list[Path] | None:
        if self._paths is None and self.error is None:
            self._dir = tempfile.TemporaryDirectory(prefix="entry-verify-objects-")
            out = []
            try:
                for index, path in enumerate(self.files):
                    argv = self.assemblers[index] if index < len(self.assemblers) else None
                    assembler = Assembler(argv, "the build") if argv else GNU_AS
                    out.append(assemble(path, Path(self._dir.name) / f"{index}.o", assembler))
            except UserError as error:
                self.error = f"the inputs do not assemble: {error}"
                return None
            self._paths = out
        return self._paths


def _settle(image: Image, model: z3.ModelRef, replayed: Replayed, another: Another, keep: int
            ) -> tuple[dict[str, int], z3.ModelRef, Replayed, dict[str, Any]] | str:
    """The regions placed apart, the violation solved with them pinned, and its replay; or why not."""
    placed: dict[str, int] = {}
    bases = region_bases(model, replayed.written, [w[0] for w in replayed.initial_words])
    for _ in range(ROUNDS):
        placed |= place([b for b in bases if b not in placed], model, image, len(placed), keep)
        pinned = another.solve(pins(placed))
        if pinned is None:
            return ("no counterexample with the stack, the task, per-CPU data and the symbols at distinct "
                    "addresses (solved again with them pinned)")
        again, cex = another.replay(pinned)
        if again is None or cex is None:
            return "the counterexample with the regions pinned apart does not replay"
        # the pinned model may take another path to the violation, through other regions: place those too
        bases = [b for b in region_bases(pinned, again.written, [w[0] for w in again.initial_words])
                 if b not in placed]
        if not bases:
            return placed, pinned, again, cex
    return f"the regions did not settle in {ROUNDS} placements"


def confirm_on_unicorn(image: Image, objects: Objects, model: z3.ModelRef, replayed: Replayed, another: Another
                       ) -> tuple[dict[str, Any] | None, Confirmation]:
    """The counterexample Unicorn was run on (that of the pinned model) and what Unicorn made of it."""
    paths = objects.paths()
    if paths is None:
        return None, Confirmation(False, objects.error or "no objects", 0)
    for keep in KEEPS:
        settled = _settle(image, model, replayed, another, keep)
        if isinstance(settled, tuple):
            break
    if isinstance(settled, str):
        return None, Confirmation(False, settled, 0)
    placed, pinned, again, cex = settled
    try:
        linked: Linked = link(image, paths, placed)
    except NotLinkable as error:
        return cex, Confirmation(False, f"the objects cannot be linked as the proof laid them out: {error}", 0)
    return cex, confirm(image, linked, again, pinned)
