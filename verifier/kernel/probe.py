"""Ask the kernel's own compiler what a header defines, the way asm-offsets.c does: a small C file compiled
with the exact command Kbuild used for entry-common.c (from its `.cmd` file), so the answer is this tree's,
this configuration's and this toolchain's. The probe lives in the build dir, never in the tree."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import tempfile
from pathlib import Path

from verifier.util.errors import UserError

# The translation unit whose compile command the probe borrows: always built, always C.
PROBE_REFERENCE = "arch/arm64/kernel/entry-common.s"
CACHE_NAME = ".entry-verify-probe.json"
# `DEFINE(sym, val)` of include/linux/kbuild.h, spelled out so the probe needs no kernel header for it.
_DEFINE = '#define EV_DEFINE(sym, val) asm volatile("\\n.ascii \\"->" #sym " %0 " #val "\\"" : : "i" (val))\n'
_MARKER = re.compile(r'->(\w+) #?(-?\d+) ')


def compile_command(build_dir: Path) -> list[str]:
    """Kbuild's command for PROBE_REFERENCE, without its output, source and dependency-file arguments."""
    cmd_file = build_dir / Path(PROBE_REFERENCE).parent / f".{Path(PROBE_REFERENCE).name}.cmd"
    try:
        text = cmd_file.read_text(errors="replace")
    except OSError:
        raise UserError(f"no Kbuild command file {cmd_file}: build the entry assembly first") from None
    match = re.search(r"^(?:saved)?cmd_\S+ := (.*)$", text, re.MULTILINE)
    if not match:
        raise UserError("no compile command in the file", str(cmd_file))
    words = shlex.split(match.group(1))
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        if word == "-o":
            skip = True
        elif not _dropped(word):
            kept.append(word)
    return kept


def _dropped(word: str) -> bool:
    """The dependency file, the verbose-asm comments and the source: the probe brings its own."""
    return word.startswith(("-Wp,-MMD", "-Wp,-MD")) or word == "-fverbose-asm" or (
        word.endswith(".c") and not word.startswith("-"))


def _compile(build_dir: Path, command: list[str], source: str, flags: list[str]) -> str:
    with tempfile.TemporaryDirectory(dir=build_dir, prefix=".entry-verify-probe-") as tmp:
        src, out = Path(tmp) / "probe.c", Path(tmp) / "probe.out"
        src.write_text(source)
        result = subprocess.run([*command, *flags, "-o", str(out), str(src)], cwd=build_dir,
                                capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-10:])
            raise UserError(f"the build-facts probe did not compile with the tree's flags:\n{tail}")
        return out.read_text(errors="replace")


def probe_values(build_dir: Path, header: str, pattern: str, prelude: tuple[str, ...] = (),
                 optional: bool = False) -> dict[str, int]:
    """The integer value of every macro matching `pattern` that `#include <header>` defines, as this build's
    compiler evaluates it (so expressions and config-dependent definitions come out right). `prelude`: headers
    included first (for one that is not self-contained). A macro that is not a constant expression (one that
    reads a static key) is left out. `optional`: a tree without the header gives {}, not an error. Cached in
    the build dir, keyed by the command, the header set and the configuration."""
    command = compile_command(build_dir)
    autoconf = build_dir / "include" / "generated" / "autoconf.h"
    key = hashlib.sha256(json.dumps([command, header, pattern, list(prelude), optional]).encode()
                         + (autoconf.read_bytes() if autoconf.is_file() else b"")).hexdigest()
    cache = build_dir / CACHE_NAME
    try:
        stored = json.loads(cache.read_text())
    except (OSError, ValueError):
        stored = {}
    if key in stored:
        return {k: int(v) for k, v in stored[key].items()}
    include = "".join(f"#include <{h}>\n" for h in (*prelude, header))
    try:
        macros = _compile(build_dir, command, include, ["-E", "-dM"])
    except UserError as err:
        if not (optional and "No such file" in str(err)):
            raise
        macros = ""
    defined = re.findall(r"^#define\s+(\w+)[ \t]", macros, re.MULTILINE)
    names = sorted({name for name in defined if re.fullmatch(pattern, name)})
    values = _evaluate(build_dir, command, include, names) if names else {}
    stored[key] = values
    cache.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    return values


def _evaluate(build_dir: Path, command: list[str], include: str, names: list[str]) -> dict[str, int]:
    """The constant values of `names`; if one of them is not a constant, each alone (the rest are kept)."""

    def body(chosen: list[str]) -> str:
        return (include + _DEFINE + "void entry_verify_probe(void);\nvoid entry_verify_probe(void)\n{\n"
                + "".join(f"\tEV_DEFINE({name}, {name});\n" for name in chosen) + "}\n")

    try:
        return {name: int(value) for name, value in _MARKER.findall(_compile(build_dir, command, body(names), ["-S"]))}
    except UserError:
        if len(names) == 1:
            return {}
    values: dict[str, int] = {}
    for name in names:
        values |= _evaluate(build_dir, command, include, [name])
    return values
