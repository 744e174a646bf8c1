"""From an explored slot to verdicts: per obligation and exception class, PROVED, VIOLATED (with a
counterexample that a concrete replay confirms), WAIVED or UNKNOWN (with why)."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import z3

from verifier.engine.explore import ExploreRun, Options
from verifier.spec.hypotheses import Hypothesis
from verifier.spec.obligations import OBLIGATIONS
from verifier.spec.reach import ALL, Reached
from verifier.spec.slots import Initial, Slot
from verifier.spec.waivers import Waiver, ran

ALL_ECS = tuple(range(64))

EC_NAMES = {
    0x00: "UNKNOWN", 0x01: "WFx", 0x07: "FP_ASIMD", 0x0E: "ILL", 0x11: "SVC32", 0x15: "SVC64", 0x18: "SYS64",
    0x19: "SVE", 0x1C: "FPAC", 0x20: "IABT_LOW", 0x21: "IABT_CUR", 0x22: "PC_ALIGN", 0x24: "DABT_LOW",
    0x25: "DABT_CUR", 0x26: "SP_ALIGN", 0x28: "FP_EXC32", 0x2C: "FP_EXC64", 0x2F: "SERROR", 0x30: "BREAKPT_LOW",
    0x31: "BREAKPT_CUR", 0x32: "SOFTSTP_LOW", 0x33: "SOFTSTP_CUR", 0x34: "WATCHPT_LOW", 0x35: "WATCHPT_CUR",
    0x38: "BKPT32", 0x3C: "BRK64", 0x0D: "BTI", 0x27: "MOPS", 0x1D: "SME",
}


@dataclass
class Result:
    property: str
    vector: str
    ec: list[int]
    verdict: str  # PROVED VIOLATED WAIVED UNKNOWN
    reason: str
    counterexample: dict[str, Any] | None = None
    contracts: list[str] = field(default_factory=list)
    policy: str | None = None
    rule: str | None = None  # a policy rule's full id (R4-handler) where `property` is its family (R4)
    location: tuple[str, int] | None = None  # where to report a violation (file, line)
    # the summarised calls and callbacks (by name) on the paths reaching this verdict: for a PROVED one, the
    # paths of its exception classes; for a VIOLATED or WAIVED one, its counterexample's path
    rests_on: list[str] = field(default_factory=list)
    # what of that is not checked (filled in once the contracts are checked): empty exactly when closed
    pending: list[Hypothesis] = field(default_factory=list)

    @builtins.property  # the field `property` hides the builtin in the class body
    def closed(self) -> bool:
        """A PROVED or WAIVED verdict that rests on nothing unchecked."""
        return self.verdict in ("PROVED", "WAIVED") and not self.pending

    @builtins.property
    def status(self) -> str:
        """The consolidated status: the verdict, `under hypotheses` where it rests on pending ones."""
        if self.pending and self.verdict in ("PROVED", "WAIVED", "VIOLATED"):
            return f"{self.verdict} under hypotheses"
        return self.verdict

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"property": self.property, "vector": self.vector, "ec": self.ec,
                               "verdict": self.verdict, "reason": self.reason,
                               "pending": [h.json() for h in self.pending], "rests_on": self.rests_on}
        if self.policy:
            out["policy"] = self.policy
            out["rule"] = self.rule
        if self.contracts:
            out["contracts"] = self.contracts
        if self.counterexample is not None:
            out["counterexample"] = self.counterexample
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        return cls(data["property"], data["vector"], list(data["ec"]), data["verdict"], data["reason"],
                   data.get("counterexample"), list(data.get("contracts", [])), data.get("policy"), data.get("rule"),
                   rests_on=list(data.get("rests_on", [])),
                   pending=[Hypothesis.from_json(h) for h in data.get("pending", [])])


def ec_label(ec: int) -> str:
    return f"{ec:#04x}" + (f" ({EC_NAMES[ec]})" if ec in EC_NAMES else "")


# Solves the violation again under extra constraints (a model, or None): an independent confirmation
# asks for a counterexample whose memory regions lie apart.
Resolve = Callable[[list[z3.BoolRef]], z3.ModelRef | None]
# Replays a model: returns the counterexample dict (trace, failing step, functions run; "unicorn": what an
# independent engine made of it) or None when the replay did not reproduce the violation.
Replayer = Callable[[z3.ModelRef, str, Resolve], dict[str, Any] | None]


@dataclass(frozen=True)
class Exploration:
    """A slot's exploration, as the judge reads it: the slot, the run, the facts its start was explored under,
    its initial values, and the exception classes it was restricted to (empty: all)."""

    slot: Slot
    run: ExploreRun
    facts: list[z3.BoolRef]
    initial: Initial
    classes: tuple[int, ...] = ()


class Judge:
    def __init__(self, explored: Exploration, waivers: list[Waiver], replay: Replayer, options: Options | None = None,
                 rules: dict[str, tuple[tuple[int, ...], str]] | None = None) -> None:
        """`options`: each solver check's limits; `rules`: the policy rules to judge ("rule:ID" -> their scope)."""
        options = options or Options()
        self.slot, self.run, self.initial, self.facts = explored.slot, explored.run, explored.initial, explored.facts
        self.waivers, self.replay = waivers, replay
        self.timeout_ms, self.rlimit = options.solver_timeout_ms, options.solver_rlimit
        self.ec = z3.Extract(31, 26, explored.initial.esr)
        # policy rules: internal property "rule:ID" -> (the exception classes it covers, its label)
        self.rules = rules or {}
        self.classes = explored.classes  # only these exception classes are judged (empty: all)
        self._reaching: dict[str, list[int] | str] | None = None

    def _check(self, *formulas: z3.BoolRef) -> tuple[z3.CheckSatResult, z3.ModelRef | None]:
        # A fresh solver per question: after push() Z3 answers with its incremental core, which skips the
        # bit-vector preprocessing; the eret-site formulas (large, few questions each) then take 10-50x longer
        # (7.3 el0_64_sync ss-restored: over 60M resource units incrementally, 1.7 s fresh).
        solver = z3.Solver()
        solver.set("timeout", self.timeout_ms)
        solver.set("rlimit", self.rlimit)
        solver.add(*self.facts, *formulas)
        result = solver.check()
        return result, solver.model() if result == z3.sat else None

    def _not_in(self, ecs: set[int]) -> z3.BoolRef:
        return z3.And([self.ec != e for e in sorted(ecs)]) if ecs else z3.BoolVal(True)

    def judge(self) -> list[Result]:
        results: list[Result] = []
        for prop in OBLIGATIONS:
            results.extend(self._obligation(prop))
        for prop in self.rules:
            results.extend(self._obligation(prop))
        out: list[Result] = []
        for result in results:
            out.extend(self._by_what_it_rests_on(result))
        return out

    def _by_what_it_rests_on(self, result: Result) -> list[Result]:
        """The result with the summarised calls and callbacks its paths used (`rests_on`): its
        counterexample's path; for a PROVED verdict every path of its exception classes, split into one
        result per set of them, so that a contract found false later demotes only the classes that used it."""
        if result.verdict == "UNKNOWN":
            return [result]  # an UNKNOWN supports nothing: it rests on nothing either
        if result.counterexample is not None:
            result.rests_on = sorted(result.counterexample.get("rests_on", []))
            return [result]
        if not self.slot.synchronous or not result.ec or result.verdict != "PROVED":
            result.rests_on = sorted(self.run.applied_at)
            return [result]
        reaching = self._reaching_classes()
        groups: dict[tuple[str, ...], list[int]] = {}
        for ec in result.ec:
            names = tuple(sorted(name for name, ecs in reaching.items() if ecs == ALL or ec in ecs))
            groups.setdefault(names, []).append(ec)
        return [replace(result, ec=ecs, rests_on=list(names)) for names, ecs in sorted(groups.items(),
                                                                                      key=lambda g: g[1][0])]

    def _reaching_classes(self) -> dict[str, list[int] | str]:
        """Per summarised call and callback, the exception classes whose paths may have used it
        (over-approximated: a class is left out only where fixing ESR_EL1.EC to it makes every guard it
        was applied under false)."""
        if self._reaching is None:
            reached = Reached(lambda _: None)
            reached.entries = self.run.applied_at
            self._reaching = reached.classes(self.initial.esr, self.classes)
        return self._reaching

    def _violation(self, prop: str, waived_functions: tuple[str, ...] = ()) -> list[z3.BoolRef]:
        """The violation of `prop`, one formula per eret site: a violation is a model of any of them. Asked one
        by one, each query carries one site's path condition instead of the disjunction of all of them."""
        parts = []
        for eret in self.run.erets:
            formula = eret.violations[prop]
            for function in waived_functions:
                formula = z3.And(formula, z3.Not(eret.conditions.get(ran(function), z3.BoolVal(False))))
            if not z3.is_false(formula):
                parts.append(formula)
        return parts

    def _check_any(self, parts: list[z3.BoolRef], *extra: z3.BoolRef
                   ) -> tuple[z3.CheckSatResult, z3.ModelRef | None]:
        """sat with a model if some part is satisfiable (with `extra`), unknown if none is and the solver gave
        up on one, unsat otherwise."""
        gave_up = False
        for part in parts:
            status, model = self._check(part, *extra)
            if model is not None:
                return status, model
            gave_up = gave_up or status == z3.unknown
        return (z3.unknown if gave_up else z3.unsat), None

    def _contracts(self) -> list[str]:
        return sorted({c for eret in self.run.erets for c in eret.summaries})

    def _obligation(self, prop: str) -> list[Result]:
        vector = self.slot.name
        violation = self._violation(prop)
        results: list[Result] = []
        ecs = (self.rules[prop][0] if prop in self.rules else ALL_ECS) if self.slot.synchronous else ()
        if self.classes and ecs:
            ecs = tuple(ec for ec in ecs if ec in self.classes)
            if not ecs:
                return []
        violating, timed_out = self._classes(violation, set(ecs)) if ecs else self._whole(violation)
        if timed_out:
            results.append(Result(prop, vector, sorted(set(ecs) - violating), "UNKNOWN",
                                  "solver limit reached looking for a violation"))
        # one counterexample per failure site: the classes that fail at the same instruction share it
        left = set(violating)
        while left:
            ec = min(left) if ecs else None
            scope = self.ec == ec if ec is not None else z3.BoolVal(True)
            status, model = self._check_any(violation, scope)
            if model is None:
                results.append(Result(prop, vector, [ec] if ec is not None else [], "UNKNOWN",
                                      "solver limit reached building a counterexample"))
                left.discard(ec)
                continue
            result = self._violated(prop, model, ec)
            group = {ec} if ec is not None else set()
            site = (result.counterexample or {}).get("failing", {}).get("address")
            if ec is not None and site is not None and result.verdict != "UNKNOWN":
                at_site = self._at_site(prop, site)
                same, _ = self._classes(at_site, left - {ec})
                group |= same
                if result.verdict == "WAIVED":
                    group = {e for e in group if self._waived_class(prop, result, e)}
            result.ec = sorted(group)
            results.append(result)
            left -= group if group else left
            if ec is None:
                break
        if timed_out:
            return results
        # paths that were not fully explored: UNKNOWN, never PROVED
        unknown_ecs: set[int] = set()
        for event in self.run.unknowns:
            if ecs:
                found, _ = self._classes([event.cond], set(ecs) - violating - unknown_ecs)
                if found:
                    results.append(Result(prop, vector, sorted(found), "UNKNOWN", event.reason))
                    unknown_ecs |= found
            else:
                status, _ = self._check(event.cond)
                if status != z3.unsat:
                    results.append(Result(prop, vector, [], "UNKNOWN", event.reason))
                    return results
        if not ecs and violating:
            return results
        proved = sorted(set(ecs) - violating - unknown_ecs)
        if ecs and not proved:
            return results
        # distinct addresses, not path ends: how far paths were merged must not change the verdict's text
        erets = len({check.address for check in self.run.erets})
        fatals = len({fatal.address for fatal in self.run.fatals})
        reason = f"all paths ({erets} eret sites reached, {fatals} fatal ends)"
        results.append(Result(prop, vector, proved, "PROVED", reason, contracts=self._contracts()))
        return results

    def _classes(self, parts: list[z3.BoolRef], candidates: set[int]) -> tuple[set[int], bool]:
        """The exception classes among `candidates` for which some part is satisfiable; and whether the
        solver gave up on one (then the classes not found are not known to be safe)."""
        found: set[int] = set()
        gave_up = False
        for part in parts:
            while candidates - found:
                allowed = z3.Or([self.ec == e for e in sorted(candidates - found)])
                status, model = self._check(part, allowed)
                if model is None:
                    gave_up = gave_up or status == z3.unknown
                    break
                found.add(model.eval(self.ec, model_completion=True).as_long())
        return found, gave_up

    def _whole(self, parts: list[z3.BoolRef]) -> tuple[set[int], bool]:
        status, _ = self._check_any(parts)
        return ({-1} if status == z3.sat else set()), status == z3.unknown

    def _at_site(self, prop: str, site: int) -> list[z3.BoolRef]:
        """The violation restricted to one failing instruction, per eret site."""
        parts = []
        for eret in self.run.erets:
            events = [e.cond for e in eret.events.get(prop, []) if e.address == site]
            if prop in eret.events:
                if events:
                    parts.append(z3.And(eret.guard, z3.Or(events)))
            elif eret.address == site:
                parts.append(eret.violations[prop])
        return parts

    def _waived_class(self, prop: str, result: Result, ec: int) -> bool:
        functions = (result.counterexample or {}).get("functions", [])
        label = self.rules[prop][1] if prop in self.rules else prop
        waived = tuple(w.function for w in self.waivers
                       if w.matches(label, self.slot.name, functions)
                       or w.matches(prop.removeprefix("rule:"), self.slot.name, functions))
        status, _ = self._check_any(self._violation(prop, waived), self.ec == ec)
        return status == z3.unsat

    def _violated(self, prop: str, model: z3.ModelRef, ec: int | None) -> Result:
        vector = self.slot.name
        ecs = [ec] if ec is not None else []
        scope = self.ec == ec if ec is not None else z3.BoolVal(True)

        def resolve(extra: list[z3.BoolRef]) -> z3.ModelRef | None:
            return self._check_any(self._violation(prop), scope, *extra)[1]

        cex = self.replay(model, prop, resolve)
        if cex is None:
            return Result(prop, vector, ecs, "UNKNOWN",
                          "a violation was found but its concrete replay did not reproduce it (engine limit)")
        refused = _refused(cex)
        if refused:
            return Result(prop, vector, ecs, "UNKNOWN", refused)
        functions = cex.get("functions", [])
        label = self.rules[prop][1] if prop in self.rules else prop
        for waiver in self.waivers:
            rule_id = prop.removeprefix("rule:")
            if waiver.matches(label, vector, functions) or waiver.matches(rule_id, vector, functions):
                # is every violation of this class through the waived function?
                rest = self._violation(prop, (waiver.function,))
                scope = self.ec == ec if ec is not None else z3.BoolVal(True)
                status, other = self._check_any(rest, scope)
                if status == z3.unsat:
                    return Result(prop, vector, ecs, "WAIVED", f"{waiver.reason} (waiver {waiver.source})",
                                  cex, self._contracts(), location=_location(cex))
                if other is not None:
                    other_cex = self.replay(other, prop, resolve)
                    if other_cex is not None and not _refused(other_cex):
                        cex = other_cex
                break
        reason = cex.get("failing", {}).get("what", "violated")
        return Result(prop, vector, ecs, "VIOLATED", reason, cex, self._contracts(), location=_location(cex))


def _refused(cex: dict[str, Any]) -> str | None:
    """Why a counterexample is not a violation: an independent engine did not reproduce it."""
    unicorn = cex.get("unicorn")
    if unicorn is None or unicorn.get("reproduced"):
        return None
    return f"a violation was found but Unicorn did not reproduce it from the objects: {unicorn.get('why')}"


def _location(cex: dict[str, Any]) -> tuple[str, int] | None:
    failing = cex.get("failing", {})
    if failing.get("file") and failing.get("line"):
        return failing["file"], failing["line"]
    return None
