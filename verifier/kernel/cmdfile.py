"""How Kbuild made a `.s`, read from the `.NAME.s.cmd` it leaves next to it, and the assembler to match.

The first line of `arch/arm64/kernel/.entry-common.s.cmd` is the make variable Kbuild compares on the next
build: `savedcmd_arch/arm64/kernel/entry-common.s := clang-19 ... -S -o ... entry-common.c` (`cmd_...` in
kernels before 6.3), escaped for make (`$$` for `$`, `$(pound)` or `\\#` for `#`). From it come the
compiler (clang with its integrated assembler, clang with GNU as, or GCC with GNU as) and the flags that
decide what the assembler accepts (target, architecture, CPU, endianness, ABI). The crosscheck then
assembles the `.s` as the kernel build would have assembled the same code.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from verifier.kernel.kbuild import DEFAULT_CROSS, llvm_tool
from verifier.objfront.assemblers import DEFAULT_TARGET, GNU_AS, Assembler, kind_of

_ASSIGNMENT = re.compile(r"^(?:saved)?cmd_(\S+)\s*:=\s*(.*)$")
_GCC = re.compile(r"gcc(-\d+(\.\d+)*)?$")
_WRAPPERS = {"ccache", "sccache", "distcc"}
_SEPARATORS = {";", "&&", "||", "|", "&"}

# Extensions the kernel's inline asm turns on with `.arch_extension` (asm/fpsimd.h, asm/lse.h, asm/mte.h,
# ...). `clang -S` does not print those directives into the .s (seen with clang 19: `rdvl` and `pfalse`
# in 7.3's entry-common.s come without their `.arch_extension sve`), so LLVM's assembler gets them on the
# command line instead. They only widen what it accepts: no instruction encodes differently.
KERNEL_ASM_EXTENSIONS = ("fp", "simd", "sve", "sme", "lse", "rcpc", "memtag", "mops", "sha3")
BASE_ARCH = "armv8-a"  # what both assemblers assume for AArch64 without -march


@dataclass(frozen=True)
class TargetFlags:
    """What of a compiler command line shapes its assembler: the rest (warnings, -O2, -D...) does not."""

    target: str | None = None  # clang's --target
    arch: str | None = None  # the assembler's -march: -Wa,-march= if given, else the compiler's -march=
    cpu: str | None = None
    big_endian: bool = False
    abi: str | None = None  # -mabi= (GNU as takes it too)


@dataclass(frozen=True)
class BuildCommand:
    """The command in a `.cmd` file: `argv` starts at the compiler (wrappers like ccache dropped)."""

    cmd_file: Path
    target: str  # the make target, as the .cmd file names it (`arch/arm64/kernel/entry.s`)
    argv: tuple[str, ...]

    @property
    def compiler(self) -> str:
        return self.argv[0]

    @property
    def kind(self) -> Literal["clang", "gcc", "other"]:
        if kind_of(self.compiler) == "clang":
            return "clang"
        return "gcc" if _GCC.search(Path(self.compiler).name) else "other"

    def integrated_as(self) -> bool:
        """Whether clang assembles itself (-fintegrated-as, its default) or hands off to GNU as."""
        choice = True
        for arg in self.argv[1:]:
            if arg in ("-fintegrated-as", "-integrated-as"):
                choice = True
            elif arg in ("-fno-integrated-as", "-no-integrated-as"):
                choice = False
        return choice

    def gnu_prefix(self) -> str:
        """The binutils prefix the compiler runs `as` with: GCC's own name, clang's --prefix."""
        if self.kind == "gcc":
            return _GCC.sub("", self.compiler)
        prefix = _option_values(self.argv, "--prefix")
        if not prefix:
            return DEFAULT_CROSS
        if prefix[-1].endswith("/"):  # a directory: clang looks for <triple>-as in it
            target = (_option_values(self.argv, "--target") or [DEFAULT_TARGET])[-1]
            return f"{prefix[-1]}{target}-"
        return prefix[-1]


def cmd_file(asm: Path) -> Path:
    """Where Kbuild keeps the command that made `asm`: DIR/.NAME.s.cmd for DIR/NAME.s."""
    return asm.parent / f".{asm.name}.cmd"


def _unescape(value: str) -> str:
    # Kbuild's make-cmd doubles `$` and writes `#` as $(pound) (older kernels: `\#`)
    return value.replace("$(pound)", "#").replace("\\#", "#").replace("$$", "$")


def parse_command(text: str, cmd_path: Path) -> BuildCommand | None:
    """The build command of a `.cmd` file's text; None when there is none we can read."""
    for line in text.splitlines():
        m = _ASSIGNMENT.match(line)
        if m:
            break
    else:
        return None
    lexer = shlex.shlex(_unescape(m.group(2)), posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = ""  # a `#` inside a word (-DX=#1) is no comment
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: not a command line we understand
        return None
    argv: list[str] = []
    for token in tokens:
        if token in _SEPARATORS:
            break  # only the first command (Kbuild's .s rules have one)
        if not argv and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", token) or Path(token).name in _WRAPPERS):
            continue  # an environment assignment or a compiler wrapper before the compiler
        argv.append(token)
    return BuildCommand(cmd_path, m.group(1), tuple(argv)) if argv else None


def read_build_command(asm: Path) -> BuildCommand | None:
    """The command Kbuild made `asm` with, or None (no .cmd file: not a Kbuild output, or unreadable)."""
    path = cmd_file(asm)
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    return parse_command(text, path)


def _option_values(argv: tuple[str, ...] | list[str], name: str) -> list[str]:
    """Values of `name=VALUE` and `name VALUE` in order."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg.startswith(name + "="):
            out.append(arg[len(name) + 1 :])
        elif arg == name and i + 1 < len(argv):
            out.append(argv[i + 1])
    return out


def _last(values: list[str]) -> str | None:
    """The value that wins (the last one given), or None."""
    return values[-1] if values else None


def target_flags(argv: tuple[str, ...]) -> TargetFlags:
    """The assembler-relevant flags of a compiler command line (the compiler itself is argv[0])."""
    args = list(argv[1:])
    wa: list[str] = []  # what -Wa, passes to the assembler, comma-separated
    for arg in args:
        if arg.startswith("-Wa,"):
            wa.extend(a for a in arg[4:].split(",") if a)
    target = _last(_option_values(args, "--target") + _option_values(args, "-target"))
    # the assembler's own -march/-mcpu win over the compiler's (GCC puts -Wa options last; clang lets
    # -Wa,-march= override -march= for the integrated assembler)
    arch = _last(_option_values(args, "-march") + _option_values(wa, "-march"))
    cpu = _last(_option_values(args, "-mcpu") + _option_values(wa, "-mcpu"))
    endian = [a for a in args + wa if a in ("-mlittle-endian", "-mbig-endian", "-EL", "-EB")]
    abi = _last(_option_values(args, "-mabi") + _option_values(wa, "-mabi"))
    return TargetFlags(target, arch, cpu, bool(endian) and endian[-1] in ("-mbig-endian", "-EB"), abi)


def gnu_assembler(program: str, flags: TargetFlags, origin: str) -> Assembler:
    """GNU as with the options GCC's driver would pass it for these flags (-EL/-EB, -mabi, -march, -mcpu)."""
    argv = [program, "-EB" if flags.big_endian else "-EL"]
    if flags.abi:
        argv.append(f"-mabi={flags.abi}")
    if flags.arch:
        argv.append(f"-march={flags.arch}")
    if flags.cpu:
        argv.append(f"-mcpu={flags.cpu}")
    return Assembler(tuple(argv), origin)


def llvm_assembler(clang: str, flags: TargetFlags, origin: str) -> Assembler:
    """LLVM's integrated assembler behind `clang`, for the same target, with KERNEL_ASM_EXTENSIONS."""
    extensions = "".join(f"+{e}" for e in KERNEL_ASM_EXTENSIONS)
    endian = "-mbig-endian" if flags.big_endian else "-mlittle-endian"
    argv = [clang, f"--target={flags.target or DEFAULT_TARGET}", endian]
    if flags.cpu and not flags.arch:
        argv.append(f"-mcpu={flags.cpu}{extensions}")
    else:
        if flags.cpu:
            argv.append(f"-mcpu={flags.cpu}")
        argv.append(f"-Wa,-march={flags.arch or BASE_ARCH}{extensions}")
    return Assembler(tuple(argv), origin)


def assembler_for(asm: Path, llvm: str | None = None) -> Assembler:
    """The assembler the crosscheck should run on `asm`: the one its Kbuild .cmd file says the build used
    (GNU as for GCC and for clang without its integrated assembler, else LLVM's), with that build's
    target flags. `llvm` (an LLVM= value: 1, -19, /path/bin/) forces LLVM's assembler, still with the
    .cmd file's flags when there is one. Without a .cmd file: GNU as, aarch64-linux-gnu-as."""
    command = read_build_command(asm)
    flags = target_flags(command.argv) if command else TargetFlags()
    if llvm is not None:
        where = f"target flags from {command.cmd_file.name}" if command else "default target flags (no .cmd file)"
        return llvm_assembler(llvm_tool("clang", llvm), flags, f"--llvm, {where}")
    if command is None:
        return Assembler(GNU_AS.argv, "default: no .cmd file")
    where = f"from {command.cmd_file.name}"
    if command.kind == "other":
        return Assembler(GNU_AS.argv, f"default: {command.cmd_file.name} names no GCC or clang")
    if command.kind == "clang" and command.integrated_as():
        return llvm_assembler(command.compiler, flags, f"LLVM's integrated assembler, {where}")
    return gnu_assembler(command.gnu_prefix() + "as", flags, f"GNU as, {where}")
