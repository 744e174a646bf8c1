"""A policy's rules compiled for one vector slot, and the observer that checks them on every path.

A rule looks at one kind of event (a call of a role's function, a DAIF or MDSCR_EL1 change, the eret, or
`every` DAIF change and call) and requires its predicate there, for the exception classes it covers. The
observer records where a requirement fails and, for predicates that ask `called.ROLE`, which roles' functions
the path has called so far (a rule at a call sees the calls before it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

import z3
from typing_extensions import override

from verifier.engine.image import CodeRef
from verifier.engine.observer import Event, EventLog, Findings, Observer, Path, merge_condition
from verifier.semantics import names
from verifier.semantics.state import MDSCR, State, concrete_state
from verifier.spec.code_functions import CodeFunctions
from verifier.spec.constraints import ConstraintError, Context, Value, evaluate, parse_constraint
from verifier.spec.masking import MDSCR_KDE, MDSCR_SS
from verifier.spec.policy import Policy, Rule, family_of
from verifier.spec.priority import PriorityFacts, PriorityMasking, masking_for
from verifier.util.errors import UserError

_DAIF_BITS = {"D": 3, "A": 2, "I": 1, "F": 0}
_MDSCR_BITS = {"SS": MDSCR_SS, "KDE": MDSCR_KDE, "MDE": 15}

# The predicate of a rule at an event: over the state there and the roles called so far.
Predicate = Callable[[State, dict[str, z3.BoolRef]], z3.BoolRef]


@dataclass(frozen=True)
class PolicyRule:
    """A policy rule compiled for one slot: where it looks and what it requires there."""

    id: str
    event: str  # call enter daif mdscr eret every
    role: re.Pattern[str] | None
    scope: z3.BoolRef  # the exception classes it covers (a condition on ESR_EL1)
    predicate: Predicate

    @property
    def key(self) -> str:
        """The rule's property id in the slot's results (`rule:R4-handler`)."""
        return f"rule:{self.id}"


def rule_scope(rule: Rule, esr: z3.BitVecRef) -> z3.BoolRef:
    """The exception classes a rule covers, as a condition on ESR_EL1."""
    if rule.ecs is None:
        return z3.BoolVal(True)
    ec = z3.Extract(31, 26, esr)
    inside = z3.Or([ec == e for e in rule.ecs])
    return z3.Not(inside) if rule.ec_negated else inside


def _predicate(rule: Rule, context: Context, priority: PriorityMasking) -> Predicate:
    tree = parse_constraint(rule.require)

    def predicate(state: State, called: dict[str, z3.BoolRef]) -> z3.BoolRef:
        def lookup(name: str) -> Value | None:
            if name in _DAIF_BITS:
                bit = _DAIF_BITS[name]
                return z3.Extract(bit, bit, state.daif)
            if name in ("pmr", "now.pmr"):
                return priority.pmr(state)
            if name == "irqs_on":
                return priority.irqs_enabled(state)
            if name == "prio_masking":
                return priority.in_use
            if name == "now.mdscr":
                return state.read_sysreg(MDSCR)
            if name.startswith("now.mdscr."):
                field_name = name.split(".", 2)[2]
                if field_name not in _MDSCR_BITS:
                    raise ConstraintError(f"unknown field '{name}' (known: now.mdscr.SS, .KDE, .MDE)")
                bit = _MDSCR_BITS[field_name]
                return z3.Extract(bit, bit, state.read_sysreg(MDSCR))
            if name.startswith("percpu."):
                return state.memory.load(names.percpu_region(name[7:]), 0, 8)
            if name.startswith("called."):
                return called.get(name[7:], z3.BoolVal(False))
            return None

        ctx = Context(context.values, context.tif_bits, context.from_el0, context.caps, lookup)
        try:
            return evaluate(tree, ctx)
        except ConstraintError as err:
            where = rule.require_where
            raise UserError(f"rule {rule.id}: {err}", where.file, where.line, where.col) from None

    return predicate


class PolicyCheck(Observer):
    """The policy's rules on one path: where each fails, and which roles' functions were called."""

    def __init__(self, rules: tuple[PolicyRule, ...], roles: dict[str, re.Pattern[str]],
                 functions: CodeFunctions | None = None) -> None:
        self.rules = rules
        self.roles = roles
        self.functions = functions  # what `at enter` asks: the functions an instruction is in
        self.entering = tuple(rule for rule in rules if rule.event == "enter")
        self.failures: dict[str, EventLog] = {}  # rule key -> where it fails
        self.called: dict[str, z3.BoolRef] = {}  # role -> "a function of it was called"
        self.inside: frozenset[str] = frozenset()  # the `at enter` rules whose function the previous instruction was in

    def _with(self, failures: dict[str, EventLog], called: dict[str, z3.BoolRef], inside: frozenset[str]) -> Self:
        """The same rules on a path with these findings (a copy's, a merge's)."""
        other = type(self)(self.rules, self.roles, self.functions)
        other.failures, other.called, other.inside = failures, called, inside
        return other

    @override
    def copy(self) -> Self:
        return self._with({k: log.copy() for k, log in self.failures.items()}, dict(self.called), self.inside)

    @override
    def merge(self, guard: z3.BoolRef, state: State, other: Self, other_guard: z3.BoolRef,
              other_state: State) -> Self:
        failures = {}
        for key in set(self.failures) | set(other.failures):
            mine, theirs = self.failures.get(key, EventLog()), other.failures.get(key, EventLog())
            failures[key] = mine.merge(guard, theirs, other_guard)
        called = {role: merge_condition(guard, self.called.get(role), other_guard, other.called.get(role))
                  for role in set(self.called) | set(other.called)}
        # inside only if both were: an entry from either side is still seen
        return self._with(failures, called, self.inside & other.inside)

    def _check(self, rule: PolicyRule, path: Path, what: str) -> None:
        """Record where the rule's requirement fails at this event."""
        failing = z3.simplify(z3.And(rule.scope, z3.Not(rule.predicate(path.state, self.called))))
        if not z3.is_false(failing):
            self.failures.setdefault(rule.key, EventLog()).note(Event(path.pc, z3.And(path.guard, failing), what))

    def _event(self, path: Path, kind: str, name: str | None = None) -> None:
        """Each rule that watches this event records where its requirement fails."""
        for rule in self.rules:
            if rule.event != kind and not (rule.event == "every" and kind in ("daif", "call")):
                continue
            if rule.event == "call" and (name is None or rule.role is None or not rule.role.fullmatch(name)):
                continue
            where = f" at the call of {name}" if kind == "call" else f" at {kind}"
            self._check(rule, path, f"{rule.id} fails{where}")

    @override
    def on_step(self, path: Path, code: CodeRef) -> None:
        if not self.entering or self.functions is None:
            return
        names = self.functions.names(path.pc, code)
        now = set()
        for rule in self.entering:
            entered = next((n for n in names if rule.role is not None and rule.role.fullmatch(n)), None)
            if entered is None:
                continue
            now.add(rule.key)
            if rule.key not in self.inside:
                self._check(rule, path, f"{rule.id} fails on entering {entered}")
        self.inside = frozenset(now)

    @override
    def on_masking(self, path: Path, daif_changed: bool, mdscr_changed: bool) -> None:
        if daif_changed:
            self._event(path, "daif")
        if mdscr_changed:
            self._event(path, "mdscr")

    @override
    def on_call(self, path: Path, name: str | None) -> None:
        self._event(path, "call", name)
        if name is None:
            return
        for rule in self.entering:  # a function that is called, not inlined, is entered at its call
            if rule.role is not None and rule.role.fullmatch(name):
                self._check(rule, path, f"{rule.id} fails on entering {name}")
                self.inside |= {rule.key}  # its first instruction, if it is lifted, is not a second entry
        for role, pattern in self.roles.items():
            if pattern.fullmatch(name):
                self.called[role] = z3.simplify(z3.Or(self.called.get(role, z3.BoolVal(False)), path.guard))

    @override
    def at_eret(self, path: Path) -> Findings:
        self._event(path, "eret")
        return Findings(violations={rule.key: self.failures[rule.key].condition() if rule.key in self.failures
                                    else z3.BoolVal(False) for rule in self.rules},
                        events={key: log.events for key, log in self.failures.items()})


