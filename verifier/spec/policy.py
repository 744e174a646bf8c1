"""Policies (grammar/policy.lark): rules about when D and I are unmasked relative to the handlers, per
class of exception, with function roles bound per kernel family. Parsed here, checked against the lifted
code, and compiled into rules the explorer evaluates at its events."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from verifier.spec.constraints import ConstraintError, check_syntax
from verifier.spec.versions import version_in
from verifier.util.errors import UserError
from verifier.util.grammars import as_token, as_tree, lalr_parser
from verifier.util.paths import GRAMMARS, shown

GRAMMAR = GRAMMARS / "policy.lark"
DEBUG_ECS = (0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x38, 0x3A, 0x3C)
EVENTS = ("call", "daif", "mdscr", "eret", "every")


@dataclass(frozen=True)
class Where:
    file: str
    line: int
    col: int


@dataclass(frozen=True)
class Binding:
    family: str  # "linux", "bundled"
    versions: str  # a version range (">= 6.2"), "" for every version of the family
    pattern: str  # regular expression over function names
    where: Where

    def applies(self, family: str, version: str) -> bool:
        return self.family == family and version_in(version, self.versions)

    def describe(self) -> str:
        return f"{self.family} {self.versions}".strip()


@dataclass
class Role:
    name: str
    bindings: list[Binding]
    where: Where
    option: str | None = None  # `if CONFIG_X`: the Kconfig option without which its functions are not built


@dataclass
class Rule:
    id: str
    title: str
    kind: str  # sync irq fiq serror any
    source: str  # el0 el1 any
    ecs: tuple[int, ...] | None  # None: every class
    ec_negated: bool
    event: str
    role: str | None
    require: str
    require_where: Where
    reading: str | None
    default: bool
    where: Where


@dataclass
class Assume:
    id: str
    text: str
    constraint: str
    where: Where


@dataclass
class Policy:
    name: str
    path: str
    rules: list[Rule] = field(default_factory=list)
    roles: dict[str, Role] = field(default_factory=dict)
    assumptions: list[Assume] = field(default_factory=list)

    def applies(self, rule: Rule, source: str, kind: str) -> bool:
        src = "el0" if source.startswith("el0") else "el1"
        return rule.source in ("any", src) and rule.kind in ("any", kind)


@cache
def _parser() -> Lark:
    return lalr_parser(GRAMMAR.name, propagate_positions=True)


def _where(path: str, token: Token | Tree) -> Where:
    meta = token if isinstance(token, Token) else token.meta
    return Where(path, getattr(meta, "line", 1) or 1, getattr(meta, "column", 1) or 1)


def _syntax_error(path: str, text: str, err: UnexpectedInput) -> UserError:
    line, col = getattr(err, "line", None), getattr(err, "column", None)
    if isinstance(err, UnexpectedToken):
        expected = ", ".join(sorted(e.strip('"').lower() for e in err.expected if not e.startswith("__")))[:200]
        message = f"unexpected '{err.token}'" + (f" (expected {expected})" if expected else "")
        if err.token.type == "$END":
            message = "unexpected end of file"
    elif isinstance(err, UnexpectedCharacters):
        assert err.pos_in_stream is not None  # lark sets it for UnexpectedCharacters
        message = f"unexpected character '{text[err.pos_in_stream]}'"
    elif isinstance(err, UnexpectedEOF):
        message = "unexpected end of file"
    else:
        message = str(err).splitlines()[0]
    source_line = text.splitlines()[line - 1] if line and line <= len(text.splitlines()) else None
    return UserError(message, path, line, col, source_line)


def _string(token: Token) -> str:
    return str(token)[1:-1]


def _constraint(token: Token) -> str:
    return str(token).replace("\\\n", " ").strip()


def _constraint_where(path: str, token: Token) -> Where:
    """Where the constraint's text starts (the token may begin with the blanks before it)."""
    text = str(token)
    return Where(path, token.line or 1, (token.column or 1) + len(text) - len(text.lstrip(" \t")))


