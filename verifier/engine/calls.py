"""What the explorer asks about code it does not follow: calls it summarises and boot-time patches.

The explorer follows calls into lifted code. For any other call (an external symbol, a pointer whose
origin is known, a lifted function summarised on purpose, a firmware call) it asks a `CallModel` for a
`Summary` and lets the model apply the summary's effect to the state; an `alternative_cb` site is patched
as the model's `Patch` says. The model (contracts, in spec/) is where the kernel's calling conventions
live; the explorer only knows that a summarised call may not return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from verifier.ir.program import Insn
from verifier.semantics.state import BV, State

# A fresh symbolic value for what a summarised call leaves in some place: fresh(what, bits).
Fresh = Callable[[str, int], BV]


class Summary(Protocol):
    """What a call that is not followed does."""

    @property
    def name(self) -> str: ...

    @property
    def returns(self) -> bool: ...


@dataclass(frozen=True)
class PatchedWord:
    """An instruction word a callback writes at its site, and what it decodes to."""

    word: int
    insn: Insn


# What a callback may leave at a site of n instructions: per instruction, the word it wrote (None: the
# original instruction stays)
Variant = tuple[PatchedWord | None, ...]


class Patch(Protocol):
    """What an `alternative_cb` callback may put at its site."""

    @property
    def fresh_registers(self) -> tuple[str, ...]: ...  # registers the patched code leaves unknown

    def describe(self) -> str: ...

    def variants(self, length: int) -> tuple[Variant, ...] | None:
        """Every instruction sequence the callback can leave at a site of `length` instructions, read from
        its code; None: not known (the site is skipped, `fresh_registers` changed)."""
        ...


class CallModel(Protocol):
    def for_symbol(self, symbol: str) -> Summary:
        """A call (or tail call) of an external symbol."""
        ...

    def for_pointer(self, origin: str) -> Summary | None:
        """A call through a pointer loaded from the symbol `origin`; None: resolve the pointer instead."""
        ...

    def instead_of_lifted(self, name: str) -> Summary | None:
        """A summary to use although `name` is lifted (None: follow it)."""
        ...

    def firmware(self) -> Summary:
        """An hvc or smc."""
        ...

    def patch(self, callback: str) -> Patch | None:
        """The alternative_cb callback `callback`; None when nothing is known of it."""
        ...

    def assumption(self, summary: Summary, name: str) -> str:
        """The summary of a call of `name` as an assumption the proof rests on."""
        ...

    def apply(self, summary: Summary, name: str, state: State, fresh: Fresh) -> None:
        """The effect of a returning summarised call on the state."""
        ...
