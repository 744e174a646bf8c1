"""A whole proof over lifted files: every vector slot (in a process pool), one report with every
assumption its verdicts rest on; and the concrete replay of a recorded counterexample."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from verifier.engine.explore import ENGINE_ASSUMPTIONS, Options
from verifier.engine.replay import DictModel, replay
from verifier.proof.callback_derive import derive_callbacks
from verifier.proof.check_store import CheckStore
from verifier.proof.config import ProveConfig
from verifier.proof.consolidate import Consolidation, consolidate
from verifier.proof.contract_run import (
    CheckInputs,
    CodeIndex,
    ContractCheck,
    check_contracts,
    derive_contracts,
    source_of,
    union_daif,
)
from verifier.proof.lift_cache import lifted
from verifier.proof.pool import run_slot_jobs
from verifier.proof.slot import SlotOutcome, bind_policy, explorers, lift_all, link, observers, slot_rules
from verifier.semantics import names
from verifier.semantics import table as semantics
from verifier.spec.code_functions import CodeFunctions
from verifier.spec.contract_calls import CALLERS_FRAMES
from verifier.spec.contracts import BuildFacts, Contracts, load_contracts
from verifier.spec.counterexample import counterexample
from verifier.spec.slots import Slot, build, load_assumptions, slot_by_name
from verifier.spec.verdicts import Result
from verifier.spec.waivers import Watchlist
from verifier.util.errors import UserError
from verifier.util.paths import shown
from verifier.util.progress import Progress


@dataclass
class Report:
    results: list[Result]
    assumptions: list[str]
    inputs: list[dict[str, Any]]
    stats: dict[str, Any] = field(default_factory=dict)
    contracts: list[ContractCheck] = field(default_factory=list)  # each summarised call's contract, checked

    def exit_status(self, accept_hypotheses: bool = False) -> int:
        return exit_status(self.results, accept_hypotheses)

    def json(self) -> dict[str, Any]:
        return {"results": [r.json() for r in self.results], "assumptions": self.assumptions,
                "inputs": self.inputs, "stats": self.stats, "contracts": [c.json() for c in self.contracts]}



# Exit statuses beyond 0 (every result closed PROVED or WAIVED) and 2 (usage or input error).
VIOLATED_STATUS, UNKNOWN_STATUS, UNDER_HYPOTHESES_STATUS = 1, 3, 4


def exit_status(results: Iterable[Result], accept_hypotheses: bool = False) -> int:
    """1 some VIOLATED; 3 some UNKNOWN; 4 all PROVED or WAIVED, some under hypotheses (0 when accepted);
    0 every result closed."""
    results = list(results)
    verdicts = {r.verdict for r in results}
    if "VIOLATED" in verdicts:
        return VIOLATED_STATUS
    if "UNKNOWN" in verdicts:
        return UNKNOWN_STATUS
    if not accept_hypotheses and any(not r.closed for r in results):
        return UNDER_HYPOTHESES_STATUS
    return 0


# How many times the slots that used a contract found false are proved again, following the function's code.
FOLLOW_ROUNDS = 3


@dataclass(frozen=True)
class Checking:
    """What the contract checks of one proof share: where the functions' code is, where checks are kept
    (None: nowhere), and where progress is told."""

    index: CodeIndex
    store: CheckStore | None
    progress: Progress | None
    derivations: tuple[ContractCheck, ...] = ()  # the callbacks read from their code, as checks


def prove(config: ProveConfig, progress: Progress | None = None, jobs: int = 1) -> Report:
    """Prove every slot of `config`; with jobs > 1 the slots run in that many worker processes."""
    contracts = load_contracts(config.contracts, config.build)
    started = time.perf_counter()
    index = CodeIndex(list(config.files) + list(config.callees), config.root) if config.contract_depth >= 1 else None
    store = CheckStore() if config.keep_checks else None  # one per run: it prunes the kept checks once
    checking = Checking(index, store, progress) if index is not None else None  # None: --trust-contracts
    derived, build = _derived(config, contracts, checking)
    patched, build, derivations = _derived_patches(config, contracts, checking, build)
    derived += patched
    if checking is not None:
        checking = replace(checking, derivations=tuple(derivations))
    if build is not config.build:
        config = replace(config, build=build)
        contracts = load_contracts(config.contracts, config.build)
    outcomes = _prove_slots(config, config.slots, jobs, progress)
    standing = standing_assumptions(config, contracts) + derived
    report = combine([outcomes[slot.name] for slot in config.slots], standing, round(time.perf_counter() - started, 3))
    if checking is None:
        trust_all(report, "contract checking was off for this run (--trust-contracts)")
        return report
    checking_started = time.perf_counter()
    checked = check_and_follow(config, contracts, outcomes, checking,
                               lambda again, slots: _prove_slots(again, slots, jobs, progress))
    report = combine([outcomes[slot.name] for slot in config.slots], standing, report.stats["seconds"])
    report.contracts = checked.checks
    report.assumptions += checked.followed + contract_lines(report.contracts, config.contract_depth)
    report.stats["contract_seconds"] = round(time.perf_counter() - checking_started, 3)
    report.stats["seconds"] = round(time.perf_counter() - started, 3)
    consolidate(report.results, report.contracts)
    return report


@dataclass
class Checked:
    """The contracts a proof's slots used, checked; and what was followed through its code instead."""

    checks: list[ContractCheck]
    followed: list[str]  # `followed:` lines, one per function whose code the slots were proved through


