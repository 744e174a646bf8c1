"""A contract checked against its function's code (assume-guarantee): the observer that judges each return
of the function explored from its entry, the state it starts in, and the record of the DAIF values the
proofs' calls reach a function with (the check's precondition).

What a contract guarantees and how each part is checked at every return to the caller:
- `daif`: DAIF on return, against DAIF at entry (`preserved`, `masked`, `0bDAIF`, `any`); where the kernel
  masks with ICC_PMR_EL1, the returns `pmr` adds are accepted too;
- `unmasks`: `preserved` and `none` fail where any DAIF bit set at entry is clear, even briefly, or where
  one of its own callees may unmask more (its contract says `unmasks = all`);
- `mdscr`: `preserved` fails where MDSCR_EL1 on return differs from entry;
- `clobbers`: the AAPCS64 callee-saved registers (x19-x29) and SP_EL1 on return equal their entry values
  (the caller's code relies on them);
- `writes` and `pstate_bits`: on return, the exception's pt_regs (reached through the argument registers the
  proofs' calls pass its address in) differs from entry only in the classes `writes` allows, its saved PSTATE
  only in `pstate_bits`; the callers' stack frames (at or above SP at the call) are as at entry; the task,
  per-CPU and global data only where `writes` allows them; and no callee it summarises may write more. A
  store goes where its address's base says (the engine's standing assumption that distinct bases do not
  overlap); one the model cannot place ends its path UNKNOWN.
- `pmr`: ICC_PMR_EL1's priority on return is as at entry (`preserved`), or with `irqs-off` and
  `unmask-pnmis` also a value that masks normal interrupts as local_irq_disable() does (GIC_PRIO_IRQOFF).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import z3
from typing_extensions import override

from verifier.engine.calls import Summary
from verifier.engine.image import Image
from verifier.engine.observer import Event, EventLog, Findings, Observer, Path
from verifier.ir import sysregs
from verifier.semantics import names
from verifier.semantics.state import BV, ICC_PMR_EL1, MDSCR, Memory, Region, State, bv, split_address
from verifier.spec.contract_calls import daif_returns, pstate_mask, regs_spans
from verifier.spec.contracts import AAPCS_CLOBBERS, Contract
from verifier.spec.priority import PMR_BITS, PriorityFacts, PriorityMasking, masking_for
from verifier.spec.slots import classify_region, image_word

DAIF_ID, UNMASKS_ID, MDSCR_ID, SAVED_ID = "contract:daif", "contract:unmasks", "contract:mdscr", "contract:saved"
WRITES_ID, PMR_ID = "contract:writes", "contract:pmr"
PARTS = (DAIF_ID, UNMASKS_ID, MDSCR_ID, SAVED_ID, WRITES_ID, PMR_ID)
NOT_CHECKED = "every clause checked"
ARGUMENT_REGISTERS = 8  # x0-x7: where a call passes the pt_regs pointer
CALLEE_SAVED = tuple(f"x{i}" for i in range(19, 30))
ENTRY_DAIF = "daif_at_call"  # DAIF at the call of the function being checked
# DAIF at a call the explored code makes: a name of its own, since a check's own calls are recorded in terms
# of ENTRY_DAIF (`daif_at_call | 2` after a daifset), and the two must not be confused
CALLEE_DAIF = "daif_at_the_callee"


@dataclass
class FunctionStart:
    """One function at its entry: the state the caller hands it, the precondition, and the entry values
    the returns are judged against."""

    state: State
    pc: int
    facts: list[z3.BoolRef]
    daif: BV
    mdscr: BV
    return_address: BV
    saved: dict[str, BV]
    sp: BV
    priority: PriorityMasking
    caps: dict[int, z3.BoolRef] = field(default_factory=dict)
    layout: dict[str, int] = field(default_factory=dict)  # pt_regs' layout (S_PSTATE, S_PC, S_FRAME_SIZE)
    regs_args: tuple[int, ...] = ()  # the argument registers holding the pt_regs pointer at some call


@dataclass(frozen=True)
class AtCalls:
    """What the calls of a function hand it: the DAIF values they reach it with (None: any), and the argument
    registers some call passes the exception's pt_regs in."""

    daif: list[int] | None = None
    regs_args: tuple[int, ...] = ()


