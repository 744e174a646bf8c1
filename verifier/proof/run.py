"""The proof of the built-in obligations over lifted files: link, explore every vector slot, judge."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import z3

from verifier.engine.explore import ENGINE_ASSUMPTIONS, Explorer, Options
from verifier.engine.image import Image
from verifier.engine.replay import replay
from verifier.frontend.assembler import lift_file
from verifier.frontend.srcfunc import forget_sources
from verifier.ir.program import Addr, Program, SymRef
from verifier.semantics import table as semantics
from verifier.spec.constraints import Context
from verifier.spec.contracts import Contracts, load_contracts
from verifier.spec.policy import bind_roles, compile_rules, family_of, parse_policy, select_rules
from verifier.spec.slots import ALL_SLOTS, Assumption, Slot, build, load_assumptions
from verifier.spec.verdicts import Judge, Result, Waiver, load_waivers, watched_patterns
from verifier.util.errors import UserError
from verifier.util.paths import PROOFS, ROOT, shown

DEFAULT_ASSUMPTIONS = PROOFS / "assumptions.toml"
DEFAULT_WAIVERS = PROOFS / "waivers.toml"
BUNDLED_CONTRACTS = PROOFS / "contracts" / "bundled.toml"
BUNDLED_SUBJECTS = sorted((ROOT / "asm").glob("*.s"))


@dataclass
class ProveConfig:
    files: list[Path]
    contracts: Path = BUNDLED_CONTRACTS
    assumptions: Path = DEFAULT_ASSUMPTIONS
    waivers: Path | None = DEFAULT_WAIVERS
    caps: dict[int, bool] = field(default_factory=dict)  # pinned capabilities
    cap_names: dict[int, str] = field(default_factory=dict)
    slots: tuple[Slot, ...] = ALL_SLOTS
    options: Options = field(default_factory=Options)
    layout: dict[str, int] = field(default_factory=dict)  # overrides from the build (asm-offsets.h)
    root: str | None = None  # kernel tree, for source paths
    policy: Path | None = None  # a policy whose rules are checked besides the obligations
    readings: tuple[str, ...] = ()  # non-default readings of the policy's open points, by rule id
    sources: str | None = None  # where to read source text (default: root); a snapshot of the tree's files


@dataclass
class Report:
    results: list[Result]
    assumptions: list[str]
    inputs: list[dict[str, Any]]
    stats: dict[str, Any] = field(default_factory=dict)

    def exit_status(self) -> int:
        verdicts = {r.verdict for r in self.results}
        if "VIOLATED" in verdicts:
            return 1
        if "UNKNOWN" in verdicts:
            return 3
        return 0

    def json(self) -> dict[str, Any]:
        return {"results": [r.json() for r in self.results], "assumptions": self.assumptions,
                "inputs": self.inputs, "stats": self.stats}


Progress = Callable[[str], None]


def lift_all(files: list[Path], root: str | None) -> list[Program]:
    return [lift_file(path, root) for path in files]


def _image(programs: list[Program], contracts: Contracts) -> tuple[Image, int]:
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
    waivers and the policy's rules."""

    contracts: Contracts
    assumptions: list[Assumption]
    waivers: list[Waiver]
    programs: list[Program]
    image: Image
    vectors: int
    watch: tuple[str, ...]
    policy_rules: Any

    def inputs(self, files: list[Path]) -> list[dict[str, Any]]:
        return [{"path": str(p), "sections": {s.name: s.size for s in prog.sections.values()}}
                for p, prog in zip(files, self.programs, strict=True)]


def setup(config: ProveConfig) -> Setup:
    forget_sources()  # the sources may have changed since the last proof in this process
    contracts = load_contracts(config.contracts)
    contracts.layout.update(config.layout)
    assumptions = load_assumptions(config.assumptions)
    waivers: list[Waiver] = load_waivers(config.waivers) if config.waivers else []
    programs = lift_all(config.files, config.root)
    if config.sources:
        for program in programs:
            program.source_root = config.sources
    image, vectors = _image(programs, contracts)
    policy_rules = _policy(config, contracts, image, assumptions)
    return Setup(contracts, assumptions, waivers, programs, image, vectors, watched_patterns(waivers), policy_rules)


