"""One self-contained HTML page for a run: the verdict matrix coloured by consolidated status, each cell's
details (its results, what they rest on), and each counterexample as a timeline picture (inline SVG: lanes
for D, A, I, F, the PMR, MDSCR_EL1.SS and .KDE and an MDSCR_EL1 write awaiting its ISB along the path's
eventful steps, the failing step marked). No network reference: the styles and pictures are in the page.
Rendered with Jinja2."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment

from verifier.proof.run import Report
from verifier.report.text import cell_text, classes_text, compress_steps, summary
from verifier.spec.obligations import OBLIGATIONS
from verifier.spec.slots import ALL_SLOTS
from verifier.spec.verdicts import Result

STATUS_CLASS = {"closed": "closed", "under": "under", "WAIVED": "waived", "UNKNOWN": "unknown", "VIOLATED": "violated"}
DAIF_LANES = "DAIF"  # a lane per mask, named by the letter the trace's DAIF text has upper case when masked
MDSCR_LANES = (("SS", 0), ("KDE", 13))
STEP_WIDTH, LANE_HEIGHT, LEFT, TOP = 34, 22, 84, 20


def status_of(results: list[Result]) -> str:
    """The worst consolidated status among results: VIOLATED, UNKNOWN, WAIVED, under (hypotheses), closed."""
    verdicts = {r.verdict for r in results}
    for worst in ("VIOLATED", "UNKNOWN", "WAIVED"):
        if worst in verdicts:
            return worst
    return "closed" if all(r.closed for r in results) else "under"


@dataclass
class Cell:
    vector: str
    prop: str
    results: list[Result] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return f"cell-{self.vector}-{self.prop}".replace(":", "-")

    @property
    def status(self) -> str:
        return status_of(self.results)

    @property
    def text(self) -> str:
        return cell_text(self.results)


@dataclass
class Row:
    slot: str
    cells: list[Cell | None]


def _lanes(steps: list[tuple[dict[str, Any], bool, int]]) -> list[tuple[str, list[bool], list[str]]]:
    """Each lane's name, its state at each step (True: masked / set / waiting) and what a hover says there."""
    lanes: list[tuple[str, list[bool], list[str]]] = []
    for letter in DAIF_LANES:
        on = [letter in str(step.get("daif", "")) for step, _, _ in steps]
        lanes.append((letter, on, ["masked" if x else "unmasked" for x in on]))
    pmrs = [_number(step.get("pmr")) for step, _, _ in steps]
    if any(value is not None for value in pmrs):
        # the GIC takes an interrupt only above the mask's priority (a numerically lower value): a PMR below the
        # highest value the path holds masks interrupts that one lets through
        highest = max(value for value in pmrs if value is not None)
        lanes.append(("PMR", [value is not None and value < highest for value in pmrs],
                      [f"PMR={value:#x}" if value is not None else "PMR not read yet" for value in pmrs]))
    mdscr = [_number(step.get("mdscr")) or 0 for step, _, _ in steps]
    for name, bit in MDSCR_LANES:
        on = [bool(value >> bit & 1) for value in mdscr]
        lanes.append((f"MDSCR.{name}", on, [f"MDSCR_EL1.{name}={int(x)}" for x in on]))
    waiting = _awaiting_isb([step for step, _, _ in steps])
    lanes.append(("ISB", waiting, ["an MDSCR_EL1 write awaits its ISB" if x else "synchronised" for x in waiting]))
    return lanes


def _number(text: object) -> int | None:
    return int(str(text), 16) if str(text).startswith("0x") else None


def _awaiting_isb(steps: list[dict[str, Any]]) -> list[bool]:
    """At each step, whether an MDSCR_EL1 write is not yet synchronised: after an `msr mdscr_el1`, until an
    `isb` or an exception return (both context-synchronising)."""
    out, waiting = [], False
    for step in steps:
        insn = str(step.get("insn", "")).lower()
        if insn.startswith("msr") and "mdscr_el1" in insn:
            waiting = True
        elif insn.startswith(("isb", "eret")):
            waiting = False
        out.append(waiting)
    return out


