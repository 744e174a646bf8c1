"""Symbolic exploration of every path from one start, with state merging.

A worklist of paths ordered by (call context, address): all predecessors of a join point are usually
executed before it, and the paths that meet there are merged (values become `If(guard, a, b)`), so
diamonds in the C code do not multiply paths. A call into lifted code is followed with the call site
pushed on the context; any other call is summarised by the call model. Alternatives fork on a symbolic
capability and, since their replacement code is ordered as if it stood at the original site, merge again
after it.

The explorer knows no property: each path carries observers (engine/observer.py) that it tells what
happens, and at each eret it records what they find.

Nothing is dropped: an instruction without semantics, an undecodable word, an indirect branch that
cannot be resolved, a loop that reaches its bound or a store to an address the memory model cannot place
ends the path as an *unknown event* with its reason and guard; verdicts over it are UNKNOWN, never PROVED.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, cast

import z3

from verifier.engine.calls import CallModel, Summary, Variant
from verifier.engine.image import CodeRef, Image
from verifier.engine.memory import MemoryAccess, Unresolved
from verifier.engine.observer import Event, Findings
from verifier.engine.paths import AltRun, Frame, Path, merge_paths
from verifier.ir.canon import canonical
from verifier.ir.program import Insn, Loc, SymRef, Target
from verifier.semantics import names
from verifier.semantics import table as sem
from verifier.semantics.state import BV, MDSCR

# What every result also rests on, printed with it.
ENGINE_ASSUMPTIONS = (
    "memory regions built from distinct symbolic bases (the stack, the current task, per-CPU data, each "
    "symbol, each loaded pointer) do not overlap",
    "an external symbol's address comes whole from adrp and :lo12: adds 0 (exact for the adrp+add and "
    "adrp+ldr pairs compilers and the kernel's macros emit)",
    "no synchronous exception (a fault) is taken by the entry code's own instructions",
    "a call into code that is not lifted behaves as its contract says",
    "each alternative's capability is a free boolean, the same at every site (unless pinned); "
    "an alternative_cb callback writes at its site what its code was read to write (the site is written only "
    "through the pointers the callback is given), or, where it was not read, what its contract says",
    "TPIDR_EL1 and TPIDR_EL2 both hold this CPU's per-CPU offset at entry (the kernel reads the one "
    "its VHE alternative selects)",
    "a brk, udf or hlt ends its path (BUG(): the kernel dies), except the brk of a WARN(), which the "
    "kernel's __bug_table marks and whose handler returns past it with the state unchanged",
    "a call comes back, if at all, to the instruction after it (what shows a `returns = false` contract from "
    "the function's control flow)",
)

# What a loop that never ends may run: hints and barriers, nothing that branches, traps or touches memory.
SPIN_BODY = frozenset({"wfe", "wfi", "nop", "yield", "sev", "sevl", "isb", "dsb", "dmb", "hint", "bti"})

# Instructions that end a path where they stand (a BUG()): what comes after a call, where the call's return
# does not matter.
TRAPS = frozenset({"brk", "udf", "hlt"})

# How a path's `rests_on` names an alternative_cb callback (a summarised call is named as the call model
# names it).
CALLBACK = "callback "

# ---------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Unknown:
    """A path not followed to its end: verdicts over its condition are UNKNOWN with `reason`."""

    address: int
    cond: z3.BoolRef
    reason: str


@dataclass(frozen=True)
class Fatal:
    """A path that ends without an eret: a call that does not return, a BUG(), a deliberate hang."""

    address: int
    cond: z3.BoolRef
    reason: str


@dataclass(frozen=True)
class EretCheck:
    """One eret reached: what the observers found there (violations already include the path guard)."""

    address: int
    guard: z3.BoolRef
    violations: dict[str, z3.BoolRef]
    events: dict[str, list[Event]]
    summaries: frozenset[str]  # the contracts and patches the path rests on
    conditions: dict[str, z3.BoolRef]  # named path conditions the observers export
    values: dict[str, z3.ExprRef]  # what the observers compared, for the counterexample
    rests_on: frozenset[str] = frozenset()  # by name: the summarised calls and callbacks of the path


@dataclass
class ExploreRun:
    erets: list[EretCheck] = field(default_factory=list)
    # returns from the start's own function to its caller (when exploring a function, not a vector)
    returns: list[EretCheck] = field(default_factory=list)
    unknowns: list[Unknown] = field(default_factory=list)
    fatals: list[Fatal] = field(default_factory=list)
    summarised: set[str] = field(default_factory=set)  # the functions whose calls were summarised
    # each summarised call and patched callback (by name, callbacks as CALLBACK + name): the distinct path
    # guards it was applied under, so a verdict over some exception classes knows which ones its paths used
    applied_at: dict[str, dict[int, z3.BoolRef]] = field(default_factory=dict)
    steps: int = 0
    merges: int = 0
    solver_calls: int = 0
    witnessed: int = 0  # feasibility questions a path's witness answered without the solver
    cached: int = 0  # feasibility questions asked before, answered from the explorer's cache


@dataclass
class Options:
    loop_bound: int = 8  # backward jumps to one target per path and call context
    max_visits: int = 2_000  # executions of one instruction in one context, over all paths: explosion guard
    max_steps: int = 400_000
    max_solver_calls: int | None = None  # a budget of solver checks (a contract's check), counted, not timed
    # Each solver check is bounded by Z3's resource count, not by the clock, so a verdict does not depend on
    # how loaded the machine is; the clock bound only stops a runaway check. The heaviest check the real
    # trees need is ~1e7 units (bench and tests: 6.12 el0_32_sync, ss-restored).
    solver_rlimit: int = 60_000_000
    solver_timeout_ms: int = 600_000
    enumerate_limit: int = 64  # values tried for a symbolic indirect branch or table load
    merge: bool = True  # paths that meet are merged (off: each path to its end alone, for small functions)


@dataclass(frozen=True)
class Choice:
    """One feasible side of a branch: its guard, and a model of it where one is at hand."""

    guard: z3.BoolRef
    witness: z3.ModelRef | None


class ModelLike(Protocol):
    """A model to follow: a Z3 model, or one read back from a counterexample file."""

    def eval(self, expr: z3.ExprRef, model_completion: bool = ...) -> z3.ExprRef: ...


# Called before each instruction a path executes (the replay records its trace with it).
StepListener = Callable[[Path, CodeRef, Insn], None]


@dataclass(frozen=True)
class Entry:
    """Where an exploration starts: its first path (state, pc, observers), the facts assumed there, the
    capability booleans the alternatives are chosen by, and, exploring one function from its entry (not a
    vector slot, which has no caller), the caller's return address: a return to it ends the path and the
    observers judge it there."""

    path: Path
    assumptions: list[z3.BoolRef]
    caps: dict[int, z3.BoolRef]  # capability number -> its free boolean (shared with the slot's initial values)
    return_address: BV | None = None


@dataclass(frozen=True)
class Steering:
    """What a caller adds to an exploration besides its options: a model whose one path it follows (a replay:
    no solver), and a listener called before each instruction."""

    guide: ModelLike | None = None
    on_step: StepListener | None = None


# ------------------------------------------------------------------------------------- explorer


def _always_equal(a: BV, b: BV) -> bool:
    """a == b whatever the path (a return address reloaded through merged stack slots): a small question
    without the path guard, asked before the path's own."""
    solver = z3.Solver()
    solver.set("rlimit", 1_000_000)
    solver.add(a != b)
    return solver.check() == z3.unsat