def function_start(image: Image, address: int, at_calls: AtCalls, priority_facts: PriorityFacts,
                   layout: dict[str, int] | None = None) -> FunctionStart:
    """The state at a call of the function at `address`: every register, the stack and memory unknown, SP_EL0
    the current task, DAIF one of the values the proofs' calls reach it with (`None`: any), and in the
    argument registers `regs_args` the address of the exception's pt_regs."""
    daif_at_calls, regs_args = at_calls.daif, at_calls.regs_args
    caps: dict[int, z3.BoolRef] = {}
    priority = masking_for(priority_facts, caps)
    daif = z3.BitVec(ENTRY_DAIF, 4)
    mdscr = names.entry_value("mdscr_el1")

    def initial_word(region: Region, word: int, epoch: int) -> z3.BitVecRef:
        if not region.bases:
            contents = image_word(image, word)
            if contents is not None:
                return contents
        return names.memory_word(region, word, epoch)

    memory = Memory(initial=initial_word)
    memory.classify = classify_region(names.current_task())
    x = [names.regs_pointer() if i in regs_args else names.entry_value(f"x{i}") for i in range(31)]
    state = State(
        x=list(x), sp_el1=names.initial_sp(), sp_el0=names.current_task(), nzcv=names.entry_value("nzcv", 4),
        daif=daif, pstate_ss=bv(0, 1),
        sysregs={MDSCR: mdscr, sysregs.known("tpidr_el1"): names.percpu_offset(),
                 sysregs.known("tpidr_el2"): names.percpu_offset()},
        memory=memory, fresh_sysreg=lambda encoding: names.entry_value(sysregs.name_of(encoding)),
    )
    pmr = priority.initial_pmr(names.entry_value("icc_pmr_el1.priority", PMR_BITS))
    if pmr is not None:
        state.sysregs[ICC_PMR_EL1] = pmr
    facts: list[z3.BoolRef] = []
    if daif_at_calls:  # none known (None, or no value found: never assumed vacuously): any DAIF
        facts.append(z3.Or([daif == value for value in daif_at_calls]))
    saved = {reg: x[int(reg[1:])] for reg in CALLEE_SAVED}
    return FunctionStart(state, address, facts, daif, mdscr, x[30], saved, names.initial_sp(), priority, caps,
                         dict(layout or {}), tuple(regs_args))


