"""The callee ring: the C (and assembly) files that define the functions the lifted entry code calls but does
not lift.

Their contracts are checked against their code, so their files are built to assembly with Kbuild like the
entry files. A function is looked for in the .c and .S files this configuration compiles into the kernel (its
Makefile's `obj-y` / `obj-$(CONFIG_...)` lines, with the option set) in the directories below, then in the
subdirectories their Makefiles descend into (`obj-y += printk/`); a function found in none of them keeps a
trusted contract, with that reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from verifier.kernel.companions import (
    built_sources,
    built_subdirs,
    callback_symbols,
    called_symbols,
    enabled_options,
)

# Where the arm64 entry code's callees live: the arch's exception handlers (and its instruction encoders, which
# the alternative callbacks call), the generic entry code and the
# core kernel files its hooks (context tracking, RCU, softirq, preemption, printk) are in; then the memory,
# block and file-system cores the return-to-user work calls into (memcg throttling, blkcg, debugfs); and the
# SMCCC firmware interface the Spectre callbacks ask for its conduit.
SEARCHED_DIRS = ("arch/arm64/kernel", "arch/arm64/mm", "arch/arm64/lib", "kernel/entry", "kernel", "kernel/irq",
                 "kernel/rcu", "kernel/sched", "kernel/locking", "kernel/trace", "lib", "mm", "block", "fs",
                 "drivers/firmware/smccc")
_LABEL = re.compile(r"^([A-Za-z_.$][\w.$]*):", re.MULTILINE)
_DEFINITION = re.compile(r"^[A-Za-z_][^;{}()#]*?\b([A-Za-z_]\w*)\s*\([^;{}]*\)\s*(?:__\w+(?:\([^)]*\))?\s*)*\{",
                         re.MULTILINE)


@dataclass
class CalleeRing:
    """Which file defines each callee (the files to build and lift), and why the others are not there."""

    sources: dict[str, str] = field(default_factory=dict)  # function -> tree-relative .c file
    missing: dict[str, str] = field(default_factory=dict)  # function -> why its code is not checked

    def files(self) -> list[str]:
        return sorted(set(self.sources.values()))


# an assembly source's functions: SYM_FUNC_START(name) and its variants, or the older ENTRY(name)
_ASM_DEFINITION = re.compile(r"^\s*(?:SYM_(?:FUNC|CODE)_START\w*|ENTRY)\(\s*(\w+)\s*\)", re.MULTILINE)


def defined_functions(source: Path) -> set[str]:
    """The functions the C (or .S) file defines (not just declares) at file scope."""
    text = source.read_text(errors="replace")
    pattern = _ASM_DEFINITION if source.suffix == ".S" else _DEFINITION
    return {match.group(1) for match in pattern.finditer(text)}


def assembly_labels(assembly: list[Path]) -> set[str]:
    return {name for path in assembly if path.is_file() for name in _LABEL.findall(path.read_text(errors="replace"))}


def callee_ring(tree: Path, build_dir: Path, assembly: list[Path], known: set[str] | None = None) -> CalleeRing:
    """The callees of ASSEMBLY (direct calls and tail calls, and the alternative_cb callbacks it names) it
    does not define, and their files; `known`: functions already placed (left out)."""
    wanted = (called_symbols(assembly) | callback_symbols(assembly)) - assembly_labels(assembly) - (known or set())
    enabled = enabled_options(build_dir)
    ring = CalleeRing()
    built = {str(path.relative_to(build_dir).with_suffix(suffix)) for path in assembly
             if path.is_relative_to(build_dir) for suffix in (".c", ".S")}
    queue = list(SEARCHED_DIRS)
    for directory in queue:  # grows as the Makefiles name subdirectories, until every callee is found
        if not wanted - set(ring.sources):
            break
        for source in built_sources(tree, build_dir, directory, enabled, (".c", ".S")):
            if source in built:
                continue
            for name in defined_functions(tree / source) & wanted:
                ring.sources.setdefault(name, source)
        queue += [sub for sub in built_subdirs(tree, directory, enabled) if sub not in queue]
    searched = ", ".join(SEARCHED_DIRS)
    for name in sorted(wanted - set(ring.sources)):
        ring.missing[name] = (f"not defined in a file this configuration builds in {searched} or the "
                              "subdirectories their Makefiles build")
    return ring
