"""One path of the exploration, and the merge of two paths that meet at the same place.

A path is the machine state, the condition under which it runs (its guard), the call stack, the
explorer's own bookkeeping (alternatives decided, fresh-name counters, loop counts, the summaries it
rests on) and one observer per concern. Merged values become `If(guard, a, b)`; guards are factored so
that the complementary conditions of a diamond cancel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import z3

from verifier.engine.observer import Observer, merge_value
from verifier.semantics.state import BV, Memory, State


@dataclass(frozen=True)
class Frame:
    call: int  # address of the call instruction
    ret: int  # where it returns


@dataclass(frozen=True)
class AltRun:
    """A path inside an alternative's replacement code, ordered as if it stood at the original site."""

    start: int  # the replacement code
    end: int
    orig_start: int  # the original instructions it replaces
    orig_end: int


@dataclass
class Path:
    state: State
    guard: z3.BoolRef
    ctx: tuple[Frame, ...]
    pc: int
    observers: list[Observer]
    alt: AltRun | None = None
    skip_alt: int | None = None  # the alternative site at this pc was already decided for this path
    decided: dict[int, bool] = field(default_factory=dict)  # capability -> the value this path took
    fresh_counts: dict[tuple, int] = field(default_factory=dict)  # fresh values made per (context, pc, what)
    loops: dict[tuple, int] = field(default_factory=dict)  # backward jumps taken, per (context, target)
    summaries: set[str] = field(default_factory=set)  # the contracts and patches the path rests on
    # an assignment of the symbolic inputs under which the path runs (a model of its guard and the explorer's
    # assumptions), or None: a branch it satisfies is feasible without asking the solver
    witness: z3.ModelRef | None = None
    rests_on: set[str] = field(default_factory=set)  # the summaries, by name: each summarised call and callback

    def copy(self) -> Path:
        return Path(self.state.copy(), self.guard, self.ctx, self.pc, [o.copy() for o in self.observers],
                    self.alt, self.skip_alt, dict(self.decided), dict(self.fresh_counts), dict(self.loops),
                    set(self.summaries), self.witness, set(self.rests_on))


def _conjuncts(guard: z3.BoolRef) -> list[z3.BoolRef]:
    return list(guard.children()) if z3.is_and(guard) else [guard]


def join_guards(g1: z3.BoolRef, g2: z3.BoolRef) -> z3.BoolRef:
    """g1 or g2, factored: the conjuncts both share stay a conjunction, and a diamond's complementary
    branch conditions cancel (P and c) or (P and not c) = P. Keeps guards small for the solver."""
    c1, c2 = _conjuncts(g1), _conjuncts(g2)
    ids2 = {c.get_id() for c in c2}
    common = [c for c in c1 if c.get_id() in ids2]
    ids = {c.get_id() for c in common}
    rest1 = [c for c in c1 if c.get_id() not in ids]
    rest2 = [c for c in c2 if c.get_id() not in ids]
    if not rest1 or not rest2:
        either = z3.BoolVal(True)  # one side implies the other
    elif len(rest1) == 1 and len(rest2) == 1 and z3.simplify(z3.Not(rest1[0])).eq(rest2[0]):
        either = z3.BoolVal(True)
    else:
        either = z3.Or(z3.And(rest1), z3.And(rest2))
    return z3.simplify(z3.And(*common, either)) if common else z3.simplify(either)


def _merge_memory(g1: z3.BoolRef, m1: Memory, m2: Memory) -> Memory:
    if m1.base is m2.base:
        base, written1, written2 = m1.base, m1.cells, m2.cells  # siblings: only their own writes differ
        keys = written1.keys() | written2.keys()
    else:
        written1, written2 = m1.written(), m2.written()
        # the cells both hold (the same object, written before they forked) are kept as they are, unlooked-at
        base = {key: cell for key, cell in written1.items() if written2.get(key) is cell}
        keys = (written1.keys() | written2.keys()) - base.keys()
    cells = {}
    merged: dict[tuple[int, int], BV] = {}  # the bytes of one word share one If
    for key in keys:
        cell1, cell2 = written1.get(key), written2.get(key)
        if cell1 is None:
            cell1 = m1.cell(*key)
        elif cell2 is None:
            cell2 = m2.cell(*key)
        assert cell1 is not None and cell2 is not None  # each key is written on one side at least
        (v1, i1), (v2, i2) = cell1, cell2
        if cell1 is cell2 or (i1 == i2 and (v1 is v2 or v1.eq(v2))):
            cells[key] = cell1
            continue
        pair = (v1.get_id(), v2.get_id())
        if i1 == i2 and (pair in merged or v1.size() == v2.size()):
            if pair not in merged:
                merged[pair] = z3.If(g1, v1, v2)
            cells[key] = (merged[pair], i1)  # whole values merge, bytes stay bytes of them
        else:
            cells[key] = (merge_value(g1, m1.byte(*key), m2.byte(*key)), 0)
    epochs = {cls: m1.epoch_table.merge(g1, m1.epochs.get(cls, 0), m2.epochs.get(cls, 0))
              for cls in set(m1.epochs) | set(m2.epochs)}
    return Memory(cells, m1.initial, epochs, m1.classify, base, m1.epoch_table)


def _merge_state(g1: z3.BoolRef, s1: State, s2: State) -> State:
    x = [merge_value(g1, a, b) for a, b in zip(s1.x, s2.x, strict=True)]
    sysregs = {}
    for enc in set(s1.sysregs) | set(s2.sysregs):
        sysregs[enc] = merge_value(g1, s1.read_sysreg(enc), s2.read_sysreg(enc))
    memory = _merge_memory(g1, s1.memory, s2.memory)
    return State(x, merge_value(g1, s1.sp_el1, s2.sp_el1), merge_value(g1, s1.sp_el0, s2.sp_el0),
                 merge_value(g1, s1.nzcv, s2.nzcv), merge_value(g1, s1.daif, s2.daif),
                 merge_value(g1, s1.pstate_ss, s2.pstate_ss), sysregs, memory, s1.fresh_sysreg, s1.el, s1.spsel)


def _most(first: dict[tuple, int], second: dict[tuple, int]) -> dict[tuple, int]:
    """Per key, the larger count of the two (a key one lacks counts 0)."""
    most = {**second, **first}
    for key, count in second.items():
        if most[key] < count:
            most[key] = count
    return most


def merge_paths(p1: Path, p2: Path) -> Path:
    """Two paths at the same place (same context, pc, alternative and mode) as one."""
    g1, g2 = p1.guard, p2.guard
    state = _merge_state(g1, p1.state, p2.state)
    observers = [mine.merge(g1, p1.state, theirs, g2, p2.state)
                 for mine, theirs in zip(p1.observers, p2.observers, strict=True)]
    return Path(
        state, join_guards(g1, g2), p1.ctx, p1.pc, observers, p1.alt, p1.skip_alt,
        decided={k: v for k, v in p1.decided.items() if p2.decided.get(k) == v},
        fresh_counts=_most(p1.fresh_counts, p2.fresh_counts),
        loops=_most(p1.loops, p2.loops),
        summaries=p1.summaries | p2.summaries,
        witness=p1.witness or p2.witness,  # a model of either guard is one of their disjunction
        rests_on=p1.rests_on | p2.rests_on,
    )
