"""Series runs on a git repository made from the Debian 6.1 tree: a four-commit series (a commit that touches no
lifted file, one that breaks an obligation, a harmless one, one that fixes it), a "no functional change"
refactor of the return path applied from an mbox with --same-as, its variant that misses a handler, the
reports a CI system reads, and the CI job files' own commands."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kernel_repos import commit_edits, git, user_repo
from test_html_report import Page, chromium
from test_series import sarif_validator

from verifier.cli.main import main

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "proofs" / "policies" / "proposed-2020.policy"
ENTRY = "arch/arm64/kernel/entry.S"
COMMON = "arch/arm64/kernel/entry-common.c"

# The return to user re-arms MDSCR_EL1.SS for a task being single-stepped: dropping it breaks ss-restored.
REARM = "\tldr\tx19, [tsk, #TSK_TI_FLAGS]\t// re-check for single-step\n\tenable_step_tsk x19, x2\n"
NO_REARM = "\tldr\tx19, [tsk, #TSK_TI_FLAGS]\t// re-check for single-step\n"
# The return to the kernel masks DAIF before restoring ELR/SPSR.
EXIT_MASK = "\t.macro\tkernel_exit, el\n\t.if\t\\el != 0\n\tdisable_daif\n\t.endif\n"
EXIT_NO_MASK = "\t.macro\tkernel_exit, el\n"
MASK_TWICE = "\t.macro\tkernel_exit, el\n\t.if\t\\el != 0\n\tdisable_daif\n\tdisable_daif\n\t.endif\n"
# The C handlers that return with exceptions unmasked: el1_interrupt() (IRQ and FIQ) and the SError handler.
IRQ_RETURN = ("\telse\n\t\t__el1_irq(regs, handler);\n}\n", "\telse\n\t\t__el1_irq(regs, handler);\n\n"
              "\tlocal_daif_mask();\n}\n")
SERROR_RETURN = ("\tdo_serror(regs, esr);\n\tarm64_exit_nmi(regs);\n}\n",
                 "\tdo_serror(regs, esr);\n\tarm64_exit_nmi(regs);\n\tlocal_daif_mask();\n}\n")

# el0_da() unmasks only D and A before do_mem_abort(): one C handler changed, on the same source lines
DA_DAIF = ("el0_da(struct pt_regs *regs, unsigned long esr)\n{\n\tunsigned long far = read_sysreg(far_el1);\n\n"
           "\tenter_from_user_mode(regs);\n\tlocal_daif_restore(DAIF_PROCCTX);",
           "el0_da(struct pt_regs *regs, unsigned long esr)\n{\n\tunsigned long far = read_sysreg(far_el1);\n\n"
           "\tenter_from_user_mode(regs);\n\tlocal_daif_restore(DAIF_PROCCTX_NOIRQ);")


def fingerprint(repo: Path) -> list[tuple[str, int, int]]:
    """Every file of a repository with its size and modification time: what `untouched` means. (Git refreshes
    the time of an object in the borrowed store when the scratch clone writes the same object again, as it
    does to keep objects from being pruned; the objects' set and sizes must not change.)"""
    return sorted((str(p.relative_to(repo)), p.stat().st_size,
                   0 if p.relative_to(repo).parts[:2] == (".git", "objects") else p.stat().st_mtime_ns)
                  for p in repo.rglob("*") if p.is_file())


def series(cache: Path, out: Path, *args: str) -> tuple[int, float]:
    started = time.perf_counter()
    status = main(["series", "--cache-dir", str(cache), "--policy", str(POLICY), "-o", str(out), *args])
    return status, time.perf_counter() - started


@pytest.fixture(scope="module")
def setting(kernel_tree: Callable[[str], Path], kernel_asm: Callable[[str], dict[str, Path]],
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    kernel_tree("6.1")
    kernel_asm("6.1")  # the cross toolchain is there (or the test is skipped, or fails under CI)
    tmp = tmp_path_factory.mktemp("series")
    repo = user_repo(tmp, "6.1")
    base = git(repo, "rev-parse", "base")
    shas = {"base": base}
    shas["untouched"] = commit_edits(repo, base, {"README": [("Linux kernel", "The Linux kernel")]},
                                     "README: say which kernel", "series")
    shas["break"] = commit_edits(repo, shas["untouched"], {ENTRY: [(REARM, NO_REARM)]},
                                 "arm64: entry: drop the single-step re-arm on return to user", "series")
    shas["harmless"] = commit_edits(repo, shas["break"], {ENTRY: [(EXIT_MASK, MASK_TWICE)]},
                                    "arm64: entry: mask DAIF twice in kernel_exit", "series")
    shas["fix"] = commit_edits(repo, shas["harmless"], {ENTRY: [(NO_REARM, REARM)]},
                               "arm64: entry: restore the single-step re-arm", "series")
    patches = {}
    for name, handlers in (("refactor", [IRQ_RETURN, SERROR_RETURN]), ("missing-serror", [IRQ_RETURN])):
        first = commit_edits(repo, base, {COMMON: handlers},
                             "arm64: entry: mask DAIF where the EL1 handlers return", name)
        commit_edits(repo, first, {ENTRY: [(EXIT_MASK, EXIT_NO_MASK)]},
                     "arm64: entry: leave the final masking to the C handlers\n\nNo functional change intended.",
                     name)
        patches[name] = tmp / f"{name}.mbox"
        patches[name].write_text(git(repo, "format-patch", "--stdout", f"{base}..{name}", raw=True))
    return {"repo": repo, "shas": shas, "cache": tmp / "cache", "tmp": tmp, "patches": patches,
            "before": fingerprint(repo)}


@pytest.fixture(scope="module")
def first_run(setting: dict[str, Any]) -> dict[str, Any]:
    out = setting["tmp"] / "first.json"
    status, seconds = series(setting["cache"], out, "--tree", str(setting["repo"]), "--range", "base..series",
                             "--format", "json")
    return {"status": status, "seconds": seconds, "data": json.loads(out.read_text())}


def test_series_names_the_breaking_and_the_fixing_commit(setting: dict[str, Any], first_run: dict[str, Any]) -> None:
    shas, data = setting["shas"], first_run["data"]
    assert [c["sha"] for c in data["commits"]] == [shas[k] for k in ("untouched", "break", "harmless", "fix")]
    assert [c["cached"] for c in data["commits"]] == [True, False, False, False]
    breaking = {t["sha"] for t in data["transitions"] if t["to"] == "VIOLATED"}
    fixing = {t["sha"] for t in data["transitions"] if t["from"] == "VIOLATED"}
    assert breaking == {shas["break"]} and fixing == {shas["fix"]}
    assert {t["sha"] for t in data["transitions"]} == {shas["break"], shas["fix"]}
    broken = {(t["property"], t["vector"]) for t in data["transitions"] if t["sha"] == shas["break"]}
    assert ("ss-restored", "el0_64_irq") in broken and all(v.startswith("el0_") for _, v in broken)
    for item in data["summary"]["breaks"]:
        assert (item["broken_by"], item["fixed_by"]) == (shas["break"], shas["fix"])

    def verdicts(entry: dict) -> list:
        return sorted((v["property"], v.get("rule"), v["vector"], v["ec"], v["verdict"]) for v in entry["verdicts"])

    assert verdicts(data["commits"][-1]) == verdicts(data["base"])  # the fix restores every verdict
    assert first_run["status"] == 1  # the base already violates policy rules on 6.1 (--fail-on any)
    # the developer's repository: not a byte or a timestamp changed, and nothing was checked out in it
    assert fingerprint(setting["repo"]) == setting["before"]
    assert {p.name for p in setting["repo"].iterdir()} == {".git"}


def test_second_run_is_all_cached_and_ten_times_faster(setting: dict[str, Any], first_run: dict[str, Any]) -> None:
    out = setting["tmp"] / "second.json"
    status, seconds = series(setting["cache"], out, "--tree", str(setting["repo"]), "--range", "base..series",
                             "--format", "json")
    data = json.loads(out.read_text())
    assert status == first_run["status"]
    assert all(c["cached"] for c in data["commits"]) and data["summary"]["proofs"] == 0
    assert data["transitions"] == first_run["data"]["transitions"]
    assert seconds * 10 <= first_run["seconds"], (seconds, first_run["seconds"])


def test_html_page_of_the_series_leads_to_the_counterexample(setting: dict[str, Any], first_run: dict[str, Any]
                                                             ) -> None:
    # the same series again (served from the cache) as one page: the breaking commit's ss-restored cell is
    # marked and leads to the counterexample's timeline, whose MDSCR_EL1.SS lane stays clear at the eret
    out = setting["tmp"] / "series.html"
    status, _ = series(setting["cache"], out, "--tree", str(setting["repo"]), "--range", "base..series",
                       "--format", "html")
    assert status == first_run["status"]
    text = out.read_text()
    assert not re.search(r"https?://|<link|<script src|@import", text), "a network reference"
    page = Page()
    page.feed(text)
    shas = setting["shas"]
    assert page.commits[1:] == [shas[k] for k in ("untouched", "break", "harmless", "fix")]
    marked = {(c["commit"], c["transition"]) for c in page.cells if "transition" in c}
    assert (shas["break"], "breaks") in marked and (shas["fix"], "fixes") in marked
    assert {commit for commit, _ in marked} == {shas["break"], shas["fix"]}
    broken = next(c for c in page.cells if c.get("transition") == "breaks" and "ss-restored" in c["href"])
    section = broken["href"].lstrip("#")
    assert section in page.sections
    failing = [f for f in page.failing if f.startswith(section + " ")]
    assert failing and "entry.S:" in failing[0]
    assert {"D", "I", "MDSCR.SS", "ISB"} <= page.lanes[section]
    step = failing[0].split()[-1]
    assert page.states[(section, "MDSCR.SS", step)] == "off"  # returning to the task without its step re-armed
    browser = chromium()
    if browser is not None:
        shot = setting["tmp"] / "series.png"
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--screenshot={shot}", "--window-size=1400,900", out.as_uri()],
                       capture_output=True, timeout=120)
        assert shot.is_file() and shot.stat().st_size > 10_000
        if os.environ.get("ENTRY_VERIFY_SCREENSHOTS"):
            shutil.copy(shot, ROOT / "docs" / "series-6.1.png")


def test_sarif_and_junit_of_the_series(setting: dict[str, Any], first_run: dict[str, Any]) -> None:
    out = setting["tmp"] / "series.sarif"
    status, _ = series(setting["cache"], out, "--tree", str(setting["repo"]), "--range", "base..series",
                       "--format", "sarif", "--fail-on", "new")
    assert status == 1  # the breaking commit is a regression even though a later commit fixes it
    doc = json.loads(out.read_text())
    errors = list(sarif_validator().iter_errors(doc))
    assert not errors, [e.message for e in errors[:3]]
    results = doc["runs"][0]["results"]
    regression = [r for r in results if r["ruleId"] == "ss-restored"]
    assert regression and all(r["properties"]["commit"] == setting["shas"]["break"] for r in regression)
    for result in results:
        if result["level"] == "error":
            steps = result["codeFlows"][0]["threadFlows"][0]["locations"]
            assert len(steps) > 3
            for step in steps:  # every step of the path is a line of the tree at that commit
                location = step["location"]["physicalLocation"]
                path = location["artifactLocation"]["uri"]
                text = git(setting["repo"], "cat-file", "blob", f"{result['properties']['commit']}:{path}", raw=True)
                assert location["region"]["startLine"] <= text.count("\n") + 1
    junit = setting["tmp"] / "series.xml"
    series(setting["cache"], junit, "--tree", str(setting["repo"]), "--range", "base..series", "--format", "junit")
    suites = ET.parse(junit).getroot().findall("testsuite")
    violated = [sum(v["verdict"] == "VIOLATED" for v in c["verdicts"]) for c in first_run["data"]["commits"]]
    assert [int(s.get("failures", "-1")) for s in suites] == violated


def test_refactor_from_an_mbox_is_the_same_as_its_base(setting: dict[str, Any], first_run: dict[str, Any]) -> None:
    out = setting["tmp"] / "refactor.json"
    status, _ = series(setting["cache"], out, "--tree", str(setting["repo"]), "--base", "base", "--mbox",
                       str(setting["patches"]["refactor"]), "--same-as", "base", "--format", "json")
    data = json.loads(out.read_text())
    assert len(data["commits"]) == 2 and data["commits"][1]["subject"].startswith("arm64: entry: leave the final")
    assert data["same_as"]["equivalent"] and data["same_as"]["differences"] == []
    assert data["transitions"] == []
    assert status == 0
    assert fingerprint(setting["repo"]) == setting["before"]  # git am ran in the scratch clone
    # the same series as a directory of patches: the same trees, so nothing to build or prove
    patches = setting["tmp"] / "outgoing"
    git(setting["repo"], "format-patch", "--quiet", "-o", str(patches), "base..refactor")
    out = setting["tmp"] / "refactor-dir.json"
    status, _ = series(setting["cache"], out, "--tree", str(setting["repo"]), "--base", "base", "--patches",
                       str(patches), "--same-as", "base", "--format", "json")
    again = json.loads(out.read_text())
    assert status == 0 and all(c["cached"] for c in again["commits"])
    assert [c["verdicts"] for c in again["commits"]] == [c["verdicts"] for c in data["commits"]]


EL1_SLOTS = [arg for slot in ("el1t_sync", "el1t_irq", "el1t_fiq", "el1t_serror", "el1h_sync", "el1h_irq",
                               "el1h_fiq", "el1h_serror") for arg in ("--vector", slot)]


def test_refactor_missing_a_handler_is_reported_with_the_slot_it_breaks(setting: dict[str, Any],
                                                                        first_run: dict[str, Any]) -> None:
    # The variant differs from the refactor above (proved the same as its base on all 16 slots) only in an
    # EL1 handler, and the refactor only changes the return to EL1: the EL1 slots keep this test short.
    out = setting["tmp"] / "missing.txt"
    status, _ = series(setting["cache"], out, "--tree", str(setting["repo"]), "--base", "base", "--mbox",
                       str(setting["patches"]["missing-serror"]), "--same-as", "base", "--format", "json",
                       *EL1_SLOTS)
    data = json.loads(out.read_text())
    assert status == 1 and not data["same_as"]["equivalent"]
    changed = {(d["property"], d["vector"]) for d in data["same_as"]["differences"]}
    assert changed == {("eret-integrity", "el1h_serror")}
    second = data["commits"][1]["sha"]
    assert {(t["sha"], t["vector"], t["to"]) for t in data["transitions"]} == {(second, "el1h_serror", "VIOLATED")}


def test_a_patch_that_does_not_apply_is_an_input_error(setting: dict[str, Any], first_run: dict[str, Any],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    mbox = setting["tmp"] / "stale.mbox"
    mbox.write_text(setting["patches"]["refactor"].read_text().replace("disable_daif", "disable_daif_oops"))
    status, _ = series(setting["cache"], setting["tmp"] / "stale.txt", "--tree", str(setting["repo"]),
                       "--base", "base", "--mbox", str(mbox))
    err = capsys.readouterr().err
    assert status == 2 and "git am could not apply the series" in err and "Traceback" not in err
    assert not (setting["tmp"] / "stale.txt").exists()
    status, _ = series(setting["cache"], setting["tmp"] / "bad-rev.txt", "--tree", str(setting["repo"]),
                       "--range", "base..no-such-branch")
    assert status == 2 and "unknown revision 'no-such-branch'" in capsys.readouterr().err


def test_shards_split_the_proofs_and_merge_gives_the_same_report(setting: dict[str, Any],
                                                                 tmp_path: Path) -> None:
    # Cold proofs (another loop bound is another cache key) that reuse the scratch clone and its builds.
    cache = setting["cache"]
    vectors = ["--vector", "el1h_irq", "--vector", "el1h_fiq", "--vector", "el1t_sync", "--loop-bound", "9"]
    args = ["--tree", str(setting["repo"]), "--range", "series~2..series", *vectors]
    docs = []
    for index in (1, 2):
        out = tmp_path / f"shard-{index}.json"
        status, _ = series(cache, out, *args, "--shard", f"{index}/2", "-j", "1")
        assert status == 0
        docs.append(json.loads(out.read_text()))
    proved = [{(key, slot) for key, slots in doc["proved"].items() for slot in slots} for doc in docs]
    assert proved[0] and proved[1] and not proved[0] & proved[1]
    assert len(proved[0] | proved[1]) == 3 * 3  # three distinct inputs (series~2, ~1, tip), three slots
    merged = tmp_path / "merged.json"
    merged_status = main(["merge", str(tmp_path / "shard-1.json"), str(tmp_path / "shard-2.json"), "--format",
                          "json", "-o", str(merged)])
    whole = tmp_path / "whole.json"
    status, _ = series(cache, whole, *args, "--format", "json")
    assert merged_status == status == 1  # R4 fails on el1h_irq in every commit (6.1 has no SS stash)
    merged_data, whole_data = json.loads(merged.read_text()), json.loads(whole.read_text())
    assert whole_data["summary"]["proofs"] == 0  # the shards' results are in the cache
    assert merged_data["transitions"] == whole_data["transitions"]

    def verdicts(entry: dict[str, Any]) -> list[dict[str, Any]]:
        # each shard checks the contracts of its own slots' calls (merge keeps the worst of each function's
        # checks), the whole run those of all of them: what a check says of a pending contract may differ
        return [{k: v for k, v in verdict.items() if k != "pending"} for verdict in entry["verdicts"]]

    assert verdicts(merged_data["base"]) == verdicts(whole_data["base"])
    assert [verdicts(c) for c in merged_data["commits"]] == [verdicts(c) for c in whole_data["commits"]]


def _job_commands(path: Path) -> list[str]:
    """The shell commands of a CI file that run entry-verify."""
    data = yaml.safe_load(path.read_text())
    jobs = data.get("jobs", data)  # GitHub nests its jobs; GitLab's are top-level keys
    commands = []
    for job in jobs.values():
        if not isinstance(job, dict):
            continue
        for step in job.get("steps", []):
            if "run" in step:
                commands.append(step["run"].strip())
        for key in ("before_script", "script"):
            commands += [line.strip() for line in job.get(key, [])]
    # the commands that run the tool: their program is entry-verify itself or the job script
    return [c for c in commands if c.split()[0].endswith(("/entry-verify", "entry-verify-job.sh"))]


@pytest.mark.parametrize("ci_file", ["github/entry-verify.yml", "gitlab/entry-verify.yml"])
def test_ci_job_files_run_the_job_script(setting: dict[str, Any], first_run: dict[str, Any], ci_file: str,
                                         tmp_path: Path) -> None:
    path = ROOT / "ci" / ci_file
    schema = "vendor.github-workflows" if ci_file.startswith("github") else "vendor.gitlab-ci"
    checked = subprocess.run([str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema",
                              schema, str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    commands = _job_commands(path)
    modes = [c.removeprefix("entry-verify/ci/entry-verify-job.sh ") for c in commands]
    assert all(c.startswith("entry-verify/ci/entry-verify-job.sh ") for c in commands), commands
    assert sorted(set(modes)) == ["merge", "setup", "shard"]
    # Run those very command lines, as the CI system would: the tool checked out at entry-verify/, the
    # kernel repository as the job's tree, the series' base and tip as the CI system sets them.
    (tmp_path / "entry-verify").symlink_to(ROOT)
    env = {**os.environ, "EV_TREE": str(setting["repo"]), "EV_BASE": setting["shas"]["base"],
           "EV_TIP": setting["shas"]["fix"], "EV_OUT": "out", "ENTRY_VERIFY_CACHE": str(setting["cache"])}
    env.pop("CI_NODE_INDEX", None)
    statuses = {}
    for command in dict.fromkeys(commands):
        mode = command.split()[-1]
        shards = ["1/2", "2/2"] if mode == "shard" else [""]
        for shard in shards:
            run = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True,
                                 env={**env, "EV_SHARD": shard} if shard else env)
            statuses[(mode, shard)] = run.returncode
            assert run.returncode in (0, 1), run.stderr[-2000:]
    assert statuses[("shard", "1/2")] == statuses[("shard", "2/2")] == 0
    assert statuses[("merge", "")] == 1  # --fail-on new: the breaking commit is a regression
    doc = json.loads((tmp_path / "out" / "entry-verify.sarif").read_text())
    assert not list(sarif_validator().iter_errors(doc))
    assert ET.parse(tmp_path / "out" / "entry-verify-junit.xml").getroot().tag == "testsuites"
    assert "#### Transitions" in (tmp_path / "out" / "entry-verify.md").read_text()


def verdict_cells(entry: dict[str, Any]) -> dict[tuple, str]:
    """A commit's verdicts per property, rule, slot and exception class (however the results group them)."""
    return {(v["property"], v.get("rule"), v["vector"], ec): v["verdict"]
            for v in entry["verdicts"] for ec in (v["ec"] or [None])}


def test_a_handler_change_proves_again_only_the_classes_that_reach_it(setting: dict[str, Any],
                                                                        first_run: dict[str, Any]) -> None:
    """A commit changing el0_da() after the base: the 14 slots that never run it take the base's results, the
    two synchronous EL0 slots prove only the data abort class again; the verdicts are those of a full proof
    of that commit (its own series, with nothing cached, where it is the base)."""
    repo, base = setting["repo"], setting["shas"]["base"]
    changed = commit_edits(repo, base, {COMMON: [DA_DAIF]}, "arm64: entry: el0_da with IRQs masked", "handler")
    commit_edits(repo, changed, {"README": [("Linux kernel", "The Linux kernel")]}, "README", "after-handler")
    out = setting["tmp"] / "handler.json"
    series(setting["cache"], out, "--tree", str(repo), "--range", "base..handler", "--format", "json")
    entry = json.loads(out.read_text())["commits"][0]
    sync = {"el0_64_sync", "el0_32_sync"}
    assert {slot for slot, how in entry["reused"].items() if how == "all classes"} == \
        {v["vector"] for v in entry["verdicts"]} - sync
    assert {slot: how for slot, how in entry["reused"].items() if slot in sync} == {
        slot: "all classes but 1 proved again" for slot in sync}
    full = setting["tmp"] / "handler-full.json"
    series(setting["tmp"] / "cache-full", full, "--tree", str(repo), "--range", "handler..after-handler",
           "--format", "json", "-j2")
    whole = json.loads(full.read_text())["base"]
    assert not whole["reused"] and verdict_cells(whole) == verdict_cells(entry)
    # what the results record for the next commit: only the data abort class reaches el0_da, after the
    # partial proof as after the full one (a partial proof lists only the classes it proved)
    kept = [json.loads(p.read_text()) for cache in (setting["cache"], setting["tmp"] / "cache-full")
            for p in (cache / "results").glob("*/el0_64_sync.json")]
    assert any(str(o["stats"].get("reused", "")).startswith("all classes but") for o in kept)
    assert {tuple(o["depends"]["classes"]["el0_da"]) for o in kept if "el0_da" in o["depends"]["classes"]} == {(0x24,)}


# do_sp_pc_abort() (arch/arm64/mm/fault.c, a callee of entry-common.c's el0_pc) sets the saved PSTATE's D bit
FAULT = "arch/arm64/mm/fault.c"
SETS_D = ('\tarm64_notify_die("SP/PC alignment exception", regs, SIGBUS, BUS_ADRALN,\n\t\t\t addr, esr);\n',
          '\tarm64_notify_die("SP/PC alignment exception", regs, SIGBUS, BUS_ADRALN,\n\t\t\t addr, esr);\n'
          "\tregs->pstate |= PSR_D_BIT;\n")


def test_a_commit_that_breaks_a_callees_contract_is_reported_as_kernel_reports_it(
        setting: dict[str, Any], first_run: dict[str, Any]) -> None:
    """The series checks each commit's contracts against that commit's callee ring: the commit that makes
    do_sp_pc_abort() write the saved D bit turns its contract VIOLATED, the slot is proved again through
    fault.c's code, and d-restored on the SP/PC alignment class breaks at that commit, confirmed on Unicorn."""
    repo, base = setting["repo"], setting["shas"]["base"]
    commit_edits(repo, base, {FAULT: [SETS_D]}, "arm64: mm: mask debug exceptions after an alignment fault",
                 "callee")
    out = setting["tmp"] / "callee.json"
    status, _ = series(setting["cache"], out, "--tree", str(repo), "--range", "base..callee", "--vector",
                       "el0_64_sync", "--ec", "0x22", "--format", "json")
    data = json.loads(out.read_text())
    assert status == 1
    broken = [(t["property"], t["vector"], t["ec"], t["from"], t["to"]) for t in data["transitions"]]
    assert ("d-restored", "el0_64_sync", 0x22, "PROVED", "VIOLATED") in broken, broken
    assert any(line.startswith("followed: contract do_sp_pc_abort is violated by its code")
               for line in data["assumptions"]), data["assumptions"]
    tip = data["commits"][-1]
    assert not any("rests on the contract" in v.get("reason", "") for v in tip["verdicts"])
    assert all(v["ec"] == [0x22] for v in tip["verdicts"])  # --ec: only that class was proved
