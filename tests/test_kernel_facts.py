"""What the verifier learns from a kernel's build instead of from files written per version: the thread-flag
bits (a probe compiled with the tree's own Kbuild command), the layout and KPTI alias (asm-offsets.h), the
generic entry code to lift, and the one contracts file chosen by version range."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from golden_verdicts import GOLDEN, golden_name, kernel_args, verdict_rows

from verifier.cli.main import main
from verifier.kernel.callees import callee_ring
from verifier.kernel.companions import built_sources, defines, generic_entry_sources
from verifier.kernel.info import TRAMP_SECTION, contracts_for, kernel_info, kernel_version
from verifier.kernel.probe import compile_command, probe_values
from verifier.proof.contract_run import source_of
from verifier.spec.contracts import BuildFacts, load_contracts
from verifier.spec.versions import version_in
from verifier.util.errors import UserError
from verifier.util.paths import PROOFS

ROOT = Path(__file__).resolve().parents[1]


def build_dir_of(asm: dict[str, Path]) -> Path:
    return asm["entry.S"].parents[3]


def header_tif(tree: Path) -> dict[str, int]:
    """TIF bits written as plain numbers in the arch header: an independent reading to compare with."""
    text = (tree / "arch/arm64/include/asm/thread_info.h").read_text()
    return {name: int(value) for name, value in re.findall(r"^#define\s+(TIF_\w+)\s+(\d+)\b", text, re.MULTILINE)}


@pytest.mark.kernel
@pytest.mark.parametrize("version", ["5.10", "6.1", "7.3"])
def test_thread_flags_are_what_the_tree_defines(kernel_tree: Callable[[str], Path],
                                                kernel_asm: Callable[[str], dict[str, Path]], version: str) -> None:
    info = kernel_info(kernel_tree(version), build_dir_of(kernel_asm(version)))
    written = header_tif(kernel_tree(version))
    assert written, "the header defines no TIF bit as a number: the comparison would be empty"
    for name, value in written.items():
        assert info.tif.get(name) == value, name
    assert info.tif["TIF_SINGLESTEP"] == 21
    assert info.layout.keys() == {"TSK_TI_FLAGS", "S_PC", "S_PSTATE", "S_FRAME_SIZE", "TSK_STACK", "THREAD_SIZE"}
    assert info.layout["THREAD_SIZE"] == 1 << 14  # defconfig: 4K pages, no KASAN
    assert info.version.startswith(version + ".")
    assert any("thread flags" in line and "probed" in line for line in info.derived)


@pytest.mark.kernel
def test_the_kpti_alias_is_the_builds_tramp_valias(kernel_asm: Callable[[str], dict[str, Path]],
                                                   kernel_tree: Callable[[str], Path]) -> None:
    for version in ("6.1", "6.12"):
        build = build_dir_of(kernel_asm(version))
        offsets = (build / "include/generated/asm-offsets.h").read_text()
        valias = int(re.search(r"^#define TRAMP_VALIAS (-?\d+)", offsets, re.MULTILINE).group(1))
        info = kernel_info(kernel_tree(version), build)
        assert info.aliases == {TRAMP_SECTION: valias & (2**64 - 1)}
    # the two defconfigs differ (48-bit VA on 6.1, 52-bit-capable on 6.12): nothing per version could be shared
    assert (kernel_info(kernel_tree("6.1"), build_dir_of(kernel_asm("6.1"))).aliases
            != kernel_info(kernel_tree("6.12"), build_dir_of(kernel_asm("6.12"))).aliases)


@pytest.mark.kernel
def test_a_probe_that_does_not_compile_is_a_clear_error(kernel_asm: Callable[[str], dict[str, Path]],
                                                        tmp_path: Path) -> None:
    build = build_dir_of(kernel_asm("6.12"))
    assert "-S" in compile_command(build)
    with pytest.raises(UserError, match="did not compile with the tree's flags"):
        probe_values(build, "linux/no-such-header.h", r"TIF_\w+")
    with pytest.raises(UserError, match="no Kbuild command file"):
        probe_values(tmp_path, "linux/thread_info.h", r"TIF_\w+")


@pytest.mark.kernel
def test_generic_entry_code_is_lifted_where_the_tree_runs_through_it(
        kernel_tree: Callable[[str], Path], kernel_asm: Callable[[str], dict[str, Path]]) -> None:
    assert "kernel/entry/common.c" in kernel_asm("7.3")  # irqentry_exit and the preemption point live there
    assert not [name for name in kernel_asm("6.12") if name.startswith("kernel/entry/")]
    tree, build = kernel_tree("6.12"), build_dir_of(kernel_asm("6.12"))
    # 6.12 builds kernel/entry/kvm.c but the arm64 entry code calls nothing in it
    assert "kernel/entry/kvm.c" in built_sources(tree, build)
    assert generic_entry_sources(tree, build, list(kernel_asm("6.12").values())) == []


def test_definitions_not_declarations_are_found(tmp_path: Path) -> None:
    source = tmp_path / "x.c"
    source.write_text("void declared(int a);\nstatic inline int\ndefined_here(struct pt_regs *regs)\n{\n}\n")
    assert defines(source, {"defined_here"})
    assert not defines(source, {"declared"})


def test_kernel_version_has_the_sublevel(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 3\nSUBLEVEL = 4\nEXTRAVERSION =\n")
    assert kernel_version(tmp_path) == "7.3.4"


@pytest.mark.parametrize(("version", "spec", "inside"), [
    ("5.10.223", ">= 5.10", True), ("5.9.0", ">= 5.10", False), ("6.1.0", ">= 6.1, < 6.2", True),
    ("6.12.117", ">= 6.1, < 6.2", False), ("7.3.4", "== 7.3", True), ("7.3.4", "", True),
])
def test_version_ranges(version: str, spec: str, inside: bool) -> None:
    assert version_in(version, spec) is inside


def test_one_contracts_file_serves_every_version_and_states_no_build_fact() -> None:
    # older than the range it was written against too (no version floor refuses a run: 2020's 5.8, 4.19)
    for version in ("4.19.0", "5.4.0", "5.8.18", "5.10.223", "6.1.192", "6.12.117", "7.2.13", "7.3.4", "7.9.0"):
        assert contracts_for(version) == PROOFS / "contracts" / "linux.toml"
    text = (PROOFS / "contracts" / "linux.toml").read_text()
    assert not re.search(r"^\[(layout|layout\.tif|aliases)\]", text, re.MULTILINE)
    # without the build's facts it cannot be used: they are not hiding in the file
    with pytest.raises(UserError, match="neither the build .* nor the contracts give TSK_TI_FLAGS"):
        load_contracts(PROOFS / "contracts" / "linux.toml")
    facts = BuildFacts("7.3.4", {"TSK_TI_FLAGS": 0, "S_PC": 256, "S_PSTATE": 264, "S_FRAME_SIZE": 336},
                       {"TIF_SINGLESTEP": 21}, {TRAMP_SECTION: 1 << 63})
    contracts = load_contracts(PROOFS / "contracts" / "linux.toml", facts)
    assert contracts.tif == {"TIF_SINGLESTEP": 21} and contracts.aliases == {TRAMP_SECTION: 1 << 63}


@pytest.mark.kernel
def test_a_tree_proves_the_same_with_the_contracts_moved_away(kernel_tree: Callable[[str], Path],
                                                              tmp_path: Path) -> None:
    """tests/golden/ holds the verdicts recorded when each tree had its own contracts file with its layout,
    thread flags and KPTI alias written in. With the one version-range file, copied away from proofs/, and
    the facts taken from the build, the verdicts of those slots are the recorded ones."""
    moved = tmp_path / "elsewhere.toml"
    shutil.copyfile(PROOFS / "contracts" / "linux.toml", moved)
    slots = ("el1h_irq", "el0_64_irq", "el0_32_sync")
    out = tmp_path / "report.json"
    args = [*kernel_args(kernel_tree("6.12"), False), "--contracts", str(moved), "-j2", "--format", "json",
            "-o", str(out)]
    main([*args, *(arg for slot in slots for arg in ("--vector", slot))])
    recorded = [row for row in json.loads((GOLDEN / golden_name("6.12", False)).read_text()) if row[2] in slots]
    assert recorded and verdict_rows(json.loads(out.read_text())) == recorded


@pytest.mark.kernel
@pytest.mark.parametrize("version", ["5.10", "6.1", "6.12", "7.3"])
def test_capability_names_come_from_the_build(kernel_tree: Callable[[str], Path],
                                              kernel_asm: Callable[[str], dict[str, Path]], version: str) -> None:
    """5.10 keeps them in the tree's asm/cpucaps.h, 6.1 generates cpucaps.h, 6.12 on cpucap-defs.h: a name
    `--cap` accepts and a report prints on every one of them."""
    info = kernel_info(kernel_tree(version), build_dir_of(kernel_asm(version)))
    assert len(info.cap_names) > 40
    assert "ARM64_WORKAROUND_1463225" in info.cap_names.values()
    assert any(re.match(rf"{len(info.cap_names)} CPU capability names: the (build|tree)'s ", line)
               for line in info.derived)


def header_defines(path: Path) -> dict[str, int]:
    """`#define NAME 0xNN` written as plain numbers in a header: an independent reading to compare with."""
    if not path.is_file():
        return {}
    return {name: int(value, 0) for name, value in
            re.findall(r"^#define\s+(\w+)\s+(0x[0-9a-fA-F]+|\d+)\s*$", path.read_text(), re.MULTILINE)}


@pytest.mark.kernel
@pytest.mark.parametrize("version", ["5.10", "6.1", "6.12", "7.3"])
def test_gic_priorities_come_from_the_build(kernel_tree: Callable[[str], Path],
                                            kernel_asm: Callable[[str], dict[str, Path]], version: str) -> None:
    """GIC_PRIO_IRQON, GIC_PRIO_IRQOFF (before 6.10 a boot-time choice between two values), the normal
    interrupts' priority and the boot PMR, as the tree writes them; defconfig has no pseudo-NMI."""
    tree = kernel_tree(version)
    info = kernel_info(tree, build_dir_of(kernel_asm(version)))
    facts = info.priority
    written = header_defines(tree / "include/linux/irqchip/arm-gic-v3-prio.h")
    written |= header_defines(tree / "arch/arm64/include/asm/ptrace.h")
    written |= header_defines(tree / "include/linux/irqchip/arm-gic-common.h")
    assert facts.irq_on == written.get("GIC_PRIO_IRQON", written.get("GICV3_PRIO_UNMASKED"))
    assert facts.irq_priority == written.get("GICV3_PRIO_IRQ", written["GICD_INT_DEF_PRI"])
    if "GICV3_PRIO_IRQ" in written:
        assert facts.irq_off == (written["GICV3_PRIO_IRQ"],)
    else:  # (GIC_PRIO_IRQON & ~0x80) or the non-secure view's value
        assert facts.irq_off == (facts.irq_on & ~0x80, written["__GIC_PRIO_IRQOFF_NS"])
    assert facts.boot_pmr == 0xF0 and facts.psr_i_set == 0x10
    assert info.cap_names[facts.capability] in ("ARM64_HAS_GIC_PRIO_MASKING", "ARM64_HAS_IRQ_PRIO_MASKING")
    assert not facts.configured  # defconfig: CONFIG_ARM64_PSEUDO_NMI is not set
    assert any(line.startswith("priority masking: CONFIG_ARM64_PSEUDO_NMI not set") for line in info.derived)