# Proves some slots again under another configuration (its files extended): slot name -> outcome.
Reprove = Callable[[ProveConfig, tuple[Slot, ...]], dict[str, SlotOutcome]]


def check_and_follow(config: ProveConfig, contracts: Contracts, outcomes: dict[str, SlotOutcome], checking: Checking,
                     reprove: Reprove) -> Checked:
    """Check the contracts the slots' outcomes used; where a result rests on a false one, prove its slot again
    through the code (`reprove`, whose outcomes replace those in `outcomes`) and check again, up to
    FOLLOW_ROUNDS times. A contract found false stays listed after it was followed."""
    checks = checked_contracts(config, contracts, list(outcomes.values()), checking)
    followed: list[str] = []
    for _ in range(FOLLOW_ROUNDS):
        results = [Result.from_json(r) for outcome in outcomes.values() for r in outcome.results]
        again = _follow_violated(config, contracts, results, checks, checking.index)
        if again is None:
            break
        config, slots, lines = again  # lines: the followed functions, each with what the report says of it
        followed += lines.values()
        if checking.progress:
            again_slots = ", ".join(s.name for s in slots)
            checking.progress.note(f"FOLLOW  {'; '.join(lines.values())}: proving {again_slots} again, "
                                   "following its code")
        before = {slot.name: outcomes[slot.name] for slot in slots}
        for name, outcome in reprove(config, slots).items():
            outcomes[name] = kept_violations(before[name], outcome, set(lines))
        found_false = [check for check in checks if check.verdict == "VIOLATED"]
        checks = checked_contracts(config, contracts, list(outcomes.values()), checking)
        names = {check.function for check in checks}
        checks += [check for check in found_false if check.function not in names]
    return Checked(checks, followed)


# Obligations that fail at the instruction where they are broken, whatever the path does after it (the others
# fail at the eret, which the rest of the path must reach); a policy rule fails at its event likewise.
FAILS_WHERE_BROKEN = frozenset({"daif-order", "mdscr-sync"})


def kept_violations(old: SlotOutcome, new: SlotOutcome, followed: set[str]) -> SlotOutcome:
    """The outcome of a slot proved again through the code of `followed`, keeping a violation found before for
    the classes the new proof could not decide (UNKNOWN: a path through the code it could not follow), where
    the violation is broken at an instruction its path reaches before calling any of `followed` (a policy
    rule's event, an obligation of FAILS_WHERE_BROKEN): what the false summary said happens after it, so
    nothing of it changes the violation. The kept result rests only on the calls before that instruction."""
    results = list(new.results)
    for result in old.results:
        cex = result.get("counterexample")
        if result["verdict"] not in ("VIOLATED", "WAIVED") or cex is None:
            continue
        if not (result.get("policy") or result["property"] in FAILS_WHERE_BROKEN):
            continue
        failing_at, calls = _failing_step(cex), _first_calls(cex)
        if failing_at is None or any(calls.get(name, len(cex["trace"])) < failing_at for name in followed):
            continue
        wanted = set(result["ec"])
        taken: set[int] = set()
        remaining = []
        for other in results:
            same = (other["property"], other.get("rule")) == (result["property"], result.get("rule"))
            if same and other["verdict"] == "UNKNOWN" and (wanted & set(other["ec"]) or not wanted):
                common = wanted & set(other["ec"])
                taken |= common
                left = [ec for ec in other["ec"] if ec not in common]
                if left:
                    remaining.append({**other, "ec": left})
                elif not wanted:
                    taken.add(-1)  # an asynchronous slot: no classes
            else:
                remaining.append(other)
        results = remaining
        if taken:
            rests_on = [name for name in result.get("rests_on", []) if calls.get(name, -1) < failing_at]
            results.append({**result, "ec": sorted(ec for ec in taken if ec >= 0), "rests_on": rests_on})
    return replace(new, results=results)


