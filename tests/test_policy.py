"""Policies: parsing, the errors a policy author will make, and each rule of the proposed 2020 policy
kept by the bundled subject and broken by a seeded variant of it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from verifier.cli.main import main
from verifier.proof.config import BUNDLED_CONTRACTS, ProveConfig
from verifier.proof.run import Report, prove, replay_counterexample
from verifier.spec.policy import bind_roles, parse_policy, select_rules
from verifier.spec.slots import slot_by_name
from verifier.util.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
ASM = ROOT / "asm"
POLICY = ROOT / "proofs" / "policies" / "proposed-2020.policy"


def test_proposed_policy_parses_with_both_readings_of_r4() -> None:
    policy = parse_policy(POLICY)
    assert policy.name == "proposed-2020"
    assert {r.id.split("-")[0] for r in policy.rules} == {"R1", "R2", "R3", "R4", "R5"}
    default = [r.id for r in select_rules(policy, ())]
    assert "R4-resched" in default and "R4-resched-skip" not in default
    other = [r.id for r in select_rules(policy, ("R4-resched-skip",))]
    assert "R4-resched-skip" in other and "R4-resched" not in other


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.policy"
    path.write_text(text)
    return path


HEADER = 'policy "t"\nrole h {\n    bundled: "do_el0_sync"\n}\n'


@pytest.mark.parametrize(
    ("body", "message", "line", "col"),
    [
        ('rule R1 "x"\n    when sync frm el0\n', "unexpected", 6, 15),
        ('rule R1 "x"\n    when sync from el0\n    at call nobody\n    require D == 0\n',
         "unknown role 'nobody'", 7, 13),
        ('rule R1 "x"\n    when sync from el0\n    at call h\n    require D == == 0\n', "syntax error", 8, 18),
        ('rule R1 "x"\n    when sync from el0\n    at call h\n    require called.nobody\n',
         "unknown role 'nobody' in called.nobody", 8, 13),
        ('rule R1 "x"\n    when sync from el0\n    at enter\n    require D == 0\n', "`at enter` needs a role", 5, 6),
        ('rule R1 "x"\n    when sync from el0\n    at enter nobody\n    require D == 0\n',
         "unknown role 'nobody'", 7, 14),
    ],
    ids=["syntax", "unknown-role", "predicate-syntax", "unknown-called-role", "enter-without-role",
         "enter-unknown-role"],
)
def test_policy_errors_have_file_line_col(tmp_path: Path, body: str, message: str, line: int, col: int) -> None:
    path = write(tmp_path, HEADER + body)
    with pytest.raises(UserError) as info:
        parse_policy(path)
    err = info.value
    assert message in err.message
    assert (err.file, err.line, err.col) == (str(path), line, col)


def test_pattern_matching_nothing_lists_near_names(tmp_path: Path) -> None:
    # a role none of whose names this tree has is unbound: its rules are UNKNOWN with this reason (the binding
    # that matched nothing, and near names), the other rules are judged
    path = write(tmp_path, 'policy "t"\nrole h {\n    bundled: "do_el0_snyc"\n}\n')
    policy = parse_policy(path)
    bound = bind_roles(policy, "bundled", "", {"do_el0_sync", "do_el1_sync", "handle_irq"})
    assert re.search(r"policy:3\): 'do_el0_snyc' matches no function.*near names: do_el0_sync", bound.unbound["h"])
    # a name the tree lacks beside one it has is left out, and said
    path = write(tmp_path, 'policy "t"\nrole h {\n    bundled: "do_el0_snyc|do_el1_sync"\n}\n')
    bound = bind_roles(parse_policy(path), "bundled", "", {"do_el0_sync", "do_el1_sync"})
    assert not bound.unbound and bound.left_out == {"h": ["do_el0_snyc"]}
    assert bound.patterns["h"].pattern == "do_el1_sync"


GUARDED = 'policy "t"\nrole resched if CONFIG_PREEMPTION {\n    linux: "preempt_schedule_irq"\n}\n'


def test_a_role_its_option_compiled_out_is_vacuous(tmp_path: Path) -> None:
    policy = parse_policy(write(tmp_path, GUARDED))
    assert policy.roles["resched"].option == "CONFIG_PREEMPTION"
    bound = bind_roles(policy, "linux", "6.1.1", {"el1_interrupt"}, frozenset({"CONFIG_SMP"}))
    assert bound.vacuous == {"resched": "CONFIG_PREEMPTION is not set"}
    assert bound.patterns["resched"].fullmatch("preempt_schedule_irq") is None
    # the same build with the option: matching nothing leaves the role unbound, and says the option is set
    unbound = bind_roles(policy, "linux", "6.1.1", {"el1_interrupt"}, frozenset({"CONFIG_PREEMPTION"})).unbound
    assert re.search(r"matches no function.*CONFIG_PREEMPTION is set in this build", unbound["resched"])
    # no configuration to ask (a bundled subject): unbound too
    assert "matches no function" in bind_roles(policy, "linux", "6.1.1", {"el1_interrupt"}, None).unbound["resched"]
    # found although the option is off: bound as usual, not vacuous
    bound = bind_roles(policy, "linux", "6.1.1", {"preempt_schedule_irq"}, frozenset())
    assert not bound.vacuous and bound.patterns["resched"].pattern == "preempt_schedule_irq"


def test_a_role_without_an_option_is_never_vacuous(tmp_path: Path) -> None:
    policy = parse_policy(write(tmp_path, GUARDED.replace(" if CONFIG_PREEMPTION", "")))
    bound = bind_roles(policy, "linux", "6.1.1", {"el1_interrupt"}, frozenset())
    assert not bound.vacuous and "matches no function" in bound.unbound["resched"]


ROLE_BY_RANGE = """policy "t"
role h {
    linux < 6.2:         "old_handler"
    linux >= 6.2, < 7.0: "mid_handler"
    linux-7.3:           "new_handler"
    bundled:             "do_el0_sync"
}
"""
FUNCTIONS = {"old_handler", "mid_handler", "new_handler", "do_el0_sync"}


@pytest.mark.parametrize(("family", "version", "pattern"), [
    ("linux", "5.10.223", "old_handler"), ("linux", "6.1.192", "old_handler"), ("linux", "6.2.0", "mid_handler"),
    ("linux", "6.12.117", "mid_handler"), ("linux", "7.3.4", "new_handler"), ("bundled", "", "do_el0_sync"),
])
def test_role_binding_is_chosen_by_version_range(tmp_path: Path, family: str, version: str, pattern: str) -> None:
    policy = parse_policy(write(tmp_path, ROLE_BY_RANGE))
    assert bind_roles(policy, family, version, FUNCTIONS).patterns["h"].pattern == pattern


def test_a_version_no_binding_covers_leaves_the_role_unbound_naming_the_ranges(tmp_path: Path) -> None:
    policy = parse_policy(write(tmp_path, ROLE_BY_RANGE))
    bound = bind_roles(policy, "linux", "7.2.1", FUNCTIONS)
    assert re.fullmatch(r"role 'h' has no binding for linux 7\.2\.1 \(has: linux < 6\.2; linux >= 6\.2, < 7\.0; "
                        r"linux == 7\.3; bundled\)", bound.unbound["h"])


def test_overlapping_bindings_are_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, 'policy "t"\nrole h {\n    linux >= 6.0: "a"\n    linux < 6.5: "b"\n}\n')
    both = r"bindings 'linux >= 6\.0' \(line 3\) and 'linux < 6\.5' \(line 4\) both apply"
    with pytest.raises(UserError, match=both):
        bind_roles(parse_policy(path), "linux", "6.1.0", {"a", "b"})


def test_a_malformed_version_range_is_a_syntax_error(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        parse_policy(write(tmp_path, 'policy "t"\nrole h {\n    linux >= six: "a"\n}\n'))


def test_unknown_field_in_a_predicate_is_reported_where_it_is(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    rule = 'rule R1 "x"\n    when sync from el0\n    at call h\n    require now.mdscr.XX == 0\n'
    path = write(tmp_path, HEADER + rule)
    status = main(["prove", str(ASM / "entry-ok.s"), "--vector", "el0_64_sync", "--policy", str(path)])
    assert status == 2
    err = capsys.readouterr().err
    assert f"{path}:8:" in err and "now.mdscr.XX" in err and "Traceback" not in err


# ------------------------------------------------------------------------- rules on the bundled subjects


def run(path: Path, *vectors: str) -> Report:

    config = ProveConfig(files=[path], contracts=BUNDLED_CONTRACTS, policy=POLICY)
    if vectors:
        config.slots = tuple(slot_by_name(v) for v in vectors)
    return prove(config)


def verdicts(report: Report) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for r in report.results:
        out.setdefault((r.rule or r.property, r.vector), set()).add(r.verdict)
    return out


def variant(tmp_path: Path, old: str, new: str) -> Path:
    for name in ("entry-ok.s", "entry-common.inc"):
        shutil.copy(ASM / name, tmp_path / name)
    include = tmp_path / "entry-common.inc"
    text = include.read_text()
    assert old in text, old
    include.write_text(text.replace(old, new, 1))
    return tmp_path / "entry-ok.s"


def test_bundled_subject_keeps_the_whole_policy() -> None:
    report = run(ASM / "entry-ok.s")
    assert {r.verdict for r in report.results} == {"PROVED"}
    assert {r.property for r in report.results if r.policy} == {"R1", "R2", "R3", "R4", "R5"}
    assert all(r.policy == "proposed-2020" for r in report.results if r.property.startswith("R"))


SUBJECTS = [("R1", "el0_64_sync"), ("R2", "el0_64_sync"), ("R3", "el1h_sync"), ("R4-handler", "el1h_irq"),
            ("R5", "el1h_sync")]


@pytest.mark.parametrize(("rule", "vector"), SUBJECTS, ids=[s[0] for s in SUBJECTS])
def test_each_rule_has_a_violating_subject_that_is_caught(rule: str, vector: str) -> None:
    """asm/policy/rN-bad.s breaks rule N in one place (asm/entry-ok.s keeps them all)."""
    subject = ASM / "policy" / f"{rule.split('-')[0].lower()}-bad.s"
    report = run(subject, vector)
    got = verdicts(report)
    assert "VIOLATED" in got[(rule, vector)], got
    violation = next(r for r in report.results if r.verdict == "VIOLATED" and r.rule == rule)
    assert violation.property == rule.split("-")[0] and violation.policy == "proposed-2020"
    assert replay_counterexample(violation.counterexample) is not None
    # the same slot of the conforming subject keeps the rule
    assert got != verdicts(run(ASM / "entry-ok.s", vector))
    assert verdicts(run(ASM / "entry-ok.s", vector))[(rule, vector)] == {"PROVED"}


def test_behaviour_preserving_edit_changes_no_policy_verdict(tmp_path: Path) -> None:
    base = verdicts(run(ASM / "entry-ok.s", "el1h_irq", "el0_64_sync"))
    edited = verdicts(run(variant(tmp_path, "\t.endif\n\tmov\tx0, sp\n\tbl\thandle_irq\n",
                                  "\t.endif\n\tisb\n\tmov\tx0, sp\n\tbl\thandle_irq\n"), "el1h_irq", "el0_64_sync"))
    assert edited == base


def test_a_role_this_tree_cannot_bind_leaves_every_other_rule_judged(tmp_path: Path) -> None:
    # the proposed policy on the bundled subject, its user handlers named as a tree without them would name
    # them: R2's results are UNKNOWN with why; every other rule and obligation keeps its verdict
    from verifier.cli.main import main

    policy = ROOT / "proofs" / "policies" / "proposed-2020.policy"
    text = policy.read_text()
    old = '    bundled:      "do_debug_exception"\n}\n\n# the debug handlers'
    assert old in text
    renamed = tmp_path / "renamed.policy"
    renamed.write_text(text.replace(old, '    bundled:      "do_el0_dbg"\n}\n\n# the debug handlers', 1))

    def verdicts(path: Path) -> tuple[int, dict[tuple[str, str | None, str], tuple[str, str]]]:
        out = tmp_path / f"{path.stem}.json"
        status = main(["prove", str(ROOT / "asm" / "entry-ok.s"), "--policy", str(path), "--format", "json",
                       "-o", str(out)])
        data = json.loads(out.read_text())
        return status, {(r["property"], r.get("rule"), r["vector"]): (r["verdict"], r.get("reason") or "")
                        for r in data["results"]}

    status, pristine = verdicts(policy)
    unbound_status, unbound = verdicts(renamed)
    assert status in (0, 4) and unbound_status == 3
    changed = {key for key in pristine if pristine[key][0] != unbound[key][0]}
    assert changed and {rule for _, rule, _ in changed} == {"R2"}
    assert all(unbound[key][0] == "UNKNOWN" and "'do_el0_dbg' matches no function" in unbound[key][1]
               for key in changed)
