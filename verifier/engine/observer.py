"""Observers: what the explorer tells the properties, and what they tell it back at an eret.

The explorer knows no property. Each path carries one observer per concern (an obligation, the policy's
rules, the waivers' watches); an observer holds the small state its concern needs, is copied when the path
forks and merged when paths join, and is told of the events below. At an eret it reports, per property
id, the condition under which the property fails there, the events that locate a failure, the values it
compared (for the counterexample) and named path conditions other stages need (a waiver's "the path ran F").

Hooks are called in this order after an instruction: `on_sysreg_write` (an `msr` to a system register),
`on_mdscr_write`, `on_masking` (DAIF or MDSCR_EL1 changed), then `on_synchronise` for an `isb`. A call
summarised by a contract gives `on_call`, then (if it returns) `on_summary`, its effect on the state,
`on_synchronise` if it changed MDSCR_EL1 (the callee's own isb or eret) and `on_masking`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Self, TypeVar

import z3

from verifier.engine.calls import Summary
from verifier.engine.image import CodeRef
from verifier.semantics.state import BV, Region, State

Term = TypeVar("Term", bound=z3.ExprRef)  # a value merge_value() merges: a bit-vector or a condition


class Path(Protocol):
    """What an observer sees of the path it observes."""

    state: State
    guard: z3.BoolRef  # the condition under which the path runs
    pc: int


@dataclass(frozen=True)
class Event:
    """Something a property needs to know happened at an instruction, under a condition."""

    address: int
    cond: z3.BoolRef
    what: str


@dataclass
class EventLog:
    """The events of one kind on a path (exact on one path; after a merge, for locating only) and the
    exact condition that one of them happened, which merging keeps exact. None: nothing noted yet."""

    events: list[Event] = field(default_factory=list)
    happened: z3.BoolRef | None = None

    def copy(self) -> EventLog:
        return EventLog(list(self.events), self.happened)

    def note(self, event: Event) -> None:
        self.events.append(event)
        self.happened = event.cond if self.happened is None else z3.Or(self.happened, event.cond)

    def reset(self, events: list[Event]) -> None:
        """Start over from `events` (a window that restarts, such as the one after an ELR_EL1 write)."""
        self.events = list(events)
        self.happened = z3.Or([e.cond for e in events]) if events else z3.BoolVal(False)

    def merge(self, guard: z3.BoolRef, other: EventLog, other_guard: z3.BoolRef) -> EventLog:
        # Both sides carry the events noted before their paths forked: each is kept once (concatenated, the
        # lists doubled at every merge, 2.2M events where 6,352 were distinct on 7.3's el0_64_sync).
        events = _union(self.events, other.events)
        if self.happened is None and other.happened is None:
            return EventLog(events)
        parts = [z3.And(happened, g) for happened, g in ((self.happened, guard), (other.happened, other_guard))
                 if happened is not None and not z3.is_false(happened)]
        return EventLog(events, z3.Or(parts) if parts else z3.BoolVal(False))

    def condition(self) -> z3.BoolRef:
        return self.happened if self.happened is not None else z3.BoolVal(False)


def _union(mine: list[Event], theirs: list[Event]) -> list[Event]:
    """`mine`, then the events of `theirs` not in it (the same instruction, condition and text), in order."""
    if not theirs:
        return list(mine)
    seen = {(e.address, e.cond.get_id(), e.what) for e in mine}
    return mine + [e for e in theirs if (e.address, e.cond.get_id(), e.what) not in seen]


@dataclass
class Findings:
    """What one observer reports at one eret. Violation conditions need not include the path guard: the
    explorer conjoins it."""

    violations: dict[str, z3.BoolRef] = field(default_factory=dict)
    events: dict[str, list[Event]] = field(default_factory=dict)
    values: dict[str, z3.ExprRef] = field(default_factory=dict)
    conditions: dict[str, z3.BoolRef] = field(default_factory=dict)


def merge_value(guard: z3.BoolRef, mine: Term, theirs: Term) -> Term:
    """One value of two merged paths: `If(guard, mine, theirs)` unless they are the same."""
    if mine is theirs or mine.eq(theirs):
        return mine
    return z3.If(guard, mine, theirs)


def merge_condition(guard: z3.BoolRef, mine: z3.BoolRef | None, other_guard: z3.BoolRef,
                    theirs: z3.BoolRef | None) -> z3.BoolRef:
    """A path condition ("the path did X") of two merged paths."""
    return z3.simplify(z3.Or(z3.And(mine if mine is not None else z3.BoolVal(False), guard),
                             z3.And(theirs if theirs is not None else z3.BoolVal(False), other_guard)))


class Observer:
    """One concern's view of one path. Every hook does nothing unless overridden; `copy` and `merge` must
    be given by any observer with state. (The defaults below ignore what they are given: `noqa: ARG002`;
    the observers that override them say so with @override.)"""

    def copy(self) -> Self:
        return self

    def merge(self, guard: z3.BoolRef, state: State, other: Self, other_guard: z3.BoolRef,  # noqa: ARG002
              other_state: State) -> Self:  # noqa: ARG002
        """This observer for the merge of its path (taken under `guard`, in `state`) with another."""
        return self

    def on_step(self, path: Path, code: CodeRef) -> None:
        """Before the instruction at path.pc runs."""

    def on_sysreg_write(self, path: Path, encoding: int) -> None:
        """An `msr` wrote the system register `encoding`."""

    def on_mdscr_write(self, path: Path, before: BV) -> None:
        """An instruction changed MDSCR_EL1 (it was `before`)."""

    def on_masking(self, path: Path, daif_changed: bool, mdscr_changed: bool) -> None:
        """DAIF or MDSCR_EL1 changed: which exceptions can be taken may have changed."""

    def on_synchronise(self, path: Path) -> None:
        """A context synchronisation event."""

    def on_load(self, path: Path, region: Region, offset: int, size: int, value: BV) -> None:
        """A load from one place in memory."""

    def on_call(self, path: Path, name: str | None) -> None:
        """A call of the function `name` (None: at an address no symbol names), followed into lifted code
        or summarised."""

    def on_summary(self, path: Path, name: str, summary: Summary) -> None:
        """A returning call of `name` that `summary` stands in for, before its effect."""

    def at_eret(self, path: Path) -> Findings:  # noqa: ARG002
        return Findings()

    def at_return(self, path: Path) -> Findings:  # noqa: ARG002
        """The explored function returns to its caller (only when a function, not a vector, is explored)."""
        return Findings()