def timeline(cex: dict[str, Any]) -> str:
    """The counterexample's path as an SVG: a column per eventful step, a lane per mask (D, A, I, F, the PMR
    where the path uses it, MDSCR_EL1.SS and .KDE, an MDSCR_EL1 write awaiting its ISB; filled: masked / set /
    waiting), the failing step outlined, each column labelled by its source line and (inlined) C function."""
    failing = cex.get("failing", {})
    steps = compress_steps(cex.get("trace", []), failing)
    lanes = _lanes(steps)
    width = LEFT + STEP_WIDTH * max(len(steps), 1) + 200  # the last slanted label runs right
    height = TOP + LANE_HEIGHT * len(lanes) + 300  # room for the slanted labels
    out = [f'<svg class="timeline" width="{width}" height="{height}" '
           f'role="img" aria-label="masking along the path">']
    for row, (name, _, _) in enumerate(lanes):
        y = TOP + row * LANE_HEIGHT
        out.append(f'<text x="4" y="{y + 15}" class="lane" data-lane="{name}">{name}</text>')
    for column, (step, is_failing, skipped) in enumerate(steps):
        x = LEFT + column * STEP_WIDTH
        for row, (name, states, hovers) in enumerate(lanes):
            y = TOP + row * LANE_HEIGHT
            state = "on" if states[column] else "off"
            out.append(f'<rect x="{x}" y="{y + 3}" width="{STEP_WIDTH - 2}" height="{LANE_HEIGHT - 6}" '
                       f'class="{state}" data-lane="{name}" data-step="{column}" data-state="{state}">'
                       f'<title>{html.escape(hovers[column])}</title></rect>')
        where = f"{str(step.get('file', '?')).rsplit('/', 1)[-1]}:{step.get('line', '?')}"
        function = step.get("function", "")
        inlined = step.get("source_function")
        label = html.escape(f"{where} {function}" + (f" > {inlined} (inlined)" if inlined else ""))
        insn = html.escape(str(step.get("insn", "")))
        y0 = TOP + len(lanes) * LANE_HEIGHT
        if is_failing:
            out.append(f'<rect x="{x - 1}" y="{TOP}" width="{STEP_WIDTH}" height="{len(lanes) * LANE_HEIGHT}" '
                       f'class="failing" data-failing="{html.escape(where)}" data-step="{column}"/>')
        gap = f" (+{skipped} lines)" if skipped else ""
        # the label: the line, then the function (the inlined C function nested in it: `outer>inner`)
        shown = f"{where} {function}" + (f">{inlined}" if inlined else "")
        out.append(f'<text transform="translate({x + 12},{y0 + 6}) rotate(60)" class="step">'
                   f'<title>{label}: {insn}{gap}</title>{html.escape(shown)}{gap}</text>')
    out.append("</svg>")
    return "\n".join(out)


STYLE = """body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table.matrix { border-collapse: collapse; }
table.matrix th, table.matrix td { border: 1px solid #bbb; padding: 3px 8px; text-align: center; }
table.matrix th.slot { text-align: left; font-family: monospace; }
td.closed { background: #2e9d4a; color: #fff; } td.under { background: #b6e2b0; }
td.waived { background: #8fb6e6; } td.unknown { background: #c9c9c9; } td.violated { background: #d9363e; color: #fff; }
td.none { background: #fff; color: #999; }
td a { color: inherit; text-decoration: none; display: block; }
.legend span { display: inline-block; padding: 2px 8px; margin-right: 6px; }
section.cell { border-top: 1px solid #ddd; margin-top: 1em; padding-top: .5em; }
svg.timeline rect.on { fill: #d9363e; } svg.timeline rect.off { fill: #e6f2e6; }
svg.timeline rect.failing { fill: none; stroke: #000; stroke-width: 3; stroke-dasharray: 4 2; }
svg.timeline text { font: 11px monospace; } pre { background: #f6f6f6; padding: .5em; overflow-x: auto; }
.pending { color: #8a5a00; }
"""
LEGEND = """<p class="legend"><span class="closed" style="background:#2e9d4a;color:#fff">ok: PROVED, closed</span>
<span style="background:#b6e2b0">ok*: PROVED under hypotheses</span><span style="background:#8fb6e6">WAIVED</span>
<span style="background:#c9c9c9">UNKNOWN</span><span style="background:#d9363e;color:#fff">VIOLATED</span>
(counts are exception classes)</p>"""