@dataclass(frozen=True)
class BoundPolicy:
    """A policy ready for one kernel: the rules in force (defaults or the readings asked for) and its roles
    bound to the function names of the lifted code."""

    policy: Policy
    selected: list[Rule]
    roles: dict[str, re.Pattern[str]]
    vacuous: dict[str, str] = field(default_factory=dict)  # role -> why this build has none of its functions
    unbound: dict[str, str] = field(default_factory=dict)  # role -> why it is not bound to this tree
    left_out: dict[str, list[str]] = field(default_factory=dict)  # role -> its names this tree does not have

    def unbound_rules(self) -> dict[str, str]:
        """Rule id -> why it cannot be judged on this tree: a role it names is not bound here."""
        return {rule.id: self.unbound[role] for rule in self.selected
                for role in (rule.role, *_called_roles(rule)) if role in self.unbound}

    def vacuous_rules(self) -> dict[str, str]:
        """Rule id -> why it holds vacuously: it is judged at the calls of a role this build compiled out."""
        return {rule.id: f"role '{rule.role}' has no function in this build ({self.vacuous[rule.role]})"
                for rule in self.selected if rule.event in ("call", "enter") and rule.role in self.vacuous}

    def slot_rules(self, source: str, kind: str, context: Context,
                   priority: PriorityMasking | None = None) -> tuple[PolicyRule, ...]:
        """The rules that apply to one slot, compiled over its initial values (`context`) and its view of
        priority masking (what `irqs_on`, `pmr` and `prio_masking` mean there)."""
        priority = priority or PriorityMasking.none()
        out = []
        for rule in self.selected:
            if not self.policy.applies(rule, source, kind):
                continue
            out.append(PolicyRule(rule.id, rule.event, self.roles.get(rule.role) if rule.role else None,
                                  rule_scope(rule, context.values["esr"]), _predicate(rule, context, priority)))
        return tuple(out)

    def scopes(self, source: str, kind: str) -> dict[str, tuple[tuple[int, ...], str]]:
        """Per rule that applies to the slot: its key -> (the exception classes it covers, its family)."""
        out = {}
        for rule in self.selected:
            if self.policy.applies(rule, source, kind):
                ecs = tuple(e for e in range(64) if rule.ecs is None or (e in rule.ecs) != rule.ec_negated)
                out[f"rule:{rule.id}"] = (ecs, family_of(rule.id))
        return out


class _AnyFlags(dict[str, int]):
    """Thread-flag bits before the build says them: every TIF_ name is taken (the build checks them)."""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __missing__(self, key: str) -> int:
        return 0


def check_rule_names(policy: Policy) -> None:
    """Every name each rule's `require` mentions exists (spsr.DD is an error here, before any proof; thread
    flags are the build's, checked when it is known). UserError at the rule's line and column."""
    bits = 64
    values = {name: z3.BitVec(f"check.{name}", bits) for name in ("spsr", "mdscr", "esr", "elr", "flags")}
    context = Context(values, _AnyFlags(), z3.Bool("check.from_el0"))
    priority = masking_for(PriorityFacts(), {})
    state = concrete_state()
    for rule in policy.rules:
        _predicate(rule, context, priority)(state, {})


def _called_roles(rule: Rule) -> list[str]:
    """The roles a rule's `require` mentions (`called.ROLE`)."""
    return re.findall(r"\bcalled\.(\w+)", rule.require)
