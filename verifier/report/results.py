"""proofs/results/: verdict tables in markdown for a kernel tree under a policy, each VIOLATED and WAIVED
entry with where its counterexample fails and the path it takes, in source lines. Deterministic (no
timings, no machine paths), so a test can check the committed tables are current."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from verifier.spec.obligations import OBLIGATIONS
from verifier.spec.slots import ALL_SLOTS
from verifier.spec.verdicts import ec_label


def _ecs(ecs: list[int]) -> str:
    if not ecs:
        return ""
    if len(ecs) > 8:
        return f"{len(ecs)} classes"
    return ", ".join(ec_label(e) for e in ecs)


def _path(trace: list[dict[str, Any]], limit: int = 12) -> list[str]:
    """The functions the path runs through, in order, with the source line it enters each at."""
    out: list[str] = []
    last = None
    for step in trace:
        function = step.get("source_function") or step["function"]
        if function != last:
            out.append(f"{function} ({step['file']}:{step['line']}, DAIF={step['daif']})")
            last = function
    if len(out) > limit:
        out = out[: limit // 2] + ["..."] + out[-limit // 2 :]
    return out


def _column(prop: str) -> tuple[int, str]:

    return (OBLIGATIONS.index(prop), "") if prop in OBLIGATIONS else (len(OBLIGATIONS), prop)


def verdict_lines(markdown: str) -> list[str]:
    """What must not change unless a verdict does: the tables, the headings and reasons of the entries.
    (The counterexample shown for an entry is one of possibly many; which one the solver picks may vary
    between runs, and with it the calls a violation's path rests on: so the pending hypotheses' counts and the
    closed / under-hypotheses totals are not compared either.)"""
    return [unversioned(line) for line in markdown.splitlines()
            if not line.startswith(("1. ", "Fails at ", "Path:", "- `", "Verdicts ("))]


# The Debian package versions a table names: a mirror that moves on (or one machine's mirror against
# another's) changes them without changing a verdict, so they are compared as VERSION.
_PACKAGE_VERSIONS = (
    (re.compile(r"^(# Linux \S+ \(Debian linux-source-\S+) [^,]+,"), r"\1 VERSION,"),
    (re.compile(r"(linux-config-[\d.]+) [^,)]+"), r"\1 VERSION"),
    (re.compile(r"^(- build: version) [^:]+:"), r"\1 VERSION:"),
)


def unversioned(line: str) -> str:
    """A table's line with the Debian package and kernel versions it names replaced by VERSION."""
    for pattern, replacement in _PACKAGE_VERSIONS:
        line = pattern.sub(replacement, line)
    return line


_CHECK_REASON = re.compile(r"^(contract check: contract \S+(?: \([^)]*\))?: \w+ at depth \d+: .*?)(?: \(.*|;.*)?$")


_NOT_DERIVED = re.compile(r"^(derived: contract \S+: not derived \(.*?)(?: \(.*)?(\); its written fallback .*)$")


def _brief(assumption: str) -> str:
    """An assumption as a table shows it: a contract check's (or a derivation's) reason without the
    expression or source line it names and without its callees (the JSON report has them)."""
    match = _CHECK_REASON.match(assumption) or _NOT_DERIVED.match(assumption)
    return "".join(match.groups()) if match else assumption


def _closed(result: dict[str, Any]) -> bool:
    return result["verdict"] in ("PROVED", "WAIVED") and not result.get("pending")


