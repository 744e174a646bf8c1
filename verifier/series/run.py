"""Proofs over a patch series: every commit of BASE..TIP (or of patches applied with `git am` onto BASE) is
built with Kbuild in a scratch clone, its lifted inputs snapshotted, and each distinct snapshot proved once per
vector slot (cached across runs, spread over worker processes, or split into shards for a CI job matrix).

`collect` does one shard's share and returns a plain-data document; `finish` combines the documents of all
shards (one, without --shard) into per-commit reports. Comparing those is `verifier.verdictdiff`'s job."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from verifier.engine.explore import Options
from verifier.kernel import kbuild
from verifier.kernel.cmdfile import TargetFlags, llvm_assembler
from verifier.kernel.info import contracts_for
from verifier.kernel.snapshot import Snapshot, load, take
from verifier.proof.cache import ResultStore, proof_key, tool_digest
from verifier.proof.check_store import CheckStore
from verifier.proof.config import DEFAULT_ASSUMPTIONS, DEFAULT_WAIVERS, ProveConfig, parse_caps
from verifier.proof.consolidate import consolidate
from verifier.proof.contract_run import CodeIndex, ContractCheck
from verifier.proof.pool import run_slot_jobs
from verifier.proof.run import (
    Checking,
    Report,
    check_and_follow,
    combine,
    contract_lines,
    count_verdicts,
    standing_assumptions,
    trust_all,
)
from verifier.proof.slot import SlotOutcome
from verifier.report.progress import Progress
from verifier.series import reuse
from verifier.series.git import Commit, Scratch, check_repo, commit, commits, resolve
from verifier.spec.contracts import load_contracts
from verifier.spec.slots import ALL_SLOTS, Slot
from verifier.util.errors import UserError

FORMAT = "entry-verify-series/1"
# Why a series' results rest on every contract they use as a pending hypothesis, when it does.
SERIES_TRUSTS = "contract checking was off for this run (--trust-contracts)"


@dataclass
class SeriesPlan:
    repo: Path
    base: str
    tip: str | None = None  # BASE..TIP in the repository ...
    patches: list[Path] = field(default_factory=list)  # ... or these applied onto BASE with git am
    same_as: str | None = None
    kconfig: str = "defconfig"
    toolchain: kbuild.Toolchain = field(default_factory=lambda: kbuild.toolchain_from(None, False))
    make_jobs: int = 1
    workers: int = 1
    shard: tuple[int, int] = (1, 1)
    cache: Path = field(default_factory=kbuild.cache_dir)
    contracts: Path | None = None  # default: by kernel version
    assumptions: Path = DEFAULT_ASSUMPTIONS
    waivers: Path | None = DEFAULT_WAIVERS  # None: no waivers
    policy: Path | None = None
    readings: tuple[str, ...] = ()
    caps: tuple[str, ...] = ()  # NAME=on|off
    slots: tuple[Slot, ...] = ALL_SLOTS
    loop_bound: int = Options.loop_bound
    classes: tuple[int, ...] = ()  # only these exception classes of the synchronous slots (--ec)
    confirm: bool = True  # counterexamples confirmed on Unicorn (--no-unicorn: False)
    contract_depth: int = 1  # contracts checked against the callee ring's code to this depth (0: trusted)


@dataclass
class CommitReport:
    commit: Commit
    key: str
    cached: bool  # no proof ran for this commit in this run
    report: Report


@dataclass
class SeriesResult:
    base: CommitReport
    commits: list[CommitReport]
    reference: CommitReport | None  # --same-as
    seconds: float
    proofs: int  # slot proofs run
    accept_hypotheses: bool = False  # the user accepts results under hypotheses (--accept-hypotheses)


def _toolchain_identity(toolchain: kbuild.Toolchain) -> str:
    compiler = "clang" if toolchain.llvm else f"{toolchain.cross}gcc"
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    except OSError:
        version = "?"
    return f"{toolchain.describe()} {version}"


def _build_identity(plan: SeriesPlan) -> str:
    """What besides the source tree decides the assembly Kbuild makes."""
    kconfig = plan.kconfig
    if kconfig != "defconfig":
        kconfig = kbuild.config_choice(kconfig)["sha256"]
    return json.dumps([kconfig, _toolchain_identity(plan.toolchain), list(kbuild.DEFAULT_FILES), tool_digest(),
                       plan.contract_depth > 0])


class _Inputs:
    """Snapshots of commits' lifted inputs; a commit whose tree was built before (same config and toolchain)
    costs neither a checkout nor a build."""

    def __init__(self, plan: SeriesPlan, scratch: Scratch, progress: Progress) -> None:
        self.plan, self.scratch, self.progress = plan, scratch, progress
        self.store = plan.cache / "snapshots"
        self.memo = plan.cache / "built"
        self.identity = _build_identity(plan)

    def of(self, commit: Commit) -> Snapshot:
        memo = self.memo / hashlib.sha256(f"{commit.tree}\0{self.identity}".encode()).hexdigest()[:24]
        if memo.is_file():
            digest = memo.read_text().strip()
            if (self.store / digest / "meta.json").is_file():
                return load(self.store, digest)
        self.progress.note(f"BUILD   {commit.short} {commit.subject}")
        self.scratch.checkout(commit.sha)
        job = kbuild.KbuildJob(tree=self.scratch.repo, build_dir=kbuild.check_build_dir(self.scratch.repo,
                               self.scratch.build), config=self.plan.kconfig, toolchain=self.plan.toolchain,
                               jobs=self.plan.make_jobs)
        files = kbuild.build_asm(job)
        ring = kbuild.build_callee_ring(job, files) if self.plan.contract_depth else None
        snapshot = take(self.store, self.scratch.repo, self.scratch.build, files, ring)
        memo.parent.mkdir(parents=True, exist_ok=True)
        memo.write_text(snapshot.digest + "\n")
        return snapshot


def prove_config(plan: SeriesPlan, snapshot: Snapshot) -> ProveConfig:
    contracts = plan.contracts or contracts_for(snapshot.version)
    return ProveConfig(files=snapshot.files, contracts=contracts, assumptions=plan.assumptions, waivers=plan.waivers,
                       caps=parse_caps(list(plan.caps), snapshot.cap_names), cap_names=snapshot.cap_names,
                       slots=plan.slots, options=Options(loop_bound=plan.loop_bound), build=snapshot.build,
                       root=snapshot.root, policy=plan.policy, readings=plan.readings, sources=str(snapshot.sources),
                       assemblers=[_assembler(plan.toolchain)] * len(snapshot.files), confirm=plan.confirm,
                       classes=plan.classes, record_depends=True, callees=list(snapshot.callees),
                       callee_missing=dict(snapshot.callee_missing), contract_depth=plan.contract_depth)


def _assembler(toolchain: kbuild.Toolchain) -> tuple[str, ...]:
    """The assembler of the series' builds, for the Unicorn confirmation (a snapshot keeps no .cmd files)."""
    if toolchain.llvm:
        return llvm_assembler(kbuild.llvm_tool("clang", toolchain.llvm), TargetFlags(), "the series' LLVM").argv
    return (f"{toolchain.cross}as",)


