"""The prover on the bundled subjects and on seeded defects of them: every obligation can fail, and
behaviour-preserving edits change no verdict."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from verifier.cli.main import main
from verifier.proof import pool
from verifier.proof.config import BUNDLED_CONTRACTS, ProveConfig
from verifier.proof.run import Report, prove, replay_counterexample
from verifier.spec.slots import slot_by_name
from verifier.util.outputs import write_output

ASM = Path(__file__).resolve().parents[1] / "asm"


def run(path: Path, *vectors: str, waivers: Path | None = None) -> Report:
    slots = tuple(slot_by_name(v) for v in vectors) if vectors else ProveConfig([]).slots
    config = ProveConfig(files=[path], contracts=BUNDLED_CONTRACTS, slots=slots)
    if waivers is not None:
        config.waivers = waivers
    return prove(config)


def verdicts(report: Report) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for r in report.results:
        out.setdefault((r.property, r.vector), set()).add(r.verdict)
    return out


def violated(report: Report) -> set[tuple[str, str]]:
    return {(r.property, r.vector) for r in report.results if r.verdict == "VIOLATED"}


def variant(tmp_path: Path, old: str, new: str, base: str = "entry-ok.s", count: int = 1) -> Path:
    """A copy of a bundled subject with one edit (in the subject or its shared include)."""
    for name in ("entry-ok.s", "entry-bad.s", "entry-common.inc"):
        shutil.copy(ASM / name, tmp_path / name)
    for name in (base, "entry-common.inc"):
        text = (tmp_path / name).read_text()
        if old in text:
            assert text.count(old) >= count, f"edit target appears {text.count(old)} times"
            (tmp_path / name).write_text(text.replace(old, new, count))
            return tmp_path / base
    raise AssertionError(f"edit target not found: {old!r}")


@pytest.fixture(scope="module")
def ok_report() -> Report:
    return run(ASM / "entry-ok.s")


def test_correct_subject_is_proved_everywhere(ok_report: Report) -> None:
    assert {r.verdict for r in ok_report.results} == {"PROVED"}
    assert len({r.vector for r in ok_report.results}) == 16
    # its contracts are trusted here (no callee code, no checking): PROVED, but under hypotheses, each listed
    assert all(not r.closed and r.pending for r in ok_report.results)
    assert all({h.function for h in r.pending} == set(r.rests_on) for r in ok_report.results)
    assert ok_report.exit_status() == 4
    assert ok_report.exit_status(accept_hypotheses=True) == 0
    # per obligation, a synchronous slot's results cover the 64 exception classes once (split by the contracts
    # their paths rest on), an asynchronous slot's none
    cover: dict[tuple[str, str], list[int]] = {}
    for r in ok_report.results:
        cover.setdefault((r.property, r.vector), []).extend(r.ec)
    for (_, vector), ecs in cover.items():
        assert sorted(ecs) == (list(range(64)) if vector.endswith("sync") else [])


def test_classic_mistake_is_found_with_a_counterexample_that_replays() -> None:
    report = run(ASM / "entry-bad.s")
    assert violated(report) == {("eret-integrity", "el0_64_sync"), ("eret-integrity", "el0_64_irq")}
    assert report.exit_status() == 1
    result = next(r for r in report.results if r.verdict == "VIOLATED" and r.vector == "el0_64_sync")
    cex = result.counterexample
    assert cex is not None
    assert cex["failing"]["insn"] == "msr elr_el1, x21"
    assert cex["failing"]["file"].endswith("entry-bad.s")
    assert any(step["daif"] != "DAIF" for step in cex["trace"])  # the path ran with something unmasked
    assert replay_counterexample(cex) is not None
    assert sorted(result.ec) == list(range(64))


def test_ec_restricts_the_classes_proved_and_reported(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    status = main(["prove", str(ASM / "entry-bad.s"), "--vector", "el0_64_sync", "--vector", "el0_64_irq",
                   "--ec", "0x15", "--ec", "60", "--format", "json", "-o", str(out)])
    data = json.loads(out.read_text())
    sync = [r for r in data["results"] if r["vector"] == "el0_64_sync"]
    assert sync and all(r["ec"] and set(r["ec"]) <= {0x15, 0x3C} for r in sync)
    # still caught in the classes asked for, and asynchronous slots are not restricted
    assert {0x15, 0x3C} <= {ec for r in sync if r["verdict"] == "VIOLATED" for ec in r["ec"]}
    assert any(r["vector"] == "el0_64_irq" and r["verdict"] == "VIOLATED" for r in data["results"])
    assert status == 1
    assert any("only exception classes 0x15, 0x3c" in line for line in data["assumptions"])


def test_json_report_has_the_documented_shape(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    status = main(["prove", str(ASM / "entry-bad.s"), "--vector", "el0_64_irq", "--format", "json", "-o", str(out)])
    assert status == 1
    data = json.loads(out.read_text())
    assert set(data) >= {"results", "assumptions", "inputs"}
    result = next(r for r in data["results"] if r["verdict"] == "VIOLATED")
    assert set(result) >= {"property", "vector", "ec", "verdict", "reason", "counterexample"}
    assert result["vector"] == "el0_64_irq" and result["ec"] == []
    cex = result["counterexample"]
    assert set(cex) >= {"initial", "trace", "failing"}
    assert set(cex["initial"]) >= {"SPSR_EL1", "MDSCR_EL1", "ESR_EL1", "thread_flags", "capabilities"}
    assert set(cex["trace"][0]) >= {"file", "line", "function", "daif", "mdscr"}
    assert any("masking order" in a for a in data["assumptions"])
    assert main(["replay", str(out)]) == 0


# ------------------------------------------------------------------------------------ seeded defects

SEEDED = [
    # the return path no longer re-arms MDSCR_EL1.SS for a stepped task
    ("ss-restored", "el0_64_sync", "\tenable_step_tsk x19, x20\t\t// x19: the thread flags ret_to_user read\n", "\n"),
    # ELR and SPSR swapped
    ("d-restored", "el1h_sync", "\tmsr\telr_el1, x21\n\tmsr\tspsr_el1, x22\n",
     "\tmsr\telr_el1, x22\n\tmsr\tspsr_el1, x21\n"),
    # interrupts unmasked without debug: against the masking order
    ("daif-order", "el0_64_sync", "\tenable_daif\n\t.endif\n\tbl\tdo_el0_sync",
     "\tmsr\tdaifclr, #2\n\t.endif\n\tbl\tdo_el0_sync"),
    # the step is switched off, but D is unmasked before the write is synchronised
    ("mdscr-sync", "el0_64_sync", "\tisb\t\t\t\t\t// the step must be off before D is unmasked\n", "\n"),
]


@pytest.mark.parametrize(("prop", "vector", "old", "new"), SEEDED, ids=[s[0] for s in SEEDED])
def test_seeded_defect_is_caught(tmp_path: Path, prop: str, vector: str, old: str, new: str) -> None:
    report = run(variant(tmp_path, old, new), vector)
    assert (prop, vector) in violated(report), verdicts(report)
    result = next(r for r in report.results if r.verdict == "VIOLATED" and r.property == prop)
    assert replay_counterexample(result.counterexample) is not None


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\tmsr\tdaifset, #0xf\n\t.endm", "\tmsr\tdaifset, #0xf\n\tmsr\tdaifset, #0xf\n\t.endm"),  # a duplicated mask
        ("\tmsr\tspsr_el1, x22\n", "\tmsr\tspsr_el1, x22\n\tisb\n"),  # an extra isb
        ("\tmov\tx0, sp\n\tbl\thandle_irq", "\tmov\tx0, sp\n\tnop\n\tbl\thandle_irq"),  # a nop
    ],
    ids=["duplicated-mask", "extra-isb", "extra-nop"],
)
def test_behaviour_preserving_edit_changes_no_verdict(tmp_path: Path, ok_report: Report, old: str, new: str) -> None:
    report = run(variant(tmp_path, old, new))
    assert verdicts(report) == verdicts(ok_report)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_file_rewritten_in_place_is_lifted_again(tmp_path: Path, jobs: int) -> None:
    """Proofs in one process (the API, a test's tree copy) and in the worker pool never reuse the image of
    an earlier version of the same path."""
    shutil.copy(ASM / "entry-common.inc", tmp_path / "entry-common.inc")
    subject = tmp_path / "subject.s"
    config = ProveConfig(files=[subject], contracts=BUNDLED_CONTRACTS,
                         slots=(slot_by_name("el0_64_sync"), slot_by_name("el0_64_irq")))
    subject.write_text((ASM / "entry-ok.s").read_text())
    assert not violated(prove(config, jobs=jobs))
    subject.write_text((ASM / "entry-bad.s").read_text())
    assert violated(prove(config, jobs=jobs))
    subject.write_text((ASM / "entry-ok.s").read_text())
    assert not violated(prove(config, jobs=jobs))


@pytest.mark.parametrize("thread_running", [False, True], ids=["forked", "fork-server"])
def test_workers_prove_as_this_process_does_however_they_start(monkeypatch: pytest.MonkeyPatch,
                                                               thread_running: bool) -> None:
    """Workers are forked from this process (with its prepared image) unless another thread runs here, when a
    fork server starts them clean: either way they give the verdicts of a proof in this process."""
    started: list[str] = []
    real = multiprocessing.get_context

    def recording(method: str | None = None) -> multiprocessing.context.BaseContext:
        started.append(str(method))
        return real(method)

    monkeypatch.setattr(pool.multiprocessing, "get_context", recording)
    config = ProveConfig(files=[ASM / "entry-bad.s"], contracts=BUNDLED_CONTRACTS,
                         slots=(slot_by_name("el0_64_sync"), slot_by_name("el0_64_irq"), slot_by_name("el1h_irq")))
    here = prove(config, jobs=1)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    if thread_running:
        other.start()
    try:
        pooled = prove(config, jobs=2)
    finally:
        stop.set()
        if thread_running:
            other.join()
    assert started == ["forkserver" if thread_running else "fork"]
    assert violated(here) and verdicts(pooled) == verdicts(here)


def test_the_command_exits_with_its_status_its_report_written_and_its_temporary_files_gone(tmp_path: Path) -> None:
    """`entry-verify` leaves without tearing the interpreter down: the status, the report and the clean-up of
    the objects assembled for Unicorn must survive that."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = tmp_path / "report.json"
    env = {**os.environ, "TMPDIR": str(scratch)}
    done = subprocess.run([sys.executable, "-m", "verifier.cli.main", "prove", str(ASM / "entry-bad.s"),
                           "--vector", "el0_64_irq", "--format", "json", "-o", str(out)],
                          env=env, capture_output=True, text=True, cwd=ASM.parent)
    assert done.returncode == 1, done.stderr
    report = json.loads(out.read_text())
    assert any(r["verdict"] == "VIOLATED" and r.get("counterexample", {}).get("unicorn", {}).get("reproduced")
               for r in report["results"])
    assert list(scratch.iterdir()) == []


def test_output_into_a_pipe_writes_into_it_and_leaves_it_a_pipe(tmp_path: Path) -> None:
    """`-o /dev/null` once replaced /dev/null with a regular file (atomic rename over a device)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    write_output("report\n", str(fifo))
    reader.join(timeout=10)
    assert received == ["report\n"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


# ------------------------------------------------------------------------------------- call names

# clang ends each function with a `.Lfunc_endN` label, at the address where the next one begins: a call
# there is a call of the next function, and gets that function's contract.
CLANG_LAYOUT = """
	.text
	.type	helper, %function
helper:
	ret
.Lfunc_end0:
	.size	helper, .Lfunc_end0-helper
	.type	do_notify_resume, %function
do_notify_resume:
	msr	daifset, #8
	msr	daifclr, #2			// I without D: against the masking order, if it ran
	ret
.Lfunc_end1:
	.size	do_notify_resume, .Lfunc_end1-do_notify_resume
"""


@pytest.mark.parametrize("lift", [False, True])
def test_a_call_is_named_by_the_function_not_by_the_label_ending_the_one_before(tmp_path: Path, lift: bool) -> None:
    subject = variant(tmp_path, "\t.include \"entry-common.inc\"\n", "\t.include \"entry-common.inc\"\n" + CLANG_LAYOUT)
    contracts = tmp_path / "contracts.toml"
    section = "[function.do_notify_resume]\n"
    text = BUNDLED_CONTRACTS.read_text()
    assert section in text
    contracts.write_text(text.replace(section, f"{section}lift = {str(lift).lower()}\n"))
    config = ProveConfig(files=[subject], contracts=contracts, slots=(slot_by_name("el0_64_sync"),))
    report = prove(config)
    # summarised by its contract, the lifted body is never run; lifted, it is, and breaks the masking order
    assert violated(report) == ({("daif-order", "el0_64_sync")} if lift else set()), verdicts(report)



@pytest.mark.parametrize(
    ("helper", "verdict"),
    [
        # the return address comes from the interrupted context's saved x1: anything
        ("\tldr\tx30, [x0, #8]\n\tret\n", "UNKNOWN"),
        # the frame lives on a stack in global memory (as the IRQ and overflow stacks do), which the handler's
        # contract lets it write: its callers' frames are not written (CALLERS_FRAMES), the saved x30 comes back
        ("\tadrp\tx9, helper_stack\n\tadd\tx9, x9, :lo12:helper_stack\n"
         "\tadd\tx9, x9, #256\n\tmov\tx27, sp\n\tmov\tsp, x9\n\tstp\tx29, x30, [sp, #-16]!\n\tbl\thandle_irq\n"
         "\tldp\tx29, x30, [sp], #16\n\tmov\tsp, x27\n\tret\n", "PROVED"),
    ],
    ids=["return-address-from-memory", "frame-on-another-stack"],
)
def test_a_return_goes_to_the_caller_on_every_value_of_its_target(tmp_path: Path, helper: str, verdict: str) -> None:
    """A lifted function's `ret` continues at its caller only when every value its target can take is the
    return address: one that may be anything else leaves the path not covered, never followed as a return."""
    old = "\tmov\tx0, sp\n\tbl\thandle_irq\n\tb\tret_to_user\n"
    new = "\tmov\tx0, sp\n\tbl\tirq_helper\n\tb\tret_to_user\n\n\t.type\tirq_helper, %function\nirq_helper:\n" + helper
    report = run(variant(tmp_path, old, new), "el0_64_irq")
    found = {r.verdict for r in report.results if r.property == "d-restored"}
    assert found == {verdict}, [(r.property, r.verdict, r.reason) for r in report.results]
    if verdict == "UNKNOWN":
        assert all("return to an address other than the caller's" in r.reason for r in report.results)


def test_a_function_digest_changes_with_its_own_code_only(tmp_path: Path) -> None:
    """What a series compares to reuse a result: an instruction added to one function (which moves every
    function after it) changes that function's digest and no other's."""
    from verifier.engine.image import Image
    from verifier.proof.slot import lift_all

    def digests(path: Path) -> dict[str, str | None]:
        image = Image.link(lift_all([path], None))
        names = {name for local in image.locals for name in local if not name.startswith((".L", "$"))}
        return {name: image.function_digest(name) for name in names}

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    before = digests(variant(tmp_path / "a", "\tmsr\tdaifclr, #8\t\t\t// D only", "\tmsr\tdaifclr, #8\t\t\t// D only"))
    after = digests(variant(tmp_path / "b", "\tmsr\tdaifclr, #8\t\t\t// D only",
                            "\tnop\n\tmsr\tdaifclr, #8\t\t\t// D only"))
    assert before.keys() == after.keys() and None not in before.values()
    assert {name for name in before if before[name] != after[name]} == {"el0t_64_irq"}


def test_the_text_report_shows_what_matters_first() -> None:
    # the seeded mistake's error on the first lines, at most 80 lines in all: each path compacted to its events
    # (the write of ELR/SPSR, the masking, the calls, the eret, the failing step); --verbose shows every step
    # as a user runs it: a process of its own (the counterexamples' models, so their paths, depend on what
    # the solver saw before in the process)
    root = Path(__file__).resolve().parents[1]

    def run(*extra: str) -> tuple[int, list[str]]:
        done = subprocess.run([sys.executable, "-m", "verifier.cli.main", "prove", str(root / "asm" / "entry-bad.s"),
                               *extra], capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        return done.returncode, done.stdout.splitlines()

    status, lines = run()
    assert status == 1
    assert len(lines) <= 80, len(lines)
    assert any(": error: " in line for line in lines[:10])
    assert any(line.startswith("legend: ") for line in lines)
    failing = [line for line in lines if line.endswith("<- fails here")]
    assert failing and all("msr elr_el1" in line for line in failing)
    assert any(line.strip().startswith("... ") for line in lines)
    status, verbose = run("--verbose")
    assert status == 1
    assert len(verbose) > len(lines) and not any(line.strip().startswith("... ") and "source line(s)" in line
                                                 for line in verbose)
    assert any(line.startswith("  - engine: ") for line in verbose) and not any(line.startswith("  - engine: ")
                                                                               for line in lines)