RESULT_TEMPLATE = """<div class="result"><p><b>{{ r.verdict }}</b>{{ ecs(r) }}: {{ r.reason }}</p>
{% if r.pending %}<ul class="pending">{% for h in r.pending %}<li>rests on {{ h.line() }}</li>{% endfor %}</ul>
{% endif %}{% if checked %}<p class="checked">rests on, checked: {{ checked | join(", ") }}</p>{% endif %}
{% if r.counterexample %}{% set cex = r.counterexample %}
<p>fails at {{ cex.failing.file }}:{{ cex.failing.line }} in {{ cex.failing.function }}:
<code>{{ cex.failing.insn }}</code>: {{ cex.failing.what }}</p>
{% if cex.unicorn %}<p class="unicorn">Unicorn: {{ 'reproduced' if cex.unicorn.reproduced else 'NOT reproduced' }}:
{{ cex.unicorn.why }}</p>{% endif %}
{{ timeline(cex) | safe }}{% endif %}</div>"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>entry-verify: {{ title }}</title>
<style>
{{ style | safe }}</style></head><body>
<h1>entry-verify: {{ title }}</h1>
<p class="summary">{{ summary }}</p>
{{ legend | safe }}
<table class="matrix"><thead><tr><th>vector slot</th>{% for p in props %}<th>{{ p }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in rows %}<tr data-slot="{{ row.slot }}"><th class="slot">{{ row.slot }}</th>
{% for cell in row.cells %}{% if cell %}<td class="{{ classes[cell.status] }}" data-status="{{ cell.status }}">
<a href="#{{ cell.anchor }}">{{ cell.text }}</a></td>{% else %}<td class="none">-</td>{% endif %}{% endfor %}
</tr>{% endfor %}</tbody></table>
{% for cell in details %}<section class="cell" id="{{ cell.anchor }}"><h2>{{ cell.vector }}: {{ cell.prop }}</h2>
{% for r in cell.results %}{{ result_block(r) | safe }}{% endfor %}</section>{% endfor %}
<h2>Assumptions</h2><ul>{% for a in assumptions %}<li>{{ a }}</li>{% endfor %}</ul>
</body></html>
"""


ENVIRONMENT = Environment(autoescape=True)
RESULT = ENVIRONMENT.from_string(RESULT_TEMPLATE)
PAGE = ENVIRONMENT.from_string(TEMPLATE)


def property_order(prop: str) -> tuple[int, str]:
    """Obligations first, in their own order, then the policy's rules by name."""
    return (OBLIGATIONS.index(prop), "") if prop in OBLIGATIONS else (len(OBLIGATIONS), prop)


def result_block(result: Result) -> str:
    """One result: its verdict and reason, what it rests on (pending, then checked), and for a counterexample
    where it fails, Unicorn's word on it and the timeline."""
    pending = {h.function for h in result.pending}
    checked = [name for name in result.rests_on if name not in pending]
    return RESULT.render(r=result, checked=checked, ecs=classes_text,
                         timeline=timeline)


def render_html(report: Report, title: str = "report") -> str:
    props = sorted({r.property for r in report.results}, key=property_order)
    cells: dict[tuple[str, str], Cell] = {}
    for result in report.results:
        cells.setdefault((result.vector, result.property), Cell(result.vector, result.property)).results.append(result)
    rows = [Row(slot.name, [cells.get((slot.name, p)) for p in props])
            for slot in ALL_SLOTS if any(v == slot.name for v, _ in cells)]
    severity = {"VIOLATED": 0, "UNKNOWN": 1, "WAIVED": 2, "under": 3, "closed": 4}
    details = sorted((cell for row in rows for cell in row.cells if cell is not None),
                     key=lambda cell: severity[cell.status])  # what failed first
    return PAGE.render(
        title=title, summary=summary(report.results), props=props, rows=rows, details=details,
        style=STYLE, legend=LEGEND, classes=STATUS_CLASS, assumptions=report.assumptions, result_block=result_block)
