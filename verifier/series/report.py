"""A series run as text (a terminal), markdown (a review reply) or JSON (tools), and its exit status."""

from __future__ import annotations

from typing import Any

from verifier.proof.run import count_verdicts
from verifier.series.diff import GOOD, Cell, Transition, cells, differences, regressions, transitions
from verifier.series.run import CommitReport, SeriesResult
from verifier.spec.verdicts import Result, ec_label

EXIT_OK, EXIT_FAIL, EXIT_UNKNOWN, EXIT_UNDER_HYPOTHESES = 0, 1, 3, 4
EXIT_STATUS_HELP = """exit status:
  0  nothing to fail on (see --fail-on), and with --same-as every verdict unchanged
  1  a VIOLATED verdict to fail on (any commit with --fail-on any; one the base did not have with
     --fail-on new), or with --same-as some verdict or counterexample class changed
  2  usage or input error (bad revision, a patch git am cannot apply, a Kbuild failure)
  3  an UNKNOWN verdict to fail on and nothing VIOLATED
  4  a PROVED or WAIVED verdict under hypotheses to fail on (any commit with --fail-on any; one the
     base had closed with --fail-on new) and nothing else; 0 with --accept-hypotheses"""


def _ecs(ecs: list[int | None]) -> str:
    real = sorted(e for e in ecs if e is not None)
    if not real:
        return ""
    if len(real) > 6:
        return f" ({len(real)} exception classes)"
    return " EC " + ", ".join(ec_label(e) for e in real)


def counts(entry: CommitReport) -> str:
    return count_verdicts(r.verdict for r in entry.report.results)


def where(result: Result) -> str:
    """`file:line: function: what`, the one-line form of a counterexample's failing step."""
    failing = (result.counterexample or {}).get("failing")
    if not failing:
        return ""
    return f"{failing['file']}:{failing['line']}: {failing['function']}: {failing.get('what', failing['insn'])}"


def grouped(items: list[Transition]) -> list[tuple[Transition, list[int | None]]]:
    """The transitions with the same commit, property, slot and verdicts as one, with their exception classes."""
    groups: dict[tuple, tuple[Transition, list[int | None]]] = {}
    for t in items:
        key = (t.sha, t.property, t.vector, t.before, t.after)
        groups.setdefault(key, (t, []))[1].append(t.ec)
    return list(groups.values())


def breaks_and_fixes(series: SeriesResult) -> list[dict[str, Any]]:
    """Per property and slot: the commit that first breaks it and the one that fixes it (None if none does)."""
    subjects = {c.commit.sha: c.commit.subject for c in series.commits}
    found: dict[tuple, dict[str, Any]] = {}
    for t in transitions(series):
        cell = (t.property, t.vector, t.ec)
        if t.breaks and cell not in found:
            found[cell] = {"property": t.property, "vector": t.vector, "ec": t.ec, "broken_by": t.sha,
                           "verdict": t.after, "fixed_by": None}
        elif t.fixes and cell in found and found[cell]["fixed_by"] is None:
            found[cell]["fixed_by"] = t.sha
    out = list(found.values())
    for item in out:
        item["broken_subject"] = subjects[item["broken_by"]]
        item["fixed_subject"] = subjects.get(item["fixed_by"] or "")
    return out


def _verdicts(entry: CommitReport) -> list[dict[str, Any]]:
    out = []
    for r in entry.report.results:
        item: dict[str, Any] = {"property": r.property, "vector": r.vector, "ec": r.ec, "verdict": r.verdict}
        if r.rule:
            item["rule"] = r.rule
        if r.verdict != "PROVED":
            item["reason"] = r.reason
        if where(r):
            item["where"] = where(r)
        if r.pending:
            item["pending"] = [h.json() for h in r.pending]
        out.append(item)
    return out


