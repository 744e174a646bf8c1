"""One vector slot's proof: link once per process (Setup), explore the slot with every observer, judge
the verdicts, and replay each counterexample."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import z3

from verifier.engine.explore import Entry, Explorer, ExploreRun, Options, Steering
from verifier.engine.image import Image
from verifier.engine.observer import Observer
from verifier.engine.paths import Path as ExecPath
from verifier.engine.replay import MakeExplorer, Replayed, model_values, replay
from verifier.frontend.srcfunc import forget_sources
from verifier.ir.program import Addr, Program, SymRef
from verifier.proof.config import ProveConfig
from verifier.proof.confirming import Another, Objects, Resolve, confirm_on_unicorn
from verifier.proof.lift_cache import lifted
from verifier.semantics import names
from verifier.semantics.state import ESR_EL1
from verifier.spec.code_functions import CodeFunctions, source_functions
from verifier.spec.contract_calls import ContractCalls
from verifier.spec.contract_check import CallSiteObserver, CallSites
from verifier.spec.contracts import Contracts, load_contracts
from verifier.spec.counterexample import counterexample
from verifier.spec.obligation import SlotFacts
from verifier.spec.obligations import REGISTERED
from verifier.spec.policy import bind_roles, family_of, parse_policy, select_rules
from verifier.spec.reach import Reached, ReachObserver, with_class
from verifier.spec.rules import BoundPolicy, PolicyCheck, PolicyRule
from verifier.spec.slots import Assumption, Slot, SlotStart, build, load_assumptions
from verifier.spec.verdicts import Exploration, Judge, Result
from verifier.spec.waivers import Waiver, WaiverWatch, Watchlist, load_waivers, watched_patterns
from verifier.util.errors import UserError
from verifier.util.paths import shown


def lift_all(files: list[Path], root: str | None) -> list[Program]:
    return [lifted(path, root) for path in files]


def link(programs: list[Program], contracts: Contracts) -> tuple[Image, int]:
    """The lifted files in one address space, and the address of the vector table."""
    image = Image.link(programs)
    for section, base in contracts.aliases.items():
        image.add_alias(section, base)
    vectors = image.globals.get("vectors")
    if vectors is None:
        for local in image.locals:
            vectors = vectors or local.get("vectors")
    if vectors is None:
        raise UserError("no `vectors` symbol in the inputs: which file holds the exception vector table?")
    return image, vectors


@dataclass
class Setup:
    """Everything a slot's proof reads, loaded once per process: the linked image, contracts, assumptions,
    waivers and the policy bound to this kernel."""

    contracts: Contracts
    assumptions: list[Assumption]
    waivers: list[Waiver]
    programs: list[Program]
    image: Image
    vectors: int
    watchlist: Watchlist
    policy: BoundPolicy | None
    objects: Objects  # the inputs assembled (on first use), for Unicorn

    def inputs(self, files: list[Path]) -> list[dict[str, Any]]:
        return [{"path": str(p), "sections": {s.name: s.size for s in prog.sections.values()}}
                for p, prog in zip(files, self.programs, strict=True)]


def bind_policy(config: ProveConfig, contracts: Contracts, image: Image, assumptions: list[Assumption]
                ) -> BoundPolicy | None:
    """The policy's rules in force and its role bindings for this kernel family (None: no policy). Its
    assumptions join the others."""
    if config.policy is None:
        return None
    policy = parse_policy(config.policy)
    functions = {name for local in image.locals for name in local} | set(image.globals)
    functions |= {symbol for program in image.programs for section in program.sections.values()
                  for item in section.items if item.insn is not None
                  for op in item.insn.operands if isinstance(op, Addr) and isinstance(op.target, SymRef)
                  for symbol in (op.target.symbol,)}
    functions |= set(contracts.functions) | set(contracts.indirect)
    if any(rule.event == "enter" for rule in policy.rules):  # and the C functions inlined into the code
        functions |= source_functions(image)
    roles = bind_roles(policy, contracts.family, contracts.build.version, functions, contracts.build.options)
    for assume in policy.assumptions:
        assumptions.append(Assumption(assume.id, assume.text, assume.constraint,
                                      f"{shown(assume.where.file)}:{assume.where.line}"))
    return BoundPolicy(policy, select_rules(policy, config.readings), roles.patterns, roles.vacuous, roles.unbound,
                       roles.left_out)


def setup(config: ProveConfig) -> Setup:
    forget_sources()  # the sources may have changed since the last proof in this process
    contracts = replace(load_contracts(config.contracts, config.build), summarised=frozenset(config.summarised))
    assumptions = load_assumptions(config.assumptions)
    waivers: list[Waiver] = load_waivers(config.waivers) if config.waivers else []
    programs = lift_all(config.files, config.root)
    if config.sources:
        for program in programs:
            program.source_root = config.sources
    image, vectors = link(programs, contracts)
    policy = bind_policy(config, contracts, image, assumptions)
    return Setup(contracts, assumptions, waivers, programs, image, vectors,
                 Watchlist(CodeFunctions(image), watched_patterns(waivers)), policy,
                 Objects(config.files, config.assemblers))


@dataclass
class SlotOutcome:
    """One vector slot's proof, in plain data (it crosses process boundaries)."""

    slot: str
    results: list[dict[str, Any]]
    printed: list[str]  # the assumptions the slot's verdicts rest on
    stats: dict[str, Any]
    inputs: list[dict[str, Any]]
    # what the results depend on (verifier.spec.reach): from the proof {"ran": [name], "classes": {name: ecs}};
    # as the series keeps it {"functions": {name: digest}, "classes": ...} (verifier.series.reuse.with_digests)
    depends: dict[str, Any] = field(default_factory=dict)

    def plain(self) -> dict[str, Any]:
        """The fields as a dict, not copied: they are plain data already, never changed after the outcome is
        made (dataclasses.asdict copied every nested result, a third of a series commit's cost)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def replay_build(config: ProveConfig, policy: BoundPolicy | None) -> dict[str, Any]:
    """The build's facts a replay needs: of the configuration, only the options the policy's roles ask
    about (a Debian configuration sets thousands)."""
    facts = config.build.json()
    if config.build.options is not None:
        asked = {role.option for role in policy.policy.roles.values()} if policy is not None else set()
        facts["options"] = sorted(config.build.options & asked)
    return facts


def slot_rules(policy: BoundPolicy | None, slot: Slot, start: SlotStart) -> tuple[PolicyRule, ...]:
    """The policy's rules that apply to this slot, compiled over its initial values."""
    if policy is None:
        return ()
    return policy.slot_rules(slot.source, slot.kind, start.context, start.priority)