def _commit_json(commit: Commit, key: str) -> dict[str, str]:
    return {"sha": commit.sha, "tree": commit.tree, "subject": commit.subject, "key": key}


def collect(plan: SeriesPlan, progress: Progress) -> dict[str, Any]:
    """Build every commit, prove this shard's share of the (snapshot, slot) pairs not cached; the shard's
    document."""
    repo = check_repo(plan.repo)
    base = commit(repo, plan.base)
    with Scratch(plan.cache, repo).locked() as scratch:
        if plan.patches:
            progress.note(f"APPLY   {len(plan.patches)} patch file(s) onto {base.short} with git am")
            series = scratch.apply(base.sha, plan.patches)
        else:
            tip = resolve(repo, plan.tip or "HEAD")
            series = commits(repo, [f"{base.sha}..{tip}"])
        if not series:
            raise UserError(f"no commits to check between {plan.base} and {plan.tip or 'the patches'}")
        reference = commit(repo, plan.same_as) if plan.same_as else None
        inputs = _Inputs(plan, scratch, progress)
        everything = [base, *series] + ([reference] if reference else [])
        progress.start("inputs", len(everything))
        snapshots: dict[str, Snapshot] = {}
        for c in everything:
            if c.sha not in snapshots:
                snapshots[c.sha] = inputs.of(c)
            progress.advance(f"{c.short} {c.subject}")
    configs = {sha: prove_config(plan, snap) for sha, snap in snapshots.items()}
    keys = {sha: proof_key(snapshots[sha].digest, config) for sha, config in configs.items()}
    config_of = {keys[sha]: configs[sha] for sha in configs}
    store = ResultStore(plan.cache / "results")
    index, count = plan.shard
    order = list(dict.fromkeys(keys[c.sha] for c in everything))
    pairs = [(key, slot.name) for key in order for slot in plan.slots]
    mine = [pair for n, pair in enumerate(pairs) if n % count == index - 1]
    outcomes: dict[str, dict[str, Any]] = {}
    short = {keys[c.sha]: c.short for c in reversed(everything)}
    proved: dict[str, list[str]] = {}
    snapshot_of = {keys[c.sha]: snapshots[c.sha] for c in everything}
    # Without shards, commits go in order and each slot may reuse the previous commit's result by what it
    # depends on (verifier.series.reuse); a shard has not got the other shards' results to compare with.
    reusing = count == 1
    digests = reuse.Digests()
    # what besides the code a result depends on, once per commit: reuse needs the same on both sides
    context = {key: reuse.context_key(snapshot_of[key], config_of[key]) for key in order} if reusing else {}
    progress.start("prove", len(mine))
    waves = [[pair for pair in mine if pair[0] == key] for key in order] if reusing else [mine]
    for wave_index, wave in enumerate(waves):
        # (key, slot, config to prove with, and for a partial proof: the previous result and the classes)
        todo: list[tuple[str, str, ProveConfig, tuple[SlotOutcome, list[int]] | None]] = []
        before = order[wave_index - 1] if reusing and wave_index else None
        for key, slot in wave:
            found = store.get(key, slot)
            if found is not None:
                outcomes.setdefault(key, {})[slot] = found.plain()
                progress.advance(f"{short[key]} {slot}: cached")
                continue
            previous = None
            if before is not None and context[before] == context[key] and slot in outcomes.get(before, {}):
                previous = SlotOutcome(**outcomes[before][slot])
            how = reuse.plan(previous, digests.of(snapshot_of[key])) if previous is not None else None
            if how is None or how.action == "prove":
                todo.append((key, slot, config_of[key], None))
            elif how.action == "reuse":
                assert previous is not None
                outcome = reuse.reused(previous, digests.of(snapshot_of[key]))
                store.put(key, outcome)
                outcomes.setdefault(key, {})[slot] = outcome.plain()
                progress.advance(f"{short[key]} {slot}: reused (ran none of what changed)")
            else:  # some classes proved again
                assert previous is not None
                todo.append((key, slot, reuse.partial_config(config_of[key], how.classes), (previous, how.classes)))

        def done(i: int, outcome: SlotOutcome, todo: list = todo) -> None:
            key, slot, _, partial = todo[i]
            image = digests.of(snapshot_of[key])
            if partial is not None:
                outcome = reuse.combined(partial[0], outcome, partial[1], image)
            else:
                outcome = reuse.with_digests(outcome, image)
            store.put(key, outcome)
            outcomes.setdefault(key, {})[outcome.slot] = outcome.plain()
            proved.setdefault(key, []).append(slot)
            summary = count_verdicts(r["verdict"] for r in outcome.results)
            again = f", classes {', '.join(f'{ec:#x}' for ec in partial[1])} proved again" if partial else ""
            progress.advance(f"{short[key]} {outcome.slot}: {summary} ({outcome.stats['seconds']}s{again})")

        run_slot_jobs([(config, slot) for _, slot, config, _ in todo], plan.workers, done)
    standing = {key: standing_assumptions(config, load_contracts(config.contracts, config.build))
                for key, config in config_of.items()}
    checks, followed = _checks(config_of, outcomes, store, plan.workers, progress) if plan.contract_depth else ({}, {})
    return {"format": FORMAT, "tool": tool_digest(), "shard": [index, count], "contract_depth": plan.contract_depth,
            "slots": [slot.name for slot in plan.slots],
            "base": _commit_json(base, keys[base.sha]),
            "commits": [_commit_json(c, keys[c.sha]) for c in series],
            "same_as": _commit_json(reference, keys[reference.sha]) if reference else None,
            "standing": standing, "outcomes": outcomes, "checks": checks, "followed": followed,
            "proved": {key: sorted(slots) for key, slots in proved.items()}}