@dataclass
class SlotOutcome:
    """One vector slot's proof, in plain data (it crosses process boundaries)."""

    slot: str
    results: list[dict[str, Any]]
    printed: list[str]  # the assumptions the slot's verdicts rest on
    stats: dict[str, Any]
    inputs: list[dict[str, Any]]


def run_slot(config: ProveConfig, prepared: Setup, slot: Slot) -> SlotOutcome:
    started = time.perf_counter()
    results, printed, stats = prove_slot(slot, prepared.image, prepared.vectors, prepared.contracts,
                                         prepared.assumptions, prepared.waivers, prepared.watch, config,
                                         prepared.policy_rules)
    stats["seconds"] = round(time.perf_counter() - started, 3)
    return SlotOutcome(slot.name, [r.json() for r in results], printed, stats, prepared.inputs(config.files))


def prove(config: ProveConfig, progress: Progress | None = None, jobs: int = 1) -> Report:
    """Prove every slot of `config`; with jobs > 1 the slots run in that many worker processes."""
    from verifier.proof.pool import run_slot_jobs

    contracts = load_contracts(config.contracts)
    started = time.perf_counter()
    outcomes: dict[str, SlotOutcome] = {}

    def done(_: int, outcome: SlotOutcome) -> None:
        outcomes[outcome.slot] = outcome
        if progress:
            progress(f"{outcome.slot}: {count_verdicts(r['verdict'] for r in outcome.results)} "
                     f"({outcome.stats['seconds']}s)")

    run_slot_jobs([(config, slot.name) for slot in config.slots], jobs, done)
    ordered = [outcomes[slot.name] for slot in config.slots]
    return combine(ordered, standing_assumptions(config, contracts), round(time.perf_counter() - started, 3))


def standing_assumptions(config: ProveConfig, contracts: Contracts) -> list[str]:
    """The assumptions every slot's verdicts rest on, whatever the slot: engine, semantics, pins, bounds,
    contracts."""
    lines = [f"engine: {text}" for text in ENGINE_ASSUMPTIONS]
    lines += [f"semantics: {text}" for text in _bullets(semantics.ASSUMPTIONS)]
    lines += [f"pinned: {config.cap_names.get(n, f'cap{n}')}={'on' if v else 'off'}" for n, v in config.caps.items()]
    lines.append(f"bounds: loop bound {config.options.loop_bound} visits per instruction and call "
                 f"context; {config.options.max_steps} steps per slot")
    lines.append(f"contracts: {shown(contracts.path)} ({contracts.family}); {contracts.default.describe()}")
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


def _in_scope(rule: Any, ec: int) -> bool:
    if rule.ecs is None:
        return True
    return (ec in rule.ecs) != rule.ec_negated


def count_verdicts(verdicts: Iterable[str]) -> str:
    """`7 PROVED, 1 VIOLATED`: how many of each verdict."""
    counts: dict[str, int] = {}
    for verdict in verdicts:
        counts[verdict] = counts.get(verdict, 0) + 1
    return ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))


def _policy(config: ProveConfig, contracts: Contracts, image: Image, assumptions: list[Assumption]) -> Any:
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
    roles = bind_roles(policy, contracts.family, functions)
    for assume in policy.assumptions:
        assumptions.append(Assumption(assume.id, assume.text, assume.constraint,
                                      f"{shown(assume.where.file)}:{assume.where.line}"))
    return policy, select_rules(policy, config.readings), roles


def _slot_rules(policy_rules: Any, slot: Slot, initial: Any, contracts: Contracts) -> tuple:
    """The policy's rules that apply to this slot, compiled over its initial values."""
    if policy_rules is None:
        return ()
    policy, selected, roles = policy_rules
    context = Context({"spsr": initial.spsr, "mdscr": initial.mdscr, "esr": initial.esr, "elr": initial.elr,
                       "flags": initial.flags}, contracts.tif, z3.BoolVal(slot.from_el0), initial.caps)
    return tuple(compile_rules(policy, selected, roles, slot.source, slot.kind, context, contracts.tif))


