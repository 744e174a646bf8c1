"""Every file an invocation names, checked before any build or proof: missing, a directory, binary, empty,
of the wrong kind, or an output that cannot be written is a one-line error (exit 2) and nothing is written.

The checks go by the option's destination, so every subcommand that has the option gets them; a test
(tests/test_bad_inputs.py) walks the parser and fails on a file-taking option this module does not know.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from verifier.proof.lift_cache import lifted
from verifier.spec.policy import parse_policy
from verifier.spec.rules import check_rule_names
from verifier.spec.slots import load_assumptions
from verifier.spec.waivers import load_waivers
from verifier.util.errors import UserError
from verifier.util.files import read_json, read_toml

SNIFF = 4096  # bytes read to tell a text file from a binary one


def text_file(path: Path, what: str) -> str:
    """The file's text; UserError when it is missing, a directory, binary or empty."""
    if not path.exists():
        raise UserError(f"no such file ({what})", str(path))
    if path.is_dir():
        raise UserError(f"is a directory, not {what}", str(path))
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {what}: {err.strerror}", str(path)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if b"\x00" in data[:SNIFF] or (data and not text):
        raise UserError(f"a binary file, not {what}", str(path))
    if not text.strip():
        raise UserError(f"empty file, not {what}", str(path))
    return text


def _policy(path: Path) -> None:
    text_file(path, "a policy")
    check_rule_names(parse_policy(path))


def _assumptions(path: Path) -> None:
    text_file(path, "an assumptions file")
    data, _ = read_toml(path, "assumptions")
    _kind(path, data, "assumption", "an assumptions file")
    load_assumptions(path)


def _waivers(path: Path) -> None:
    if str(path) == "none":
        return
    text_file(path, "a waivers file")
    data, _ = read_toml(path, "waivers")
    _kind(path, data, "waiver", "a waivers file")
    load_waivers(path)


def _contracts(path: Path) -> None:
    text_file(path, "a contracts file")
    data, _ = read_toml(path, "contracts")
    if "family" not in data:
        raise UserError("not a contracts file (no `family`: a contracts file says which code it is for)", str(path))


def _kind(path: Path, data: dict, wanted: str, what: str) -> None:
    """A TOML data file holds `[[wanted]]` tables and nothing else: a waivers file given as assumptions is
    refused, not read as zero assumptions."""
    others = sorted(key for key in data if key != wanted)
    if others or not isinstance(data.get(wanted), list):
        found = ", ".join(f"[[{key}]]" if isinstance(data[key], list) else key for key in others) or "nothing"
        raise UserError(f"not {what}: it has {found}, where {what} has [[{wanted}]] entries", str(path))


def _assembly(path: Path) -> None:
    text_file(path, "an assembly file")
    lifted(path, None)  # the front end's error, with line and column (kept: the proof reads it again)


def _text(path: Path, what: str) -> None:
    text_file(path, what)


def _report(path: Path) -> None:
    text_file(path, "a report")
    data = read_json(path)
    if not isinstance(data, dict):
        raise UserError("not an entry-verify report (a JSON object with `results` and `format`)", str(path))


def output(path: str | None) -> None:
    """-o FILE: where the report goes can be written (checked before the work, and nothing is created)."""
    if path is None or path == "-":
        return
    target = Path(path)
    if target.is_dir():
        raise UserError("is a directory, not a file to write the report to", path)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"cannot write: no directory {parent}", path)
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UserError("cannot write: permission denied", path)


def _directory(path: Path) -> None:
    if not path.is_dir():
        raise UserError("no such directory" if not path.exists() else "not a directory", str(path))


def _positive(value: int, option: str) -> None:
    if value < 1:
        raise UserError(f"{option} must be at least 1 (got {value})")


# option destination -> the check of each file it names (a list option: each)
FILE_CHECKS: dict[str, Callable[[Path], None]] = {
    "policy": _policy,
    "assumptions": _assumptions,
    "waivers": _waivers,
    "contracts": _contracts,
    "callees": _assembly,
    "report": _report,
    "file": _report,
    "shards": _report,
    "mbox": lambda path: _text(path, "an mbox"),
    "patches": _directory,
}
# destinations that name a file or directory checked elsewhere, before any work: the kernel tree
# (kbuild.check_tree), the build and work directories (kbuild.where_to_build), --config
# (kbuild.config_choice), the cache (series), the assembly inputs of prove/lift/crosscheck (read first, as
# the front end gives their errors with line and column)
CHECKED_ELSEWHERE = frozenset({"tree", "build_dir", "work_dir", "config", "cache_dir", "files", "root"})


def preflight(args: argparse.Namespace) -> None:
    """Check every input and output the invocation names; UserError on the first that cannot be used."""
    for dest, check in FILE_CHECKS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            check(Path(item))
    output(getattr(args, "output", None))
    if getattr(args, "format", None) == "html" and getattr(args, "output", None) in (None, "-"):
        raise UserError("--format html writes a page: give -o FILE.html")
    for dest, option in (("jobs", "-j"), ("loop_bound", "--loop-bound"), ("contract_depth", "--contract-depth")):
        value = getattr(args, dest, None)
        if isinstance(value, int):
            _positive(value, option)


def report_errors(run: Callable[[argparse.Namespace], int], dest: str) -> Callable[[argparse.Namespace], int]:
    """`run` reading the JSON report `args.<dest>`, with a report edited by hand (a field missing or of
    another type) a usage error instead of a traceback."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
            raise UserError(f"malformed report ({err.__class__.__name__}: {err}): not as entry-verify wrote it",
                            str(getattr(args, dest))) from None

    return guarded