def test_the_callee_ring_follows_the_makefiles_subdirectories(tmp_path: Path) -> None:
    tree, build = tmp_path / "tree", tmp_path / "build"
    files = {
        "kernel/Makefile": "obj-y = fork.o\nobj-y += printk/\nobj-$(CONFIG_OFF) += off/\n",
        "kernel/fork.c": "int copy_process(void)\n{\n}\n",
        "kernel/printk/Makefile": "obj-y\t= printk.o\n",
        "kernel/printk/printk.c": "int _printk(const char *fmt, ...)\n{\n}\n",
        "kernel/off/Makefile": "obj-y = off.o\n",
        "kernel/off/off.c": "void hidden(void)\n{\n}\n",
        "arch/arm64/kernel/Makefile": "obj-y := entry-fpsimd.o\n",
        "arch/arm64/kernel/entry-fpsimd.S": "SYM_FUNC_START(sve_flush_live)\n\tret\nSYM_FUNC_END(sve_flush_live)\n",
    }
    for name, text in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(text)
    build.mkdir()
    (build / ".config").write_text("CONFIG_ON=y\n")
    entry = build / "entry.s"
    entry.write_text("entry:\n\tbl\t_printk\n\tbl\tcopy_process\n\tbl\thidden\n\tbl\tsve_flush_live\n\tret\n")
    ring = callee_ring(tree, build, [entry])
    assert ring.sources == {"copy_process": "kernel/fork.c", "_printk": "kernel/printk/printk.c",
                            "sve_flush_live": "arch/arm64/kernel/entry-fpsimd.S"}
    assert "subdirectories their Makefiles build" in ring.missing["hidden"]  # its directory is not built


def test_a_checked_function_is_named_by_its_longest_tree_path(tmp_path: Path) -> None:
    for source in ("kernel/signal.c", "arch/arm64/kernel/signal.c"):
        (tmp_path / "tree" / source).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tree" / source).write_text("")
    assembly = tmp_path / "build" / "arch/arm64/kernel/signal.s"
    assert source_of(assembly, str(tmp_path / "tree")) == "arch/arm64/kernel/signal.c"
