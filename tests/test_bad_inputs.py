"""Every file-taking option of every subcommand, given a bad input (missing, a directory, binary, empty,
truncated, of the wrong kind, an output that cannot be written): a one-line error in the `file: error:`
form, exit 2, no traceback, nothing written, and no proof started. The cases come from the parser itself,
so an option added later is covered, or the test says it does not know it."""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verifier.cli.inputs import CHECKED_ELSEWHERE, FILE_CHECKS
from verifier.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
GOOD = {
    "policy": ROOT / "proofs" / "policies" / "proposed-2020.policy",
    "assumptions": ROOT / "proofs" / "assumptions.toml",
    "waivers": ROOT / "proofs" / "waivers.toml",
    "contracts": ROOT / "proofs" / "contracts" / "bundled.toml",
}
# what each file-taking destination is given instead of its own kind
WRONG_KIND = {"policy": "assumptions", "assumptions": "waivers", "waivers": "assumptions", "contracts": "assumptions",
              "report": "policy", "file": "waivers", "shards": "assumptions", "callees": None, "mbox": None,
              "patches": None}
# the arguments a subcommand needs before its options are looked at (argparse's own required ones)
REQUIRED = {"kernel": ["--tree", "{tree}"], "kernel-asm": ["--tree", "{tree}"], "series": ["--tree", "{tree}"]}
POSITIONAL_REPORTS = {"explain": "report", "replay": "file", "merge": "shards"}
ERROR_LINE = re.compile(r"^(\S+?(:\d+(:\d+)?)?: )?error: \S")
KINDS = ("missing", "directory", "binary", "empty", "truncated", "wrong kind")


@dataclass(frozen=True)
class Case:
    command: str
    dest: str
    option: str | None  # None: positional


def _cases() -> list[Case]:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for command, sub in subparsers.choices.items():
        for action in sub._actions:
            dest = action.dest
            if dest in FILE_CHECKS or dest == "output":
                out.append(Case(command, dest, action.option_strings[-1] if action.option_strings else None))
    return out


CASES = _cases()


def test_every_file_taking_option_is_known() -> None:
    # an option whose value names a file is either checked by cli/inputs.py or listed as checked elsewhere
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command, sub in subparsers.choices.items():
        for action in sub._actions:
            metavar = (action.metavar or "").upper()
            names_a_file = action.type is Path or metavar in ("F", "FILE", "DIR", "F.S", "FILE.S") \
                or metavar.endswith(".JSON")
            if names_a_file:
                assert action.dest in FILE_CHECKS or action.dest in CHECKED_ELSEWHERE or action.dest == "output", \
                    f"{command} {action.option_strings or action.dest}: a file option cli/inputs.py does not check"
    assert {c.command for c in CASES} >= {"prove", "kernel", "series", "merge", "explain", "replay"}


def _bad_file(tmp: Path, case: Case, kind: str, junk: bytes) -> Path:
    path = tmp / f"input-{case.dest}"
    if kind == "missing":
        return path
    if kind == "directory":
        path.mkdir()
        return path
    if kind == "binary":
        path.write_bytes(b"\x00\x7fELF" + junk)
        return path
    if kind == "empty":
        path.write_bytes(b"\n" if junk[:1] == b"\x00" else b"")
        return path
    if kind == "truncated":
        good = GOOD.get(case.dest, GOOD["policy"] if case.dest not in POSITIONAL_REPORTS.values() else None)
        text = good.read_text() if good is not None else '{"format": "entry-verify report", "results": [{"ve'
        quote = text.index('"', len(text) // 3)
        path.write_text(text[: quote + 2])  # cut inside a string: never a whole file
        return path
    wrong = WRONG_KIND.get(case.dest)
    path.write_text(GOOD[wrong].read_text() if wrong else "\x00")
    return path


def _argv(case: Case, value: Path, tmp: Path) -> list[str]:
    tree = tmp / "tree"
    tree.mkdir(exist_ok=True)
    argv = [case.command, *(a.format(tree=tree) for a in REQUIRED.get(case.command, []))]
    if case.command == "series" and case.dest not in ("mbox", "patches"):
        argv += ["--range", "v6.0..v6.1"]  # one of --range, --mbox, --patches
    if case.command in POSITIONAL_REPORTS and case.dest != POSITIONAL_REPORTS[case.command]:
        report = tmp / "good.json"
        report.write_text('{"format": 1, "results": []}')
        argv.append(str(report))
    if case.command in ("prove", "lift", "crosscheck") and case.dest != "files":
        argv.append(str(ROOT / "asm" / "entry-ok.s"))
    argv += [case.option, str(value)] if case.option else [str(value)]
    return argv


def _snapshot(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.sampled_from(CASES), kind=st.sampled_from(KINDS), junk=st.binary(max_size=64))
def test_a_bad_input_is_one_clear_error_before_any_work(tmp_path_factory: pytest.TempPathFactory, case: Case,
                                                        kind: str, junk: bytes,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    tmp = tmp_path_factory.mktemp("bad")
    if case.dest == "output":
        value = tmp / "no-such-dir" / "report.json" if kind != "directory" else tmp
        if kind == "directory":
            (tmp / "sub").mkdir()
            value = tmp / "sub"
    else:
        if case.dest == "patches" and kind not in ("missing", "binary", "empty"):
            kind = "missing"  # a directory is what --patches wants; the file kinds are its wrong kinds
        value = _bad_file(tmp, case, kind, junk)
    argv = _argv(case, value, tmp)
    before = _snapshot(tmp)
    cwd_before = set(os.listdir("."))
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 2, (argv, status, err[-500:])
    assert "Traceback" not in err and "Traceback" not in out
    first = err.strip().splitlines()[0] if err.strip() else ""
    assert ERROR_LINE.match(first), (argv, err)
    assert "PROVE" not in err and "KBUILD" not in err, "the error came after work had started"
    assert _snapshot(tmp) == before, "something was written"
    assert set(os.listdir(".")) == cwd_before


def test_an_internal_error_is_one_line_and_its_own_status(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import verifier.cli.lift as lift

    def broken(_args: argparse.Namespace) -> int:
        raise RuntimeError("seeded bug")

    monkeypatch.setattr(lift, "SUBCOMMAND", (lift.SUBCOMMAND[0], lift.SUBCOMMAND[1], broken))
    monkeypatch.delenv("ENTRY_VERIFY_TRACEBACK", raising=False)
    status = main(["lift", str(ROOT / "asm" / "entry-ok.s")])
    err = capsys.readouterr().err
    assert status == 70 and status not in (0, 1, 2, 3, 4)
    assert err.count("\n") == 1 and "internal error: RuntimeError: seeded bug" in err and "report it" in err
