"""Pseudo-NMI defects a PSTATE.I-only model cannot see, seeded into a copy of the 7.3 tree and proved with
defconfig plus CONFIG_ARM64_PSEUDO_NMI=y, then with plain defconfig:

(a) the return to EL1 masks normal interrupts with ICC_PMR_EL1 and clears PSTATE.I between the writes of
    ELR/SPSR and the eret: eret-integrity must fail (a pseudo-NMI overwrites them), and say it is a pseudo-NMI;
(b) an EL0 handler path sets PSTATE.I before the exit work where only PMR should mask: the rule PNMI-exit of
    proofs/policies/pseudo-nmi.policy (at enter of the inlined __exit_to_user_mode_prepare) must fail;
and a behaviour-preserving edit changes no verdict. Without pseudo-NMI the same edits are no PMR defect:
(a) is compiled out and (b) is an ordinary local_irq_disable()."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tree_edits import edit, linked_copy

from verifier.cli.main import main
from verifier.proof.run import replay_counterexample

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "proofs" / "policies" / "pseudo-nmi.policy"
VERSION = "7.3"
ENTRY = "arch/arm64/kernel/entry.S"
COMMON = "arch/arm64/kernel/entry-common.c"
DATA_ABORT = 0x24

SPSR = "\tmsr\tspsr_el1, x22\n"
PMR_ONLY_WINDOW = (SPSR + "#ifdef CONFIG_ARM64_PSEUDO_NMI\nalternative_if ARM64_HAS_GIC_PRIO_MASKING\n"
                   "\tmov\tx20, #GIC_PRIO_IRQOFF\n\tmsr_s\tSYS_ICC_PMR_EL1, x20\n\tmsr\tdaifclr, #3\n"
                   "alternative_else_nop_endif\n#endif\n")
EXIT = "static __always_inline void arm64_exit_to_user_mode(struct pt_regs *regs)\n{\n\tlocal_irq_disable();\n"

# (name, property it breaks, slot, classes, file, text, replacement)
SEEDED = [
    ("pmr-only-eret-window", "eret-integrity", "el1h_irq", [], ENTRY, SPSR, PMR_ONLY_WINDOW),
    ("psr-i-at-exit", "rule:PNMI-exit", "el0_64_sync", [DATA_ABORT], COMMON, EXIT,
     EXIT.replace("local_irq_disable();", "write_sysreg(DAIF_PROCCTX_NOIRQ, daif);")),
]
PRESERVING = ("repeated-irq-disable", "el0_64_sync", [DATA_ABORT], COMMON, EXIT,
              EXIT + "\tlocal_irq_disable();\n")


@pytest.fixture(scope="module")
def tree_copy(kernel_tree: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the tree made of symbolic links; the tests replace the one file they edit."""
    base = tmp_path_factory.mktemp("tree-pnmi")
    yield linked_copy(kernel_tree(VERSION), base)
    shutil.rmtree(base, ignore_errors=True)


def prove(tree: Path, build: Path, config: Path | None, vector: str, ecs: list[int]) -> dict:
    out = build.parent / f"{build.name}-{len(list(build.parent.glob(build.name + '-*.json')))}.json"
    # the edits are in the entry code: the contracts are trusted (their checks have their own tests)
    args = ["kernel", "--tree", str(tree), "--trust-contracts", "--work-dir", str(build), "--policy", str(POLICY),
            "--vector", vector,
            "--format", "json", "-o", str(out), *(f"--ec={ec}" for ec in ecs)]
    args += ["--config", str(config)] if config else []
    main(args)
    return json.loads(out.read_text())


def verdicts(report: dict) -> dict[tuple[str, str], set[str]]:
    found: dict[tuple[str, str], set[str]] = {}
    for r in report["results"]:
        key = (f"rule:{r['rule']}" if r.get("rule") else r["property"], r["vector"])
        found.setdefault(key, set()).add(r["verdict"])
    return found


def test_pseudo_nmi_defects_are_caught_only_with_pseudo_nmi(
        kernel_tree: Callable[[str], Path], debian_config: Callable[[str, str], Path], tree_copy: Path,
        tmp_path: Path) -> None:
    original = kernel_tree(VERSION)
    pnmi = debian_config(VERSION, "pseudo-nmi")
    for name, prop, vector, ecs, relative, old, new in SEEDED:
        before = verdicts(prove(tree_copy, tmp_path / "pnmi", pnmi, vector, ecs))
        assert before.get((prop, vector)) == {"PROVED"}, (name, before)
        edit(tree_copy, original, relative, old, new)
        with_pnmi = prove(tree_copy, tmp_path / "pnmi", pnmi, vector, ecs)
        without = prove(tree_copy, tmp_path / "defconfig", None, vector, ecs)
        edit(tree_copy, original, relative)
        assert verdicts(with_pnmi).get((prop, vector)) == {"VIOLATED"}, (name, verdicts(with_pnmi))
        violated = [r for r in with_pnmi["results"] if r["verdict"] == "VIOLATED"
                    and (r["property"] == prop or f"rule:{r.get('rule')}" == prop)]
        for result in violated:  # each counterexample runs again, concretely, to the same violation
            assert replay_counterexample(result["counterexample"]) is not None, name
        if prop == "eret-integrity":  # the report says why PMR did not protect the window
            assert "pseudo-NMI" in json.dumps(violated), name
        # without pseudo-NMI: no violation of the property, and no result that speaks of PMR or pseudo-NMIs
        assert "VIOLATED" not in verdicts(without).get((prop, vector), set()), (name, verdicts(without))
        assert not [r for r in without["results"] if r["verdict"] == "VIOLATED"
                    and ("pseudo-NMI" in json.dumps(r) or "ICC_PMR_EL1" in json.dumps(r))], name
    name, vector, ecs, relative, old, new = PRESERVING
    baseline = verdicts(prove(tree_copy, tmp_path / "pnmi", pnmi, vector, ecs))
    edit(tree_copy, original, relative, old, new)
    after = verdicts(prove(tree_copy, tmp_path / "pnmi", pnmi, vector, ecs))
    edit(tree_copy, original, relative)
    assert after == baseline, name
    assert "\tlocal_irq_disable();\n\tlocal_irq_disable();" not in (original / COMMON).read_text()
