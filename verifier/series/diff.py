"""Comparing verdicts between commits: transitions along a series (which commit breaks, which fixes each
property on each vector slot and exception class), regressions against the base, and equivalence with a
reference commit (verdicts and counterexample classes unchanged: the check for "no functional change")."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any

from verifier.series.run import CommitReport, SeriesResult
from verifier.spec.verdicts import Result

Cell = tuple[str, str, int | None]  # property (a rule's full id for policy rules), vector slot, exception class
GOOD = ("PROVED", "WAIVED")


def prop_of(result: Result) -> str:
    return result.rule or result.property


def cell_order(cell: Cell) -> tuple[str, str, int]:
    return (cell[0], cell[1], -1 if cell[2] is None else cell[2])


def classes_of(result: Result) -> list[int | None]:
    """A verdict's exception classes; [None] for the asynchronous slots (no class)."""
    return [*result.ec] or [None]


def cells(report: CommitReport) -> dict[Cell, Result]:
    """Each verdict by property, slot and exception class (None for the asynchronous slots)."""
    out: dict[Cell, Result] = {}
    for result in report.report.results:
        for ec in classes_of(result):
            out[(prop_of(result), result.vector, ec)] = result
    return out


def cex_class(result: Result | None) -> tuple[str, ...] | None:
    """What a verdict says beyond its word: where and how a counterexample fails (function and event), which
    waiver, why unknown. Two commits with equal classes fail the same way."""
    if result is None:
        return None
    if result.verdict == "PROVED":
        return ("PROVED",)
    failing = (result.counterexample or {}).get("failing") or {}
    if result.verdict == "UNKNOWN":
        return ("UNKNOWN", result.reason)
    return (result.verdict, failing.get("function", "?"), failing.get("what", ""))


@dataclass(frozen=True)
class Transition:
    sha: str
    subject: str
    property: str
    vector: str
    ec: int | None
    before: str | None  # None: no verdict (the property did not apply)
    after: str | None

    @builtins.property  # the field `property` hides the builtin in the class body
    def breaks(self) -> bool:
        return self.before in GOOD and self.after not in GOOD

    @builtins.property
    def fixes(self) -> bool:
        return self.before not in GOOD and self.after in GOOD

    @builtins.property
    def verb(self) -> str:
        return "breaks" if self.breaks else ("fixes" if self.fixes else "changes")

    def json(self) -> dict[str, Any]:
        return {"sha": self.sha, "property": self.property, "vector": self.vector, "ec": self.ec,
                "from": self.before, "to": self.after}


def transitions(series: SeriesResult) -> list[Transition]:
    """A transition at each commit where a cell's verdict differs from the previous commit's."""
    out: list[Transition] = []
    previous = cells(series.base)
    for entry in series.commits:
        current = cells(entry)
        for cell in sorted(previous.keys() | current.keys(), key=cell_order):
            before = previous[cell].verdict if cell in previous else None
            after = current[cell].verdict if cell in current else None
            if before != after:
                out.append(Transition(entry.commit.sha, entry.commit.subject, *cell, before, after))
        previous = current
    return out


@dataclass(frozen=True)
class Difference:
    sha: str
    property: str
    vector: str
    ec: int | None
    reference: tuple[str, ...] | None
    found: tuple[str, ...] | None

    def json(self) -> dict[str, Any]:
        return {"sha": self.sha, "property": self.property, "vector": self.vector, "ec": self.ec,
                "reference": list(self.reference) if self.reference else None,
                "found": list(self.found) if self.found else None}


def differences(series: SeriesResult) -> list[Difference]:
    """Against --same-as: every cell of every commit whose verdict or counterexample class differs."""
    reference = series.reference
    if reference is None:
        return []
    want = {cell: cex_class(result) for cell, result in cells(reference).items()}
    out: list[Difference] = []
    for entry in series.commits:
        have = {cell: cex_class(result) for cell, result in cells(entry).items()}
        for cell in sorted(want.keys() | have.keys(), key=cell_order):
            if want.get(cell) != have.get(cell):
                out.append(Difference(entry.commit.sha, *cell, want.get(cell), have.get(cell)))
    return out


def _rank(result: Result | None) -> int:
    return 0 if result is None or result.verdict in GOOD else (1 if result.verdict == "UNKNOWN" else 2)


def regressions(series: SeriesResult) -> list[tuple[CommitReport, Cell, Result]]:
    """Cells that some commit leaves worse than the base did (PROVED or WAIVED < UNKNOWN < VIOLATED; no verdict
    counts as PROVED): what `--fail-on new` fails on. Every commit counts, not only the tip: each must bisect."""
    base = cells(series.base)
    out = []
    for entry in series.commits:
        for cell, result in cells(entry).items():
            if _rank(result) > _rank(base.get(cell)):
                out.append((entry, cell, result))
    return out