def _checks(config_of: dict[str, ProveConfig], outcomes: dict[str, dict[str, Any]], results: ResultStore,
            workers: int, progress: Progress) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[str]]]:
    """Per commit (by proof key), the contracts its slots' proofs used (those this shard proved or reused),
    each checked against the code of that commit's callee ring (checks kept between runs are read back); where
    a result rests on a false one, its slot is proved again through that code, as `kernel` does, and that
    outcome replaces the other. The checks and the `followed:` lines, per key."""
    store = CheckStore()
    checks: dict[str, list[dict[str, Any]]] = {}
    followed: dict[str, list[str]] = {}
    for key, slots in outcomes.items():
        config = config_of[key]
        # the checks of these very outcomes, kept from an earlier run (a warm re-run checks nothing)
        kept_as = results.root / key / f"checks-{_digest([slots, config.contract_depth])}.json"
        with contextlib.suppress(OSError, ValueError, KeyError):
            kept = json.loads(kept_as.read_text())
            checks[key], followed[key] = kept["checks"], kept["followed"]
            continue
        contracts = load_contracts(config.contracts, config.build)
        index = CodeIndex(list(config.files) + list(config.callees), config.root)
        mine = {slot: SlotOutcome(**data) for slot, data in slots.items()}

        def reprove(again: ProveConfig, redo: tuple[Slot, ...], key: str = key) -> dict[str, SlotOutcome]:
            done: dict[str, SlotOutcome] = {}

            def keep(_: int, outcome: SlotOutcome) -> None:
                outcome = replace(outcome, depends={"functions": {name: None for name in outcome.depends["ran"]},
                                                    "classes": outcome.depends["classes"]})
                results.put(key, outcome)  # nothing to compare it with: the next commit proves it again
                done[outcome.slot] = outcome
                progress.advance(f"{key[:8]} {outcome.slot}: proved again through the callee's code")

            progress.start("follow", len(redo))
            run_slot_jobs([(again, slot.name) for slot in redo], workers, keep)
            return done

        checked = check_and_follow(config, contracts, mine, Checking(index, store, None), reprove)
        slots.update({slot: outcome.plain() for slot, outcome in mine.items()})
        progress.note(f"CHECK   {key[:8]}: "
                      f"{count_verdicts(check.verdict for check in checked.checks) or 'no contracts'}")
        checks[key] = [check.json() for check in checked.checks]
        followed[key] = checked.followed
        kept_as = results.root / key / f"checks-{_digest([slots, config.contract_depth])}.json"
        with contextlib.suppress(OSError):
            kept_as.parent.mkdir(parents=True, exist_ok=True)
            kept_as.write_text(json.dumps({"checks": checks[key], "followed": followed[key]}))
    return checks, followed


