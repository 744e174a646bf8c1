"""Contracts checked against the code they summarise, on the bundled subject with a callee file of our own:
each guarantee of the default contract can be found false (and the verdicts that used it become UNKNOWN),
a counterexample's path replays, and a callee that keeps its contract (however it does so) is PROVED."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from verifier.cli.main import main
from verifier.proof.config import BUNDLED_CONTRACTS, ProveConfig
from verifier.proof.run import Report, prove
from verifier.spec.contract_derive import describe_relation
from verifier.spec.slots import slot_by_name

ASM = Path(__file__).resolve().parents[1] / "asm"

# entry-common.inc calls do_el0_sync with DAIF clear and do_debug_exception with D (and I) masked.
KEEPS = """
\t.text
\t.globl\tdo_el0_sync
do_el0_sync:
\tstp\tx29, x30, [sp, #-32]!
\tmov\tx29, sp
\tstr\tx19, [sp, #16]
\tmrs\tx19, daif
\tmsr\tdaifset, #2
\tmov\tx0, #1
\tmsr\tdaif, x19
\tldr\tx19, [sp, #16]
\tldp\tx29, x30, [sp], #32
\tret
\t.globl\tdo_debug_exception
do_debug_exception:
\tmrs\tx1, mdscr_el1
\tmsr\tmdscr_el1, x1
\tb\tdo_el1_sync
"""


def callee_file(tmp_path: Path, old: str = "", new: str = "") -> Path:
    text = KEEPS
    if old:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "callees.s"
    path.write_text(text)
    return path


def check(tmp_path: Path, callees: Path, *vectors: str) -> Report:
    shutil.copy(ASM / "entry-ok.s", tmp_path / "entry-ok.s")
    shutil.copy(ASM / "entry-common.inc", tmp_path / "entry-common.inc")
    slots = tuple(slot_by_name(v) for v in vectors) or ProveConfig([]).slots
    config = ProveConfig(files=[tmp_path / "entry-ok.s"], contracts=BUNDLED_CONTRACTS, slots=slots,
                         callees=[callees], contract_depth=1)
    return prove(config)


def checks(report: Report) -> dict[str, str]:
    return {c.function: c.verdict for c in report.contracts}


def test_callees_that_keep_the_default_contract_are_proved(tmp_path: Path) -> None:
    report = check(tmp_path, callee_file(tmp_path), "el0_64_sync", "el1h_sync")
    assert checks(report)["do_el0_sync"] == "PROVED"
    assert checks(report)["do_debug_exception"] == "PROVED"
    assert checks(report)["do_el1_sync"] == "TRUSTED"  # called, and tail-called, but not in the files
    assert {r.verdict for r in report.results} <= {"PROVED", "WAIVED"}
    assert any(line.startswith("contract check: contract do_el0_sync") for line in report.assumptions)
    assert "contracts checked to depth 1: 2 PROVED, 2 TRUSTED" in report.assumptions  # do_notify_resume too


SEEDED = [
    # returns with I masked where the caller had it clear
    ("daif", "do_el0_sync", "el0_64_sync", "\tmsr\tdaif, x19\n", "\tmsr\tdaifset, #2\n"),
    # briefly unmasks D although the caller had it masked
    ("unmasks", "do_debug_exception", "el1h_sync", "\tmsr\tmdscr_el1, x1\n",
     "\tmsr\tmdscr_el1, x1\n\tmsr\tdaifclr, #8\n\tmsr\tdaifset, #8\n"),
    # writes MDSCR_EL1 (sets SS)
    ("mdscr", "do_debug_exception", "el1h_sync", "\tmsr\tmdscr_el1, x1\n",
     "\torr\tx1, x1, #1\n\tmsr\tmdscr_el1, x1\n"),
    # leaves a callee-saved register changed
    ("saved", "do_el0_sync", "el0_64_sync", "\tldr\tx19, [sp, #16]\n", "\tmov\tx19, #0\n"),
]


@pytest.mark.parametrize(("part", "function", "vector", "old", "new"), SEEDED, ids=[s[0] for s in SEEDED])
def test_a_callee_that_breaks_its_contract_is_caught(tmp_path: Path, part: str, function: str, vector: str,
                                                     old: str, new: str) -> None:
    report = check(tmp_path, callee_file(tmp_path, old, new), vector)
    found = next(c for c in report.contracts if c.function == function)
    assert found.verdict == "VIOLATED", found
    assert found.counterexample is not None and found.counterexample["part"] == f"contract:{part}"
    assert any(step["function"] == function for step in found.counterexample["trace"])
    # the verdicts whose paths used it are UNKNOWN, never PROVED; the classes whose paths did not call it
    # (the other handler's) keep their PROVED, and nothing of theirs rests on it
    slot = [r for r in report.results if r.vector == vector]
    used = [r for r in slot if function in r.rests_on]
    unused = [r for r in slot if function not in r.rests_on]
    assert used and all(r.verdict in ("UNKNOWN", "WAIVED") for r in used), [(r.property, r.verdict) for r in used]
    assert any(function in r.reason for r in used if r.verdict == "UNKNOWN")
    assert unused and all(r.verdict == "PROVED" for r in unused), [(r.property, r.verdict) for r in unused]
    assert not any(h.function == function for r in unused for h in r.pending)
    assert not {ec for r in used for ec in r.ec} & {ec for r in unused for ec in r.ec if r.property == "d-restored"}


def test_without_checking_the_same_callee_is_trusted_and_proved(tmp_path: Path) -> None:
    callees = callee_file(tmp_path, "\tmsr\tdaif, x19\n", "\tmsr\tdaifset, #2\n")
    shutil.copy(ASM / "entry-ok.s", tmp_path / "entry-ok.s")
    shutil.copy(ASM / "entry-common.inc", tmp_path / "entry-common.inc")
    config = ProveConfig(files=[tmp_path / "entry-ok.s"], contracts=BUNDLED_CONTRACTS,
                         slots=(slot_by_name("el0_64_sync"),), callees=[callees])
    report = prove(config)
    assert report.contracts and {check.verdict for check in report.contracts} == {"TRUSTED"}
    assert all("--trust-contracts" in check.reason for check in report.contracts)
    assert {r.verdict for r in report.results} == {"PROVED"}
    assert any(line.startswith("contracts trusted, not checked") for line in report.assumptions)


def test_trust_and_check_together_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", "--check-contracts", "--trust-contracts", str(ASM / "entry-ok.s")]) == 2
    assert "contradict" in capsys.readouterr().err


def test_contract_depth_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", "--check-contracts", "--contract-depth", "0", str(ASM / "entry-ok.s")]) == 2
    assert "--contract-depth must be at least 1" in capsys.readouterr().err


def test_explain_shows_a_violated_contracts_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = check(tmp_path, callee_file(tmp_path, "\tmsr\tdaif, x19\n", "\tmsr\tdaifset, #2\n"), "el0_64_sync")
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps(report.json()))
    assert main(["explain", str(saved), "--contract", "do_el0_sync"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("contract do_el0_sync (")
    assert ": VIOLATED at depth 1" in out.splitlines()[0]
    assert "called with DAIF: 0x0" in out  # the precondition: how entry-common.inc calls it
    assert "slots whose verdicts rest on it: el0_64_sync" in out
    failing = next(line for line in out.splitlines() if line.startswith("  fails at "))
    assert "callees.s:" in failing and "in do_el0_sync" in failing and "`ret x30`" in failing, failing
    assert "DAIF on return = 0x2" in out  # I masked, where the call had DAIF clear
    path = [line for line in out.splitlines() if line.startswith("    ") and "DAIF=" in line]
    assert any("do_el0_sync" in line and "msr" in line and "daifset" in line for line in path), path
    # a name without a check is a clear error
    assert main(["explain", str(saved), "--contract", "no_such_function"]) == 2
    assert "no contract check for 'no_such_function'" in capsys.readouterr().err


# do_el0_sync returns with everything masked whatever DAIF it was called with: derivable, not "preserved"
MASKS = KEEPS.replace("\tmsr\tdaif, x19\n", "\tmsr\tdaifset, #0xf\n")
# ... and one the engine cannot follow to its end (a branch through a register it cannot resolve)
UNFOLLOWABLE = KEEPS.replace("\tmsr\tdaif, x19\n", "\tmsr\tdaif, x19\n\tldr\tx2, [x0, x1]\n\tbr\tx2\n")


def derived_contracts(tmp_path: Path) -> Path:
    path = tmp_path / "derived.toml"
    path.write_text(BUNDLED_CONTRACTS.read_text() + '\n[function.do_el0_sync]\ndaif = "derived"\n')
    return path


def prove_derived(tmp_path: Path, callees: str, depth: int = 1) -> Report:
    shutil.copy(ASM / "entry-ok.s", tmp_path / "entry-ok.s")
    shutil.copy(ASM / "entry-common.inc", tmp_path / "entry-common.inc")
    (tmp_path / "callees.s").write_text(callees)
    config = ProveConfig(files=[tmp_path / "entry-ok.s"], contracts=derived_contracts(tmp_path),
                         slots=(slot_by_name("el0_64_sync"),), callees=[tmp_path / "callees.s"],
                         contract_depth=depth)
    return prove(config)


def test_daif_on_return_is_derived_from_the_code(tmp_path: Path) -> None:
    report = prove_derived(tmp_path, MASKS)
    derived = [line for line in report.assumptions if line.startswith("derived: contract do_el0_sync")]
    assert derived and ": DAIF on return masked, read from every return" in derived[0], derived
    # the proof summarised the call by the derived contract, and its check agrees with the code
    used = [c for r in report.results for c in r.contracts if c.startswith("contract do_el0_sync")]
    assert used and all("derived from its code" in c and ": masked;" in c for c in used), used
    assert checks(report)["do_el0_sync"] == "PROVED"
    assert {r.verdict for r in report.results} == {"PROVED"}
    # the same code under the written default ("preserved") is a false contract: its verdicts are UNKNOWN
    written = check(tmp_path, callee_file(tmp_path, "\tmsr\tdaif, x19\n", "\tmsr\tdaifset, #0xf\n"), "el0_64_sync")
    assert checks(written)["do_el0_sync"] == "VIOLATED"


def test_a_contract_that_cannot_be_derived_keeps_its_fallback_and_says_so(tmp_path: Path) -> None:
    report = prove_derived(tmp_path, UNFOLLOWABLE)
    line = next(line for line in report.assumptions if line.startswith("derived: contract do_el0_sync"))
    assert "not derived (a path was not followed to its end: indirect branch" in line, line
    assert "its written fallback `daif = any` is trusted" in line
    assert checks(report)["do_el0_sync"] == "UNKNOWN"
    trusting = prove_derived(tmp_path, MASKS, depth=0)
    assert any("not derived (--trust-contracts)" in line for line in trusting.assumptions)


def test_derived_daif_is_only_for_functions(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BUNDLED_CONTRACTS.read_text().replace('daif = "preserved"', 'daif = "derived"', 1))
    assert main(["prove", "--contracts", str(path), str(ASM / "entry-ok.s")]) == 2


@pytest.mark.parametrize(("table", "words"), [
    ({e: (e,) for e in range(16)}, "preserved"),
    ({e: (0x0, 0xF) for e in range(16)}, "masked|0b0000"),
    ({e: tuple(sorted({e | 3, e})) for e in range(16)}, "preserved|0bxx11"),  # a work loop with pseudo-NMI
    ({0x0: (0x0, 0xF), 0xF: (0xF,)}, "preserved|masked (returns only when called with DAIF 0x0, 0xf)"),
    ({0x0: (0x5,), 0xF: (0x3,)},
     "by DAIF at the call: 0x0->0x5, 0xf->0x3 (returns only when called with DAIF 0x0, 0xf)"),
    ({}, "no return"),
])
def test_a_derived_relation_is_printed_in_daif_words(table: dict[int, tuple[int, ...]], words: str) -> None:
    assert describe_relation(table) == words
