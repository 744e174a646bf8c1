"""Which assembler turns a `.s` into the object the crosscheck reads, and running it.

Three kinds, told apart by the program's name: GNU as (`aarch64-linux-gnu-as`), LLVM's integrated
assembler behind the clang driver (`clang-19 -c`), and llvm-mc. The crosscheck should assemble with the
toolchain the kernel build used (verifier.kernel.cmdfile finds out which); whichever it is, the object is
read the same way (verifier.objfront.lift).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from verifier.util.errors import UserError

Kind = Literal["gnu", "clang", "llvm-mc"]

DEFAULT_GNU_AS = "aarch64-linux-gnu-as"
DEFAULT_TARGET = "aarch64-linux-gnu"

_CLANG = re.compile(r"^clang(-\d+(\.\d+)*)?$")
_LLVM_MC = re.compile(r"^llvm-mc(-\d+(\.\d+)*)?$")


def kind_of(program: str) -> Kind:
    """The assembler kind a program name stands for (`/usr/lib/llvm-19/bin/clang` is clang)."""
    name = Path(program).name
    if _CLANG.match(name):
        return "clang"
    if _LLVM_MC.match(name):
        return "llvm-mc"
    return "gnu"


@dataclass(frozen=True)
class Assembler:
    """A program and its target flags (`-march=...`, `--target=...`), without input and output."""

    argv: tuple[str, ...]
    origin: str = ""  # why this one was chosen, for the report ("--as", "from .entry.s.cmd", "default")

    @classmethod
    def parse(cls, command: str, origin: str = "") -> Assembler:
        argv = tuple(shlex.split(command))
        if not argv:
            raise UserError("empty assembler command")
        return cls(argv, origin)

    @property
    def kind(self) -> Kind:
        return kind_of(self.argv[0])

    def command(self, path_s: Path, out_o: Path) -> list[str]:
        # -I the file's directory: `.include "x"` then finds what the Lark front end finds
        include = ["-I", str(path_s.resolve().parent)]
        program, *flags = self.argv
        if self.kind == "clang":
            # `-x assembler`: the .s is assembled as it is, never run through cpp again
            return [program, "-c", "-x", "assembler", *flags, *include, str(path_s), "-o", str(out_o)]
        if self.kind == "llvm-mc":
            triple = [] if any(f.startswith(("-triple", "--triple")) for f in flags) else [f"-triple={DEFAULT_TARGET}"]
            return [program, "-filetype=obj", *triple, *flags, *include, str(path_s), "-o", str(out_o)]
        return [program, *flags, *include, str(path_s), "-o", str(out_o)]

    def describe(self) -> str:
        text = " ".join(shlex.quote(a) for a in self.argv)
        return f"{text} ({self.origin})" if self.origin else text

    def _install_hint(self) -> str:
        if self.kind == "gnu":
            return "install binutils-aarch64-linux-gnu (scripts/setup.sh does) or pass --as"
        return "install clang-19 and llvm-19 (scripts/setup.sh does) or pass --as"

    def run(self, path_s: str | Path, out_o: str | Path) -> Path:
        """Assemble `path_s` into `out_o`; UserError with the assembler's stderr on failure."""
        if shutil.which(self.argv[0]) is None:
            raise UserError(f"assembler '{self.argv[0]}' not found; {self._install_hint()}", file=str(path_s))
        argv = self.command(Path(path_s), Path(out_o))
        proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            detail = proc.stderr.strip() or f"exit status {proc.returncode}"
            raise UserError(f"{self.argv[0]} failed:\n{detail}", file=str(path_s))
        return Path(out_o)


GNU_AS = Assembler((DEFAULT_GNU_AS,), "default")


def assemble(path_s: str | Path, out_o: str | Path, assembler: Assembler | str = GNU_AS) -> Path:
    """Assemble `path_s` into `out_o` with `assembler` (an Assembler or a command line)."""
    if isinstance(assembler, str):
        assembler = Assembler.parse(assembler)
    return assembler.run(path_s, out_o)
