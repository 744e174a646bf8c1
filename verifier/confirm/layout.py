"""Where a counterexample's memory regions go for a concrete run.

A solver's model places the regions the prover keeps apart (the stack, the current task, per-CPU data, each
symbol, each loaded pointer) wherever it likes, often all at 0. A concrete run needs them apart and
reachable from the code (adrp reaches 4 GiB): each base gets a window of its own, keeping the low bits of
the model's value so that alignment and the stack's THREAD_SIZE bit tests still see what they saw, and the
violation is solved again with the bases pinned there.
"""

from __future__ import annotations

from collections.abc import Iterable

import z3

from verifier.engine.image import IMAGE_BASE, SECTION_STRIDE, Image
from verifier.semantics.names import parse_memory_word, symbol_base
from verifier.semantics.state import Region

WINDOW = 0x0100_0000  # 16 MiB apart
# which low bits of the model's value a pinned base keeps: first only its alignment, 16 KiB into the window
# (as a stack's top sits in a VMAP stack aligned to twice THREAD_SIZE: the overflow check's bit test then
# sees an ordinary stack); else the low 20 bits, whatever they test
KEEPS = (0xF, 0x000F_FFFF)
INTO_WINDOW = {0xF: 0x4000, 0x000F_FFFF: 0}
DATA_BASE = 0xFFFF_A000_0000_0000  # the stack, the task, loaded pointers: far from the image
M64 = (1 << 64) - 1


def region_bases(model: z3.ModelRef, written: Iterable[Region], read: Iterable[Region] = ()) -> list[str]:
    """The bases of every region the path read (its memory words in the model) or wrote, and every symbol
    address the model names."""
    bases: set[str] = set()
    for decl in model.decls():
        if decl.name().startswith(symbol_base("")):
            bases.add(decl.name())  # a symbol's address the path computes with: the objects link it there
        parsed = parse_memory_word(decl.name())
        if parsed is not None:
            bases.update(parsed[0])
    for region in [*written, *read]:
        bases.update(region.bases)
    return sorted(bases)


def place(bases: list[str], model: z3.ModelRef, image: Image, taken: int = 0, keep: int = KEEPS[0]
          ) -> dict[str, int]:
    """A window per base: symbols just above the image (within adrp's reach of every section), the rest in
    DATA_BASE; `taken` windows of each kind are already used."""
    end = max((s.base for s in image.sections), default=IMAGE_BASE) + SECTION_STRIDE
    near, far = taken, taken
    out: dict[str, int] = {}
    for base in bases:
        value = model.eval(z3.BitVec(base, 64), model_completion=True)
        low = INTO_WINDOW.get(keep, 0) + (value.as_long() & keep if z3.is_bv_value(value) else 0)
        if base.startswith(symbol_base("")):
            out[base] = end + near * WINDOW + low
            near += 1
        else:
            out[base] = DATA_BASE + far * WINDOW + low
            far += 1
    return out


def pins(placed: dict[str, int]) -> list[z3.BoolRef]:
    return [z3.BitVec(base, 64) == value for base, value in placed.items()]


def address_of(bases: tuple[str, ...], offset: int, model: z3.ModelRef) -> int:
    """A region's address plus an offset under the (pinned) model."""
    total = offset
    for base in bases:
        value = model.eval(z3.BitVec(base, 64), model_completion=True)
        total += value.as_long() if z3.is_bv_value(value) else 0
    return total & M64
