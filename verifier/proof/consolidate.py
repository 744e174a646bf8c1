"""Verdicts consolidated with the checks of what they rest on (Frama-C's consolidated statuses).

Each result names the summarised calls and callbacks its paths used (`Result.rests_on`). Here each of them
is looked up in the contract checks, transitively through the callees a check itself rested on, and what
was not checked becomes one of the result's pending hypotheses:
- a contract whose check is TRUSTED or UNKNOWN: the whole contract (a check that ended UNKNOWN supports
  nothing);
- a contract whose check is PROVED (every clause): its callees' hypotheses;
- a callback: what it writes at its sites, read from its code (proof/callback_derive.py), resting on the
  contracts of the calls that derivation summarised; else what the contracts file states, pending;
- a contract whose check is VIOLATED, anywhere in that closure: the result's PROVED or VIOLATED means
  nothing, so it becomes UNKNOWN with that reason; a result whose paths never used the contract keeps its
  verdict.
A result with no pending hypothesis is closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from verifier.engine.explore import CALLBACK
from verifier.proof.contract_run import ContractCheck
from verifier.spec.hypotheses import PATCH, WHOLE_CONTRACT, Hypothesis
from verifier.spec.verdicts import Result

CALLBACK_WHY = "what the boot-time callback writes at its alternative's site is stated in the contracts file, " \
               "not read from its code"


@dataclass
class Closure:
    """What one contract rests on, through the callees its check summarised in turn."""

    pending: set[Hypothesis] = field(default_factory=set)
    violated: dict[str, ContractCheck] = field(default_factory=dict)  # contracts in it that their code violates


class Consolidation:
    """The closures of the contracts a run checked (or trusted), computed once each."""

    def __init__(self, checks: list[ContractCheck]) -> None:
        self.checks = {check.function: check for check in checks}
        self.closures: dict[str, Closure] = {}

    def closure(self, name: str) -> Closure:
        """What `name` rests on: the local hypotheses of every contract its check reaches through the
        callees of PROVED checks (a graph walk, so recursion is counted once)."""
        if name in self.closures:
            return self.closures[name]
        out = Closure()
        seen: set[str] = set()
        todo = [name]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            todo.extend(self._local(current, out))
        self.closures[name] = out
        return out

    def _local(self, name: str, into: Closure) -> list[str]:
        """Add what `name` itself leaves pending or violated; the callees its PROVED check rests on."""
        check = self.checks.get(name)
        if name.startswith(CALLBACK):
            if check is not None and check.verdict == "PROVED":  # read from its code: rests on its callees
                return list(check.callees)
            why = f"{CALLBACK_WHY} ({check.reason})" if check is not None else CALLBACK_WHY
            into.pending.add(Hypothesis(name.removeprefix(CALLBACK), PATCH, why))
        elif check is None:
            into.pending.add(Hypothesis(name, WHOLE_CONTRACT, "not checked"))
        elif check.verdict == "VIOLATED":
            into.violated[name] = check
        elif check.verdict != "PROVED":
            how = "trusted" if check.verdict == "TRUSTED" else "its check ended UNKNOWN"
            into.pending.add(Hypothesis(name, WHOLE_CONTRACT, f"{how}: {check.reason}"))
        else:  # every clause checked: it rests on its own callees' contracts only
            return list(check.callees)
        return []

    def apply(self, result: Result) -> None:
        """The result's pending hypotheses; UNKNOWN where a contract its paths used is violated by its code."""
        pending: set[Hypothesis] = set()
        violated: dict[str, ContractCheck] = {}
        for name in result.rests_on:
            closure = self.closure(name)
            pending |= closure.pending
            violated.update(closure.violated)
        if violated and result.verdict in ("PROVED", "VIOLATED"):
            names = sorted(violated)
            was = result.verdict
            result.verdict = "UNKNOWN"
            result.reason = (f"rests on the contract of {', '.join(names)}, which its code violates "
                             f"({violated[names[0]].reason}); was {was}")
            result.pending = []
            return
        result.pending = sorted(pending) if result.verdict != "UNKNOWN" else []


def consolidate(results: list[Result], checks: list[ContractCheck]) -> None:
    """Every result's pending hypotheses from the checks (in place)."""
    consolidation = Consolidation(checks)
    for result in results:
        consolidation.apply(result)
