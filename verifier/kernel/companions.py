"""The generic entry code a tree's arm64 entry runs through, found from the tree and its configuration.

From 7.x arm64 returns from interrupts through kernel/entry/common.c (irqentry_exit, the preemption point
raw_irqentry_exit_cond_resched, exit_to_user_mode_loop), so its verdicts depend on that code. A file of
kernel/entry/ joins the lifted set when this configuration builds it (its `obj-$(CONFIG_...)` line in
kernel/entry/Makefile is on) and it defines a function the entry assembly calls.
"""

from __future__ import annotations

import re
from pathlib import Path

GENERIC_ENTRY_DIR = "kernel/entry"
# `bl sym` / `b sym` and tail calls in the assembly: the callee names.
_CALLS = re.compile(r"^\s+(?:bl|b)\s+([A-Za-z_][\w.]*)\s*(?://.*)?$", re.MULTILINE)
# alternative_cb callbacks: `alternative_cb CAP, cb` (entry.S's macro) and the `.word cb - .` of the
# ALTERNATIVE_CB() records compiled C emits; a local label (`661b - .`) starts with a digit or a dot.
_CALLBACKS = re.compile(r"^\s*(?:alternative_cb\s+[^,\n]+,\s*([A-Za-z_]\w*)\s*$|\.word\s+([A-Za-z_]\w*)\s*-\s*\.\s*$)",
                        re.MULTILINE)
_OBJ = re.compile(r"^(?:obj|lib)-(?:\$\((CONFIG_\w+)\)|y)\s*[:+]?=\s*(.*)$")


def enabled_options(build_dir: Path) -> set[str]:
    """The options the build dir's .config sets to y."""
    try:
        text = (build_dir / ".config").read_text(errors="replace")
    except OSError:
        return set()
    return set(re.findall(r"^(CONFIG_\w+)=y$", text, re.MULTILINE))


def _built_objects(tree: Path, directory: str, enabled: set[str]) -> list[str]:
    """The entries of DIRECTORY's Makefile built into the kernel for this configuration: its `obj-y` and
    `obj-$(CONFIG_...)` lines (continued with backslashes) whose option is set (`foo.o`, `printk/`), and
    likewise `lib-` (linked from lib.a where called: arch/arm64/lib's instruction encoders)."""
    try:
        makefile = (tree / directory / "Makefile").read_text(errors="replace")
    except OSError:
        return []
    found: list[str] = []
    for line in makefile.replace("\\\n", " ").splitlines():
        match = _OBJ.match(line.strip())
        if match and (not match.group(1) or match.group(1) in enabled):
            found += match.group(2).split("#")[0].split()
    return found


def built_sources(tree: Path, build_dir: Path, directory: str = GENERIC_ENTRY_DIR,
                  enabled: set[str] | None = None, suffixes: tuple[str, ...] = (".c",)) -> list[str]:
    """The source files (.c, or with `suffixes` also .S) of DIRECTORY this configuration compiles into the
    kernel (not modules)."""
    enabled = enabled_options(build_dir) if enabled is None else enabled
    found: list[str] = []
    for obj in _built_objects(tree, directory, enabled):
        if not obj.endswith(".o"):
            continue
        for suffix in suffixes:
            source = f"{directory}/{obj.removesuffix('.o')}{suffix}"
            if (tree / source).is_file() and source not in found:
                found.append(source)
                break
    return found


def built_subdirs(tree: Path, directory: str, enabled: set[str]) -> list[str]:
    """The subdirectories DIRECTORY's Makefile descends into for this configuration (`obj-y += printk/`)."""
    found: list[str] = []
    for obj in _built_objects(tree, directory, enabled):
        sub = f"{directory}/{obj.rstrip('/')}"
        if obj.endswith("/") and (tree / sub / "Makefile").is_file() and sub not in found:
            found.append(sub)
    return found


def called_symbols(assembly: list[Path]) -> set[str]:
    # a file make did not produce is reported by the caller; it calls nothing here
    return {name for path in assembly if path.is_file() for name in _CALLS.findall(path.read_text(errors="replace"))}


def callback_symbols(assembly: list[Path]) -> set[str]:
    """The alternative_cb callbacks the assembly's alternatives name (boot-time code, read for what it
    patches)."""
    return {a or b for path in assembly if path.is_file()
            for a, b in _CALLBACKS.findall(path.read_text(errors="replace"))}


def defines(source: Path, names: set[str]) -> bool:
    """Whether the C file defines (not just declares) one of NAMES at file scope."""
    text = source.read_text(errors="replace")
    for match in re.finditer(r"^[A-Za-z_][^;{}()]*?\b([A-Za-z_]\w*)\s*\([^;{}]*\)\s*\{", text, re.MULTILINE):
        if match.group(1) in names:
            return True
    return False


def generic_entry_sources(tree: Path, build_dir: Path, assembly: list[Path]) -> list[str]:
    """The generic entry files to lift besides ASSEMBLY's sources: built here and called from them."""
    called = called_symbols(assembly)
    return [source for source in built_sources(tree, build_dir) if defines(tree / source, called)]
