"""Symbolic exploration of every path from one vector slot, with state merging.

A worklist of paths ordered by (call context, address): all predecessors of a join point are usually
executed before it, and the paths that meet there are merged (values become `If(guard, a, b)`), so
diamonds in the C code do not multiply paths. A call into lifted code is followed with the call site
pushed on the context; a call elsewhere applies a contract. Alternatives fork on a symbolic capability
and, since their replacement code is ordered as if it stood at the original site, merge again after it.

Nothing is dropped: an instruction without semantics, an undecodable word, an indirect branch that
cannot be resolved, a loop that reaches its bound or a store to an address the memory model cannot place
ends the path as an *unknown event* with its reason and guard; verdicts over it are UNKNOWN, never PROVED.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import z3

from verifier.engine.image import CodeRef, Image
from verifier.frontend.srcfunc import function_at
from verifier.ir.canon import canonical
from verifier.ir.program import Insn, Loc, Reloc, SymRef, Target
from verifier.semantics import table as sem
from verifier.semantics.state import (
    BV,
    ELR_EL1,
    MDSCR,
    SPSR_EL1,
    Memory,
    Region,
    State,
    bv,
    merge_epochs,
    split_address,
)
from verifier.spec.contracts import PSTATE_BITS, Contract, Contracts

# What every result also rests on, printed with it.
ENGINE_ASSUMPTIONS = (
    "memory regions built from distinct symbolic bases (the stack, the current task, per-CPU data, each "
    "symbol, each loaded pointer) do not overlap",
    "an external symbol's address comes whole from adrp and :lo12: adds 0 (exact for the adrp+add and "
    "adrp+ldr pairs compilers and the kernel's macros emit)",
    "no synchronous exception (a fault) is taken by the entry code's own instructions",
    "a call into code that is not lifted behaves as its contract says",
    "each alternative's capability is a free boolean, the same at every site (unless pinned); "
    "alternative_cb callbacks patch as their contracts say",
    "TPIDR_EL1 and TPIDR_EL2 both hold this CPU's per-CPU offset at entry (the kernel reads the one "
    "its VHE alternative selects)",
)


# ---------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Event:
    """Something an obligation needs to know happened at an instruction, under a condition."""

    address: int
    cond: z3.BoolRef
    what: str


@dataclass
class Track:
    """Per-path bookkeeping of the obligations, merged with the state."""

    # The events, where they happened (exact on one path; after a merge, for locating only) ...
    elr_events: list[Event] = field(default_factory=list)  # exceptions possible since the last ELR write
    spsr_events: list[Event] = field(default_factory=list)
    order_events: list[Event] = field(default_factory=list)  # I unmasked while D masked
    sync_events: list[Event] = field(default_factory=list)  # MDSCR write not synchronised when it mattered
    # ... and, per kind ("elr", "spsr", "order", "sync"), the exact condition that one happened on the
    # path, which merging keeps exact
    bad: dict[str, z3.BoolRef] = field(default_factory=dict)
    mdscr_old: BV | None = None  # MDSCR_EL1 before a write no context synchronisation event has followed
    flags_read: BV | None = None  # the current task's thread flags as the code last read them
    decided: dict[int, bool] = field(default_factory=dict)
    calls: dict[tuple, int] = field(default_factory=dict)
    contracts: set[str] = field(default_factory=set)
    visited: dict[str, z3.BoolRef] = field(default_factory=dict)  # watched function -> "the path ran it"
    loops: dict[tuple, int] = field(default_factory=dict)  # backward jumps taken, per (context, target)
    rule_events: dict[str, list[Event]] = field(default_factory=dict)  # policy rule id -> its violations
    called: dict[str, z3.BoolRef] = field(default_factory=dict)  # policy role -> "a function of it was called"

    def copy(self) -> Track:
        return Track(list(self.elr_events), list(self.spsr_events), list(self.order_events),
                     list(self.sync_events), dict(self.bad), self.mdscr_old, self.flags_read, dict(self.decided),
                     dict(self.calls), set(self.contracts), dict(self.visited), dict(self.loops),
                     {k: list(v) for k, v in self.rule_events.items()}, dict(self.called))

    def note(self, kind: str, event: Event) -> None:
        if kind.startswith("rule:"):
            self.rule_events.setdefault(kind, []).append(event)
        else:
            getattr(self, f"{kind}_events").append(event)
        old = self.bad.get(kind)
        self.bad[kind] = event.cond if old is None else z3.Or(old, event.cond)

    def reset(self, kind: str, events: list[Event]) -> None:
        setattr(self, f"{kind}_events", list(events))
        self.bad[kind] = z3.Or([e.cond for e in events]) if events else z3.BoolVal(False)


@dataclass(frozen=True)
class PolicyRule:
    """A policy rule compiled for one slot: where it looks and what it requires there."""

    id: str
    event: str  # call daif mdscr eret every
    role: re.Pattern[str] | None
    scope: z3.BoolRef  # the exception classes it covers (a condition on ESR_EL1)
    predicate: Callable[[State, Track], z3.BoolRef]
    roles: dict[str, re.Pattern[str]]


@dataclass(frozen=True)
class Frame:
    call: int  # address of the call instruction
    ret: int  # where it returns


@dataclass
class Path:
    state: State
    guard: z3.BoolRef
    track: Track
    ctx: tuple[Frame, ...]
    pc: int
    # while running an alternative's replacement: (replacement start, replacement end, original start,
    # original end); the path is ordered as if it stood at the original start
    alt: tuple[int, int, int, int] | None = None
    skip_alt: int | None = None  # the alternative site at this pc was already decided for this path

    def copy(self) -> Path:
        return Path(self.state.copy(), self.guard, self.track.copy(), self.ctx, self.pc, self.alt, self.skip_alt)


@dataclass(frozen=True)
class Unknown:
    address: int
    cond: z3.BoolRef
    reason: str


@dataclass(frozen=True)
class EretCheck:
    """One eret reached: the obligation formulas there (each already includes the path guard)."""

    address: int
    guard: z3.BoolRef
    violations: dict[str, z3.BoolRef]
    events: dict[str, list[Event]]
    contracts: frozenset[str]
    visited: dict[str, z3.BoolRef]
    values: dict[str, z3.ExprRef]  # what the obligations compared, for the counterexample


@dataclass
class Fatal:
    address: int
    cond: z3.BoolRef
    reason: str


@dataclass
class SlotRun:
    erets: list[EretCheck] = field(default_factory=list)
    unknowns: list[Unknown] = field(default_factory=list)
    fatals: list[Fatal] = field(default_factory=list)
    contracts: set[str] = field(default_factory=set)
    steps: int = 0
    merges: int = 0
    solver_calls: int = 0


@dataclass
class Initial:
    """The named initial values of one slot (what assumptions and counterexamples talk about)."""

    spsr: BV
    mdscr: BV
    esr: BV
    elr: BV
    task: BV
    flags: BV
    from_el0: bool
    caps: dict[int, z3.BoolRef]


# ------------------------------------------------------------------------------------- helpers


def _daif_bits(state: State) -> tuple[z3.BitVecRef, z3.BitVecRef, z3.BitVecRef, z3.BitVecRef]:
    d = z3.Extract(3, 3, state.daif)
    a = z3.Extract(2, 2, state.daif)
    i = z3.Extract(1, 1, state.daif)
    f = z3.Extract(0, 0, state.daif)
    return d, a, i, f


def can_take_exception(state: State) -> z3.BoolRef:
    """An exception that would overwrite ELR/SPSR could be taken: I, F or A unmasked, or D unmasked while
    MDSCR_EL1.KDE allows kernel debug exceptions."""
    d, a, i, f = _daif_bits(state)
    kde = z3.Extract(13, 13, state.read_sysreg(MDSCR))
    zero = bv(0, 1)
    return z3.simplify(z3.Or(i == zero, f == zero, a == zero, z3.And(d == zero, kde == bv(1, 1))))


def _merge_value(g1: z3.BoolRef, a: z3.ExprRef, b: z3.ExprRef) -> z3.ExprRef:
    if a is b or a.eq(b):
        return a
    return z3.If(g1, a, b)


def _conjuncts(guard: z3.BoolRef) -> list[z3.BoolRef]:
    return list(guard.children()) if z3.is_and(guard) else [guard]


def _join_guards(g1: z3.BoolRef, g2: z3.BoolRef) -> z3.BoolRef:
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


def _merge_bad(t1: Track, g1: z3.BoolRef, t2: Track, g2: z3.BoolRef) -> dict[str, z3.BoolRef]:
    out = {}
    for kind in set(t1.bad) | set(t2.bad):
        b1, b2 = t1.bad.get(kind), t2.bad.get(kind)
        parts = [z3.And(b, g) for b, g in ((b1, g1), (b2, g2)) if b is not None and not z3.is_false(b)]
        out[kind] = z3.Or(parts) if parts else z3.BoolVal(False)
    return out


# ------------------------------------------------------------------------------------- explorer


@dataclass
class Options:
    loop_bound: int = 8  # backward jumps to one target per path and call context
    max_visits: int = 2_000  # executions of one instruction in one context, over all paths: explosion guard
    max_steps: int = 400_000
    solver_timeout_ms: int = 20_000
    enumerate_limit: int = 64  # values tried for a symbolic indirect branch or table load


class Explorer:
    def __init__(self, image: Image, contracts: Contracts, assumptions: list[z3.BoolRef], initial: Initial,
                 start: Path, options: Options | None = None, guide: z3.ModelRef | None = None,
                 on_step: Callable[[Path, CodeRef, Insn], None] | None = None,
                 watch: tuple[str, ...] = (), rules: tuple[PolicyRule, ...] = ()) -> None:
        self.image = image
        self.contracts = contracts
        self.options = options or Options()
        self.initial = initial
        self.run = SlotRun()
        self.solver = z3.Solver()
        self.solver.set("timeout", self.options.solver_timeout_ms)
        for fact in assumptions:
            self.solver.add(fact)
        self.visits: dict[tuple, int] = {}
        self.heap: list = []
        self.seq = itertools.count()
        self.guide = guide  # replay: follow the one path this model takes, no solver
        self.on_step = on_step
        self.watch = watch  # function-name patterns whose visits are tracked (waivers name them)
        self._watch_cache: dict[int, list[str]] = {}
        self.rules = rules
        self.roles: dict[str, re.Pattern[str]] = rules[0].roles if rules else {}
        self._push(start)

    # ------------------------------------------------------------------------------ worklist

    def _order(self, path: Path) -> tuple:
        virtual = path.alt[2] if path.alt else path.pc
        return tuple(f.call for f in path.ctx) + (virtual, 0 if path.alt is None else 1)

    def _merge_key(self, path: Path) -> tuple:
        return (path.ctx, path.pc, path.alt, path.skip_alt, path.state.el, path.state.spsel)

    def _push(self, path: Path) -> None:
        heapq.heappush(self.heap, (self._order(path), next(self.seq), path))

    def _pop(self) -> Path:
        _, _, path = heapq.heappop(self.heap)
        if self.guide is not None:
            return path
        key = self._merge_key(path)
        order = self._order(path)
        held = []
        while self.heap and self.heap[0][0] == order:
            _, seq, other = heapq.heappop(self.heap)
            if self._merge_key(other) == key:
                path = self._merge(path, other)
                self.run.merges += 1
            else:
                held.append((order, seq, other))
        for entry in held:
            heapq.heappush(self.heap, entry)
        return path

    def _merge(self, p1: Path, p2: Path) -> Path:
        g1, g2 = p1.guard, p2.guard
        s1, s2 = p1.state, p2.state
        x = [_merge_value(g1, a, b) for a, b in zip(s1.x, s2.x, strict=True)]
        sysregs = {}
        for enc in set(s1.sysregs) | set(s2.sysregs):
            sysregs[enc] = _merge_value(g1, s1.read_sysreg(enc), s2.read_sysreg(enc))
        cells = {}
        m1, m2 = s1.memory, s2.memory
        if m1.base is m2.base:
            base, keys = m1.base, set(m1.cells) | set(m2.cells)  # siblings: only their own writes differ
        else:
            base, keys = {}, set(m1.written()) | set(m2.written())
        merged: dict[tuple[int, int], z3.ExprRef] = {}  # the bytes of one word share one If
        for key in keys:
            cell1, cell2 = m1.cell(*key), m2.cell(*key)
            (v1, i1), (v2, i2) = cell1, cell2
            if cell1 is cell2 or (v1 is v2 and i1 == i2):
                cells[key] = cell1
                continue
            pair = (v1.get_id(), v2.get_id())
            if i1 == i2 and (pair in merged or v1.size() == v2.size()):
                if pair not in merged:
                    merged[pair] = _merge_value(g1, v1, v2)
                cells[key] = (merged[pair], i1)  # whole values merge, bytes stay bytes of them
            else:
                cells[key] = (_merge_value(g1, m1.byte(*key), m2.byte(*key)), 0)
        epochs = {cls: merge_epochs(g1, m1.epochs.get(cls, 0), m2.epochs.get(cls, 0))
                  for cls in set(m1.epochs) | set(m2.epochs)}
        memory = Memory(cells, m1.initial, epochs, m1.classify, base)
        state = State(x, _merge_value(g1, s1.sp_el1, s2.sp_el1), _merge_value(g1, s1.sp_el0, s2.sp_el0),
                      _merge_value(g1, s1.nzcv, s2.nzcv), _merge_value(g1, s1.daif, s2.daif),
                      _merge_value(g1, s1.pstate_ss, s2.pstate_ss), sysregs, memory, s1.fresh_sysreg, s1.el, s1.spsel)
        t1, t2 = p1.track, p2.track
        track = Track(
            elr_events=t1.elr_events + t2.elr_events,
            spsr_events=t1.spsr_events + t2.spsr_events,
            order_events=t1.order_events + t2.order_events,
            sync_events=t1.sync_events + t2.sync_events,
            bad=_merge_bad(t1, g1, t2, g2),
            decided={k: v for k, v in t1.decided.items() if t2.decided.get(k) == v},
            calls={k: max(t1.calls.get(k, 0), t2.calls.get(k, 0)) for k in set(t1.calls) | set(t2.calls)},
            contracts=t1.contracts | t2.contracts,
            visited={k: z3.simplify(z3.Or(z3.And(t1.visited.get(k, z3.BoolVal(False)), g1),
                                          z3.And(t2.visited.get(k, z3.BoolVal(False)), g2)))
                     for k in set(t1.visited) | set(t2.visited)},
            loops={k: max(t1.loops.get(k, 0), t2.loops.get(k, 0)) for k in set(t1.loops) | set(t2.loops)},
            rule_events={k: t1.rule_events.get(k, []) + t2.rule_events.get(k, [])
                         for k in set(t1.rule_events) | set(t2.rule_events)},
            called={k: z3.simplify(z3.Or(z3.And(t1.called.get(k, z3.BoolVal(False)), g1),
                                         z3.And(t2.called.get(k, z3.BoolVal(False)), g2)))
                    for k in set(t1.called) | set(t2.called)},
        )
        for name in ("mdscr_old", "flags_read"):
            a, b = getattr(t1, name), getattr(t2, name)
            if a is None and b is None:
                continue
            if a is None:
                a = s1.read_sysreg(MDSCR) if name == "mdscr_old" else self.initial.flags
            if b is None:
                b = s2.read_sysreg(MDSCR) if name == "mdscr_old" else self.initial.flags
            setattr(track, name, _merge_value(g1, a, b))
        guard = _join_guards(g1, g2)
        return Path(state, guard, track, p1.ctx, p1.pc, p1.alt, p1.skip_alt)

    # -------------------------------------------------------------------------------- solver

    def feasible(self, formula: z3.BoolRef) -> bool | None:
        """SAT under the assumptions? None on timeout."""
        formula = z3.simplify(formula)
        if z3.is_false(formula):
            return False
        if self.guide is not None:
            return z3.is_true(self.guide.eval(formula, model_completion=True))
        self.run.solver_calls += 1
        self.solver.push()
        self.solver.add(formula)
        result = self.solver.check()
        self.solver.pop()
        if result == z3.unknown:
            return None
        return result == z3.sat

    def _split(self, path: Path, cond: z3.BoolRef) -> tuple[z3.BoolRef | None, z3.BoolRef | None, bool]:
        """Guards for cond true / false that are feasible (None if not); third: a solver timeout."""
        cond = z3.simplify(cond)
        if z3.is_true(cond):
            return path.guard, None, False
        if z3.is_false(cond):
            return None, path.guard, False
        timeout = False
        out = []
        for branch in (cond, z3.Not(cond)):
            ok = self.feasible(z3.And(path.guard, branch))
            if ok is None:
                timeout = True
            out.append(z3.simplify(z3.And(path.guard, branch)) if ok else None)
        return out[0], out[1], timeout

    def _values(self, path: Path, value: BV) -> list[int] | None:
        """The concrete values a symbolic value can take on this path (None: too many / timeout)."""
        value = z3.simplify(value)
        if z3.is_bv_value(value):
            return [value.as_long()]
        if self.guide is not None:
            return [self.guide.eval(value, model_completion=True).as_long()]
        found: list[int] = []
        self.solver.push()
        self.solver.add(path.guard)
        try:
            while len(found) <= self.options.enumerate_limit:
                self.run.solver_calls += 1
                result = self.solver.check()
                if result != z3.sat:
                    return found if result == z3.unsat else None
                number = self.solver.model().eval(value, model_completion=True).as_long()
                found.append(number)
                self.solver.add(value != number)
            return None
        finally:
            self.solver.pop()

    # --------------------------------------------------------------------------------- events

    def where(self, address: int) -> str:
        """`file:line (function)` of an address, for messages."""
        code = self.image.code(address)
        function = self.image.function_at(address) or f"{address:#x}"
        if code is None or code.item.src is None:
            return f"{address:#x} ({function})"
        src = code.item.src
        line = f"{src.file}:{src.line}" if src.file else f"{src.asm_file}:{src.asm_line}"
        return f"{line} ({function})"

    def unknown(self, path: Path, reason: str) -> None:
        self.run.unknowns.append(Unknown(path.pc, path.guard, f"{reason} at {self.where(path.pc)}"))

    def fatal(self, path: Path, reason: str) -> None:
        self.run.fatals.append(Fatal(path.pc, path.guard, reason))

    # ---------------------------------------------------------------------------------- main

    def explore(self) -> SlotRun:
        while self.heap:
            path = self._pop()
            self.run.steps += 1
            if self.run.steps > self.options.max_steps:
                self.unknown(path, f"step budget of {self.options.max_steps} instructions exhausted")
                for _, _, rest in self.heap:
                    self.unknown(rest, f"step budget of {self.options.max_steps} instructions exhausted")
                self.heap.clear()
                break
            self._step(path)
        return self.run

    def _step(self, path: Path) -> None:
        key = (path.ctx, path.pc, path.alt)
        count = self.visits.get(key, 0) + 1
        self.visits[key] = count
        if count > self.options.max_visits and self.guide is None:
            self.unknown(path, f"more than {self.options.max_visits} paths through one instruction (path explosion)")
            return
        if path.alt is None and path.skip_alt != path.pc and path.pc in self.image.alternatives:
            self._fork_alternatives(path)
            return
        code = self.image.code(path.pc)
        if code is None:
            self.unknown(path, f"no lifted instruction at {path.pc:#x}")
            return
        if code.item.kind == "undecoded" or code.item.insn is None:
            self.unknown(path, f"undecoded instruction: {code.item.reason or 'unknown encoding'}")
            return
        insn = canonical(code.item.insn)
        if self.watch:
            for pattern in self._watched(path.pc, code):
                seen = path.track.visited.get(pattern, z3.BoolVal(False))
                path.track.visited[pattern] = z3.simplify(z3.Or(seen, path.guard))
        if self.on_step is not None:
            self.on_step(path, code, insn)
        self._execute(path, code, insn)

    def _watched(self, address: int, code: CodeRef) -> list[str]:
        """The watched patterns (waivers') that the function at `address` matches: by its symbol, or by
        the C function its source line is in (which may have been inlined)."""
        cached = self._watch_cache.get(address)
        if cached is None:
            names = [self.image.function_at(address)]
            src = code.item.src
            if src is not None:
                names.append(function_at(self.image.programs[code.program].source_root, src.file, src.line))
            cached = [p for p in self.watch if any(n and re.fullmatch(p, n) for n in names)]
            self._watch_cache[address] = cached
        return cached

    def rule_event(self, path: Path, kind: str, name: str | None = None) -> None:
        """A policy event: each rule that watches it records where its requirement fails."""
        if not self.rules:
            return
        for rule in self.rules:
            if rule.event != kind and not (rule.event == "every" and kind in ("daif", "call")):
                continue
            if rule.event == "call" and (name is None or rule.role is None or not rule.role.fullmatch(name)):
                continue
            failing = z3.simplify(z3.And(rule.scope, z3.Not(rule.predicate(path.state, path.track))))
            if z3.is_false(failing):
                continue
            what = f"{rule.id} fails" + (f" at the call of {name}" if kind == "call" else f" at {kind}")
            path.track.note(f"rule:{rule.id}", Event(path.pc, z3.And(path.guard, failing), what))
        if kind == "call" and name is not None:
            for role, pattern in self.roles.items():
                if pattern.fullmatch(name):
                    seen = path.track.called.get(role, z3.BoolVal(False))
                    path.track.called[role] = z3.simplify(z3.Or(seen, path.guard))

    # --------------------------------------------------------------------------- alternatives

    def _fork_alternatives(self, path: Path) -> None:
        sites = self.image.alternatives[path.pc]
        site, program, repl = sites[0]  # nested sites at one address are decided one at a time
        cap = self.initial.caps.setdefault(site.cap, z3.Bool(f"cap{site.cap}"))
        orig_end = path.pc + site.orig_len
        decided = path.track.decided.get(site.cap)
        options: list[tuple[bool, z3.BoolRef]] = []
        for value in (False, True):
            if decided is not None and decided != value:
                continue
            guard = z3.simplify(z3.And(path.guard, cap if value else z3.Not(cap)))
            if decided is None and not self.feasible(guard):
                continue
            options.append((value, guard))
        for value, guard in options:
            branch = path.copy()
            branch.guard = guard
            branch.track.decided[site.cap] = value
            if not value:
                branch.skip_alt = path.pc  # run the original instructions
                self._push(branch)
                continue
            if site.callback:
                self._apply_callback(branch, site.callback, orig_end)
                continue
            if repl is None or site.repl_len == 0:
                branch.pc = orig_end
                self._push(branch)
                continue
            branch.alt = (repl, repl + site.repl_len, path.pc, orig_end)
            branch.pc = repl
            self._push(branch)

    def _apply_callback(self, path: Path, name: str, orig_end: int) -> None:
        callback = self.contracts.callbacks.get(name)
        if callback is None:
            self.unknown(path, f"alternative callback {name} has no contract")
            return
        path.track.contracts.add(f"callback {name}: patches {callback.patches}")
        if callback.patches == "registers":
            for reg in callback.registers:
                path.state.write_reg(reg, self._fresh(path, f"{name}.{reg}"))
        path.pc = orig_end
        self._push(path)

    # ------------------------------------------------------------------------------- execution

    def _fresh(self, path: Path, what: str, bits: int = 64) -> BV:
        site = (path.ctx, path.pc, what)
        n = path.track.calls.get(site, 0)
        path.track.calls[site] = n + 1
        ctx = "/".join(f"{f.call:x}" for f in path.ctx)
        return z3.BitVec(f"{what}@{ctx}:{path.pc:x}#{n}", bits)

    def _execute(self, path: Path, code: CodeRef, insn: Insn) -> None:
        state = path.state
        before_daif = state.daif
        before_mdscr = state.read_sysreg(MDSCR)
        ctx = _Context(self, path, code)
        try:
            effect = sem.execute(insn, state, ctx)
        except _Unresolved as err:
            self.unknown(path, str(err))
            return
        if isinstance(effect, sem.Unsupported):
            self.unknown(path, f"no semantics for `{insn}`: {effect.reason}")
            return
        self._after_write(path, insn, before_daif, before_mdscr)
        if path.alt is not None and path.pc + 4 == path.alt[1] and isinstance(effect, sem.Next | sem.Barrier):
            # the last replacement instruction: continue after the original range
            if isinstance(effect, sem.Barrier) and effect.kind == "isb":
                path.track.mdscr_old = None
            path.pc = path.alt[3]
            path.alt = None
            self._push(path)
            return
        self._control(path, code, insn, effect)

    def _after_write(self, path: Path, insn: Insn, before_daif: BV, before_mdscr: BV) -> None:
        """Obligation bookkeeping after an instruction: DAIF, MDSCR_EL1, ELR/SPSR writes."""
        state, track = path.state, path.track
        if insn.mnemonic == "msr" and insn.operands:
            target = insn.operands[0]
            encoding = getattr(target, "encoding", None)
            if encoding == ELR_EL1:
                track.reset("elr", self._window_start(path))
            elif encoding == SPSR_EL1:
                track.reset("spsr", self._window_start(path))
        mdscr = state.read_sysreg(MDSCR)
        mdscr_changed = not mdscr.eq(before_mdscr)
        if mdscr_changed and track.mdscr_old is None:
            track.mdscr_old = before_mdscr
        daif_changed = not state.daif.eq(before_daif)
        if daif_changed or mdscr_changed:
            self._exceptions_changed(path, daif_changed, mdscr_changed)

    def _window_start(self, path: Path) -> list[Event]:
        cond = can_take_exception(path.state)
        if z3.is_false(cond):
            return []
        return [Event(path.pc, z3.And(path.guard, cond), "exception unmasked after the write")]

    def _exceptions_changed(self, path: Path, daif: bool = True, mdscr: bool = True) -> None:
        state, track = path.state, path.track
        if daif:
            self.rule_event(path, "daif")
        if mdscr:
            self.rule_event(path, "mdscr")
        cond = can_take_exception(state)
        if not z3.is_false(cond):
            event = Event(path.pc, z3.And(path.guard, cond), "exception unmasked")
            track.note("elr", event)
            track.note("spsr", event)
        d, _, i, _ = _daif_bits(state)
        order = z3.simplify(z3.And(i == bv(0, 1), d == bv(1, 1)))
        if not z3.is_false(order):
            track.note("order", Event(path.pc, z3.And(path.guard, order), "I unmasked while D masked"))
        if track.mdscr_old is not None:
            new = state.read_sysreg(MDSCR)
            old = track.mdscr_old
            differs = z3.Or(z3.Extract(0, 0, old) != z3.Extract(0, 0, new),
                            z3.Extract(13, 13, old) != z3.Extract(13, 13, new))
            cond = z3.simplify(z3.And(d == bv(0, 1), differs))
            if not z3.is_false(cond):
                track.note("sync", Event(path.pc, z3.And(path.guard, cond),
                                         "D unmasked before the MDSCR_EL1 write is synchronised"))

    def _control(self, path: Path, code: CodeRef, insn: Insn, effect: object) -> None:
        next_pc = path.pc + 4
        if isinstance(effect, sem.Next):
            path.pc = next_pc
            self._push(path)
        elif isinstance(effect, sem.Barrier):
            if effect.kind == "isb":
                path.track.mdscr_old = None
            path.pc = next_pc
            self._push(path)
        elif isinstance(effect, sem.CondJump):
            taken, fallthrough, timeout = self._split(path, effect.cond)
            if timeout:
                self.unknown(path, "solver timeout on a branch condition")
                return
            if fallthrough is not None:
                other = path.copy() if taken is not None else path
                other.guard = fallthrough
                other.pc = next_pc
                self._leave_alt(other)
                self._push(other)
            if taken is not None:
                path.guard = taken
                self._jump(path, code, effect.target)
        elif isinstance(effect, sem.Jump):
            self._jump(path, code, effect.target)
        elif isinstance(effect, sem.Call):
            self._call(path, code, effect.target, next_pc)
        elif isinstance(effect, sem.Return):
            self._return(path, effect.target)
        elif isinstance(effect, sem.Eret):
            self._eret(path)
        elif isinstance(effect, sem.Trap):
            if effect.kind in ("hvc", "smc"):
                self._firmware(path, next_pc)
            else:
                self.fatal(path, f"{effect.kind} #{effect.imm:#x} (BUG()/trap)")
        else:
            self.unknown(path, f"unexpected effect {effect!r}")

    def _leave_alt(self, path: Path) -> None:
        """A branch out of the replacement code (the kernel's patching fixed it up) ends alt mode; a
        fall-through past its end continues after the original range."""
        if path.alt is None:
            return
        start, end, _, orig_end = path.alt
        if path.pc == end:
            path.pc = orig_end
        if not start <= path.pc < end:
            path.alt = None

    # ------------------------------------------------------------------------------ branches

    def _target_address(self, path: Path, code: CodeRef, target: Target | BV) -> list[int] | str:
        if isinstance(target, Loc | SymRef):
            address = self.image.address(target, code.program)
            if address is None:
                return f"external:{target.symbol if isinstance(target, SymRef) else target}"
            return [address]
        values = self._values(path, target)
        if values is None:
            return "unresolved"
        return values

    def _jump(self, path: Path, code: CodeRef, target: Target | BV) -> None:
        if isinstance(target, SymRef) and self.image.address(target, code.program) is None:
            # a tail call out of the lifted code: the callee returns to our caller
            contract = self.contracts.for_function(target.symbol)
            if not self._apply_contract(path, contract, target.symbol):
                return
            self._return(path, path.state.read_reg("x30"))
            return
        addresses = self._target_address(path, code, target)
        if isinstance(addresses, str):
            self.unknown(path, f"indirect branch to a value the engine cannot resolve ({addresses})")
            return
        for branch, address in self._per_target(path, target, addresses):
            if address == path.pc and not isinstance(target, z3.ExprRef):
                self.fatal(branch, "deliberate hang (branch to itself)")
                continue
            if address <= path.pc:
                loop = (path.ctx, address)
                branch.track.loops[loop] = branch.track.loops.get(loop, 0) + 1
                if branch.track.loops[loop] > self.options.loop_bound and self.guide is None:
                    self.unknown(branch, f"loop bound {self.options.loop_bound} reached (backward jump)")
                    continue
            branch.pc = address
            self._leave_alt(branch)
            self._push(branch)

    def _call(self, path: Path, code: CodeRef, target: Target | BV, ret: int) -> None:
        if isinstance(target, SymRef) and self.image.address(target, code.program) is None:
            self._summarised_call(path, self.contracts.for_function(target.symbol), target.symbol, ret)
            return
        if isinstance(target, z3.ExprRef) and not z3.is_bv_value(z3.simplify(target)):
            origin = self._pointer_origin(target)
            if origin is not None and origin in self.contracts.indirect:
                self._summarised_call(path, self.contracts.indirect[origin], f"*{origin}", ret)
                return
        addresses = self._target_address(path, code, target)
        if isinstance(addresses, str):
            self.unknown(path, f"indirect call through a value the engine cannot resolve ({addresses})")
            return
        for branch, address in self._per_target(path, target, addresses):
            name = self.image.names.get(address)
            summary = self.contracts.functions.get(name) if name else None
            if summary is not None and not summary.lift:
                self._summarised_call(branch, summary, name, ret)  # type: ignore[arg-type]
                continue
            if self.image.code(address) is None:
                self.unknown(branch, f"call to {address:#x}, which holds no lifted code")
                continue
            if len(branch.ctx) > 64:
                self.unknown(branch, "call depth above 64 (recursion?)")
                continue
            self.rule_event(branch, "call", name or self.image.function_at(address))
            branch.ctx = branch.ctx + (Frame(path.pc, ret),)
            branch.pc = address
            branch.alt = None
            self._push(branch)

    def _per_target(self, path: Path, target: Target | BV, addresses: list[int]) -> Iterator[tuple[Path, int]]:
        """One path per value an (indirect) target can take, each with that value in its guard."""
        for n, address in enumerate(addresses):
            branch = path if n == len(addresses) - 1 else path.copy()
            if len(addresses) > 1:
                branch.guard = z3.simplify(z3.And(path.guard, target == address))  # type: ignore[operator]
            yield branch, address

    def _summarised_call(self, path: Path, contract: Contract, name: str, ret: int) -> None:
        """A call the contract stands in for: continue after it, unless the function does not return."""
        if self._apply_contract(path, contract, name):
            path.pc = ret
            self._push(path)

    def _pointer_origin(self, value: BV) -> str | None:
        """For a function pointer loaded from memory: the symbol it was loaded from."""
        name = str(z3.simplify(value))
        if name.startswith("mem[&"):
            return name[5:].split("+")[0].split("]")[0]
        return None

    def _return(self, path: Path, target: BV) -> None:
        target = z3.simplify(target)
        if not path.ctx:
            self.unknown(path, "return from the exception vector's own code (no caller)")
            return
        frame = path.ctx[-1]
        if not (z3.is_bv_value(target) and target.as_long() == frame.ret):
            same = self.feasible(z3.And(path.guard, target == frame.ret))
            if not same:
                self.unknown(path, "return to an address other than the caller's")
                return
        path.ctx = path.ctx[:-1]
        path.pc = frame.ret
        path.alt = None
        self._push(path)

    # ----------------------------------------------------------------------------- contracts

    def _apply_contract(self, path: Path, contract: Contract, name: str) -> bool:
        """Summarise a call: returns False when the path ends there (the function does not return)."""
        self.rule_event(path, "call", name.lstrip("*"))
        path.track.contracts.add(contract.describe() if not contract.is_default else f"{name}: default contract")
        self.run.contracts.add(name)
        if not contract.returns:
            self.fatal(path, f"call to {name}, which does not return")
            return False
        state = path.state
        before_daif, before_mdscr = state.daif, state.read_sysreg(MDSCR)
        # exceptions the callee may take while it runs
        if contract.unmasks == "all":
            event = Event(path.pc, path.guard, f"{name} may unmask exceptions while it runs")
            path.track.note("elr", event)
            path.track.note("spsr", event)
        regs_base = state.read_reg("x0")
        for reg in contract.clobbers:
            state.write_reg(reg, self._fresh(path, f"{name}.{reg}"))
        state.nzcv = self._fresh(path, f"{name}.nzcv", 4)
        if contract.daif == "masked":
            state.daif = bv(0xF, 4)
        elif contract.daif == "any":
            state.daif = self._fresh(path, f"{name}.daif", 4)
        elif contract.daif.startswith("0b"):
            state.daif = bv(int(contract.daif, 2), 4)
        if contract.mdscr == "any":
            state.write_sysreg(MDSCR, self._fresh(path, f"{name}.mdscr"))
        self._havoc_memory(path, contract, name, regs_base)
        self._after_contract(path, before_daif, before_mdscr)
        return True

    def _after_contract(self, path: Path, before_daif: BV, before_mdscr: BV) -> None:
        mdscr = path.state.read_sysreg(MDSCR)
        if not mdscr.eq(before_mdscr):
            path.track.mdscr_old = None  # the callee's own isb/eret synchronised it (part of its contract)
        daif_changed, mdscr_changed = not path.state.daif.eq(before_daif), not mdscr.eq(before_mdscr)
        if daif_changed or mdscr_changed:
            self._exceptions_changed(path, daif_changed, mdscr_changed)

    def _havoc_memory(self, path: Path, contract: Contract, name: str, regs_arg: BV) -> None:
        memory = path.state.memory
        layout = self.contracts.layout
        frame = self._regs_frame(path)
        for cls in ("task", "percpu", "global"):
            if cls in contract.writes:
                memory.havoc_class(cls)
        if frame is None:
            return
        region, base = frame
        pstate = layout["S_PSTATE"]
        size = layout["S_FRAME_SIZE"]
        spans = {"regs.gprs": (0, 31 * 8), "regs.sp": (31 * 8, 32 * 8), "regs.pc": (layout["S_PC"], layout["S_PC"] + 8),
                 "regs.rest": (pstate + 8, size)}
        for cls, (lo, hi) in spans.items():
            if cls in contract.writes:
                for offset in range(lo, hi, 8):
                    value = self._fresh(path, f"{name}.regs+{offset:#x}")
                    memory.store(region, base + offset, value, 8)
        if "regs.pstate" in contract.writes:
            old = memory.load(region, base + pstate, 8)
            fresh = self._fresh(path, f"{name}.pstate")
            mask = sum(1 << PSTATE_BITS[bit] for bit in contract.pstate_bits)
            memory.store(region, base + pstate, (old & ~bv(mask)) | (fresh & bv(mask)), 8)

    def _regs_frame(self, path: Path) -> tuple[Region, int] | None:
        """The pt_regs frame kernel_entry built: at the initial SP_EL1 minus its size."""
        where = split_address(self.initial_sp - self.contracts.layout["S_FRAME_SIZE"])
        return where

    initial_sp: BV = z3.BitVec("sp0", 64)

    def _firmware(self, path: Path, ret: int) -> None:
        contract = self.contracts.firmware or Contract("firmware call (hvc/smc)", clobbers=tuple(
            f"x{i}" for i in range(18)), writes=())
        if self._apply_contract(path, contract, contract.name):
            path.pc = ret
            self._push(path)

    # ---------------------------------------------------------------------------------- eret

    def _eret(self, path: Path) -> None:
        state, track, init = path.state, path.track, self.initial
        spsr = state.read_sysreg(SPSR_EL1)
        mdscr = state.read_sysreg(MDSCR)
        guard = path.guard
        to_el0 = z3.Extract(3, 2, spsr) == bv(0, 2)
        flags = track.flags_read if track.flags_read is not None else init.flags
        tif = self.contracts.tif["TIF_SINGLESTEP"]
        ss_now = z3.Extract(0, 0, mdscr)
        ss_bad = z3.If(to_el0, ss_now != z3.Extract(tif, tif, flags), ss_now != z3.Extract(0, 0, init.mdscr))
        violations = {
            "eret-integrity": z3.Or(track.bad.get("elr", z3.BoolVal(False)), track.bad.get("spsr", z3.BoolVal(False))),
            "d-restored": z3.And(guard, z3.Extract(9, 9, spsr) != z3.Extract(9, 9, init.spsr)),
            "ss-restored": z3.And(guard, ss_bad),
            "daif-order": track.bad.get("order", z3.BoolVal(False)),
            "mdscr-sync": track.bad.get("sync", z3.BoolVal(False)),
        }
        self.rule_event(path, "eret")
        for rule in self.rules:
            violations[f"rule:{rule.id}"] = track.bad.get(f"rule:{rule.id}", z3.BoolVal(False))
        violations = {k: z3.simplify(z3.And(guard, v)) for k, v in violations.items()}
        events = {"eret-integrity": track.elr_events + track.spsr_events, "daif-order": track.order_events,
                  "mdscr-sync": track.sync_events}
        events.update(track.rule_events)
        self.run.erets.append(
            EretCheck(path.pc, guard, violations, events, frozenset(track.contracts), dict(track.visited),
                      {"SPSR_EL1 at eret": spsr, "MDSCR_EL1 at eret": mdscr, "thread flags read": flags,
                       "DAIF at eret": state.daif}))


class _Unresolved(Exception):
    pass


class _Context:
    """What the semantics table sees of the engine: addresses and memory."""

    def __init__(self, explorer: Explorer, path: Path, code: CodeRef) -> None:
        self.explorer = explorer
        self.path = path
        self.code = code
        self.pc = bv(path.pc)
        self.next_pc = bv(path.pc + 4)

    def address(self, target: Target) -> BV:
        address = self.explorer.image.address(target, self.code.program)
        if address is not None:
            return bv(address)
        assert isinstance(target, SymRef)
        return z3.simplify(z3.BitVec(f"&{target.symbol}", 64) + target.addend)

    def reloc(self, reloc: Reloc) -> BV:
        target = reloc.target
        address = self.explorer.image.address(target, self.code.program)
        kind = reloc.kind
        if address is None:
            # An external symbol: adrp gives its whole address and :lo12: adds nothing, so that
            # adrp+add / adrp+ldr [x, :lo12:] compute exactly &sym (+ addend) for the region model.
            full = self.address(target)
            if kind == "page":
                return full
            if kind.startswith("lo12") or kind in ("lo12_nc",):
                return bv(0)
            raise _Unresolved(f"relocation :{kind}: against external {target}")
        if kind == "page":
            return bv(address & ~0xFFF)
        if kind.startswith("lo12"):
            return bv(address & 0xFFF)
        if kind.startswith("abs_g"):
            shift = 16 * int(kind[5])
            return bv((address >> shift) & 0xFFFF)
        raise _Unresolved(f"relocation :{kind}:")

    def load(self, state: State, addr: BV, size: int) -> BV:
        where = split_address(addr)
        if where is None:
            cases = _address_cases(addr)
            if cases is None:
                return self._table_load(state, addr, size)
            # an address merged from several paths: the load is the merge of the loads
            result: BV | None = None
            for cond, (region, offset) in reversed(cases):
                loaded = state.memory.load(region, offset, size)
                result = loaded if result is None else z3.If(cond, loaded, result)
            assert result is not None
            return z3.simplify(result)
        region, offset = where
        value = state.memory.load(region, offset, size)
        self._note_flags(state, region, offset, size, value)
        return value

    def _note_flags(self, state: State, region: Region, offset: int, size: int, value: BV) -> None:
        layout = self.explorer.contracts.layout
        current = split_address(state.sp_el0 + layout["TSK_TI_FLAGS"])
        if current == (region, offset) and size in (4, 8):
            self.path.track.flags_read = z3.ZeroExt(64 - value.size(), value) if value.size() < 64 else value

    def _table_load(self, state: State, addr: BV, size: int) -> BV:
        """A load from an address with a symbolic part (a jump table indexed by the exception class):
        enumerate the addresses it can have on this path and select among their contents."""
        values = self.explorer._values(self.path, addr)
        if not values:
            raise _Unresolved(f"load from an address the engine cannot resolve ({_short(addr)})")
        result: BV | None = None
        for value in values:
            where = split_address(bv(value))
            assert where is not None
            loaded = state.memory.load(where[0], where[1], size)
            result = loaded if result is None else z3.If(addr == value, loaded, result)
        assert result is not None
        return z3.simplify(result)

    def store(self, state: State, addr: BV, value: BV, size: int) -> None:
        where = split_address(addr)
        if where is not None:
            state.memory.store(where[0], where[1], value, size)
            return
        cases = _address_cases(addr)
        if cases is None:
            raise _Unresolved(f"store to an address the engine cannot resolve ({_short(addr)})")
        # a merged address: each place keeps its old value unless its case holds
        for cond, (region, offset) in cases:
            old = state.memory.load(region, offset, size)
            state.memory.store(region, offset, z3.If(cond, value, old), size)


def _address_cases(addr: BV, limit: int = 16) -> list[tuple[z3.BoolRef, tuple[Region, int]]] | None:
    """An address built by merging paths, `If(c, a, b)` (also below an added offset), as the places it
    can be: [(condition, (region, offset))], the conditions exclusive and complete. None if any leaf is
    not a region + offset, or there are too many."""
    addr = z3.simplify(addr)

    def leaves(term: z3.ExprRef, cond: z3.BoolRef) -> list[tuple[z3.BoolRef, z3.ExprRef]] | None:
        if z3.is_app_of(term, z3.Z3_OP_ITE):
            c, a, b = term.children()
            left = leaves(a, z3.And(cond, c))
            right = leaves(b, z3.And(cond, z3.Not(c)))
            if left is None or right is None:
                return None
            return left + right
        if z3.is_app_of(term, z3.Z3_OP_BADD):
            # push an offset into an If: (If(c, a, b) + k) -> If(c, a + k, b + k)
            children = term.children()
            for i, child in enumerate(children):
                if z3.is_app_of(child, z3.Z3_OP_ITE):
                    rest = [ch for j, ch in enumerate(children) if j != i]
                    c, a, b = child.children()
                    pushed = z3.If(c, z3.Sum(a, *rest), z3.Sum(b, *rest))
                    return leaves(pushed, cond)
        return [(cond, term)]

    found = leaves(addr, z3.BoolVal(True))
    if found is None or len(found) > limit or len(found) < 2:
        return None
    out = []
    for cond, term in found:
        where = split_address(term)
        if where is None:
            return None
        out.append((z3.simplify(cond), where))
    return out


def _short(term: z3.ExprRef, limit: int = 160) -> str:
    text = " ".join(str(z3.simplify(term)).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def classify_region(initial: Initial) -> Callable[[Region], str]:
    """The memory class a region belongs to, for contracts' `writes`."""
    task = str(initial.task)

    def classify(region: Region) -> str:
        names = region.bases
        if not names:
            return "image"
        if "sp0" in names:
            return "stack"
        if task in names:
            return "task"
        if any(name.startswith(("tpidr", "percpu_offset")) for name in names):
            return "percpu"
        return "global"

    return classify

