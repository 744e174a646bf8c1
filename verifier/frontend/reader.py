"""Reading a `.s` file into statements with their source locations.

Like gas's input scrubber: comments go (`//`, `/* */`, `#` at the start of a line), a line is split at
`;`. Location information is kept, not dropped: cpp line markers (`# 123 "arch/arm64/kernel/entry.S"`)
in Kbuild's preprocessed assembly, gcc's `-fverbose-asm` source comments
(`// arch/arm64/kernel/entry-common.c:551: ...`) and the markers gcc puts around inline asm
(`// 19 "arch/arm64/include/asm/current.h" 1`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from verifier.util.errors import UserError

_CPP_MARKER = re.compile(r'^#\s*(\d+)\s+"([^"]*)"')
_GCC_SOURCE = re.compile(r"^\s*//\s+(\S+?\.[chS]):(\d+):")
_GCC_ASM_MARKER = re.compile(r'^\s*//\s+(\d+)\s+"([^"]*)"\s*(\d*)')
_KERNEL_TOP = ("arch", "include", "kernel", "lib", "mm", "init", "drivers", "fs", "net", "security", "block")


@dataclass
class Stmt:
    text: str  # the statement, comments removed
    asm_file: str
    asm_line: int
    col: int  # 1-based column of the statement in its line
    file: str | None  # original source location, when known
    line: int | None
    line_text: str  # the whole physical line, for diagnostics

    def error(self, message: str, col: int | None = None) -> UserError:
        return UserError(message, self.asm_file, self.asm_line, col or self.col, self.line_text)


class PathNamer:
    """Shows original sources relative to the kernel tree they come from (`arch/arm64/kernel/entry.S`)."""

    def __init__(self, asm_path: Path, root: str | None) -> None:
        self.asm_path = asm_path.resolve()
        self.root = root.rstrip("/") + "/" if root else None

    def _guess_root(self, source: str) -> None:
        # The .s lives at BUILD/<dir>/<stem>.s and its source at TREE/<dir>/<stem>.[Sc]: the common tail
        # of the two paths tells where TREE ends.
        src_parts = Path(source).parts
        asm_parts = self.asm_path.parts
        if Path(source).stem != self.asm_path.stem:
            return
        i = 1
        while i < min(len(src_parts), len(asm_parts)) and src_parts[-1 - i] == asm_parts[-1 - i]:
            i += 1
        if i > 1:
            self.root = str(Path(*src_parts[: len(src_parts) - i])).rstrip("/") + "/"

    def name(self, source: str) -> str:
        if not source.startswith("/"):
            return source
        if self.root is None:
            self._guess_root(source)
        if self.root and source.startswith(self.root):
            return source[len(self.root) :]
        for top in _KERNEL_TOP:  # a file outside the tree we guessed: best effort
            idx = source.rfind(f"/{top}/")
            if idx >= 0 and top in ("arch", "include"):
                return source[idx + 1 :]
        return source


_DWARF_FILE = re.compile(r'^\s*(\d+)\s+"([^"]*)"(?:\s+"([^"]*)")?')


def dwarf_file(args: str) -> tuple[int, str] | None:
    """A line-table `.file` directive's number and path, from its arguments: `1 "x.c"`, or (DWARF 5, clang)
    `1 "/dir" "rel/x.c" md5 0x...`, whose path is the directory joined with a relative name."""
    m = _DWARF_FILE.match(args)
    if not m:
        return None
    name = m.group(3) or m.group(2)
    if m.group(3) and not name.startswith("/"):
        name = m.group(2).rstrip("/") + "/" + m.group(3)
    return int(m.group(1)), name


def split_statements(text: str) -> list[tuple[str, int]]:
    """Split at `;` outside strings; returns (statement, 0-based start column)."""
    parts: list[tuple[str, int]] = []
    start = 0
    in_string = False
    i = 0
    while i < len(text):
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == ";":
            parts.append((text[start:i], start))
            start = i + 1
        i += 1
    parts.append((text[start:], start))
    return parts


def strip_comments(line: str, in_block: bool) -> tuple[str, bool]:
    """Remove `//` and `/* */` comments outside strings. Returns (code, still inside a block comment)."""
    out: list[str] = []
    i = 0
    in_string = False
    while i < len(line):
        if in_block:
            end = line.find("*/", i)
            if end < 0:
                return "".join(out), True
            out.append(" " * (end + 2 - i))  # keep columns
            i = end + 2
            in_block = False
            continue
        ch = line[i]
        if in_string:
            out.append(ch)
            if ch == "\\" and i + 1 < len(line):
                out.append(line[i + 1])
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif line.startswith("//", i):
            break
        elif line.startswith("/*", i):
            in_block = True
            out.append("  ")
            i += 1
        else:
            out.append(ch)
        i += 1
    return "".join(out), in_block


def read_statements(path: Path, root: str | None = None, namer: PathNamer | None = None) -> Iterator[Stmt]:
    try:
        raw = path.read_text(errors="replace")
    except OSError as err:
        raise UserError(f"cannot read: {err.strerror}", str(path)) from None
    namer = namer or PathNamer(path, root)
    asm_name = str(path)
    src_file: str | None = None
    src_line: int | None = None
    cpp_mode = False  # inside cpp-marked text the original line advances with each physical line
    in_block = False
    for number, line in enumerate(raw.splitlines(), start=1):
        if cpp_mode and src_line is not None:
            src_line += 1
        if not in_block and line.startswith("#"):
            m = _CPP_MARKER.match(line)
            if m:
                src_file, src_line, cpp_mode = namer.name(m.group(2)), int(m.group(1)) - 1, True
            continue  # `#` at the start of a line is a comment (also #APP/#NO_APP)
        if not in_block and "//" in line:
            m = _GCC_SOURCE.match(line)
            if m:
                src_file, src_line, cpp_mode = namer.name(m.group(1)), int(m.group(2)), False
                continue
            m = _GCC_ASM_MARKER.match(line)
            if m:
                if m.group(2):
                    src_file, src_line, cpp_mode = namer.name(m.group(2)), int(m.group(1)) - 1, True
                continue
        code, in_block = strip_comments(line, in_block)
        if not code.strip():
            continue
        for text, start in split_statements(code):
            if text.strip():
                col = start + len(text) - len(text.lstrip()) + 1
                yield Stmt(text.strip(), asm_name, number, col, src_file, src_line, line)
