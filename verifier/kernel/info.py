"""What a kernel build tells the prover: its version (which contracts apply), the asm-offsets layout the
obligations need, and the names of the CPU capabilities the alternatives test."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from verifier.util.errors import UserError
from verifier.util.paths import PROOFS

CONTRACTS_DIR = PROOFS / "contracts"
_OFFSETS = {"TSK_TI_FLAGS": "TSK_TI_FLAGS", "S_PC": "S_PC", "S_PSTATE": "S_PSTATE", "S_FRAME_SIZE": "PT_REGS_SIZE"}


@dataclass
class KernelInfo:
    version: str  # "6.12"
    layout: dict[str, int]
    cap_names: dict[int, str]

    def contracts(self) -> Path:
        path = CONTRACTS_DIR / f"linux-{self.version}.toml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in CONTRACTS_DIR.glob("linux-*.toml")))
            raise UserError(f"no contracts for Linux {self.version} in {CONTRACTS_DIR} (have: {known}); "
                            "pass --contracts FILE")
        return path


def kernel_version(tree: Path) -> str:
    try:
        text = (tree / "Makefile").read_text(errors="replace")
    except OSError as err:
        raise UserError(f"cannot read Makefile: {err.strerror}", str(tree / "Makefile")) from None
    fields = dict(re.findall(r"^(VERSION|PATCHLEVEL)\s*=\s*(\d+)", text, re.MULTILINE))
    if "VERSION" not in fields or "PATCHLEVEL" not in fields:
        raise UserError("not a kernel Makefile (no VERSION/PATCHLEVEL)", str(tree / "Makefile"))
    return f"{fields['VERSION']}.{fields['PATCHLEVEL']}"


def read_layout(build_dir: Path) -> dict[str, int]:
    path = build_dir / "include" / "generated" / "asm-offsets.h"
    layout: dict[str, int] = {}
    if not path.is_file():
        return layout
    defines = dict(re.findall(r"^#define\s+(\w+)\s+(-?\d+)", path.read_text(), re.MULTILINE))
    for key, name in _OFFSETS.items():
        if name in defines:
            layout[key] = int(defines[name])
    return layout


def read_cap_names(build_dir: Path) -> dict[int, str]:
    path = build_dir / "arch" / "arm64" / "include" / "generated" / "asm" / "cpucaps.h"
    if not path.is_file():
        return {}
    return {int(n): name for name, n in re.findall(r"^#define\s+(ARM64_\w+)\s+(\d+)", path.read_text(), re.MULTILINE)
            if name != "ARM64_NCAPS"}


def kernel_info(tree: Path, build_dir: Path) -> KernelInfo:
    return KernelInfo(kernel_version(tree), read_layout(build_dir), read_cap_names(build_dir))
