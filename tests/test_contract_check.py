"""Contracts checked against the code they summarise, on the bundled subject with a callee file of our own:
each guarantee of the default contract can be found false (and the verdicts that used it become UNKNOWN),
a counterexample's path replays, and a callee that keeps its contract (however it does so) is PROVED."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from verifier.cli.main import main
from verifier.engine.explore import Options
from verifier.proof.callback_derive import derive_callbacks
from verifier.proof.config import BUNDLED_CONTRACTS, ProveConfig
from verifier.proof.contract_run import CheckInputs, CodeIndex, ContractCheck, check_contracts
from verifier.proof.run import Report, prove
from verifier.spec.contract_derive import describe_relation
from verifier.spec.contracts import BuildFacts, load_contracts
from verifier.spec.priority import PriorityFacts
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
    ("daif", "do_el0_sync", "el0_64_sync", "\tmsr\tdaif, x19\n", "\tmsr\tdaifset, #2\n", None),
    # briefly unmasks D although the caller had it masked
    ("unmasks", "do_debug_exception", "el1h_sync", "\tmsr\tmdscr_el1, x1\n",
     "\tmsr\tmdscr_el1, x1\n\tmsr\tdaifclr, #8\n\tmsr\tdaifset, #8\n", None),
    # writes MDSCR_EL1 (sets SS): through its code, the eret returns to EL1 with SS changed
    ("mdscr", "do_debug_exception", "el1h_sync", "\tmsr\tmdscr_el1, x1\n",
     "\torr\tx1, x1, #1\n\tmsr\tmdscr_el1, x1\n", "ss-restored"),
    # leaves a callee-saved register changed
    ("saved", "do_el0_sync", "el0_64_sync", "\tldr\tx19, [sp, #16]\n", "\tmov\tx19, #0\n", None),
    # sets the D bit of the saved PSTATE (regs->pstate |= PSR_D_BIT): the eret returns to EL0 with D masked
    ("writes", "do_el0_sync", "el0_64_sync", "\tmov\tx0, #1\n",
     "\tldr\tx1, [x0, #264]\n\torr\tx1, x1, #0x200\n\tstr\tx1, [x0, #264]\n", "d-restored"),
    # sets the SS bit of the saved PSTATE: no obligation reads it, the contract does
    ("writes", "do_el0_sync", "el0_64_sync", "\tmov\tx0, #1\n",
     "\tldr\tx1, [x0, #264]\n\torr\tx1, x1, #0x200000\n\tstr\tx1, [x0, #264]\n", None),
]


@pytest.mark.parametrize(("part", "function", "vector", "old", "new", "violates"), SEEDED,
                         ids=[s[0] + ("-" + s[5] if s[5] else "") for s in SEEDED])
def test_a_callee_that_breaks_its_contract_is_caught(tmp_path: Path, part: str, function: str, vector: str,
                                                     old: str, new: str, violates: str | None) -> None:
    report = check(tmp_path, callee_file(tmp_path, old, new), vector)
    found = next(c for c in report.contracts if c.function == function)
    assert found.verdict == "VIOLATED", found
    assert found.counterexample is not None and found.counterexample["part"] == f"contract:{part}"
    assert any(step["function"] == function for step in found.counterexample["trace"])
    # the slot that used the false contract was proved again through the function's code: no verdict rests on
    # the contract any more, none is UNKNOWN for it, and what the code really does is judged
    assert any(line.startswith(f"followed: contract {function} is violated by its code") for line in report.assumptions)
    slot = [r for r in report.results if r.vector == vector]
    assert slot and not any(function in r.rests_on for r in slot)
    assert all(r.verdict != "UNKNOWN" for r in slot), [(r.property, r.verdict, r.reason) for r in slot]
    violated = {r.property for r in slot if r.verdict == "VIOLATED"}
    assert violated == ({violates} if violates else set()), violated
    for result in slot:
        if result.verdict == "VIOLATED":
            cex = result.counterexample or {}
            assert function in cex.get("functions", []), cex.get("functions")


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
    # the slot that used it was proved again through its code, which the report says
    assert any(line.startswith("followed: contract do_el0_sync is violated by its code") for line in report.assumptions)
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


def test_a_saved_d_bit_set_by_a_callee_is_a_violation_unicorn_reproduces(tmp_path: Path) -> None:
    callees = callee_file(tmp_path, "\tmov\tx0, #1\n",
                          "\tldr\tx1, [x0, #264]\n\torr\tx1, x1, #0x200\n\tstr\tx1, [x0, #264]\n")
    shutil.copy(ASM / "entry-ok.s", tmp_path / "entry-ok.s")
    shutil.copy(ASM / "entry-common.inc", tmp_path / "entry-common.inc")
    config = ProveConfig(files=[tmp_path / "entry-ok.s"], contracts=BUNDLED_CONTRACTS,
                         slots=(slot_by_name("el0_64_sync"),), callees=[callees], contract_depth=1, confirm=True)
    report = prove(config)
    violated = [r for r in report.results if r.property == "d-restored" and r.verdict == "VIOLATED"]
    assert violated, [(r.property, r.verdict, r.reason) for r in report.results]
    cex = violated[0].counterexample
    assert cex is not None and cex["unicorn"]["reproduced"], cex and cex.get("unicorn")
    assert "do_el0_sync" in cex["functions"]
    assert report.exit_status() == 1


# do_el0_sync calls a helper (in another file) that calls another, which sets MDSCR_EL1.SS: two calls down
TWO_DOWN = KEEPS.replace("\tmov\tx0, #1\n", "\tbl\thelper_a\n")
HELPERS = """
\t.text
\t.globl\thelper_a
helper_a:
\tstp\tx29, x30, [sp, #-16]!
\tmov\tx29, sp
\tbl\thelper_b
\tldp\tx29, x30, [sp], #16
\tret
\t.globl\thelper_b
helper_b:
\tmrs\tx1, mdscr_el1
\torr\tx1, x1, #1
\tmsr\tmdscr_el1, x1
\tret
"""


def test_a_callee_that_writes_mdscr_two_calls_down_is_caught(tmp_path: Path) -> None:
    callees, helpers = tmp_path / "callees.s", tmp_path / "helpers.s"
    callees.write_text(TWO_DOWN)
    helpers.write_text(HELPERS)
    shutil.copy(ASM / "entry-ok.s", tmp_path / "entry-ok.s")
    shutil.copy(ASM / "entry-common.inc", tmp_path / "entry-common.inc")
    config = ProveConfig(files=[tmp_path / "entry-ok.s"], contracts=BUNDLED_CONTRACTS,
                         slots=(slot_by_name("el0_64_sync"),), callees=[callees, helpers], contract_depth=1)
    # checked to depth 1, helper_a is trusted: nothing that rests on do_el0_sync is closed
    shallow = prove(config)
    assert checks(shallow)["helper_a"] == "TRUSTED"
    resting = [r for r in shallow.results if "do_el0_sync" in r.rests_on]
    assert resting and all(r.verdict == "PROVED" and not r.closed for r in resting)
    assert any(h.function == "helper_a" for r in resting for h in r.pending)
    assert shallow.exit_status() == 4
    # checked deeper: helper_a's contract is false (its code runs helper_b's), do_el0_sync's rests on it, and
    # the slot is proved through their code: MDSCR_EL1.SS set at the eret to EL0, the task not being stepped
    deep = prove(replace(config, contract_depth=3))
    assert checks(deep)["helper_a"] == "VIOLATED"
    assert any(line.startswith("followed: contract do_el0_sync rests on the contract of helper_a")
               for line in deep.assumptions), deep.assumptions
    violated = {r.property for r in deep.results if r.verdict == "VIOLATED"}
    assert "ss-restored" in violated, [(r.property, r.verdict) for r in deep.results]
    assert deep.exit_status() == 1


def test_a_violation_is_not_demoted_by_a_contract_its_path_does_not_use(tmp_path: Path) -> None:
    # entry-bad.s writes ELR_EL1/SPSR_EL1 with interrupts unmasked on the way out; do_debug_exception, which
    # only the debug classes' paths call, breaks its contract (returns with A unmasked)
    shutil.copy(ASM / "entry-bad.s", tmp_path / "entry-bad.s")
    shutil.copy(ASM / "entry-common.inc", tmp_path / "entry-common.inc")
    callees = callee_file(tmp_path, "\tmsr\tmdscr_el1, x1\n", "\tmsr\tmdscr_el1, x1\n\tmsr\tdaifclr, #4\n")
    config = ProveConfig(files=[tmp_path / "entry-bad.s"], contracts=BUNDLED_CONTRACTS,
                         slots=(slot_by_name("el0_64_sync"),), callees=[callees], contract_depth=1, confirm=True)
    report = prove(config)
    assert checks(report)["do_debug_exception"] == "VIOLATED"
    violated = [r for r in report.results if r.property == "eret-integrity" and r.verdict == "VIOLATED"]
    assert violated and all("do_debug_exception" not in r.rests_on for r in violated)
    assert all((r.counterexample or {}).get("unicorn", {}).get("reproduced") for r in violated)
    assert not any("rests on the contract" in r.reason for r in report.results)


PSEUDO_NMI = PriorityFacts(configured=True, capability=40, irq_on=0xE0, irq_off=(0x60,), psr_i_set=0x10,
                           irq_priority=0xA0, boot_pmr=0xF0)
PMR_CALLEES = """
\t.text
\t.globl\tlowers
lowers:
\tmov\tx1, #0x60
\tmsr\ticc_pmr_el1, x1
\tret
\t.globl\trestores
restores:
\tmrs\tx2, icc_pmr_el1
\tmov\tx1, #0x60
\tmsr\ticc_pmr_el1, x1
\tmsr\ticc_pmr_el1, x2
\tret
"""


@pytest.mark.parametrize(("function", "pmr", "verdict"), [
    ("lowers", "preserved", "VIOLATED"), ("restores", "preserved", "PROVED"), ("lowers", "irqs-off", "PROVED")])
def test_pmr_on_return_is_checked_where_the_kernel_masks_with_it(tmp_path: Path, function: str, pmr: str,
                                                                  verdict: str) -> None:
    callees = tmp_path / "callees.s"
    callees.write_text(PMR_CALLEES)
    path = tmp_path / "contracts.toml"
    path.write_text(BUNDLED_CONTRACTS.read_text() + f'\n[function.{function}]\npmr = "{pmr}"\n')
    contracts = load_contracts(path, BuildFacts(priority=PSEUDO_NMI))
    [found] = check_contracts(CheckInputs([callees], call_daif={function: [0]}), contracts, Options())
    assert found.verdict == verdict, found
    if verdict == "VIOLATED":
        assert found.counterexample is not None and found.counterexample["part"] == "contract:pmr"


def checks_of(tmp_path: Path, source: str, calls: dict[str, list[int]],
              contracts: str = "") -> dict[str, ContractCheck]:
    """The checks of `calls` (function -> the DAIF values it is called with) in an assembly file of `source`,
    under the bundled contracts and `contracts` added to them."""
    callees = tmp_path / "callees.s"
    callees.write_text(source)
    path = tmp_path / "contracts.toml"
    path.write_text(BUNDLED_CONTRACTS.read_text() + contracts)
    return {c.function: c for c in check_contracts(CheckInputs([callees], call_daif=dict(calls)),
                                                  load_contracts(path), Options())}


SPINS = """
\t.text
\t.globl\tparks
parks:
\tmsr\tdaifset, #0xf
1:\twfe
\twfi
\tb\t1b
\t.globl\tparks_until
parks_until:
1:\twfe
\tcbz\tx0, 2f
\tb\t1b
2:\tret
"""


def test_a_loop_with_no_way_out_never_returns(tmp_path: Path) -> None:
    # cpu_park_loop(): a noreturn function's last loop ends no path UNKNOWN at the loop bound; one that can
    # leave its loop is judged as any other code (here: it returns, against its contract)
    found = checks_of(tmp_path, SPINS, {"parks": [0], "parks_until": [0]},
                      "\n[function.parks]\nreturns = false\n[function.parks_until]\nreturns = false\n")
    assert found["parks"].verdict == "PROVED", found["parks"]
    assert found["parks_until"].verdict == "VIOLATED", found["parks_until"]


def bug_site(flags: int) -> str:
    """A BUG()/WARN() as arm64's asm-bug.h emits it: a __bug_table entry (brk, file, line, flags), then the brk."""
    return (f"\t.pushsection __bug_table,\"aw\"; .align 2; 14470: .long 14471f - .; .long 0; .short 7; "
            f".short {flags}; .align 2; .popsection; 14471: brk 0x800\n")


@pytest.mark.parametrize(("flags", "verdict"), [(1 | (9 << 8), "VIOLATED"), (9 << 8, "PROVED")],
                         ids=["warn", "bug"])
def test_a_warn_goes_on_past_its_brk_and_a_bug_does_not(tmp_path: Path, flags: int, verdict: str) -> None:
    # WARN_ON(x) then code that breaks the contract: the path after a WARN's brk runs (its handler returns past
    # it), the path after a BUG's does not (the kernel dies there); the __bug_table's flags say which it is
    found = checks_of(tmp_path, "\t.text\n\t.globl\twarns\nwarns:\n\tcbz\tx0, 1f\n" + bug_site(flags)
                      + "\tmsr\tdaifset, #2\n1:\tret\n", {"warns": [0]})
    assert found["warns"].verdict == verdict, found["warns"]


DIES = """
\t.text
\t.globl\tdies
dies:
\tstp\tx29, x30, [sp, #-16]!
\tbl\tprints
\tldr\tx1, [x0]
\tldr\tx2, [x1, x3]
\tcbz\tx2, 1f
\tbl\tpanic
1:\tbl\tprints
\tb\tpanic
\t.globl\tdies_or_not
dies_or_not:
\tcbz\tx0, 1f
\tbl\tpanic
1:\tret
"""


def test_a_noreturn_contract_is_shown_by_the_codes_control_flow(tmp_path: Path) -> None:
    # a load no engine can place does not matter to whether a function returns: its control flow has no
    # return, so it does not, and that rests on panic's contract alone, not on the calls it came back from
    found = checks_of(tmp_path, DIES, {"dies": [0], "dies_or_not": [0]},
                      "\n[function.dies]\nreturns = false\n[function.dies_or_not]\nreturns = false\n"
                      "[function.panic]\nreturns = false\n")
    assert found["dies"].verdict == "PROVED", found["dies"]
    assert found["dies"].callees == ["panic"]
    assert found["dies_or_not"].verdict == "VIOLATED", found["dies_or_not"]


PATCHED = """
\t.macro alternative_cb cap, cb
\t.pushsection .altinstructions, "a"
\t.word 661f - .
\t.word \\cb - .
\t.hword (1 << 15) | \\cap
\t.byte 662f-661f
\t.byte 0
\t.popsection
661:
\t.endm
\t.macro alternative_cb_end
662:
\t.endm

\t.text
\t.globl\tuses_site
uses_site:
\talternative_cb 1, writes_mask
\tnop
\talternative_cb_end
\tret

\t.globl\twrites_mask
writes_mask:
\tstp\tx29, x30, [sp, #-32]!
\tmov\tx29, sp
\tstp\tx19, x20, [sp, #16]
\tmov\tx19, x2
\tmov\tw20, w3
\tbl\tencode
1:\tcbz\tw20, 2f
\tstr\tw0, [x19], #4
\tsub\tw20, w20, #1
\tb\t1b
2:\tldp\tx19, x20, [sp, #16]
\tldp\tx29, x30, [sp], #32
\tret
encode:
\tmov\tw0, #0x42df
\tmovk\tw0, #0xd503, lsl #16
\tret

\t.globl\twrites_loaded
writes_loaded:
\tldr\tw4, [x0]
\tstr\tw4, [x2]
\tret
"""


def test_what_a_callback_writes_at_its_site_is_read_from_its_code(tmp_path: Path) -> None:
    # the contracts file says the callback changes nothing there (`registers = []`); its code writes
    # `msr daifset, #2` (through a helper it calls): run as its code says, the site masks I, and the function
    # returns with DAIF other than it was called with
    callees = tmp_path / "callees.s"
    callees.write_text(PATCHED)
    path = tmp_path / "contracts.toml"
    path.write_text(BUNDLED_CONTRACTS.read_text() + "\n[callback.writes_mask]\npatches = \"registers\"\n"
                    "registers = []\n")
    written = load_contracts(path)
    inputs = CheckInputs([callees], call_daif={"uses_site": [0]})
    assert {c.function: c for c in check_contracts(inputs, written, Options())}["uses_site"].verdict == "PROVED"
    derived = {d.callback: d for d in derive_callbacks(CodeIndex([callees], None), written, Options(),
                                                       {"writes_mask": {1}, "writes_loaded": {1}})}
    assert derived["writes_mask"].variants == {1: ((0xD50342DF,),)}, derived["writes_mask"].text
    assert "msr" in derived["writes_mask"].text and derived["writes_mask"].check().verdict == "PROVED"
    assert derived["writes_loaded"].variants is None and "not a constant" in derived["writes_loaded"].text, \
        derived["writes_loaded"].text
    build = BuildFacts(derived_patches={"writes_mask": derived["writes_mask"].build_json()})
    found = {c.function: c for c in check_contracts(inputs, load_contracts(path, build), Options())}
    assert found["uses_site"].verdict == "VIOLATED", found["uses_site"]
    assert found["uses_site"].counterexample is not None
    assert any("msr" in step["insn"] for step in found["uses_site"].counterexample["trace"])


WRITABLE = """
\t.data
\t.align\t3
flag:
\t.quad\t0
\t.section\t.rodata
\t.align\t3
constant:
\t.quad\t0
\t.text
\t.globl\treads_flag
reads_flag:
\tadrp\tx1, {symbol}
\tldr\tx1, [x1, #:lo12:{symbol}]
\tcbz\tx1, 1f
\tmsr\tdaifset, #2
1:\tret
"""


@pytest.mark.parametrize(("symbol", "verdict"), [("flag", "VIOLATED"), ("constant", "PROVED")])
def test_writable_data_is_not_its_link_time_value(tmp_path: Path, symbol: str, verdict: str) -> None:
    # `flag` is 0 in .data at link time, but anything at run time (a boot parameter, per-boot state): the path
    # where it is set masks I and returns so; read-only data is what the object says
    found = checks_of(tmp_path, WRITABLE.format(symbol=symbol), {"reads_flag": [0]})
    assert found["reads_flag"].verdict == verdict, found["reads_flag"]


def test_a_callbacks_helper_in_a_file_that_does_not_lift_is_summarised(tmp_path: Path) -> None:
    # 7.x's fpsimd.s has SME instructions the front end does not take: a callback that calls into it is
    # still read (the helper summarised by its contract), and nothing stops the run
    callees = tmp_path / "callees.s"
    callees.write_text(PATCHED.replace("\tbl\tencode\n", "\tmov\tx1, xzr\n\tmov\tx2, xzr\n\tbl\tsme_helper\n"
                                       "\tbl\tencode\n"))
    other = tmp_path / "fpsimd.s"
    other.write_text("\t.text\n\t.globl\tsme_helper\nsme_helper:\n\tstr\tza[w12, #0], [x1]\n\tret\n")
    derived = derive_callbacks(CodeIndex([callees, other], None), load_contracts(BUNDLED_CONTRACTS), Options(),
                               {"writes_mask": {1}})
    assert derived[0].variants == {1: ((0xD50342DF,),)}, derived[0].text
    assert derived[0].rests_on == ["sme_helper"]