def _failing_step(cex: dict[str, Any]) -> int | None:
    failing = cex.get("failing", {})
    for index, step in enumerate(cex.get("trace", [])):
        if (step.get("file"), step.get("line"), step.get("insn")) == \
                (failing.get("file"), failing.get("line"), failing.get("insn")):
            return index
    return None


def _first_calls(cex: dict[str, Any]) -> dict[str, int]:
    """Each function the path calls by name, at the index of its first call instruction."""
    out: dict[str, int] = {}
    for index, step in enumerate(cex.get("trace", [])):
        insn = step.get("insn", "")
        if insn.startswith(("bl ", "b ")) and insn.endswith(">") and "<" in insn:
            out.setdefault(insn[insn.rindex("<") + 1:-1], index)
    return out


def _prove_slots(config: ProveConfig, slots: Iterable[Slot], jobs: int, progress: Progress | None
                 ) -> dict[str, SlotOutcome]:
    outcomes: dict[str, SlotOutcome] = {}
    slots = tuple(slots)
    if progress:
        progress.start("prove", len(slots))

    def done(_: int, outcome: SlotOutcome) -> None:
        outcomes[outcome.slot] = outcome
        if progress:
            progress.advance(f"{outcome.slot}: {count_verdicts(r['verdict'] for r in outcome.results)} "
                             f"({outcome.stats['seconds']}s)")

    run_slot_jobs([(config, slot.name) for slot in slots], jobs, done)
    return outcomes


def _follow_violated(config: ProveConfig, contracts: Contracts, results: list[Result], checks: list[ContractCheck],
                     index: CodeIndex) -> tuple[ProveConfig, tuple[Slot, ...], dict[str, str]] | None:
    """Where a result rests on a contract that its function's code violates, or that rests (through its
    check's own callees) on one that is violated, the files of those functions join the inputs, so that the
    slots that used them are proved again through their code instead of a false summary (a contract used
    instead of the code, `lift = false`, stays: those results stay UNKNOWN). None: nothing to follow."""
    consolidation = Consolidation(checks)
    files: dict[str, Path] = {}
    why: dict[str, str] = {}
    for result in results:
        for name in result.rests_on:
            violated = consolidation.closure(name).violated
            for function in [name, *violated] if violated else []:
                path = index.where.get(function)
                contract = contracts.functions.get(function)
                joined = path is not None and (path not in config.files or function in config.summarised)
                if path is not None and joined and (contract is None or contract.lift):
                    files[function] = path
                    first = sorted(violated)[0]
                    why[function] = (f"is violated by its code ({violated[function].reason})" if function in violated
                                     else f"rests on the contract of {first}, which its code violates")
    slots = tuple(slot for slot in config.slots
                  if any(set(r.rests_on) & set(files) for r in results if r.vector == slot.name))
    if not slots:
        return None
    added = sorted(set(files.values()) - set(config.files))
    assembler = config.assemblers[0] if config.assemblers else None
    # only the functions followed run as code: the rest of their files stay summarised by their contracts
    others = {name for name, path in index.where.items() if path in added} | set(config.summarised)
    more = replace(config, files=[*config.files, *added],
                   assemblers=[*config.assemblers, *([assembler] * len(added))] if config.assemblers else [],
                   summarised=tuple(sorted(others - set(files))))
    lines = {name: f"followed: contract {name} {why[name]}: the slots that used it were proved through its code "
                   f"({source_of(files[name], config.root)})" for name in sorted(files)}
    return more, slots, lines