class Explorer:
    def __init__(self, image: Image, calls: CallModel, entry: Entry, options: Options | None = None,
                 steering: Steering | None = None) -> None:
        self.image = image
        # exploring one function from its entry: a return to this (the caller's x30 at entry) ends the path
        # and the observers judge it there; None: a vector slot, which has no caller
        self.return_address = entry.return_address
        self.calls = calls
        self.options = options or Options()
        self.caps = entry.caps  # capability number -> its free boolean (shared with the slot's initial values)
        assumptions = entry.assumptions
        steering = steering or Steering()
        self.run = ExploreRun()
        self.solver = z3.Solver()
        self.solver.set("timeout", self.options.solver_timeout_ms)
        self.solver.set("rlimit", self.options.solver_rlimit)
        for fact in assumptions:
            self.solver.add(fact)
        self.assumed = z3.And(assumptions)  # what a witness must satisfy besides a path's guard
        self.answers: dict[int, tuple[z3.BoolRef, bool, z3.ModelRef | None]] = {}  # formula id -> its answer
        self.visits: dict[tuple, int] = {}
        self.heap: list = []
        self.seq = itertools.count()
        self.guide = steering.guide  # replay: follow the one path this model takes, no solver
        self.on_step = steering.on_step
        self._push(entry.path)

    # ------------------------------------------------------------------------------ worklist

    def _order(self, path: Path) -> tuple:
        virtual = path.alt.orig_start if path.alt else path.pc
        return tuple(f.call for f in path.ctx) + (virtual, 0 if path.alt is None else 1)

    def _merge_key(self, path: Path) -> tuple:
        return (path.ctx, path.pc, path.alt, path.skip_alt, path.state.el, path.state.spsel)

    def _push(self, path: Path) -> None:
        heapq.heappush(self.heap, (self._order(path), next(self.seq), path))

    def _pop(self) -> Path:
        _, _, path = heapq.heappop(self.heap)
        if self.guide is not None or not self.options.merge:
            return path
        key = self._merge_key(path)
        order = self._order(path)
        held = []
        while self.heap and self.heap[0][0] == order:
            _, seq, other = heapq.heappop(self.heap)
            if self._merge_key(other) == key:
                path = merge_paths(path, other)
                self.run.merges += 1
            else:
                held.append((order, seq, other))
        for entry in held:
            heapq.heappush(self.heap, entry)
        return path

    # -------------------------------------------------------------------------------- solver

    def feasible(self, formula: z3.BoolRef) -> bool | None:
        """SAT under the assumptions? None on timeout."""
        return self._satisfy(formula)[0]

    def _satisfy(self, formula: z3.BoolRef, witness: z3.ModelRef | None = None
                 ) -> tuple[bool | None, z3.ModelRef | None]:
        """SAT under the assumptions (None on timeout), and a model when it is. A `witness` (a model of the
        assumptions) that satisfies the formula answers without the solver: it is a satisfying assignment,
        so the answer is exact; only an unsatisfied one leaves the question to the solver."""
        formula = z3.simplify(formula)
        if z3.is_false(formula):
            return False, None
        if self.guide is not None:
            return z3.is_true(self.guide.eval(formula, model_completion=True)), None
        if witness is not None and z3.is_true(witness.eval(z3.And(self.assumed, formula), model_completion=True)):
            self.run.witnessed += 1
            return True, witness
        # the same question again (paths that merged and split on the same condition): the formula is kept
        # alive with its answer, so its id names it for as long as the cache does
        known = self.answers.get(formula.get_id())
        if known is not None:
            self.run.cached += 1
            return known[1], known[2]
        self.run.solver_calls += 1
        self.solver.push()
        self.solver.add(formula)
        result = self.solver.check()
        model = self.solver.model() if result == z3.sat else None
        self.solver.pop()
        if result == z3.unknown:
            return None, None
        self.answers[formula.get_id()] = (formula, result == z3.sat, model)
        return result == z3.sat, model

    def _split(self, path: Path, cond: z3.BoolRef) -> tuple[Choice | None, Choice | None, bool]:
        """The guards (and a witness of each) for cond true / false that are feasible (None if not); third: a
        solver timeout. The path's witness decides one side without the solver."""
        cond = z3.simplify(cond)
        if z3.is_true(cond):
            return Choice(path.guard, path.witness), None, False
        if z3.is_false(cond):
            return None, Choice(path.guard, path.witness), False
        timeout = False
        out: list[Choice | None] = []
        for branch in (cond, z3.Not(cond)):
            guard = z3.And(path.guard, branch)
            ok, model = self._satisfy(guard, path.witness)
            if ok is None:
                timeout = True
            out.append(Choice(z3.simplify(guard), model) if ok else None)
        return out[0], out[1], timeout

    def values(self, path: Path, value: BV) -> list[int] | None:
        """The concrete values a symbolic value can take on this path (None: too many / timeout)."""
        value = z3.simplify(value)
        if z3.is_bv_value(value):
            return [cast(z3.BitVecNumRef, value).as_long()]  # z3's is_bv_value() does not narrow
        if self.guide is not None:
            return [cast(z3.BitVecNumRef, self.guide.eval(value, model_completion=True)).as_long()]
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

    def explore(self) -> ExploreRun:
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
            budget = self.options.max_solver_calls
            if budget is not None and self.run.solver_calls > budget and self.guide is None:
                for _, _, rest in self.heap:
                    self.unknown(rest, f"budget of {budget} solver checks exhausted")
                self.heap.clear()
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
        if path.alt is not None and path.pc == path.alt.end:  # back from a call that ended the replacement
            path.pc, path.alt = path.alt.orig_end, None
            self._push(path)
            return
        # decided here, and about to leave the site: a path that ran the original instructions merges with one
        # that ran the replacement where they meet again (the mark kept them apart for good)
        path.skip_alt = None
        code = self.image.code(path.pc)
        if code is None:
            self.unknown(path, f"no lifted instruction at {path.pc:#x}")
            return
        if code.item.kind == "undecoded" or code.item.insn is None:
            self.unknown(path, f"undecoded instruction: {code.item.reason or 'unknown encoding'}")
            return
        insn = canonical(code.item.insn)
        for observer in path.observers:
            observer.on_step(path, code)
        if self.on_step is not None:
            self.on_step(path, code, insn)
        self._execute(path, code, insn)

    # --------------------------------------------------------------------------- alternatives

    def _fork_alternatives(self, path: Path) -> None:
        sites = self.image.alternatives[path.pc]
        site, program, repl = sites[0]  # nested sites at one address are decided one at a time
        cap = self.caps.setdefault(site.cap, names.capability(site.cap))
        orig_end = path.pc + site.orig_len
        decided = path.decided.get(site.cap)
        options: list[tuple[bool, z3.BoolRef, z3.ModelRef | None]] = []
        for value in (False, True):
            if decided is not None and decided != value:
                continue
            guard = z3.simplify(z3.And(path.guard, cap if value else z3.Not(cap)))
            witness = path.witness
            if decided is None:
                ok, witness = self._satisfy(guard, path.witness)
                if ok is None:  # a side the solver could not decide is not covered, never dropped
                    self.unknown(path, "solver limit reached on an alternative's capability")
                    return
                if not ok:
                    continue
            options.append((value, guard, witness))
        for value, guard, witness in options:
            branch = path.copy()
            branch.guard, branch.witness = guard, witness
            branch.decided[site.cap] = value
            if not value:
                branch.skip_alt = path.pc  # run the original instructions
                self._push(branch)
                continue
            if site.callback:
                self._apply_patch(branch, site.callback, orig_end)
                continue
            if repl is None or site.repl_len == 0:
                branch.pc = orig_end
                self._push(branch)
                continue
            branch.alt = AltRun(repl, repl + site.repl_len, path.pc, orig_end)
            branch.pc = repl
            self._push(branch)

    def _apply_patch(self, path: Path, name: str, orig_end: int) -> None:
        patch = self.calls.patch(name)
        if patch is None:
            self.unknown(path, f"alternative callback {name} has no contract")
            return
        path.summaries.add(patch.describe())
        self._rests_on(path, CALLBACK + name)
        site = path.pc
        variants = patch.variants((orig_end - site) // 4)
        if variants is not None:
            self._patch_variants(path, name, variants, orig_end)
            return
        for reg in patch.fresh_registers:
            path.state.write_reg(reg, self._fresh(path, f"{name}.{reg}"))
        path.pc = orig_end
        self._push(path)

    def _patch_variants(self, path: Path, name: str, variants: tuple[Variant, ...], orig_end: int) -> None:
        """One path per instruction sequence the callback can leave at the site (read from its code), each
        run where it stands; which one is a free choice of the boot, named so that a model picks one."""
        site = path.pc
        choice = self._fresh(path, f"{name}.variant", 8) if len(variants) > 1 else None
        if choice is not None and self.guide is not None:  # a replay: the variant its model chose
            chosen = [n for n in range(len(variants)) if self._satisfy(choice == n)[0]]
            variants = tuple(variants[n] for n in chosen)
            choice = None
        for n, variant in enumerate(variants):
            branch = path if n == len(variants) - 1 else path.copy()
            if choice is not None:
                branch.guard = z3.simplify(z3.And(path.guard, choice == n))
                branch.witness = None
            if all(word is None for word in variant):  # left as it was
                branch.skip_alt = site
            else:
                start = self.image.patched_code(site, variant)
                branch.alt = AltRun(start, start + 4 * len(variant), site, orig_end)
                branch.pc = start
            self._push(branch)

    # ------------------------------------------------------------------------------- execution

    def _fresh(self, path: Path, what: str, bits: int = 64) -> BV:
        site = (path.ctx, path.pc, what)
        n = path.fresh_counts.get(site, 0)
        path.fresh_counts[site] = n + 1
        ctx = "/".join(f"{f.call:x}" for f in path.ctx)
        return z3.BitVec(f"{what}@{ctx}:{path.pc:x}#{n}", bits)

    def _execute(self, path: Path, code: CodeRef, insn: Insn) -> None:
        state = path.state
        before_daif = state.daif
        before_mdscr = state.read_sysreg(MDSCR)
        access = MemoryAccess(self.image, path, code, self.values)
        try:
            effect = sem.execute(insn, state, access)
        except Unresolved as err:
            self.unknown(path, str(err))
            return
        if isinstance(effect, sem.Unsupported):
            self.unknown(path, f"no semantics for `{insn}`: {effect.reason}")
            return
        self._after_write(path, insn, before_daif, before_mdscr)
        if isinstance(effect, sem.Barrier) and effect.kind == "isb":
            for observer in path.observers:
                observer.on_synchronise(path)
        if path.alt is not None and path.pc + 4 == path.alt.end and isinstance(effect, sem.Next | sem.Barrier):
            # the last replacement instruction: continue after the original range
            path.pc = path.alt.orig_end
            path.alt = None
            self._push(path)
            return
        self._control(path, code, effect)

    def _after_write(self, path: Path, insn: Insn, before_daif: BV, before_mdscr: BV) -> None:
        """Tell the observers what an instruction changed: a system register written, MDSCR_EL1, DAIF."""
        state = path.state
        if insn.mnemonic == "msr" and insn.operands:
            encoding = getattr(insn.operands[0], "encoding", None)
            if encoding is not None:
                for observer in path.observers:
                    observer.on_sysreg_write(path, encoding)
        mdscr_changed = not state.read_sysreg(MDSCR).eq(before_mdscr)
        if mdscr_changed:
            for observer in path.observers:
                observer.on_mdscr_write(path, before_mdscr)
        daif_changed = not state.daif.eq(before_daif)
        if daif_changed or mdscr_changed:
            for observer in path.observers:
                observer.on_masking(path, daif_changed, mdscr_changed)

    def _control(self, path: Path, code: CodeRef, effect: sem.Effect) -> None:
        next_pc = path.pc + 4
        if isinstance(effect, sem.Next | sem.Barrier):
            path.pc = next_pc
            self._push(path)
        elif isinstance(effect, sem.CondJump):
            taken, fallthrough, timeout = self._split(path, effect.cond)
            if timeout:
                self.unknown(path, "solver limit reached on a branch condition")
                return
            if fallthrough is not None:
                other = path.copy() if taken is not None else path
                other.guard, other.witness = fallthrough.guard, fallthrough.witness
                other.pc = next_pc
                self._leave_alt(other)
                self._push(other)
            if taken is not None:
                path.guard, path.witness = taken.guard, taken.witness
                self._jump(path, code, effect.target)
        elif isinstance(effect, sem.Jump):
            if self._spins(path, code, effect.target):
                self.fatal(path, "spins forever (a loop with no way out: cpu_park_loop() and the like)")
                return
            self._jump(path, code, effect.target)
        elif isinstance(effect, sem.Call):
            self._call(path, code, effect.target, next_pc)
        elif isinstance(effect, sem.Return):
            self._return(path, effect.target)
        elif isinstance(effect, sem.Eret):
            self._eret(path)
        elif isinstance(effect, sem.Trap):
            if effect.kind in ("hvc", "smc"):
                firmware = self.calls.firmware()
                self._summarised_call(path, firmware, firmware.name, next_pc)
            elif self.image.warns_at(path.pc):  # WARN(): its handler reports, then the code goes on
                path.pc = next_pc
                self._leave_alt(path)
                self._push(path)
            else:
                self.fatal(path, f"{effect.kind} #{effect.imm:#x} (BUG()/trap)")
        else:
            self.unknown(path, f"unexpected effect {effect!r}")

    def _leave_alt(self, path: Path) -> None:
        """A branch out of the replacement code (the kernel's patching fixed it up) ends alt mode; a
        fall-through past its end continues after the original range."""
        if path.alt is None:
            return
        if path.pc == path.alt.end:
            path.pc = path.alt.orig_end
        if not path.alt.start <= path.pc < path.alt.end:
            path.alt = None

    # ------------------------------------------------------------------------------ branches

    def _target_address(self, path: Path, code: CodeRef, target: Target | BV) -> list[int] | str:
        if isinstance(target, Loc | SymRef):
            address = self.image.address(target, code.program)
            if address is None:
                return f"external:{target.symbol if isinstance(target, SymRef) else target}"
            return [address]
        values = self.values(path, target)
        if values is None:
            return "unresolved"
        return values

    def _spins(self, path: Path, code: CodeRef, target: Target | BV) -> bool:
        """An unconditional jump back over instructions none of which can leave the loop (`1: wfe; wfi; b 1b`):
        the path never goes on, whatever the bound."""
        if path.alt is not None or not isinstance(target, Loc | SymRef):
            return False
        address = self.image.address(target, code.program)
        if address is None or address >= path.pc:
            return False
        body = [self.image.code(pc) for pc in range(address, path.pc, 4)]
        if any(pc in self.image.alternatives for pc in range(address, path.pc + 4, 4)):
            return False  # boot-time patching may put anything there
        return all(ref is not None and ref.item.insn is not None and ref.item.insn.mnemonic in SPIN_BODY
                   and ref.program is code.program for ref in body)

    def _jump(self, path: Path, code: CodeRef, target: Target | BV) -> None:
        if isinstance(target, SymRef) and self.image.address(target, code.program) is None:
            # a tail call out of the lifted code: the callee returns to our caller, to the x30 it was
            # entered with (its contract may clobber the register itself)
            return_to = path.state.read_reg("x30")
            if not self._apply_summary(path, self.calls.for_symbol(target.symbol), target.symbol):
                return
            self._return(path, return_to)
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
                branch.loops[loop] = branch.loops.get(loop, 0) + 1
                if branch.loops[loop] > self.options.loop_bound and self.guide is None:
                    self.unknown(branch, f"loop bound {self.options.loop_bound} reached (backward jump)")
                    continue
            branch.pc = address
            self._leave_alt(branch)
            self._push(branch)

    def _call(self, path: Path, code: CodeRef, target: Target | BV, ret: int) -> None:
        if isinstance(target, SymRef) and self.image.address(target, code.program) is None:
            self._summarised_call(path, self.calls.for_symbol(target.symbol), target.symbol, ret)
            return
        if isinstance(target, z3.ExprRef) and not z3.is_bv_value(z3.simplify(target)):
            origin = names.loaded_from_symbol(target)
            summary = self.calls.for_pointer(origin) if origin is not None else None
            if summary is not None:
                self._summarised_call(path, summary, f"*{origin}", ret)
                return
        addresses = self._target_address(path, code, target)
        if isinstance(addresses, str):
            self.unknown(path, f"indirect call through a value the engine cannot resolve ({addresses})")
            return
        for branch, address in self._per_target(path, target, addresses):
            name = self.image.names.get(address)
            summary = self.calls.instead_of_lifted(name) if name else None
            if name and summary is not None:
                self._summarised_call(branch, summary, name, ret)
                continue
            if self.image.code(address) is None:
                self.unknown(branch, f"call to {address:#x}, which holds no lifted code")
                continue
            if len(branch.ctx) > 64:
                self.unknown(branch, "call depth above 64 (recursion?)")
                continue
            callee = name or self.image.function_at(address)
            for observer in branch.observers:
                observer.on_call(branch, callee)
            branch.ctx = branch.ctx + (Frame(path.pc, ret),)
            branch.pc = address
            branch.alt = None
            self._push(branch)

    def _per_target(self, path: Path, target: Target | BV, addresses: list[int]) -> Iterator[tuple[Path, int]]:
        """One path per value an (indirect) target can take, each with that value in its guard."""
        for n, address in enumerate(addresses):
            branch = path if n == len(addresses) - 1 else path.copy()
            if len(addresses) > 1:
                branch.guard = z3.simplify(z3.And(path.guard, target == address))
            yield branch, address

    def _summarised_call(self, path: Path, summary: Summary, name: str, ret: int) -> None:
        """A call the summary stands in for: continue after it, unless the function does not return."""
        if not summary.returns and self._traps_at(ret):
            # `bl handle_bad_stack; ASM_BUG()`: the path ends at the trap whether the call returns or not, so it
            # does not rest on the callee's contract
            self.fatal(path, f"call to {name}, then a trap")
            return
        if self._apply_summary(path, summary, name):
            path.pc = ret
            self._push(path)

    def _traps_at(self, address: int) -> bool:
        code = self.image.code(address)
        return (code is not None and code.item.insn is not None and code.item.insn.mnemonic in TRAPS
                and address not in self.image.alternatives and not self.image.warns_at(address))

    def _return(self, path: Path, target: BV) -> None:
        target = z3.simplify(target)
        if not path.ctx and self.return_address is not None:
            if not target.eq(self.return_address) and not _always_equal(target, self.return_address) and \
                    self.feasible(z3.And(path.guard, target != self.return_address)) is not False:
                self.unknown(path, "return to an address other than the caller's")
                return
            self._record(path, self.run.returns, "at_return")
            return
        if not path.ctx:
            self.unknown(path, "return from the exception vector's own code (no caller)")
            return
        frame = path.ctx[-1]
        # every value the target can take must be the caller's return address, not just one of them
        if not (z3.is_bv_value(target) and cast(z3.BitVecNumRef, target).as_long() == frame.ret) and \
                not _always_equal(target, z3.BitVecVal(frame.ret, 64)) and \
                self.feasible(z3.And(path.guard, target != frame.ret)) is not False:
            self.unknown(path, "return to an address other than the caller's")
            return
        path.ctx = path.ctx[:-1]
        path.pc = frame.ret
        path.alt = None
        self._push(path)

    # ----------------------------------------------------------------------------- summaries

    def _apply_summary(self, path: Path, summary: Summary, name: str) -> bool:
        """Summarise a call: returns False when the path ends there (the function does not return)."""
        for observer in path.observers:
            observer.on_call(path, name.lstrip("*"))
        path.summaries.add(self.calls.assumption(summary, name))
        self.run.summarised.add(name)
        self._rests_on(path, name)
        if not summary.returns:
            self.fatal(path, f"call to {name}, which does not return")
            return False
        for observer in path.observers:
            observer.on_summary(path, name, summary)
        state = path.state
        before_daif, before_mdscr = state.daif, state.read_sysreg(MDSCR)
        self.calls.apply(summary, name, state, lambda what, bits: self._fresh(path, what, bits))
        mdscr_changed = not state.read_sysreg(MDSCR).eq(before_mdscr)
        if mdscr_changed:  # the callee's own isb or eret synchronised its write (part of its summary)
            for observer in path.observers:
                observer.on_synchronise(path)
        daif_changed = not state.daif.eq(before_daif)
        if daif_changed or mdscr_changed:
            for observer in path.observers:
                observer.on_masking(path, daif_changed, mdscr_changed)
        return True

    def _rests_on(self, path: Path, name: str) -> None:
        path.rests_on.add(name)
        self.run.applied_at.setdefault(name, {}).setdefault(path.guard.get_id(), path.guard)

    # ---------------------------------------------------------------------------------- eret

    def _eret(self, path: Path) -> None:
        self._record(path, self.run.erets, "at_eret")

    def _record(self, path: Path, into: list[EretCheck], hook: str) -> None:
        """What the observers find where the path ends (an eret, or a function's return)."""
        guard = path.guard
        found = Findings()
        for observer in path.observers:
            findings = getattr(observer, hook)(path)
            found.violations.update(findings.violations)
            found.events.update(findings.events)
            found.values.update(findings.values)
            found.conditions.update(findings.conditions)
        violations = {k: z3.simplify(z3.And(guard, v)) for k, v in found.violations.items()}
        into.append(EretCheck(path.pc, guard, violations, found.events, frozenset(path.summaries),
                              found.conditions, found.values, frozenset(path.rests_on)))
