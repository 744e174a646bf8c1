"""Contracts checked against the code they summarise, and the proofs' verdicts made to rest on the checks.

Every function a slot's proof summarised by a contract is explored from its entry, in the file that defines
it (the lifted entry files, or the callee ring the kernel's build adds), with DAIF as the proofs' calls reach
it, to every return; the contract's guarantees are judged there (spec/contract_check.py). Its own callees
are summarised by their contracts, checked in turn down to `depth` when their code is lifted, else trusted
and listed. A check is PROVED, VIOLATED (with the path, replayed), UNKNOWN (with why) or TRUSTED (with why
the code was not checked); proof/consolidate.py makes the verdicts rest on them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import z3

from verifier.engine.explore import CALLBACK, Entry, Explorer, ExploreRun, Options, Steering, StepListener
from verifier.engine.image import Image
from verifier.engine.noreturn import never_returns
from verifier.engine.paths import Path as ExecPath
from verifier.engine.replay import model_number, replay
from verifier.proof.check_store import CheckStore, Kept, check_key, contracts_digest
from verifier.proof.lift_cache import lifted
from verifier.semantics import names
from verifier.spec.contract_calls import ContractCalls
from verifier.spec.contract_check import (
    NOT_CHECKED,
    PARTS,
    AtCalls,
    CallSiteObserver,
    CallSites,
    ContractObserver,
    FunctionStart,
    describe_failure,
    function_start,
)
from verifier.spec.contract_derive import DaifTable, daif_relation, describe_relation
from verifier.spec.contracts import Contract, Contracts
from verifier.util.errors import UserError

FIRMWARE = "firmware call (hvc/smc)"
# Per function: a callee bigger than this is UNKNOWN, not a slow proof (both counted, not timed).
CHECK_STEPS = 15_000
CHECK_SOLVER_CALLS = 300


@dataclass
class ContractCheck:
    function: str
    verdict: str  # PROVED VIOLATED UNKNOWN TRUSTED
    reason: str
    source: str = ""  # the file its code was lifted from
    depth: int = 0  # 1: called from the proofs' paths; 2: from a depth-1 callee's, ...
    callees: list[str] = field(default_factory=list)  # the contracts its own check rests on
    counterexample: dict[str, Any] | None = None
    contract: str = ""  # the contract checked, as the report prints it
    daif_at_call: list[int] | None = None  # the precondition: the DAIF values the calls reach it with (None: any)
    regs_args: list[int] = field(default_factory=list)  # the argument registers its calls pass pt_regs in

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"function": self.function, "verdict": self.verdict, "reason": self.reason,
                               "source": self.source, "depth": self.depth, "callees": self.callees,
                               "contract": self.contract, "daif_at_call": self.daif_at_call,
                               "regs_args": self.regs_args}
        if self.counterexample is not None:
            out["counterexample"] = self.counterexample
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContractCheck:
        return cls(data["function"], data["verdict"], data["reason"], data.get("source", ""),
                   int(data.get("depth", 0)), list(data.get("callees", [])), data.get("counterexample"),
                   str(data.get("contract", "")), data.get("daif_at_call"), list(data.get("regs_args", [])))

    def line(self) -> str:
        where = f" ({self.source})" if self.source else ""
        if self.verdict == "TRUSTED":
            return f"contract {self.function}: trusted, {self.reason}"
        rests = f"; its callees' contracts: {', '.join(self.callees)}" if self.callees else ""
        return f"contract {self.function}{where}: {self.verdict} at depth {self.depth}: {self.reason}{rests}"


@dataclass
class CheckInputs:
    """What the checks read: the files to find code in (the entry files, then the callee ring), why some
    callees have no code here (from the kernel's build), and the DAIF each summarised call is reached with."""

    files: list[Path]
    missing: dict[str, str] = field(default_factory=dict)
    call_daif: dict[str, list[int] | None] = field(default_factory=dict)
    root: str | None = None
    depth: int = 1
    call_regs: dict[str, list[int]] = field(default_factory=dict)  # the argument registers holding pt_regs


_LABEL = re.compile(r"^([A-Za-z_][\w.]*):", re.MULTILINE)


class CodeIndex:
    """Which file defines each function, lifted on first use, one image per file."""

    def __init__(self, files: list[Path], root: str | None) -> None:
        self.root = root
        self.where: dict[str, Path] = {}
        for path in files:
            for name in _LABEL.findall(path.read_text(errors="replace")):
                self.where.setdefault(name, path)
        self.images: dict[Path, Image | str] = {}

    def image_of(self, name: str) -> tuple[Image, int, Path] | str | None:
        """The image of the file defining `name` and its address; a text when that file does not lift."""
        path = self.where.get(name)
        if path is None:
            return None
        if path not in self.images:
            try:
                self.images[path] = Image.link([lifted(path, self.root)])
            except UserError as err:  # a front-end limit: this file's contracts stay unchecked, with why
                self.images[path] = f"{path.name} does not lift: {err}"
        image = self.images[path]
        if isinstance(image, str):
            return image
        address = image.globals.get(name, image.locals[0].get(name))
        return (image, address, path) if address is not None else None


@dataclass
class Derivation:
    """A contract's DAIF on return read from its function's code (`daif = "derived"`), or why it was not."""

    function: str
    table: DaifTable | None  # None: not derived; the written fallback stands, trusted
    text: str  # the relation in `daif` words, or the reason it was not derived
    source: str = ""

    def build_json(self) -> dict[str, Any]:
        """As BuildFacts.derived_daif holds it (JSON: the keys are DAIF values, so pairs)."""
        assert self.table is not None
        return {"table": [[entry, list(values)] for entry, values in self.table.items()], "text": self.text,
                "source": self.source}

    def line(self, contracts: Contracts) -> str:
        if self.table is not None:
            return (f"derived: contract {self.function} ({self.source}): DAIF on return {self.text}, read from "
                    "every return of its code over every DAIF at the call")
        fallback = contracts.functions[self.function].daif
        return (f"derived: contract {self.function}: not derived ({self.text}); its written fallback "
                f"`daif = {fallback}` is trusted")


@dataclass(frozen=True)
class _Where:
    """Where checks are kept, and the digest of the contracts they were made under."""

    store: CheckStore
    contracts: str


@dataclass(frozen=True)
class _Explored:
    """One function explored from its entry: the image holding its code, the contracts its calls are
    summarised by, the contract judged at its returns, and where it starts."""

    image: Image
    contracts: Contracts
    contract: Contract
    start: FunctionStart


@dataclass(frozen=True)
class _Checking:
    """What the checks of one check_contracts() share: where to find code, the inputs, the contracts, the
    options and where checks are kept (None: nowhere)."""

    index: CodeIndex
    inputs: CheckInputs
    contracts: Contracts
    options: Options
    where: _Where | None


def derive_contracts(index: CodeIndex, contracts: Contracts, options: Options,
                     missing: dict[str, str], store: CheckStore | None = None) -> list[Derivation]:
    """Each `daif = "derived"` contract's DAIF on return, from its code: the function explored from its entry
    with any DAIF at the call, to every return (its own callees summarised by their contracts). A function
    these inputs neither define nor call (`missing`: called, code not found) is left out. With a store, a
    derivation whose inputs and code are unchanged since it was kept is read back."""
    out = []
    where = _Where(store, contracts_digest(contracts)) if store is not None else None
    for name in sorted(n for n, c in contracts.functions.items() if c.derive):
        if name not in index.where and name not in missing:
            continue
        located = index.image_of(name)
        if not isinstance(located, tuple):
            out.append(Derivation(name, None, located or missing[name]))
            continue
        image, address, path = located
        source = source_of(path, index.root)
        limits = bounded(options)
        key = check_key(derive=name, source=source, contracts=where.contracts,
                        options=asdict(limits)) if where is not None else ""
        kept = where.store.get(key, image) if where is not None else None
        if kept is not None:
            table = kept.check["table"]
            out.append(Derivation(name, {e: tuple(v) for e, v in table} if table is not None else None,
                                  kept.check["text"], kept.check["source"]))
            continue
        start = function_start(image, address, AtCalls(), contracts.build.priority)
        ran: set[str] = set()
        derived = _Explored(image, contracts, replace(contracts.functions[name], daif="any"), start)
        noting = Steering(on_step=_noting(image, ran)) if where is not None else None
        run = _explorer(derived, CallSites(), limits, noting).explore()
        why = why_underived(run)
        table = None if why else daif_relation(run.returns, start.daif, start.facts, limits.solver_rlimit)
        if why is None and table is None:
            why = "solver limit reached reading DAIF at a return"
        derivation = Derivation(name, table, why or describe_relation(table or {}), source)
        out.append(derivation)
        if where is not None and "" not in ran:
            kept_table = [[e, list(v)] for e, v in table.items()] if table is not None else None
            kept_derivation = {"derived": name, "table": kept_table, "text": derivation.text, "source": source}
            where.store.put(key, Kept(kept_derivation, {}), image, ran)
    return out


def _noting(image: Image, ran: set[str]) -> StepListener:
    """A step listener that notes the function each step runs in (an alternative's code counts as its site's;
    "" for code no function holds)."""

    def note(path: ExecPath, _code: object, _insn: object) -> None:
        ran.add(image.function_at(path.alt.orig_start if path.alt else path.pc) or "")

    return note


def why_underived(run: ExploreRun) -> str | None:
    if run.unknowns:
        more = f" (and {len(run.unknowns) - 1} more)" if len(run.unknowns) > 1 else ""
        return f"a path was not followed to its end: {run.unknowns[0].reason}{more}"
    if run.erets:
        return "a path ends in an eret, not a return"
    if not run.returns:
        return "no path returns"
    return None


def bounded(options: Options) -> Options:
    return Options(**{**options.__dict__, "max_steps": min(options.max_steps, CHECK_STEPS),
                      "max_solver_calls": CHECK_SOLVER_CALLS})


def check_contracts(inputs: CheckInputs, contracts: Contracts, options: Options,
                    index: CodeIndex | None = None, store: CheckStore | None = None) -> list[ContractCheck]:
    """Every summarised function's contract, checked to `inputs.depth` or trusted with the reason; with a
    store, a check whose inputs and code are unchanged since it was kept is read back."""
    index = index or CodeIndex(inputs.files, inputs.root)
    where = _Where(store, contracts_digest(contracts)) if store is not None else None
    checking = _Checking(index, inputs, contracts, options, where)
    checks: dict[str, ContractCheck] = {}
    level = dict(inputs.call_daif)
    regs = {name: list(args) for name, args in inputs.call_regs.items()}
    for depth in range(1, inputs.depth + 1):
        nested: dict[str, list[int] | None] = {}
        for name in sorted(level):
            if name in checks:
                continue
            check, sites = _check_one(name, level[name], depth, checking, tuple(regs.get(name, ())))
            checks[name] = check
            for callee, daif in sites.daif.items():
                nested[callee] = union_daif(nested.get(callee, []), daif)
            for callee, args in sites.regs.items():
                regs[callee] = sorted(set(regs.get(callee, [])) | set(args))
        level = {name: daif for name, daif in nested.items() if name not in checks}
    beyond = sorted(level)
    while beyond:  # beyond the depth: trusted, unless the function's code shows it does not return
        name = beyond.pop()
        if name in checks:
            continue
        shown = _never_returns(name, inputs.depth + 1, checking, level.get(name), tuple(regs.get(name, ()))) \
            if not _returns(name, contracts) else None
        if shown is not None:
            checks[name] = shown[0]
            beyond.extend(shown[1].daif)
            continue
        checks[name] = ContractCheck(name, "TRUSTED", f"beyond --contract-depth {inputs.depth}",
                                     depth=inputs.depth + 1)
    return sorted(checks.values(), key=lambda c: (c.depth, c.function))


def union_daif(a: list[int] | None, b: list[int] | None) -> list[int] | None:
    """The DAIF values of two sets of calls; None (any) if either is."""
    return None if a is None or b is None else sorted(set(a) | set(b))


def _trusted_reason(name: str, inputs: CheckInputs) -> str:
    if name.startswith("*"):
        return f"called through a pointer loaded from {name[1:]}: which function it holds is set at run time"
    if name == FIRMWARE:
        return "firmware (SMCCC), not kernel code"
    return inputs.missing.get(name, "its code is not in the lifted files or the callee ring")


@dataclass
class Nested:
    """What a check's own calls pass their callees: the DAIF values and the registers holding pt_regs."""

    daif: dict[str, list[int] | None] = field(default_factory=dict)
    regs: dict[str, list[int]] = field(default_factory=dict)


def _check_one(name: str, daif: list[int] | None, depth: int, checking: _Checking, regs: tuple[int, ...] = ()
               ) -> tuple[ContractCheck, Nested]:
    contracts, where = checking.contracts, checking.where
    contract = _contract_of(name, contracts)
    text = contract.describe() if contract is not None else ""
    located = None if name.startswith("*") or name == FIRMWARE else checking.index.image_of(name)
    if located is None:
        return ContractCheck(name, "TRUSTED", _trusted_reason(name, checking.inputs), depth=depth, contract=text,
                             daif_at_call=daif, regs_args=list(regs)), Nested()
    if isinstance(located, str):
        return ContractCheck(name, "UNKNOWN", located, depth=depth, contract=text, daif_at_call=daif,
                             regs_args=list(regs)), Nested()
    image, address, path = located
    contract = contracts.for_function(name)
    source = source_of(path, checking.inputs.root)
    if not contract.returns:
        structural = _never_returns(name, depth, checking, daif, regs)
        if structural is not None:
            return structural
    limits = bounded(checking.options)
    # by the source, not the .s path: a series' snapshots hold the same file in a directory of their own
    key = check_key(function=name, contract=text, daif=daif, regs=list(regs), depth=depth, source=source,
                    contracts=where.contracts, options=asdict(limits)) if where is not None else ""
    kept = where.store.get(key, image) if where is not None else None
    if kept is not None:
        return ContractCheck.from_json(kept.check), Nested(kept.nested, kept.nested_regs)
    start = function_start(image, address, AtCalls(daif, regs), contracts.build.priority, contracts.layout)
    checked = _Explored(image, contracts, contract, start)
    sites = CallSites()
    ran: set[str] = set()  # the functions the check's paths ran
    noting = Steering(on_step=_noting(image, ran)) if where is not None else None
    run = _explorer(checked, sites, limits, noting).explore()
    callees = sorted(run.applied_at)  # its summarised calls and the callbacks it patched
    verdict, reason, cex = _judge(run, checked, limits)
    nested = Nested(sites.resolve(start.facts, limits.solver_rlimit), sites.regs_of())
    for callee in run.summarised:  # a call that does not return rests on its contract too
        nested.daif.setdefault(callee, None)
    check = ContractCheck(name, verdict, reason, source, depth, callees, cex, text, daif, list(regs))
    if where is not None and "" not in ran:
        where.store.put(key, Kept(check.json(), nested.daif, nested.regs), image, ran)
    return check, nested


def _returns(name: str, contracts: Contracts) -> bool:
    contract = _contract_of(name, contracts)
    return contract is None or contract.returns


def _never_returns(name: str, depth: int, checking: _Checking, daif: list[int] | None, regs: tuple[int, ...]
                   ) -> tuple[ContractCheck, Nested] | None:
    """A `returns = false` contract shown by its code's control flow (engine/noreturn.py), which holds
    whatever the data; it rests only on the contracts of the calls it does not go on after. None when the
    code is not here or its shape does not show it."""
    located = None if name.startswith("*") or name == FIRMWARE else checking.index.image_of(name)
    if not isinstance(located, tuple):
        return None
    image, address, path = located
    contracts = checking.contracts
    shown = never_returns(image, address, lambda callee: not _returns(callee, contracts),
                          lambda callback, length: contracts.callbacks[callback].variants(length)
                          if callback in contracts.callbacks else None)
    if not shown.proved:
        return None
    text = contracts.for_function(name).describe()
    check = ContractCheck(name, "PROVED", shown.reason, source_of(path, checking.inputs.root), depth,
                          sorted(shown.rests_on), None, text, daif, list(regs))
    return check, Nested({callee: None for callee in shown.rests_on if not callee.startswith(CALLBACK)})


def _contract_of(name: str, contracts: Contracts) -> Contract | None:
    """The contract a summarised call used: a function's, a pointer's (`*symbol`) or the firmware's."""
    if name == FIRMWARE:
        return contracts.firmware
    if name.startswith("*"):
        return contracts.indirect.get(name[1:], contracts.default)
    return contracts.for_function(name)


def _explorer(explored: _Explored, sites: CallSites, options: Options, steering: Steering | None = None) -> Explorer:
    start = explored.start
    watching = [ContractObserver(explored.contract, start), CallSiteObserver(sites, names.regs_pointer())]
    path = ExecPath(start.state.copy(), z3.BoolVal(True), (), start.pc, watching)
    calls = ContractCalls(explored.contracts, start.priority, regs_frame=False)
    return Explorer(explored.image, calls, Entry(path, list(start.facts), start.caps, start.return_address), options,
                    steering)


def _judge(run: ExploreRun, checked: _Explored, options: Options) -> tuple[str, str, dict[str, Any] | None]:
    contract = checked.contract
    if not contract.returns:
        if not run.returns:
            return _unknown_or(run, "PROVED", "no path returns (its contract says it does not return)")
        return "VIOLATED", "returns, though its contract says it does not", None
    gave_up = False
    for part in PARTS:
        for ret in run.returns:
            formula = ret.violations.get(part)
            if formula is None or z3.is_false(z3.simplify(formula)):
                continue
            solver = z3.Solver()
            solver.set("timeout", options.solver_timeout_ms)
            solver.set("rlimit", options.solver_rlimit)
            solver.add(*checked.start.facts, formula)
            status = solver.check()
            if status == z3.unknown:
                gave_up = True
                continue
            if status == z3.sat:
                model = solver.model()
                cex = _counterexample(model, part, checked, options)
                if cex is None:
                    return "UNKNOWN", (f"{describe_failure(part, contract)} on a path the replay does not "
                                       "reproduce (an engine limit)"), None
                return "VIOLATED", describe_failure(part, contract), cex
    if gave_up:
        return "UNKNOWN", "solver limit reached judging a return", None
    if run.erets:
        return "UNKNOWN", "a path ends in an eret, not a return", None
    if not run.returns:
        # every path ends in a trap (a WARN's brk returns, which the engine does not follow) or a call that
        # does not return: nothing was judged
        return _unknown_or(run, "UNKNOWN", "no path returns: each ends in a trap or a call that does not return")
    returning = len({check.address for check in run.returns})  # sites, not path ends: merging must not change it
    how = f"{returning} return site(s) checked; {NOT_CHECKED}"
    return _unknown_or(run, "PROVED", how)


def _unknown_or(run: ExploreRun, verdict: str, reason: str) -> tuple[str, str, None]:
    if run.unknowns:
        first = run.unknowns[0].reason
        more = f" (and {len(run.unknowns) - 1} more)" if len(run.unknowns) > 1 else ""
        return "UNKNOWN", f"a path was not followed to its end: {first}{more}", None
    return verdict, reason, None


def _counterexample(model: z3.ModelRef, part: str, checked: _Explored, options: Options) -> dict[str, Any] | None:
    """The failing path replayed under the model: its trace and the failing return's values; None when the
    replay does not end in a return that fails `part`."""

    def make(steering: Steering) -> Explorer:
        return _explorer(checked, CallSites(), options, steering)

    replayed = replay(checked.image, make, model, to_return=True)
    if replayed is None or not z3.is_true(model.eval(replayed.eret.violations[part], model_completion=True)):
        return None
    failing_at, what = replayed.eret.address, describe_failure(part, checked.contract)
    for event in replayed.eret.events.get(part, []):
        if z3.is_true(model.eval(event.cond, model_completion=True)):
            failing_at, what = event.address, event.what
            break
    values = {name: f"{model_number(model, expr):#x}" for name, expr in replayed.eret.values.items()}
    steps = [i for i, address in enumerate(replayed.addresses) if address == failing_at]
    failing = dict(replayed.trace[steps[-1] if steps else -1], what=what, values=values)
    return {"part": part, "what": what, "address": failing_at, "trace": replayed.trace, "values": values,
            "failing": failing}


def source_of(path: Path, root: str | None) -> str:
    """The C (or .S) file the assembly was made from, as the tree names it (else the assembly's path)."""
    if root is not None:
        # the longest tree path first: a build dir's arch/arm64/kernel/signal.s is arch/arm64/kernel/signal.c,
        # not the kernel/signal.c its shorter suffix also names
        for parent in reversed(path.parents):
            for suffix in (".c", ".S"):
                source = path.relative_to(parent).with_suffix(suffix)
                if (Path(root) / source).is_file():
                    return str(source)
    return str(path)
