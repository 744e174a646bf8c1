"""Lift time of each real kernel file (median of 5) next to GNU as on the same file, in the same run."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from common import REPEAT, VERSIONS, kernel_asm, median_seconds

from verifier.frontend.assembler import lift_file


def main() -> None:
    print(f"lift vs aarch64-linux-gnu-as, median of {REPEAT} runs")
    print(f"{'tree':<6} {'file':<18} {'lines':>7} {'lift (s)':>9} {'as (s)':>8} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.o"
        for version in VERSIONS:
            for name, asm in kernel_asm(version).items():
                lines = sum(1 for _ in asm.open())
                lift = median_seconds(lambda asm=asm: lift_file(asm))
                gas = median_seconds(
                    lambda asm=asm: subprocess.run(["aarch64-linux-gnu-as", str(asm), "-o", str(out)], check=True)
                )
                print(f"{version:<6} {name:<18} {lines:>7} {lift:>9.3f} {gas:>8.3f} {lift / gas:>6.1f}x")


if __name__ == "__main__":
    main()