class ContractObserver(Observer):
    """One path of a function checked against its contract."""

    def __init__(self, contract: Contract, start: FunctionStart, unmasked: EventLog | None = None,
                 wider: EventLog | None = None) -> None:
        self.contract = contract
        self.start = start
        self.unmasked = unmasked or EventLog()  # where an exception masked at the call became unmasked
        self.wider = wider or EventLog()  # calls of functions whose contracts may write more than this one's

    @override
    def copy(self) -> Self:
        return type(self)(self.contract, self.start, self.unmasked.copy(), self.wider.copy())

    @override
    def merge(self, guard: z3.BoolRef, state: State, other: Self, other_guard: z3.BoolRef,
              other_state: State) -> Self:
        return type(self)(self.contract, self.start, self.unmasked.merge(guard, other.unmasked, other_guard),
                          self.wider.merge(guard, other.wider, other_guard))

    @property
    def _watch_unmasks(self) -> bool:
        return self.contract.unmasks in ("none", "preserved")

    @override
    def on_masking(self, path: Path, daif_changed: bool, mdscr_changed: bool) -> None:
        if not (daif_changed and self._watch_unmasks):
            return
        opened = z3.simplify(self.start.daif & ~path.state.daif != 0)
        if not z3.is_false(opened):
            self.unmasked.note(Event(path.pc, z3.And(path.guard, opened),
                                     "an exception masked at the call is unmasked"))

    @override
    def on_summary(self, path: Path, name: str, summary: Summary) -> None:
        if self._watch_unmasks and isinstance(summary, Contract) and summary.unmasks == "all":
            self.unmasked.note(Event(path.pc, path.guard, f"calls {name}, which may unmask exceptions"))
        if isinstance(summary, Contract):
            more = wider_writes(summary, self.contract, self.start.regs_args)
            if more:
                self.wider.note(Event(path.pc, path.guard, f"calls {name}, which may write {more}"))

    @override
    def at_return(self, path: Path) -> Findings:
        state = path.state
        found = Findings()
        found.violations[DAIF_ID] = z3.Not(self._daif_ok(state))
        found.violations[UNMASKS_ID] = self.unmasked.condition() if self._watch_unmasks else z3.BoolVal(False)
        found.events[UNMASKS_ID] = list(self.unmasked.events)
        mdscr = state.read_sysreg(MDSCR)
        found.violations[MDSCR_ID] = (mdscr != self.start.mdscr) if self.contract.mdscr == "preserved" \
            else z3.BoolVal(False)
        saved = [state.read_reg(reg) != value for reg, value in self.start.saved.items()]
        saved.append(state.sp_el1 != self.start.sp)
        found.violations[SAVED_ID] = z3.Or(saved) if self._keeps_saved() else z3.BoolVal(False)
        found.violations[PMR_ID] = self._pmr_changed(state)
        written = self._written_outside(state)
        found.violations[WRITES_ID] = z3.Or([cond for cond, _ in written] + [self.wider.condition()])
        found.events[WRITES_ID] = list(self.wider.events)
        if self.start.regs_args and "S_PSTATE" in self.start.layout:
            regs, pstate = Region((names.REGS,)), self.start.layout["S_PSTATE"]
            found.values.update({"pt_regs.pstate at the call": self.start.state.memory.load(regs, pstate, 8),
                                 "pt_regs.pstate on return": state.memory.load(regs, pstate, 8)})
        found.values.update({"DAIF at the call": z3.ZeroExt(60, self.start.daif),
                             "DAIF on return": z3.ZeroExt(60, state.daif),
                             "MDSCR_EL1 at the call": self.start.mdscr, "MDSCR_EL1 on return": mdscr})
        return found

    def _pmr_changed(self, state: State) -> z3.BoolRef:
        """PMR's priority on return other than the contract's `pmr` lets it be."""
        if self.contract.pmr == "any" or ICC_PMR_EL1 not in self.start.state.sysregs:
            return z3.BoolVal(False)
        now = PriorityMasking.pmr(state)
        allowed = [PriorityMasking.pmr(self.start.state)]
        if self.contract.pmr in ("irqs-off", "unmask-pnmis"):
            allowed += [bv(value, PMR_BITS) for value in self.start.priority.facts.irq_off]
        return z3.simplify(z3.And([now != value for value in allowed]))

    def _written_outside(self, state: State) -> list[tuple[z3.BoolRef, str]]:
        """Each place that differs on return from entry where the contract does not let the function write:
        (the condition, what the place is)."""
        out: list[tuple[z3.BoolRef, str]] = []
        before = self.start.state.memory
        allowed = set(self.contract.writes)
        layout = self.start.layout
        if self.start.regs_args and layout:
            regs = Region((names.REGS,))
            for cls, (lo, hi) in regs_spans(layout).items():
                for offset in range(lo, hi, 8):
                    now, then = state.memory.load(regs, offset, 8), before.load(regs, offset, 8)
                    if cls == "regs.pstate":
                        keep = ~bv(pstate_mask(self.contract) if cls in allowed else 0)
                        changed = z3.simplify((now ^ then) & keep != 0)
                        what = "pt_regs.pstate"
                    elif cls not in allowed:
                        changed = z3.simplify(now != then)
                        what = f"pt_regs+{offset:#x} ({cls})"
                    else:
                        continue
                    if not z3.is_false(changed):
                        out.append((changed, what))
        frame = split_address(self.start.sp)
        for (region, offset), _ in state.memory.written().items():
            cls = state.memory.classify(region)
            if frame is not None and region == frame[0]:
                if (offset - frame[1]) % (1 << 64) >= (1 << 63):
                    continue  # below SP at the call: the function's own frame
                what = f"its caller's stack frame at SP+{(offset - frame[1]) % (1 << 64):#x}"
            elif cls in ("task", "percpu", "global") and cls not in allowed:
                what = f"{cls} memory ({region}+{offset:#x})"
            else:
                continue
            changed = z3.simplify(state.memory.byte(region, offset) != before.byte(region, offset))
            if not z3.is_false(changed):
                out.append((changed, what))
        return out

    def _keeps_saved(self) -> bool:
        return not set(CALLEE_SAVED) & set(self.contract.clobbers) and set(self.contract.clobbers) <= set(
            AAPCS_CLOBBERS)

    def _daif_ok(self, state: State) -> z3.BoolRef:
        at_call, now = self.start.daif, state.daif
        if not self.contract.daif_table and "any" in self.contract.daif.split("|"):
            return z3.BoolVal(True)
        wanted = daif_returns(self.contract, at_call, lambda: at_call)
        ok = z3.Or([now == want for want in wanted])
        masking = self.start.priority
        if self.contract.pmr == "unmask-pnmis":
            ok = z3.Or(ok, z3.And(masking.in_use, z3.Or([now == want & bv(0b1100, 4) for want in wanted])))
        elif self.contract.pmr == "irqs-off":
            ok = z3.Or(ok, z3.And(masking.in_use, now == at_call))
        return ok