def _commit(entry: CommitReport) -> dict[str, Any]:
    return {"sha": entry.commit.sha, "subject": entry.commit.subject, "cached": entry.cached,
            "reused": reused_slots(entry), "verdicts": _verdicts(entry)}


def reused_slots(entry: CommitReport) -> dict[str, str]:
    """The slots whose result came from the commit before, by what they depend on: slot -> how much."""
    return {slot: stats["reused"] for slot, stats in entry.report.stats.get("slots", {}).items()
            if "reused" in stats}


def to_json(series: SeriesResult, fail_on: str) -> dict[str, Any]:
    same_as = None
    if series.reference:
        diffs = differences(series)
        same_as = {"sha": series.reference.commit.sha, "subject": series.reference.commit.subject,
                   "equivalent": not diffs, "differences": [d.json() for d in diffs]}
    tip = series.commits[-1]
    return {"base": _commit(series.base), "commits": [_commit(c) for c in series.commits],
            "transitions": [t.json() for t in transitions(series)], "same_as": same_as,
            "summary": {"breaks": breaks_and_fixes(series), "regressions": len(regressions(series)),
                        "proofs": series.proofs, "seconds": series.seconds,
                        "exit_status": exit_status(series, fail_on)},
            "assumptions": tip.report.assumptions}


def exit_status(series: SeriesResult, fail_on: str) -> int:
    accept_hypotheses = series.accept_hypotheses
    if series.reference and differences(series):
        return EXIT_FAIL
    if fail_on == "none":
        return EXIT_OK
    if fail_on == "new":
        worse = [result for _, _, result in regressions(series)]
        opened = [] if accept_hypotheses else [result for _, _, result in opened_hypotheses(series)]
    else:
        worse = [r for c in series.commits for r in c.report.results]
        opened = [] if accept_hypotheses else [r for r in worse if r.verdict in GOOD and not r.closed]
    verdicts = {result.verdict for result in worse}
    if "VIOLATED" in verdicts:
        return EXIT_FAIL
    if "UNKNOWN" in verdicts:
        return EXIT_UNKNOWN
    return EXIT_UNDER_HYPOTHESES if opened else EXIT_OK


def opened_hypotheses(series: SeriesResult) -> list[tuple[CommitReport, Cell, Result]]:
    """Cells the base had closed that some commit leaves PROVED or WAIVED only under hypotheses."""
    base = cells(series.base)
    out = []
    for entry in series.commits:
        for cell, result in cells(entry).items():
            before = base.get(cell)
            if result.verdict in GOOD and not result.closed and before is not None and before.closed:
                out.append((entry, cell, result))
    return out


def _commit_line(n: int | str, entry: CommitReport, previous: CommitReport | None) -> str:
    note = "cached" if entry.cached else "proved"
    if previous is not None and entry.key == previous.key:
        note += ", lifted inputs unchanged"
    elif reused := reused_slots(entry):
        note += f", {len(reused)} slot(s) reused by what they depend on"
    return f"{n!s:>4} {entry.commit.short} {entry.commit.subject[:60]:<60} {note}: {counts(entry)}"


def _transition_lines(series: SeriesResult, markdown: bool) -> list[str]:
    lines = []
    by_commit = {entry.commit.sha: cells(entry) for entry in series.commits}
    for t, ecs in grouped(transitions(series)):
        result = by_commit[t.sha].get((t.property, t.vector, ecs[0]))
        at = f" at {where(result)}" if result is not None and t.after not in GOOD and where(result) else ""
        sha = f"`{t.sha[:12]}`" if markdown else t.sha[:12]
        lines.append(f"{'- ' if markdown else '  '}{sha} {t.verb} {t.property} on {t.vector}{_ecs(ecs)}: "
                     f"{t.before or 'none'} -> {t.after or 'none'}{at}")
    return lines


