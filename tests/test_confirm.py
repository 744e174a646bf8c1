"""Counterexamples confirmed on Unicorn (verifier.confirm): the bundled subject's violations are reproduced
from the assembler's objects, and a deliberately wrong semantics entry, whose false violation our own replay
reproduces faithfully, is refused by Unicorn and becomes UNKNOWN."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from verifier.ir.program import Imm, Insn, Name
from verifier.proof.config import ProveConfig
from verifier.proof.run import prove
from verifier.semantics import table
from verifier.semantics.table import NEXT
from verifier.spec.slots import slot_by_name

ASM = Path(__file__).resolve().parents[1] / "asm"
needs_as = pytest.mark.skipif(shutil.which("aarch64-linux-gnu-as") is None, reason="needs aarch64-linux-gnu-as")


def violations(subject: str, confirm: bool, *slots: str) -> list:
    config = ProveConfig(files=[ASM / subject], slots=tuple(slot_by_name(s) for s in slots), confirm=confirm)
    return prove(config).results


@needs_as
def test_the_bundled_violations_are_reproduced_on_unicorn() -> None:
    results = violations("entry-bad.s", True, "el0_64_sync", "el0_64_irq", "el1h_irq")
    violated = [r for r in results if r.verdict == "VIOLATED"]
    assert violated
    for result in violated:
        unicorn = result.counterexample["unicorn"]
        assert unicorn["reproduced"], unicorn
        # the whole path, to the eret
        assert unicorn["steps"] == len(result.counterexample["trace"])
    assert not [r for r in results if r.verdict == "UNKNOWN"]


@needs_as
def test_a_wrong_semantics_entry_is_refused_by_unicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    right = table.SEMANTICS["msr"]

    def daifset_does_nothing(insn: Insn, state, ctx):  # the broken entry: `msr daifset, #imm` masks nothing
        target = insn.operands[0]
        if isinstance(target, Name) and target.name == "daifset" and isinstance(insn.operands[1], Imm):
            return NEXT
        return right(insn, state, ctx)

    monkeypatch.setitem(table.SEMANTICS, "msr", daifset_does_nothing)
    # our own replay shares the broken entry: the false violation replays
    wrong = [r for r in violations("entry-ok.s", False, "el0_64_irq") if r.verdict == "VIOLATED"]
    assert wrong and all(r.counterexample for r in wrong)
    # Unicorn masks DAIF at the msr: not reproduced, UNKNOWN with the first difference
    results = violations("entry-ok.s", True, "el0_64_irq")
    assert not [r for r in results if r.verdict == "VIOLATED"]
    refused = [r for r in results if r.verdict == "UNKNOWN"]
    assert refused and all("Unicorn did not reproduce" in r.reason and "DAIF differs" in r.reason
                           for r in refused), [r.reason for r in refused]


@needs_as
@pytest.mark.parametrize("streaming", [False, True], ids=["sve", "streaming"])
def test_a_path_through_sve_instructions_is_reproduced_on_unicorn(tmp_path: Path, streaming: bool) -> None:
    """rdvl and pfalse run on Unicorn with SVE enabled at EL1 (by default it traps them), the vector length
    from ZCR_EL1.LEN as the model has it, one the architecture allows; in streaming mode (Unicorn 2.1 has no
    SME) the run gives rdvl the model's streaming length. A violation after them is reproduced, not refused
    (7.x's sve_flush_live())."""
    shutil.copy(ASM / "entry-common.inc", tmp_path)
    start = "\tsmstart\tsm\n" if streaming else ""
    subject = (ASM / "entry-bad.s").read_text().replace(
        "\tdisable_daif\t\t\t\t// too late\n",
        # a vector longer than 128 bits, or a hang: every violating path runs rdvl, then pfalse
        f"{start}\trdvl\tx9, #1\n\tcmp\tx9, #16\n\tb.ls\t.\n\tpfalse\tp0.b\n\tdisable_daif\n")
    assert "rdvl" in subject
    (tmp_path / "entry-sve.s").write_text("\t.arch_extension sve\n\t.arch_extension sme\n" + subject)
    config = ProveConfig(files=[tmp_path / "entry-sve.s"], slots=(slot_by_name("el0_64_irq"),), confirm=True)
    violated = [r for r in prove(config).results if r.verdict == "VIOLATED"]
    assert violated, "the seeded eret-integrity violation is found and reproduced"
    for result in violated:
        model = result.counterexample["model"]
        if streaming:  # 16 << n bytes, n above 4 meaning 4
            assert 16 << min(model["smcr_el1.svl_log2_quadwords"], 4) > 16, model
        else:
            assert (model["zcr_el1.len"] + 1) * 16 > 16, model
        assert result.counterexample["unicorn"]["reproduced"], result.counterexample["unicorn"]
