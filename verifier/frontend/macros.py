"""The gas macro language: definitions, argument binding and textual substitution.

gas expands macros as text, and so does this module. Argument splitting follows gas's macro.c on
scrubbed input: arguments are separated by commas, or by white space that sits between two symbol
characters (everything else is squeezed out by gas's scrubber first); brackets group; a double-quoted
string is one argument with its quotes removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from verifier.frontend.reader import Stmt

_SYMBOL_CHARS = re.compile(r"[A-Za-z0-9_.$\\]")
_IDENT = re.compile(r"[A-Za-z_.$][A-Za-z0-9_.$]*")


class MacroError(Exception):
    pass


@dataclass
class Param:
    name: str
    default: str | None = None
    required: bool = False
    vararg: bool = False


@dataclass
class Macro:
    name: str
    params: list[Param]
    body: list[Stmt] = field(default_factory=list)


def scrub(text: str) -> str:
    """gas's scrubber for one statement: white space survives only between two symbol characters,
    as one space; strings are kept as they are."""
    out: list[str] = []
    i = 0
    pending_space = False
    while i < len(text):
        ch = text[i]
        if ch == '"':
            end = i + 1
            while end < len(text) and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            if pending_space and out and _SYMBOL_CHARS.match(out[-1]):
                out.append(" ")
            pending_space = False
            out.append(text[i : end + 1])
            i = end + 1
            continue
        if ch in " \t":
            pending_space = True
        else:
            if pending_space and out and _SYMBOL_CHARS.match(out[-1][-1]) and _SYMBOL_CHARS.match(ch):
                out.append(" ")
            pending_space = False
            out.append(ch)
        i += 1
    return "".join(out)


def split_args(text: str) -> list[str]:
    """Split a macro call's (or `.irp`'s) argument text the way gas does."""
    s = scrub(text.strip())
    args: list[str] = []
    i = 0
    n = len(s)
    if not s:
        return []
    while True:
        buf: list[str] = []
        depth = 0
        while i < n:
            ch = s[i]
            if depth == 0 and ch in ", ":
                break
            if ch == '"':
                end = i + 1
                while end < n and s[end] != '"':
                    if s[end] == "\\" and end + 1 < n:
                        buf.append(s[end + 1])
                        end += 2
                        continue
                    buf.append(s[end])
                    end += 1
                i = end + 1
                continue
            if ch in "([":
                depth += 1
            elif ch in ")]" and depth:
                depth -= 1
            buf.append(ch)
            i += 1
        args.append("".join(buf))
        if i >= n:
            break
        # skip one separator: a comma with optional spaces around it, or a single space
        if s[i] == " ":
            i += 1
            if i < n and s[i] == ",":
                i += 1
        else:
            i += 1
        if i < n and s[i] == " ":
            i += 1
        if i >= n:
            args.append("")
            break
    return args


def parse_params(text: str) -> tuple[str, list[Param]]:
    """`.macro name, a, b=1, c:req, d:vararg` (commas optional, as in gas)."""
    parts = split_args(text)
    if not parts or not _IDENT.fullmatch(parts[0]):
        raise MacroError("expected a macro name after .macro")
    name, params = parts[0], []
    for part in parts[1:]:
        if not part:
            continue
        default = None
        if "=" in part:
            part, default = part.split("=", 1)
        qualifier = ""
        if ":" in part:
            part, qualifier = part.split(":", 1)
        if not _IDENT.fullmatch(part):
            raise MacroError(f"bad macro parameter '{part}'")
        if qualifier not in ("", "req", "vararg"):
            raise MacroError(f"unknown macro parameter qualifier ':{qualifier}'")
        params.append(Param(part, default, qualifier == "req", qualifier == "vararg"))
    return name, params


def bind(macro: Macro, text: str) -> dict[str, str]:
    """Bind a call's arguments to the macro's parameters (positional or `name=value`)."""
    values: dict[str, str] = {}
    positional = 0
    raw = text.strip()
    args = split_args(raw)
    for index, arg in enumerate(args):
        keyword = re.match(r"^([A-Za-z_.$][A-Za-z0-9_.$]*)=(.*)$", arg, re.DOTALL)
        if keyword and any(p.name == keyword.group(1) for p in macro.params):
            values[keyword.group(1)] = keyword.group(2)
            continue
        if positional >= len(macro.params):
            if arg == "" and index == len(args) - 1:
                break
            raise MacroError(f"too many arguments to macro '{macro.name}'")
        param = macro.params[positional]
        if param.vararg:
            values[param.name] = ",".join(args[index:])
            positional += 1
            break
        values[param.name] = arg
        positional += 1
    for param in macro.params:
        if values.get(param.name, "") == "":
            if param.required:
                raise MacroError(f"missing value for required parameter '{param.name}' of macro '{macro.name}'")
            if param.default is not None:
                values[param.name] = param.default
            else:
                values.setdefault(param.name, "")
    return values


def substitute(text: str, values: dict[str, str], counter: int | None) -> str:
    """Replace `\\param`, `\\@` (macro counter) and `\\()` (separator) in a body line."""
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch != "\\" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "(" and text.startswith("\\()", i):
            i += 3
            continue
        if nxt == "@" and counter is not None:
            out.append(str(counter))
            i += 2
            continue
        m = _IDENT.match(text, i + 1)
        if m and m.group(0) in values:
            out.append(values[m.group(0)])
            i = m.end()
            continue
        if m:
            # gas matches the longest parameter name that is a prefix (e.g. `\n` in `\nfoo`? no: the
            # identifier ends at a non-symbol character). An unknown name is left as written.
            out.append(text[i : m.end()])
            i = m.end()
            continue
        out.append(ch)
        i += 1
    return "".join(out)