def trust_all(report: Report, why: str) -> None:
    """Every contract the report's slots used listed as trusted, not checked, and the results' pending
    hypotheses made of them."""
    used = sorted({name for stats in report.stats.get("slots", {}).values() for name in stats.get("contracts", [])})
    report.contracts = [ContractCheck(name, "TRUSTED", f"not checked: {why}") for name in used]
    report.assumptions.append(f"contracts trusted, not checked ({why}): {', '.join(used) or 'none'}")
    consolidate(report.results, report.contracts)


def _derived(config: ProveConfig, contracts: Contracts, checking: Checking | None
             ) -> tuple[list[str], BuildFacts]:
    """The `daif = "derived"` contracts derived from their code: the lines that say what was derived (or
    which written fallback stands), and the build facts that carry the derivations to the slots' workers
    and to replays."""
    wanted = sorted(name for name, contract in contracts.functions.items() if contract.derive)
    if not wanted:
        return [], config.build
    if checking is None:
        return [f"derived: contract {name}: not derived (--trust-contracts); its written fallback "
                f"`daif = {contracts.functions[name].daif}` is trusted" for name in wanted], config.build
    if checking.progress:
        checking.progress.note(f"DERIVE  DAIF on return of {', '.join(wanted)} from their code")
    derivations = derive_contracts(checking.index, contracts, config.options, config.callee_missing, checking.store)
    found = {d.function: d.build_json() for d in derivations if d.table is not None}
    build = replace(config.build, derived_daif=found) if found else config.build
    return [d.line(contracts) for d in derivations], build


def _derived_patches(config: ProveConfig, contracts: Contracts, checking: Checking | None, build: BuildFacts
                     ) -> tuple[list[str], BuildFacts, list[ContractCheck]]:
    """The alternative_cb callbacks of the lifted code read from their code: the lines that say what each
    writes at its sites (or why its written contract stands), the build facts that carry them to the slots'
    workers, and each derivation as a check the consolidation looks up."""
    if checking is None:
        return [], build, []
    sites: dict[str, set[int]] = {}
    for path in [*config.files, *config.callees]:
        try:
            program = lifted(path, config.root)
        except UserError:
            continue  # a file that does not lift says so where it is proved or checked
        for site in program.alternatives:
            if site.callback:
                sites.setdefault(site.callback, set()).add(site.orig_len // 4)
    if not sites:
        return [], build, []
    if checking.progress:
        checking.progress.note(f"DERIVE  what {', '.join(sorted(sites))} write at their sites from their code")
    derivations = derive_callbacks(checking.index, contracts, config.options, sites)
    found = {d.callback: d.build_json() for d in derivations if d.variants is not None}
    if found:
        build = replace(build, derived_patches=found)
    return [d.line() for d in derivations], build, [d.check() for d in derivations]


def checked_contracts(config: ProveConfig, contracts: Contracts, outcomes: list[SlotOutcome], checking: Checking
                      ) -> list[ContractCheck]:
    """The contracts the slots' proofs used, each checked against its code (or trusted, with why); and the
    callbacks' derivations with the contracts they rest on."""
    call_daif: dict[str, list[int] | None] = {}
    for derivation in checking.derivations:
        for name in derivation.callees:
            call_daif.setdefault(name, None)
    call_regs: dict[str, list[int]] = {}
    for outcome in outcomes:
        for name, values in outcome.stats.get("call_daif", {}).items():
            call_daif[name] = union_daif(call_daif.get(name, []), values)
        for name, regs in outcome.stats.get("call_regs", {}).items():
            call_regs[name] = sorted(set(call_regs.get(name, [])) | set(regs))
        for name in outcome.stats.get("contracts", []):
            call_daif.setdefault(name, None)  # a call that returns nowhere still rests on its contract
    if checking.progress:
        checking.progress.note(f"CHECK   {len(call_daif)} contracts against their code")
    inputs = CheckInputs(list(config.files) + list(config.callees), dict(config.callee_missing), call_daif,
                         config.root, config.contract_depth, call_regs)
    checks = check_contracts(inputs, contracts, config.options, checking.index, checking.store)
    return checks + list(checking.derivations)


def contract_lines(checks: list[ContractCheck], depth: int) -> list[str]:
    """The checks as assumption lines: a count, then each contract."""
    counts = count_verdicts(check.verdict for check in checks) or "none"
    return [f"contracts checked to depth {depth}: {counts}"] + [f"contract check: {check.line()}" for check in checks]


def standing_assumptions(config: ProveConfig, contracts: Contracts) -> list[str]:
    """The assumptions every slot's verdicts rest on, whatever the slot: engine, semantics, pins, bounds,
    contracts."""
    lines = [f"engine: {text}" for text in ENGINE_ASSUMPTIONS]
    lines += [f"semantics: {text}" for text in _bullets(semantics.ASSUMPTIONS)]
    lines += [f"pinned: {config.cap_names.get(n, f'cap{n}')}={'on' if v else 'off'}" for n, v in config.caps.items()]
    lines.append(f"bounds: loop bound {config.options.loop_bound} visits per instruction and call "
                 f"context; {config.options.max_steps} steps per slot; each solver check at most "
                 f"{config.options.solver_rlimit:,} Z3 resource units (deterministic) and "
                 f"{config.options.solver_timeout_ms // 1000} s")
    applies = f", applies {contracts.applies}" if contracts.applies else ""
    lines.append(f"contracts: {shown(contracts.path)} ({contracts.family}{applies}); {contracts.default.describe()}")
    lines.append(f"contracts: {CALLERS_FRAMES}")
    lines += [f"build: {text}" for text in config.build.derived]
    if config.classes:
        lines.append("classes: only exception classes " + ", ".join(f"{ec:#x}" for ec in config.classes)
                     + " of the synchronous slots (--ec)")
    return lines


def combine(outcomes: list[SlotOutcome], standing: list[str], seconds: float) -> Report:
    """One report from the slots' outcomes, with every assumption its verdicts rest on."""
    results = [Result.from_json(r) for outcome in outcomes for r in outcome.results]
    printed: list[str] = []
    for outcome in outcomes:
        for line in outcome.printed:
            if line not in printed:
                printed.append(line)
    stats: dict[str, Any] = {"slots": {o.slot: o.stats for o in outcomes}, "seconds": seconds}
    inputs = outcomes[0].inputs if outcomes else []
    return Report(results, printed + standing, inputs, stats)


def _bullets(text: str | tuple[str, ...] | list[str]) -> list[str]:
    """The semantics' assumptions: a tuple of sentences, or a text with `- ` bullets."""
    if not isinstance(text, str):
        return list(text)
    items: list[str] = []
    for line in text.splitlines():
        if line.startswith("- "):
            items.append(line[2:].strip())
        elif line.startswith("  ") and items:
            items[-1] += " " + line.strip()
    return items


def count_verdicts(verdicts: Iterable[str]) -> str:
    """`7 PROVED, 1 VIOLATED`: how many of each verdict."""
    counts: dict[str, int] = {}
    for verdict in verdicts:
        counts[verdict] = counts.get(verdict, 0) + 1
    return ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))


