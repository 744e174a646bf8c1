"""The configurations people run: Debian's arm64 kernels (generic, cloud, PREEMPT_RT, 16K pages) and
defconfig with pseudo-NMI. Each is built out of tree with `olddefconfig` and proved on the slots it changes
(the preemption point of el1h_irq, the EL0 paths KPTI, context tracking and RT change); every verdict is
PROVED, WAIVED or VIOLATED, each VIOLATED replays, and the report names the configuration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from kernel_trees import results_name, results_title

from verifier.kernel import kbuild
from verifier.proof.run import replay_counterexample
from verifier.report.results import unversioned

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[1]

BRK64, SOFTSTEP_LOWER, SVC64 = 0x3C, 0x32, 0x15

# (tree, flavour, slots, exception classes): the slots each configuration changes
CONFIGURATIONS = [
    ("6.1", "generic", ("el1h_irq", "el0_64_sync"), (BRK64, SOFTSTEP_LOWER, SVC64)),
    ("6.1", "cloud", ("el1h_irq", "el0_64_sync"), (BRK64, SVC64)),
    ("6.12", "generic", ("el1h_irq", "el0_64_sync"), (BRK64, SVC64)),
    ("6.12", "rt", ("el1h_irq", "el0_64_sync"), (BRK64, SOFTSTEP_LOWER)),
    ("6.12", "pseudo-nmi", ("el1h_irq", "el0_64_irq", "el0_64_sync"), (SVC64,)),
    ("7.3", "generic", ("el1h_irq", "el0_64_sync"), (BRK64, SVC64)),
    ("7.3", "rt", ("el1h_irq", "el0_64_sync"), (BRK64, SOFTSTEP_LOWER)),
    ("7.3", "16k", ("el0_64_sync", "el0_64_irq"), (SVC64,)),
    ("7.3", "pseudo-nmi", ("el1h_irq", "el0_64_irq", "el0_64_sync"), (SVC64,)),
]


def report_of(config_report: Callable[..., dict], version: str, flavour: str) -> dict:
    _, _, vectors, ecs = next(c for c in CONFIGURATIONS if c[:2] == (version, flavour))
    return config_report(version, flavour, *vectors, ec=ecs)


@pytest.mark.parametrize(("version", "flavour"), [c[:2] for c in CONFIGURATIONS], ids=lambda v: str(v))
def test_every_configuration_gets_verdicts(config_report: Callable[..., dict],
                                           debian_config: Callable[[str, str], Path],
                                           version: str, flavour: str) -> None:
    report = report_of(config_report, version, flavour)
    unknown = [f"{r['property']} {r['vector']} {r['ec']}: {r['reason']}" for r in report["results"]
               if r["verdict"] == "UNKNOWN"]
    assert not unknown, "\n".join(unknown)
    assert report["results"], "nothing was proved"
    named = [line for line in report["assumptions"] if line.startswith("build: configuration ")]
    assert named and str(debian_config(version, flavour)) in named[0]
    for result in report["results"]:
        if result["verdict"] == "VIOLATED":
            assert replay_counterexample(result["counterexample"]) is not None, (result["property"], result["vector"])


@pytest.mark.parametrize("version", ["6.1", "7.3"])
def test_a_preemption_point_compiled_out_makes_its_rules_vacuous(config_report: Callable[..., dict],
                                                                 version: str) -> None:
    """Debian's generic flavour has no CONFIG_PREEMPTION up to 6.x (PREEMPT_VOLUNTARY) and PREEMPT_LAZY
    since: the first has no preemption point in el1_interrupt, and the rules about it are vacuous, not an
    error; the second keeps it, and the rules are judged."""
    resched = [r for r in report_of(config_report, version, "generic")["results"]
               if r.get("rule") == "R4-resched" and r["vector"] == "el1h_irq"]
    assert len(resched) == 1
    vacuous = "vacuous: role 'reschedule' has no function in this build (CONFIG_PREEMPTION is not set)"
    if version == "6.1":
        assert resched[0]["verdict"] == "PROVED" and resched[0]["reason"] == vacuous
    else:
        assert resched[0]["reason"] != vacuous


@pytest.mark.parametrize("version", ["6.12", "7.3"])
def test_the_seeds_rt_scenario_holds_on_debians_rt_kernels(config_report: Callable[..., dict],
                                                          kernel_tree: Callable[[str], Path],
                                                          debian_config: Callable[[str, str], Path],
                                                          version: str) -> None:
    """The seed: gdb's breakpoint in user space on PREEMPT_RT. With the 6.2 handlers, BRK64 and software step
    from EL0 reach their user handlers with D and I unmasked (R2)."""
    report = report_of(config_report, version, "rt")
    build = kbuild.default_build_dir(kernel_tree(version), kbuild.toolchain_from(None, False),
                                     str(debian_config(version, "rt")))
    assert "CONFIG_PREEMPT_RT=y" in (build / ".config").read_text().splitlines()  # olddefconfig kept it
    r2 = {ec: r for r in report["results"] if r["property"] == "R2" and r["vector"] == "el0_64_sync"
          for ec in r["ec"]}
    assert r2[BRK64]["verdict"] == "PROVED"
    # software step too (on 7.x through send_user_sigtrap's WARN_ON(!user_mode(current_pt_regs())) path, which
    # needs task_pt_regs(current) to be the exception's frame: the current-stack assumption)
    assert r2[SOFTSTEP_LOWER]["verdict"] == "PROVED", r2[SOFTSTEP_LOWER]


def table_cells(markdown: str) -> dict[tuple[str, str], str]:
    """(vector, property) -> its cell in a committed results table."""
    rows = [line.strip("|").split("|") for line in markdown.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in rows[0]]
    return {(row[0].strip(), prop): cell.strip() for row in rows[2:]
            for prop, cell in zip(header[1:], row[1:], strict=True)}


@pytest.mark.parametrize(("version", "flavour"), [c[:2] for c in CONFIGURATIONS], ids=lambda v: str(v))
def test_results_tables_agree_with_the_slots_the_tests_prove(config_report: Callable[..., dict], version: str,
                                                            flavour: str) -> None:
    """proofs/results/linux-VERSION-FLAVOUR.md holds the full proof (`make results`); the tests prove some
    slots and classes of it, whose verdicts must be among the committed ones."""
    committed = ROOT / "proofs" / "results" / results_name(version, flavour)
    assert committed.is_file(), "run `make results` and commit"
    text = committed.read_text()
    assert unversioned(text.splitlines()[0]) == unversioned(f"# {results_title(version, flavour)}"), \
        "run `make results` and commit"
    cells = table_cells(text)
    report = report_of(config_report, version, flavour)
    for (vector, prop) in {(r["vector"], r["property"]) for r in report["results"]}:
        verdicts = {r["verdict"] for r in report["results"] if (r["vector"], r["property"]) == (vector, prop)}
        cell = cells[vector, prop].replace("\\*", "")  # `*`: some PROVED classes under hypotheses
        assert cell != "-", (vector, prop)
        if cell == "ok":
            assert verdicts == {"PROVED"}, (vector, prop, verdicts)
        for verdict in verdicts - {"PROVED"}:
            assert verdict in cell, (vector, prop, verdict, cell)