def describe_failure(part: str, contract: Contract) -> str:
    """What a failing part of the contract says."""
    return {
        DAIF_ID: f"returns with DAIF other than its contract's `daif = {contract.daif}`",
        UNMASKS_ID: f"unmasks an exception the caller had masked (contract: `unmasks = {contract.unmasks}`)",
        MDSCR_ID: "returns with MDSCR_EL1 changed (contract: `mdscr = preserved`)",
        SAVED_ID: "returns with a callee-saved register (x19-x29) or SP changed",
        PMR_ID: f"returns with ICC_PMR_EL1 other than its contract's `pmr = {contract.pmr}`",
        WRITES_ID: f"writes memory its contract does not let it write (`writes = {list(contract.writes)}`, "
                   f"`pstate_bits = {list(contract.pstate_bits)}`, never its callers' frames)",
    }[part]


def wider_writes(callee: Contract, contract: Contract, regs_args: tuple[int, ...]) -> str:
    """What a summarised callee's contract lets it write that `contract` does not (empty: nothing); pt_regs
    counts only where the function was handed it."""
    classes = [cls for cls in callee.writes if cls not in contract.writes
               and (not cls.startswith("regs.") or regs_args)]
    if regs_args and "regs.pstate" in callee.writes and "regs.pstate" in contract.writes:
        bits = [bit for bit in callee.pstate_bits if bit not in contract.pstate_bits]
        if bits:
            classes.append(f"pt_regs.pstate bits {''.join(bits)}")
    return ", ".join(classes)


class CallSites:
    """The DAIF values the proofs' calls reach each summarised function with: a shared log every path's
    copy writes into (the precondition its contract's check assumes). A symbolic DAIF is kept with its
    path's guard and resolved to the values it can take once the slot is explored."""

    def __init__(self) -> None:
        self.known: dict[str, set[int]] = {}
        self.symbolic: dict[str, list[z3.BoolRef]] = {}  # name -> "this call is reached with DAIF d" formulas
        self.regs: dict[str, set[int]] = {}  # name -> argument registers holding the pt_regs pointer at a call

    def note(self, name: str, guard: z3.BoolRef, daif: BV, regs_args: tuple[int, ...] = ()) -> None:
        self.regs.setdefault(name, set()).update(regs_args)
        value = z3.simplify(daif)
        self.known.setdefault(name, set())
        if z3.is_bv_value(value):
            self.known[name].add(value.as_long())
        else:
            self.symbolic.setdefault(name, []).append(z3.And(guard, z3.BitVec(CALLEE_DAIF, 4) == value))

    def resolve(self, facts: list[z3.BoolRef], rlimit: int) -> dict[str, list[int] | None]:
        """name -> every DAIF value a call can be reached with under the slot's facts; None where the solver
        gives up (the check then assumes any DAIF)."""
        out: dict[str, list[int] | None] = {}
        daif = z3.BitVec(CALLEE_DAIF, 4)
        for name, values in self.known.items():
            found: set[int] | None = set(values)
            if name in self.symbolic:
                solver = z3.Solver()
                solver.set("rlimit", rlimit)
                solver.add(*facts, z3.Or(self.symbolic[name]))
                for value in sorted(values):  # the values found already
                    solver.add(daif != value)
                while found is not None:
                    status = solver.check()
                    if status == z3.unknown:
                        found = None
                    elif status == z3.sat:
                        value = solver.model().eval(daif, model_completion=True).as_long()
                        found.add(value)
                        solver.add(daif != value)
                    else:
                        break
            out[name] = None if found is None else sorted(found)
        return out


    def regs_of(self) -> dict[str, list[int]]:
        """name -> the argument registers that hold the pt_regs pointer at some call."""
        return {name: sorted(regs) for name, regs in self.regs.items()}


class CallSiteObserver(Observer):
    """Tells CallSites the DAIF of every summarised call and which argument registers hold the address of the
    exception's pt_regs (`frame`) there (stateless per path: copies share the log)."""

    def __init__(self, sites: CallSites, frame: BV | None = None) -> None:
        self.sites = sites
        self.frame = frame

    @override
    def on_summary(self, path: Path, name: str, summary: Summary) -> None:
        regs = () if self.frame is None else tuple(
            i for i in range(ARGUMENT_REGISTERS) if may_be(path.state.read_reg(f"x{i}"), self.frame))
        self.sites.note(name, path.guard, path.state.daif, regs)


def may_be(value: BV, pointer: BV) -> bool:
    """Whether `value` may be `pointer` on some merged path: equal, or one of its If cases based where it is."""
    value = z3.simplify(value)
    if z3.is_true(z3.simplify(value == pointer)):
        return True
    if z3.is_app_of(value, z3.Z3_OP_ITE):
        return any(may_be(case, pointer) for case in value.children()[1:])
    where, target = split_address(value), split_address(pointer)
    return where is not None and target is not None and where == target
