"""The C function a source line belongs to, read from the kernel source itself.

Compiled code inlines small functions (`cortex_a76_erratum_1463225_debug_handler` lives inside
`el1_softstp` in the object), so the symbol table alone cannot say which function a path ran through.
Kernel style puts a function definition's name at column 0 and its opening brace alone at column 0, which
is what this looks for.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_DECLARATION = re.compile(r"^(?:[A-Za-z_][^;=(]*?[\s*])?([A-Za-z_]\w*)\s*\(")


@cache
def _lines(path: str) -> tuple[str, ...]:
    try:
        return tuple(Path(path).read_text(errors="replace").splitlines())
    except OSError:
        return ()


def forget_sources() -> None:
    """Drop the source text read so far (a new proof may see edited files at the same paths)."""
    _lines.cache_clear()


def function_at(root: str | None, file: str | None, line: int | None, headers: bool = False) -> str | None:
    """The function whose body holds `file:line` (a .c file; with `headers`, a header's inline functions too)."""
    if not file or not line or not file.endswith((".c", ".h") if headers else ".c"):
        return None
    path = file if file.startswith("/") or root is None else str(Path(root) / file)
    lines = _lines(path)
    if not lines or line > len(lines):
        return None
    index = line - 1
    while index >= 0:
        text = lines[index]
        if text.startswith("}") and index != line - 1:
            return None  # between functions
        if text.startswith("{"):
            break
        index -= 1
    for up in range(index - 1, max(index - 12, -1), -1):
        m = _DECLARATION.match(lines[up])
        if m:
            return m.group(1)
    return None