def summary_lines(series: SeriesResult, fail_on: str) -> list[str]:
    lines = []
    groups: dict[tuple, list[str]] = {}
    for item in breaks_and_fixes(series):
        groups.setdefault((item["property"], item["broken_by"], item["fixed_by"]), []).append(item["vector"])
    for (prop, broken, fixed), vectors in groups.items():
        slots = sorted(set(vectors))
        fix = f"fixed by {fixed[:12]}" if fixed else "not fixed by the tip"
        lines.append(f"{prop} broken by {broken[:12]} on {len(slots)} slot(s) ({', '.join(slots[:4])}"
                     f"{', ...' if len(slots) > 4 else ''}); {fix}")
    if not groups:
        lines.append("no commit breaks a verdict the previous commit had")
    if series.reference:
        diffs = differences(series)
        ref = series.reference.commit
        if not diffs:
            lines.append(f"same as {ref.short}: every verdict and counterexample class unchanged at every commit")
        else:
            shas = sorted({d.sha[:12] for d in diffs})
            slots = sorted({d.vector for d in diffs})
            lines.append(f"NOT the same as {ref.short}: {len(diffs)} verdict(s) differ, at {', '.join(shas)}, "
                         f"on {', '.join(slots)}")
    lines.append(f"{series.proofs} slot proof(s) run, {sum(c.cached for c in series.commits)} of "
                 f"{len(series.commits)} commit(s) cached, {series.seconds}s; exit status "
                 f"{exit_status(series, fail_on)} (--fail-on {fail_on})")
    return lines


def _difference_lines(series: SeriesResult) -> list[str]:
    lines = []
    for d in differences(series)[:40]:
        ref = " ".join(d.reference) if d.reference else "none"
        found = " ".join(d.found) if d.found else "none"
        lines.append(f"  {d.sha[:12]} {d.property} on {d.vector}{_ecs([d.ec])}: was {ref}; now {found}")
    return lines


def render_text(series: SeriesResult, fail_on: str) -> str:
    base = series.base
    lines = [f"series of {len(series.commits)} commit(s) on {base.commit.short} ({base.commit.subject})",
             _commit_line("base", base, None)]
    previous = base
    for n, entry in enumerate(series.commits, start=1):
        lines.append(_commit_line(n, entry, previous))
        previous = entry
    transition_lines = _transition_lines(series, markdown=False)
    lines += ["", "transitions:" if transition_lines else "transitions: none"] + transition_lines
    if series.reference and differences(series):
        lines += ["", f"differences from {series.reference.commit.short}:"] + _difference_lines(series)
    lines += ["", "summary:"] + [f"  {line}" for line in summary_lines(series, fail_on)]
    lines += ["", "assumptions (tip):"] + [f"  {a}" for a in series.commits[-1].report.assumptions]
    return "\n".join(lines) + "\n"


def render_markdown(series: SeriesResult, fail_on: str) -> str:
    lines = [f"### entry-verify: {len(series.commits)} commit(s) on `{series.base.commit.short}`", "",
             "| # | commit | subject | proof | verdicts |", "| --- | --- | --- | --- | --- |",
             f"| base | `{series.base.commit.short}` | {series.base.commit.subject} | "
             f"{'cached' if series.base.cached else 'proved'} | {counts(series.base)} |"]
    for n, entry in enumerate(series.commits, start=1):
        lines.append(f"| {n} | `{entry.commit.short}` | {entry.commit.subject} | "
                     f"{'cached' if entry.cached else 'proved'} | {counts(entry)} |")
    lines += ["", "#### Transitions", ""] + (_transition_lines(series, markdown=True) or ["none"])
    lines += ["", "#### Summary", ""] + [f"- {line}" for line in summary_lines(series, fail_on)]
    if series.reference and differences(series):
        lines += ["", "#### Differences", "", "```"] + _difference_lines(series) + ["```"]
    lines += ["", "<details><summary>Assumptions</summary>", ""]
    lines += [f"- {a}" for a in series.commits[-1].report.assumptions] + ["", "</details>"]
    return "\n".join(lines) + "\n"