def parse_policy(path: str | Path) -> Policy:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise UserError(f"cannot read policy: {err.strerror}", str(path)) from None
    name = str(path)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(name, text, err) from None
    header = as_tree(tree.children[0])
    policy = Policy(_string(as_token(header.children[0])), name)
    for child in tree.children[1:]:
        item = as_tree(child)
        if item.data == "assume":
            ident, label, constraint = map(as_token, item.children)
            policy.assumptions.append(Assume(str(ident), _string(label), _constraint(constraint),
                                             _constraint_where(name, constraint)))
        elif item.data == "role":
            ident = as_token(item.children[0])
            if str(ident) in policy.roles:
                raise UserError(f"role '{ident}' is defined twice", name, ident.line, ident.column)
            bindings: list[Binding] = []
            option = None
            rest = item.children[1:]
            if rest and getattr(rest[0], "data", None) == "role_option":
                option = str(as_tree(rest[0]).children[0])
                rest = rest[1:]
            for binding in rest:
                family, *versions, pattern = map(as_token, as_tree(binding).children)
                try:
                    re.compile(_string(pattern))
                except re.error as err:
                    raise UserError(f"bad function pattern: {err}", name, pattern.line, pattern.column) from None
                bindings.append(_binding(name, family, str(versions[0]) if versions else "", pattern))
            policy.roles[str(ident)] = Role(str(ident), bindings, _where(name, ident), option)
        else:
            policy.rules.append(_rule(name, item))
    _check(policy, text)
    return policy


def _rule(name: str, item: Tree) -> Rule:
    ident, title = map(as_token, item.children[:2])
    when, at, require, *rest = item.children[2:]
    kind, source = str(when.children[0]), str(when.children[1])
    ecs: tuple[int, ...] | None = None
    negated = False
    if len(when.children) > 2:
        spec = when.children[2].children
        if len(spec) == 1 and isinstance(spec[0], Token) and spec[0].type == "ECCLASS":
            ecs, negated = DEBUG_ECS, str(spec[0]) == "non-debug"
        else:
            ecs = tuple(int(str(n), 0) for n in spec)
    event = str(at.children[0])
    role = str(at.children[1]) if len(at.children) > 1 else None
    constraint = as_token(require.children[0])
    reading, default = None, False
    for extra in rest:
        if isinstance(extra, Tree) and extra.data == "reading":
            reading = _string(as_token(extra.children[0]))
        elif isinstance(extra, Token) and extra.type == "DEFAULT":
            default = True
    return Rule(str(ident), _string(title), kind, source, ecs, negated, event, role, _constraint(constraint),
                _constraint_where(name, constraint), reading, default, _where(name, ident))


def _check(policy: Policy, text: str) -> None:
    seen: set[str] = set()
    for rule in policy.rules:
        if rule.id in seen:
            raise UserError(f"rule '{rule.id}' is defined twice", policy.path, rule.where.line, rule.where.col)
        seen.add(rule.id)
        if rule.event in ("call", "enter"):
            if rule.role is None:
                raise UserError(f"`at {rule.event}` needs a role", policy.path, rule.where.line, rule.where.col)
            if rule.role not in policy.roles:
                near = difflib.get_close_matches(rule.role, list(policy.roles), n=3)
                hint = f" (did you mean {', '.join(near)}?)" if near else ""
                line, col = _find(text, rule.role, rule.where.line)
                raise UserError(f"unknown role '{rule.role}'{hint}", policy.path, line, col)
        elif rule.role is not None:
            line, col = _find(text, rule.role, rule.where.line)
            raise UserError(f"`at {rule.event}` takes no role", policy.path, line, col)
        for called in re.findall(r"\bcalled\.([A-Za-z_][\w-]*)", rule.require):
            if called not in policy.roles:
                line, col = _find(text, f"called.{called}", rule.require_where.line)
                raise UserError(f"unknown role '{called}' in called.{called}", policy.path, line, col)
        _syntax(policy.path, rule.require, rule.require_where)
    for assume in policy.assumptions:
        _syntax(policy.path, assume.constraint, assume.where)


def _find(text: str, needle: str, from_line: int) -> tuple[int, int]:
    lines = text.splitlines()
    for number in range(from_line, len(lines) + 1):
        col = lines[number - 1].find(needle)
        if col >= 0:
            return number, col + 1
    return from_line, 1


def _syntax(path: str, constraint: str, where: Where) -> None:
    try:
        check_syntax(constraint)
    except ConstraintError as err:
        raise UserError(str(err), path, where.line, where.col + (err.col or 1) - 1) from None


def _binding(file: str, family: Token, versions: str, pattern: Token) -> Binding:
    """A role binding; the older `linux-6.1:` spelling means `linux == 6.1`."""
    name = str(family)
    if "-" in name:
        if versions:
            raise UserError("a family with a version suffix takes no version range", file, family.line,
                            family.column)
        name, exact = name.split("-", 1)
        versions = f"== {exact}"
    return Binding(name, " ".join(versions.split()), _string(pattern), _where(file, family))


