"""Generated and mutated input never crashes the front end: it lifts, or it reports a UserError."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verifier.frontend.assembler import lift_file
from verifier.util.errors import UserError

SEED_LINES = [
    "mov x0, sp",
    "add x0, x1, x2, lsl #3",
    "ldr x0, [x1, #8]!",
    "ldp x29, x30, [sp], #16",
    "str w0, [x1, w2, uxtw #2]",
    "adrp x0, sym",
    "add x0, x0, :lo12:sym",
    "movz x1, :abs_g1_s:0x12345678",
    "mrs x0, mdscr_el1",
    "msr daifclr, #(8 | 2)",
    "b.ne 1f",
    "1: tbnz x0, #3, 1b",
    "csel x0, x1, x2, hs",
    ".macro m a, b=2, c:vararg",
    "add \\a, \\a, #\\b",
    ".endm",
    "m x3, 4",
    ".irp r, x0, x1",
    "mov \\r, xzr",
    ".endr",
    ".rept 3",
    ".if (1 << 3) == 8",
    ".else",
    ".endif",
    ".ifc \\a, x0",
    ".set v, . - 1b",
    ".pushsection .altinstructions, \"a\"",
    ".popsection",
    ".subsection 1",
    ".previous",
    ".word 661f - .",
    ".byte 1, 2, 3",
    ".asciz \"a\\n\"",
    ".align 3",
    ".org . + 8",
    ".inst 0xd503201f",
    "tsk .req x28",
    "# 12 \"arch/arm64/kernel/entry.S\"",
    "// arch/arm64/kernel/entry-common.c:12: x",
    "/* comment */ nop",
    "661: nop ; 662: isb",
]

MUTATION_CHARS = list(",[]#:!\\()\"';.-+*<>=|&@% \t1fbx0") + ["\n"]


@st.composite
def mutated_source(draw: st.DrawFn) -> str:
    lines = draw(st.lists(st.sampled_from(SEED_LINES), min_size=1, max_size=12))
    text = "\n".join(lines)
    for _ in range(draw(st.integers(0, 6))):
        if not text:
            break
        pos = draw(st.integers(0, len(text) - 1))
        action = draw(st.sampled_from(["delete", "insert", "duplicate"]))
        if action == "delete":
            text = text[:pos] + text[pos + 1 :]
        elif action == "insert":
            text = text[:pos] + draw(st.sampled_from(MUTATION_CHARS)) + text[pos:]
        else:
            end = draw(st.integers(pos, min(len(text), pos + 12)))
            text = text[:end] + text[pos:end] + text[end:]
    return text + "\n"


def _lift_or_user_error(source: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.s"
        path.write_text(source)
        try:
            lift_file(path)
        except UserError as err:
            assert err.file == str(path)  # every error names the file
            assert err.message


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_source())
def test_mutated_kernel_style_lines_never_crash(source: str) -> None:
    _lift_or_user_error(source)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(MUTATION_CHARS + list("abcdefghijklmnopqrstuvwxyz._$")), max_size=80))
def test_random_text_never_crashes(source: str) -> None:
    _lift_or_user_error(source)