def observers(start: SlotStart, contracts: Contracts, rules: tuple[PolicyRule, ...], policy: BoundPolicy | None,
              watchlist: Watchlist) -> list[Observer]:
    """One observer per obligation, then the policy's rules, then the waivers' watches (`watchlist`: the code's
    functions, and the waivers' patterns to watch; none in a replay)."""
    initial = start.initial
    facts = SlotFacts(initial.spsr, initial.mdscr, initial.flags, contracts.layout["TSK_TI_FLAGS"], contracts.tif,
                      start.priority)
    out = [obligation.observer(facts) for obligation in REGISTERED]
    if rules and policy is not None:
        out.append(PolicyCheck(rules, policy.roles, watchlist.functions))
    if watchlist.patterns:
        out.append(WaiverWatch(watchlist))
    return out


def explorers(image: Image, contracts: Contracts, start: SlotStart, watching: list[Observer], options: Options
              ) -> MakeExplorer:
    """Makes the slot's explorers from `start`, each path watched by `watching`: steered by a replay, or not
    (`Steering()`)."""

    def make(steering: Steering) -> Explorer:
        path = ExecPath(start.state, z3.BoolVal(True), (), start.pc, watching)
        entry = Entry(path, start.facts, start.initial.caps)
        return Explorer(image, ContractCalls(contracts, start.priority), entry, options, steering)

    return make


def pin_caps(start: SlotStart, caps: dict[int, bool]) -> None:
    for number, value in caps.items():
        cap = start.initial.caps.setdefault(number, names.capability(number))
        start.facts.append(cap if value else z3.Not(cap))


def run_slot(config: ProveConfig, prepared: Setup, slot: Slot) -> SlotOutcome:
    started = time.perf_counter()
    results, printed, stats = prove_slot(slot, prepared, config)
    depends = stats.pop("depends")
    stats["seconds"] = round(time.perf_counter() - started, 3)
    return SlotOutcome(slot.name, [r.json() for r in results], printed, stats, prepared.inputs(config.files), depends)