@dataclass(frozen=True)
class BoundRoles:
    patterns: dict[str, re.Pattern[str]]  # role -> its functions in the lifted code
    vacuous: dict[str, str]  # role -> why this build has none of its functions (its rules hold vacuously)
    # role -> why it could not be bound to this tree (no binding for its version, or none of its names in
    # the lifted code): its rules' results are UNKNOWN with the reason, every other rule is judged
    unbound: dict[str, str] = field(default_factory=dict)
    left_out: dict[str, list[str]] = field(default_factory=dict)  # role -> its names this tree does not have


NOTHING = re.compile(r"(?!)")


def bind_roles(policy: Policy, family: str, version: str, functions: set[str],
               enabled: frozenset[str] | None = None) -> BoundRoles:
    """Each role's pattern for this kernel family and version (at most one binding may apply), matched
    against the lifted code or the contracts. A name of the pattern this tree does not have is left out
    (said in `left_out`); a role none of whose names the tree has, or with no binding for its version, is
    unbound (its rules' results are UNKNOWN, with why and near names), unless the role is `if CONFIG_X` and
    the build's configuration (`enabled`: its options set to y or m; None when there is no configuration to
    ask) lacks CONFIG_X: then it is vacuous."""
    patterns: dict[str, re.Pattern[str]] = {}
    vacuous: dict[str, str] = {}
    unbound: dict[str, str] = {}
    left_out: dict[str, list[str]] = {}
    kernel = f"{family} {version}".strip()
    for role in policy.roles.values():
        applying = [b for b in role.bindings if b.applies(family, version)]
        if not applying:
            known = "; ".join(b.describe() for b in role.bindings) or "none"
            unbound[role.name] = f"role '{role.name}' has no binding for {kernel} (has: {known})"
            patterns[role.name] = NOTHING
            continue
        if len(applying) > 1:
            both = " and ".join(f"'{b.describe()}' (line {b.where.line})" for b in applying)
            raise UserError(f"role '{role.name}': bindings {both} both apply to {kernel}",
                            policy.path, role.where.line, role.where.col)
        pattern = applying[0].pattern
        compiled_out = role.option is not None and enabled is not None and role.option not in enabled
        found: list[str] = []
        missing: list[str] = []
        for alternative in pattern.split("|"):
            (found if any(re.fullmatch(alternative, f) for f in functions) else missing).append(alternative)
        if missing and found:
            left_out[role.name] = missing
        if not found and compiled_out:
            vacuous[role.name] = f"{role.option} is not set"
        elif not found:
            near = sorted({n for name in missing for n in difflib.get_close_matches(name, sorted(functions), n=4)})
            hint = f"; near names: {', '.join(near)}" if near else ""
            if role.option is not None and enabled is not None:
                hint += f"; {role.option} is set in this build"
            where = applying[0].where
            unbound[role.name] = (f"role '{role.name}' ({shown(policy.path)}:{where.line}): "
                                  f"'{'|'.join(missing)}' matches no function in the lifted code ({kernel}){hint}")
        patterns[role.name] = re.compile("|".join(found)) if found else NOTHING
    return BoundRoles(patterns, vacuous, unbound, left_out)


# ------------------------------------------------------------------------------ the rules in force

def select_rules(policy: Policy, readings: tuple[str, ...]) -> list[Rule]:
    """The rules in force: each group of alternative readings contributes its default, or the reading
    asked for by id."""
    known = {rule.id for rule in policy.rules}
    for wanted in readings:
        if wanted not in known:
            rules = ", ".join(sorted(known))
            raise UserError(f"--reading {wanted}: no such rule in policy {policy.name} (rules: {rules})")
    chosen: list[Rule] = []
    for rule in policy.rules:
        if rule.reading is None:
            chosen.append(rule)
            continue
        group = [r for r in policy.rules if r.reading is not None and (r.kind, r.source, r.event, r.role) ==
                 (rule.kind, rule.source, rule.event, rule.role)]
        picked = [r for r in group if r.id in readings]
        if (picked and rule in picked) or (not picked and rule.default):
            chosen.append(rule)
    return chosen


def family_of(rule_id: str) -> str:
    """R4-handler -> R4: results are reported under the rule of the policy they belong to."""
    return rule_id.split("-")[0]