def replay_counterexample(cex: dict[str, Any]) -> dict[str, Any] | None:
    """Re-execute a recorded counterexample concretely (no solver); the replayed counterexample, or None
    when the recorded path does not end in the recorded violation."""
    info = cex["replay"]
    contracts = replace(load_contracts(info["contracts"], BuildFacts.from_json(info.get("build"))),
                        summarised=frozenset(info.get("summarised", ())))
    assumptions = load_assumptions(info["assumptions"])
    programs = lift_all([Path(f) for f in info["files"]], info.get("root"))
    image, vectors = link(programs, contracts)
    slot = slot_by_name(cex["vector"])
    start = build(slot, image, contracts, assumptions, vectors)
    initial = start.initial
    for number in info.get("caps", {}):
        initial.caps.setdefault(int(number), names.capability(int(number)))
    for name in cex.get("model", {}):
        number = names.capability_number(name)
        if number is not None:
            initial.caps.setdefault(number, names.capability(number))
    model = DictModel(cex.get("model", {}))
    policy = None
    if info.get("policy"):
        config = ProveConfig(files=[], policy=Path(info["policy"]), readings=tuple(info.get("readings", ())))
        policy = bind_policy(config, contracts, image, assumptions)
    watching = observers(start, contracts, slot_rules(policy, slot, start), policy, Watchlist(CodeFunctions(image), ()))
    return counterexample(replay(image, explorers(image, contracts, start, watching, Options()), model), model,
                          cex["property"], initial, {})