def prove_slot(slot: Slot, prepared: Setup, config: ProveConfig) -> tuple[list[Result], list[str], dict[str, Any]]:
    image, contracts = prepared.image, prepared.contracts
    start = build(slot, image, contracts, prepared.assumptions, prepared.vectors)
    pin_caps(start, config.caps)
    initial = start.initial
    if config.classes and slot.synchronous:
        # only these exception classes: the explorer need not follow the others' paths, and the verdicts
        # cover exactly these classes (no class outside them is reported, PROVED or otherwise)
        start.facts.append(z3.Or([z3.Extract(31, 26, initial.esr) == ec for ec in config.classes]))
        if len(config.classes) == 1:
            # one class: the register holds it as a constant (equal under that fact), so the code's dispatch
            # on ESR_EL1.EC is decided by simplification instead of a solver check per comparison
            start.state.sysregs[ESR_EL1] = with_class(initial.esr, config.classes[0])
    rules = slot_rules(prepared.policy, slot, start)
    scopes = prepared.policy.scopes(slot.source, slot.kind) if prepared.policy is not None else {}
    sites = CallSites()  # the DAIF each summarised call is reached with: its contract check's precondition
    reached = Reached(image.function_at) if config.record_depends else None  # what the results depend on
    frame = names.initial_sp() - contracts.layout["S_FRAME_SIZE"]  # kernel_entry's pt_regs
    watching = observers(start, contracts, rules, prepared.policy, prepared.watchlist)
    watching.append(CallSiteObserver(sites, frame))
    if reached is not None:
        watching.append(ReachObserver(reached))
    run: ExploreRun = explorers(image, contracts, start, watching, config.options)(Steering()).explore()

    def replay_once(model: z3.ModelRef, prop: str) -> tuple[Replayed | None, dict[str, Any] | None]:
        again = build(slot, image, contracts, prepared.assumptions, prepared.vectors)
        again.initial.caps.update(initial.caps)
        watching = observers(again, contracts, rules, prepared.policy, Watchlist(prepared.watchlist.functions, ()))
        replayed = replay(image, explorers(image, contracts, again, watching, config.options), model)
        cex = counterexample(replayed, model, prop, again.initial, config.cap_names)
        if cex is not None:
            cex["model"] = model_values(model)
            cex["vector"] = slot.name
            cex["property"] = prop
            cex["replay"] = {"files": [str(f) for f in config.files], "contracts": str(config.contracts),
                             "assumptions": str(config.assumptions), "build": replay_build(config, prepared.policy),
                             "caps": {str(n): v for n, v in config.caps.items()}, "root": config.root,
                             "policy": str(config.policy) if config.policy else None,
                             "readings": list(config.readings), "summarised": list(config.summarised)}
        return replayed, cex

    def replay_model(model: z3.ModelRef, prop: str, resolve: Resolve | None = None) -> dict[str, Any] | None:
        replayed, cex = replay_once(model, prop)
        if cex is None or replayed is None or resolve is None or not config.confirm:
            return cex
        another = Another(resolve, lambda again: replay_once(again, prop))
        pinned, confirmation = confirm_on_unicorn(image, prepared.objects, model, replayed, another)
        cex = pinned or cex
        cex["unicorn"] = confirmation.json()
        return cex

    explored = Exploration(slot, run, start.facts, initial, config.classes)
    judge = Judge(explored, prepared.waivers, replay_model, config.options, scopes)
    results = judge.judge()
    policy_name = prepared.policy.policy.name if prepared.policy is not None else None
    vacuous = prepared.policy.vacuous_rules() if prepared.policy is not None else {}
    unbound = prepared.policy.unbound_rules() if prepared.policy is not None else {}
    printed = list(start.printed)
    printed += [f"policy: rule {rule} holds vacuously: {why}" for rule, why in vacuous.items()
                if f"rule:{rule}" in scopes]
    printed += [f"policy: rule {rule} is not judged on this tree: {why}" for rule, why in unbound.items()
                if f"rule:{rule}" in scopes]
    if prepared.policy is not None:
        printed += [f"policy: role {role}: {', '.join(names)} not in this tree (left out of the role)"
                    for role, names in prepared.policy.left_out.items()]
    for result in results:
        if result.property.startswith("rule:"):
            result.rule = result.property.removeprefix("rule:")
            if result.rule in vacuous and result.verdict == "PROVED":
                result.reason = "vacuous: " + vacuous[result.rule]
            if result.rule in unbound:  # judged at no call of the role: nothing is known of this rule here
                result.verdict, result.reason, result.counterexample = "UNKNOWN", unbound[result.rule], None
            result.property = family_of(result.rule)
            result.policy = policy_name
            if result.counterexample:
                result.counterexample["property"] = f"rule:{result.rule}"
    stats = {"steps": run.steps, "merges": run.merges, "solver_calls": run.solver_calls, "erets": len(run.erets),
             "fatal": len(run.fatals), "unknown": len(run.unknowns), "contracts": sorted(run.summarised),
             "call_daif": sites.resolve(start.facts, config.options.solver_rlimit), "call_regs": sites.regs_of(),
             "depends": depends_of(reached, initial.esr if slot.synchronous else None, config.classes)
             if reached is not None else {}}
    return results, printed, stats


def depends_of(reached: Reached, esr: z3.BitVecRef | None, classes: tuple[int, ...] = ()) -> dict[str, Any]:
    """The functions the slot's paths ran (`ran`; the series adds their content digests, once per image, in
    the process that compares them) and, for a synchronous slot, the classes reaching each (a proof of some
    classes: of those)."""
    return {"ran": sorted(reached.entries), "classes": reached.classes(esr, classes) if esr is not None else {}}