def _cell(results: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + max(len(r["ec"]), 1)
    if not counts:
        return "-"
    star = "\\*" if any(r["verdict"] == "PROVED" and not _closed(r) for r in results) else ""
    if set(counts) == {"PROVED"}:
        return "ok" + star
    return " ".join(f"{v} {n}" for v, n in sorted(counts.items()) if v != "PROVED") + star


def _counts(results: list[dict[str, Any]]) -> str:
    """How many verdicts (a property or rule on a vector slot for one exception class) are closed, under
    hypotheses, UNKNOWN and VIOLATED."""
    def cells(keep: Callable[[dict[str, Any]], bool]) -> int:
        return sum(max(len(r["ec"]), 1) for r in results if keep(r))

    closed = cells(_closed)
    under = cells(lambda r: r["verdict"] in ("PROVED", "WAIVED") and not _closed(r))
    unknown = cells(lambda r: r["verdict"] == "UNKNOWN")
    violated = cells(lambda r: r["verdict"] == "VIOLATED")
    return (f"Verdicts (property or rule x vector slot x exception class): {closed} closed, {under} PROVED or "
            f"WAIVED under hypotheses, {unknown} UNKNOWN, {violated} VIOLATED.")


def _pending(results: list[dict[str, Any]]) -> list[str]:
    """The pending hypotheses, each with how many verdicts it holds open, most first."""
    holding: dict[tuple[str, str, str], int] = {}
    for r in results:
        for h in r.get("pending", []):
            key = (h["function"], h["clause"], " ".join(_brief_why(h["why"]).split()))  # one line each
            holding[key] = holding.get(key, 0) + max(len(r["ec"]), 1)
    return [f"- `{function}` {clause}: {why} ({n} verdicts)"
            for (function, clause, why), n in sorted(holding.items(), key=lambda item: (-item[1], item[0]))]


def _brief_why(why: str) -> str:
    """A hypothesis's reason without the expression or source line it names (as the assumptions show it)."""
    return re.sub(r" \(.*", "", why)


def render(data: dict[str, Any], title: str) -> str:
    results = data["results"]
    props = sorted({r["property"] for r in results}, key=_column)
    lines = [f"# {title}", "",
             "Generated by `make results`; `tests/test_kernel_prove.py` checks its verdicts are current.", "",
             "ok = PROVED and closed for every exception class the entry covers; ok\\* = PROVED, some classes "
             "only under hypotheses (listed below); otherwise the number of classes per verdict (\\* likewise); "
             "- = the rule does not apply to this vector slot.", ""]
    lines.append("| vector | " + " | ".join(props) + " |")
    lines.append("| --- | " + " | ".join("---" for _ in props) + " |")
    for slot in ALL_SLOTS:
        cells = [_cell([r for r in results if r["property"] == prop and r["vector"] == slot.name]) for prop in props]
        lines.append(f"| {slot.name} | " + " | ".join(cells) + " |")
    lines += ["", _counts(results)]
    pending = _pending(results)
    if pending:
        lines += ["", "## Pending hypotheses", "", "What the results under hypotheses rest on, unchecked:", ""]
        lines += pending
    lines.append("")
    notable = [r for r in results if r["verdict"] in ("VIOLATED", "WAIVED", "UNKNOWN")]
    if notable:
        lines += ["## Violations, waivers and unknowns", ""]
    for r in notable:
        rule = f" ({r['rule']})" if r.get("rule") and r["rule"] != r["property"] else ""
        lines.append(f"### {r['verdict']} {r['property']}{rule} on {r['vector']}"
                     + (f", EC {_ecs(r['ec'])}" if r["ec"] else ""))
        lines.append("")
        lines.append(f"{r['reason']}")
        cex = r.get("counterexample")
        if cex and cex.get("unicorn", {}).get("reproduced"):
            lines += ["", "Reproduced on Unicorn from the assembler's objects: the "
                          "same path, with the same DAIF and MDSCR_EL1 at each step."]
        if cex:
            failing = cex["failing"]
            lines += ["", f"Fails at `{failing['file']}:{failing['line']}` in `{failing['function']}`: "
                          f"`{failing['insn']}`.", "", "Path:", ""]
            lines += [f"1. {step}" for step in _path(cex["trace"])]
        lines.append("")
    lines += ["## Assumptions", ""]
    lines += [f"- {_brief(a)}" for a in data["assumptions"]]
    return "\n".join(lines) + "\n"
