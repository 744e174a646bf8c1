"""A series as one self-contained HTML page: commits down, properties across, each cell coloured by the
commit's worst consolidated status for that property, and each transition (a commit that breaks, fixes or
changes a verdict) leading to its section: what changed on which slot, and for a new failure the result with
its counterexample's timeline. Built from the run page's pieces (report.html)."""

from __future__ import annotations

from dataclasses import dataclass, field

from verifier.report.html import ENVIRONMENT, LEGEND, STATUS_CLASS, STYLE, property_order, result_block, status_of
from verifier.report.text import cell_text
from verifier.series.diff import GOOD, Transition, cells, transitions
from verifier.series.report import grouped, summary_lines
from verifier.series.run import CommitReport, SeriesResult
from verifier.spec.verdicts import Result, ec_label


@dataclass
class Change:
    """The transitions of one commit in one property column, and the results they lead to."""

    sha: str
    subject: str
    column: str
    items: list[Transition] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)  # the commit's results behind a new failure

    @property
    def anchor(self) -> str:
        return f"t-{self.sha[:12]}-{self.column}"

    @property
    def kind(self) -> str:
        if any(t.breaks for t in self.items):
            return "breaks"
        return "fixes" if all(t.fixes for t in self.items) else "changes"

    def lines(self) -> list[str]:
        out = []
        for t, ecs in grouped(self.items):
            labels = ", ".join(ec_label(ec) for ec in ecs if ec is not None)
            out.append(f"{t.verb} {t.property} on {t.vector}{' EC ' + labels if labels else ''}: "
                       f"{t.before or 'none'} -> {t.after or 'none'}")
        return out


@dataclass
class GridCell:
    status: str
    text: str
    change: Change | None


@dataclass
class GridRow:
    label: str
    sha: str
    subject: str
    cells: list[GridCell | None]


TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>entry-verify: {{ title }}</title>
<style>
{{ style | safe }}
td .mark { display: block; font-size: 11px; font-weight: bold; }
section.transition { border-top: 1px solid #ddd; margin-top: 1em; padding-top: .5em; }
</style></head><body>
<h1>entry-verify: {{ title }}</h1>
<ul class="summary">{% for line in summary %}<li>{{ line }}</li>{% endfor %}</ul>
{{ legend | safe }}
<table class="matrix"><thead><tr><th>#</th><th>commit</th>{% for p in props %}<th>{{ p }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in rows %}<tr data-commit="{{ row.sha }}"><th>{{ row.label }}</th>
<th class="slot" title="{{ row.sha }}">{{ row.sha[:12] }} {{ row.subject[:60] }}</th>
{% for cell in row.cells %}{% if cell %}<td class="{{ classes[cell.status] }}" data-status="{{ cell.status }}"
{% if cell.change %} data-transition="{{ cell.change.kind }}"{% endif %}>
{% if cell.change %}<a href="#{{ cell.change.anchor }}">{{ cell.text }}
<span class="mark">{{ cell.change.kind }}</span></a>
{% else %}{{ cell.text }}{% endif %}</td>{% else %}<td class="none">-</td>{% endif %}{% endfor %}
</tr>{% endfor %}</tbody></table>
{% for change in changes %}<section class="transition" id="{{ change.anchor }}">
<h2>{{ change.sha[:12] }} {{ change.subject }}: {{ change.kind }} {{ change.column }}</h2>
<ul>{% for line in change.lines() %}<li>{{ line }}</li>{% endfor %}</ul>
{% for r in change.results %}<h3>{{ r.vector }}: {{ r.rule or r.property }}</h3>{{ result_block(r) | safe }}{% endfor %}
</section>{% endfor %}
<h2>Assumptions (tip)</h2><ul>{% for a in assumptions %}<li>{{ a }}</li>{% endfor %}</ul>
</body></html>
"""
PAGE = ENVIRONMENT.from_string(TEMPLATE)


def _changes(series: SeriesResult) -> dict[tuple[str, str], Change]:
    """The transitions by commit and property column, each with the commit's results its failures lead to."""
    subjects = {entry.commit.sha: entry.commit.subject for entry in series.commits}
    by_commit = {entry.commit.sha: cells(entry) for entry in series.commits}
    previous = {series.commits[0].commit.sha: cells(series.base)}
    for before, entry in zip(series.commits, series.commits[1:], strict=False):
        previous[entry.commit.sha] = by_commit[before.commit.sha]
    out: dict[tuple[str, str], Change] = {}
    for t in transitions(series):
        cell = (t.property, t.vector, t.ec)
        result = by_commit[t.sha].get(cell) or previous[t.sha].get(cell)
        if result is None:
            continue
        change = out.setdefault((t.sha, result.property), Change(t.sha, subjects[t.sha], result.property))
        change.items.append(t)
        now = by_commit[t.sha].get(cell)
        if now is not None and now.verdict not in GOOD and all(now is not r for r in change.results):
            change.results.append(now)
    return out


def _row(label: str, entry: CommitReport, props: list[str], changes: dict[tuple[str, str], Change]) -> GridRow:
    found: list[GridCell | None] = []
    for prop in props:
        results = [r for r in entry.report.results if r.property == prop]
        if not results:
            found.append(None)
            continue
        found.append(GridCell(status_of(results), cell_text(results), changes.get((entry.commit.sha, prop))))
    return GridRow(label, entry.commit.sha, entry.commit.subject, found)


def render_series_html(series: SeriesResult, fail_on: str) -> str:
    everything = [series.base, *series.commits]
    props = sorted({r.property for entry in everything for r in entry.report.results}, key=property_order)
    changes = _changes(series)
    rows = [_row("base", series.base, props, changes)]
    rows += [_row(str(n), entry, props, changes) for n, entry in enumerate(series.commits, start=1)]
    order = {entry.commit.sha: n for n, entry in enumerate(series.commits)}
    ordered = sorted(changes.values(), key=lambda c: (order[c.sha], property_order(c.column)))
    title = f"series of {len(series.commits)} commit(s) on {series.base.commit.short}"
    return PAGE.render(title=title, summary=summary_lines(series, fail_on), props=props, rows=rows,
                       changes=ordered, style=STYLE, legend=LEGEND, classes=STATUS_CLASS,
                       assumptions=series.commits[-1].report.assumptions, result_block=result_block)