def prove_slot(slot: Slot, image: Image, vectors: int, contracts: Contracts, assumptions: list[Assumption],
               waivers: list[Waiver], watch: tuple[str, ...], config: ProveConfig, policy_rules: Any = None
               ) -> tuple[list[Result], list[str], dict[str, Any]]:
    initial, start, facts, printed = build(slot, image, contracts, assumptions, vectors)
    for number, value in config.caps.items():
        cap = initial.caps.setdefault(number, z3.Bool(f"cap{number}"))
        facts.append(cap if value else z3.Not(cap))
    rules = _slot_rules(policy_rules, slot, initial, contracts)
    labels: dict[str, tuple[tuple[int, ...], str]] = {}
    policy_name = None
    if policy_rules is not None:
        policy, selected, _ = policy_rules
        policy_name = policy.name
        for rule in selected:
            if policy.applies(rule, slot.source, slot.kind):
                ecs = tuple(e for e in range(64) if _in_scope(rule, e))
                labels[f"rule:{rule.id}"] = (ecs, family_of(rule.id))
    explorer = Explorer(image, contracts, facts, initial, start, config.options, watch=watch, rules=rules)
    run = explorer.explore()

    def replay_model(model: z3.ModelRef, prop: str) -> dict[str, Any] | None:
        initial2, start2, facts2, _ = build(slot, image, contracts, assumptions, vectors)
        initial2.caps.update(initial.caps)

        def make(guide: Any, on_step: Any, options: Options | None) -> Explorer:
            return Explorer(image, contracts, facts2, initial2, start2, options or config.options, guide=guide,
                            on_step=on_step, rules=rules)

        cex = replay(image, make, initial2, start2, model, prop, config.cap_names)
        if cex is not None:
            from verifier.engine.replay import model_values

            cex["model"] = model_values(model)
            cex["vector"] = slot.name
            cex["property"] = prop
            cex["replay"] = {"files": [str(f) for f in config.files], "contracts": str(config.contracts),
                             "assumptions": str(config.assumptions), "layout": config.layout,
                             "caps": {str(n): v for n, v in config.caps.items()}, "root": config.root,
                             "policy": str(config.policy) if config.policy else None,
                             "readings": list(config.readings)}
        return cex

    judge = Judge(slot, run, facts, initial, waivers, replay_model, config.options.solver_timeout_ms, labels)
    results = judge.judge()
    for result in results:
        if result.property.startswith("rule:"):
            result.rule = result.property.removeprefix("rule:")
            result.property = family_of(result.rule)
            result.policy = policy_name
            if result.counterexample:
                result.counterexample["property"] = f"rule:{result.rule}"
    stats = {"steps": run.steps, "merges": run.merges, "solver_calls": run.solver_calls, "erets": len(run.erets),
             "fatal": len(run.fatals), "unknown": len(run.unknowns), "contracts": sorted(run.contracts)}
    return results, printed, stats


def replay_counterexample(cex: dict[str, Any]) -> dict[str, Any] | None:
    """Re-execute a recorded counterexample concretely (no solver); the replayed counterexample, or None
    when the recorded path does not end in the recorded violation."""
    from verifier.engine.replay import DictModel
    from verifier.spec.slots import slot_by_name

    info = cex["replay"]
    contracts = load_contracts(info["contracts"])
    contracts.layout.update(info.get("layout") or {})
    assumptions = load_assumptions(info["assumptions"])
    programs = lift_all([Path(f) for f in info["files"]], info.get("root"))
    image, vectors = _image(programs, contracts)
    slot = slot_by_name(cex["vector"])
    initial, start, facts, _ = build(slot, image, contracts, assumptions, vectors)
    for number in info.get("caps", {}):
        initial.caps.setdefault(int(number), z3.Bool(f"cap{number}"))
    for name in cex.get("model", {}):
        m = name.startswith("cap") and name[3:].isdigit()
        if m:
            initial.caps.setdefault(int(name[3:]), z3.Bool(name))
    model = DictModel(cex.get("model", {}))
    rules: tuple = ()
    if info.get("policy"):
        config = ProveConfig(files=[], policy=Path(info["policy"]), readings=tuple(info.get("readings", ())))
        rules = _slot_rules(_policy(config, contracts, image, assumptions), slot, initial, contracts)

    def make(guide: Any, on_step: Any, options: Options | None) -> Explorer:
        return Explorer(image, contracts, facts, initial, start, options or Options(), guide=guide, on_step=on_step,
                        rules=rules)

    return replay(image, make, initial, start, model, cex["property"], {})