def _digest(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


# A contract checked by several shards (each under the DAIF its own slots' calls reach it with) stands as the
# worst of their checks.
_WORST = ("PROVED", "TRUSTED", "UNKNOWN", "VIOLATED")


def _merged_checks(docs: list[dict[str, Any]], key: str) -> list[ContractCheck] | None:
    """The checks of one commit from every shard; None where the run trusted its contracts."""
    if not any(key in doc.get("checks", {}) for doc in docs):
        return None
    merged: dict[str, ContractCheck] = {}
    for doc in docs:
        for data in doc.get("checks", {}).get(key, []):
            check = ContractCheck.from_json(data)
            held = merged.get(check.function)
            if held is None or _WORST.index(check.verdict) > _WORST.index(held.verdict):
                merged[check.function] = check
    return sorted(merged.values(), key=lambda c: (c.depth, c.function))


def _check_shards(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        if doc.get("format") != FORMAT:
            raise UserError(f"not a series shard document (format {doc.get('format')!r}, want {FORMAT})")
    first = docs[0]
    same = ("tool", "slots", "base", "commits", "same_as")
    for doc in docs[1:]:
        for field_name in same:
            if doc[field_name] != first[field_name]:
                raise UserError(f"shard outputs are from different runs (their '{field_name}' differ)")
    count = first["shard"][1]
    shards = sorted(doc["shard"][0] for doc in docs)
    if any(doc["shard"][1] != count for doc in docs) or shards != list(range(1, count + 1)):
        raise UserError(f"need the outputs of shards 1..{count}, each once; got shards {shards} of {count}")


def finish(docs: list[dict[str, Any]], seconds: float = 0.0) -> SeriesResult:
    """Per-commit reports from the documents of every shard of one run."""
    _check_shards(docs)
    first = docs[0]
    outcomes: dict[str, dict[str, Any]] = {}
    proved: dict[str, set[str]] = {}
    standing: dict[str, list[str]] = {}
    for doc in docs:
        for key, slots in doc["outcomes"].items():
            outcomes.setdefault(key, {}).update(slots)
        for key, slots in doc["proved"].items():
            proved.setdefault(key, set()).update(slots)
        standing.update(doc["standing"])
    missing = [f"{key[:8]}/{slot}" for key in standing for slot in first["slots"] if slot not in outcomes.get(key, {})]
    if missing:
        raise UserError(f"shard outputs lack {len(missing)} slot proofs (e.g. {', '.join(missing[:3])})")
    reports: dict[str, Report] = {}
    for key in standing:
        ordered = [SlotOutcome(**outcomes[key][slot]) for slot in first["slots"]]
        reports[key] = combine(ordered, standing[key], sum(o.stats.get("seconds", 0.0) for o in ordered))
        checks = _merged_checks(docs, key)
        if checks is None:
            trust_all(reports[key], SERIES_TRUSTS)
        else:
            reports[key].contracts = checks
            lines = sorted({line for doc in docs for line in doc.get("followed", {}).get(key, [])})
            reports[key].assumptions += lines + contract_lines(checks, first.get("contract_depth", 1))
            consolidate(reports[key].results, checks)
    seen: set[str] = set()

    def entry(data: dict[str, str]) -> CommitReport:
        key = data["key"]
        cached = key in seen or not proved.get(key)
        seen.add(key)
        return CommitReport(Commit(data["sha"], data["tree"], data["subject"]), key, cached, reports[key])

    base = entry(first["base"])
    series = [entry(c) for c in first["commits"]]
    reference = entry(first["same_as"]) if first["same_as"] else None
    return SeriesResult(base, series, reference, seconds, sum(len(s) for s in proved.values()))


def run(plan: SeriesPlan, progress: Progress) -> SeriesResult:
    started = time.perf_counter()
    doc = collect(plan, progress)
    return finish([doc], round(time.perf_counter() - started, 3))
