"""What a kernel build tells the prover about itself: its version (which contracts and role bindings apply),
the asm-offsets layout and thread-flag bits the obligations need, the KPTI trampoline's alias, and the names
of the CPU capabilities the alternatives test. All of it is read from the build or asked of the tree's own
compiler (verifier.kernel.probe); nothing here is written per version."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from verifier.kernel.kbuild import configuration_of
from verifier.kernel.probe import probe_values
from verifier.spec.contracts import BuildFacts
from verifier.spec.priority import PriorityFacts
from verifier.spec.versions import version_in
from verifier.util.errors import UserError
from verifier.util.files import read_toml
from verifier.util.paths import PROOFS

CONTRACTS_DIR = PROOFS / "contracts"
# Our layout names -> the asm-offsets.h names they come from (sizeof(struct pt_regs) was S_FRAME_SIZE up to
# 5.13, PT_REGS_SIZE since).
_OFFSETS = {"TSK_TI_FLAGS": ("TSK_TI_FLAGS",), "S_PC": ("S_PC",), "S_PSTATE": ("S_PSTATE",),
            "S_FRAME_SIZE": ("PT_REGS_SIZE", "S_FRAME_SIZE"), "TSK_STACK": ("TSK_STACK",)}
# The section KPTI maps a second time, at TRAMP_VALIAS (asm-offsets.h), for the return to user space.
TRAMP_SECTION = ".entry.tramp.text"


@dataclass
class KernelInfo:
    version: str  # "7.3.4"
    layout: dict[str, int]
    cap_names: dict[int, str]
    tif: dict[str, int]
    aliases: dict[str, int]
    derived: tuple[str, ...] = ()
    options: frozenset[str] | None = None  # Kconfig options set to y or m in the build's .config
    priority: PriorityFacts = field(default_factory=PriorityFacts)

    @property
    def series(self) -> str:
        """"7.3.4" -> "7.3"."""
        return ".".join(self.version.split(".")[:2])

    def facts(self) -> BuildFacts:
        return BuildFacts(self.version, dict(self.layout), dict(self.tif), dict(self.aliases), self.derived,
                          self.options, self.priority)

    def contracts(self) -> Path:
        return contracts_for(self.version)


def contracts_for(version: str) -> Path:
    """The contracts file of family `linux`: the one whose `applies` range holds this version, else the only
    one there is. A contract says what a function is, not which versions have it, so a tree older (or newer)
    than the range it was written against gets verdicts too (the report names the file and its range)."""
    family, holding = [], []
    for path in sorted(CONTRACTS_DIR.glob("*.toml")):
        data, _ = read_toml(path, "contracts")
        if str(data.get("family", "")) != "linux":
            continue
        family.append(path)
        try:
            if version_in(version, str(data.get("applies", ""))):
                holding.append(path)
        except ValueError as err:
            raise UserError(f"applies: {err}", str(path)) from None
    candidates = holding or family
    if len(candidates) != 1:
        what = "no" if not candidates else "more than one (" + ", ".join(p.name for p in candidates) + ")"
        raise UserError(f"{what} contracts file in {CONTRACTS_DIR} is for Linux {version}; pass --contracts FILE")
    return candidates[0]


def kernel_version(tree: Path) -> str:
    """VERSION.PATCHLEVEL.SUBLEVEL from the tree's Makefile."""
    try:
        text = (tree / "Makefile").read_text(errors="replace")
    except OSError as err:
        raise UserError(f"cannot read Makefile: {err.strerror}", str(tree / "Makefile")) from None
    fields = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL)\s*=\s*(\d*)", text, re.MULTILINE))
    if not fields.get("VERSION") or not fields.get("PATCHLEVEL"):
        raise UserError("not a kernel Makefile (no VERSION/PATCHLEVEL)", str(tree / "Makefile"))
    return f"{fields['VERSION']}.{fields['PATCHLEVEL']}.{fields.get('SUBLEVEL') or 0}"


def _asm_offsets(build_dir: Path) -> dict[str, int]:
    path = build_dir / "include" / "generated" / "asm-offsets.h"
    if not path.is_file():
        return {}
    return {name: int(value) for name, value in re.findall(r"^#define\s+(\w+)\s+(-?\d+)", path.read_text(),
                                                             re.MULTILINE)}


def read_layout(build_dir: Path) -> dict[str, int]:
    defines = _asm_offsets(build_dir)
    layout: dict[str, int] = {}
    for key, names in _OFFSETS.items():
        found = [defines[name] for name in names if name in defines]
        if found:
            layout[key] = found[0]
    return layout


def read_aliases(build_dir: Path) -> dict[str, int]:
    """The trampoline section's alias, when the configuration has KPTI (asm-offsets defines TRAMP_VALIAS)."""
    defines = _asm_offsets(build_dir)
    return {TRAMP_SECTION: defines["TRAMP_VALIAS"]} if "TRAMP_VALIAS" in defines else {}


def cap_names_header(build_dir: Path, tree: Path | None = None) -> Path | None:
    """Where the capability numbers are defined: generated into the build since 6.3 (`cpucaps.h`, then
    `cpucap-defs.h`), a header of the tree before."""
    generated = build_dir / "arch" / "arm64" / "include" / "generated" / "asm"
    candidates = [generated / "cpucap-defs.h", generated / "cpucaps.h"]
    if tree is not None:
        candidates.append(tree / "arch" / "arm64" / "include" / "asm" / "cpucaps.h")
    return next((path for path in candidates if path.is_file()), None)


def read_cap_names(header: Path) -> dict[int, str]:
    return {int(n): name for name, n in re.findall(r"^#define\s+(ARM64_\w+)\s+(\d+)", header.read_text(), re.MULTILINE)
            if name != "ARM64_NCAPS"}


def _dot_config(build_dir: Path) -> str | None:
    try:
        return (build_dir / ".config").read_text()
    except OSError:
        return None


def read_options(config: str | None) -> frozenset[str] | None:
    """The options a .config's text sets to y or m (None without a .config)."""
    return None if config is None else frozenset(re.findall(r"^(CONFIG_\w+)=[ym]$", config, re.MULTILINE))


def read_compiler(config: str | None) -> str | None:
    """What compiled the build, as Kconfig recorded it ("aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0")."""
    found = re.search(r'^CONFIG_CC_VERSION_TEXT="(.*)"$', config, re.MULTILINE) if config else None
    return found.group(1) if found else None


def read_tif(build_dir: Path) -> dict[str, int]:
    """The thread-flag bits, as the tree's compiler evaluates <linux/thread_info.h> for this configuration."""
    return probe_values(build_dir, "linux/thread_info.h", r"TIF_\w+")


def read_thread_size(build_dir: Path) -> int | None:
    """THREAD_SIZE, the size of a task's kernel stack, as the tree's compiler evaluates <asm/memory.h> for this
    configuration (the entry code's overflow check tests bit THREAD_SHIFT of the same definitions)."""
    return probe_values(build_dir, "asm/memory.h", r"THREAD_SIZE").get("THREAD_SIZE")


# The capability under which the kernel masks interrupts with ICC_PMR_EL1 (renamed in 6.3).
PRIORITY_CAPABILITIES = ("ARM64_HAS_GIC_PRIO_MASKING", "ARM64_HAS_IRQ_PRIO_MASKING")
PSEUDO_NMI_OPTION = "CONFIG_ARM64_PSEUDO_NMI"
GIC_DRIVER = Path("drivers/irqchip/irq-gic-v3.c")


def read_priority(tree: Path, build_dir: Path, caps: dict[int, str], options: frozenset[str] | None,
                  ) -> tuple[PriorityFacts, str]:
    """The GIC priority-masking facts of a build, and where they came from: the PMR values the kernel writes
    (asm/ptrace.h: GIC_PRIO_IRQON, GIC_PRIO_IRQOFF, or before 6.10 the two values the boot chooses from,
    GIC_PRIO_PSR_I_SET), the priority normal interrupts get in the PMR view (GICV3_PRIO_IRQ where the tree has
    <linux/irqchip/arm-gic-v3-prio.h>, else the distributor's GICD_INT_DEF_PRI), the boot value of PMR
    (DEFAULT_PMR_VALUE, the GIC driver) and the capability that turns priority masking on."""
    values = probe_values(build_dir, "asm/ptrace.h", r"(__)?GIC_PRIO_\w+")
    values |= probe_values(build_dir, "linux/irqchip/arm-gic-v3-prio.h", r"GICV3_PRIO_\w+",
                           prelude=("linux/build_bug.h",), optional=True)
    values |= probe_values(build_dir, "linux/irqchip/arm-gic-common.h", r"GICD_INT_DEF_PRI", optional=True)
    irq_off = ((values["GIC_PRIO_IRQOFF"],) if "GIC_PRIO_IRQOFF" in values
               else tuple(values[name] for name in sorted(values) if name.startswith("__GIC_PRIO_IRQOFF")))
    priority_name = next((name for name in ("GICV3_PRIO_IRQ", "GICD_INT_DEF_PRI") if name in values), None)
    irq_priority = values[priority_name] if priority_name else None
    irq_on = values.get("GIC_PRIO_IRQON")
    boot = None
    try:
        found = re.search(r"^#define\s+DEFAULT_PMR_VALUE\s+(0[xX][0-9a-fA-F]+|\d+)\b",
                          (tree / GIC_DRIVER).read_text(errors="replace"), re.MULTILINE)
        boot = int(found.group(1), 0) if found else None
    except OSError:
        pass
    capability = next((n for n, name in caps.items() if name in PRIORITY_CAPABILITIES), None)
    configured = options is None or PSEUDO_NMI_OPTION in options
    problems = []
    if irq_priority is None or irq_on is None or not irq_off:
        problems.append("the tree does not define them all")
    elif not (irq_on > irq_priority >= max(irq_off)):
        problems.append(f"GIC_PRIO_IRQON {irq_on:#x} > priority {irq_priority:#x} >= GIC_PRIO_IRQOFF does not hold")
    if problems:  # an unknown priority: irqs_on is not available, PMR is unconstrained
        irq_priority = None
    facts = PriorityFacts(configured, capability, irq_on, irq_off, values.get("GIC_PRIO_PSR_I_SET"),
                          irq_priority, boot)
    described = ("priority masking: " + ("CONFIG_ARM64_PSEUDO_NMI set" if options is not None and configured
                                         else "no configuration known" if options is None
                                         else "CONFIG_ARM64_PSEUDO_NMI not set (PMR keeps its boot value)")
                 + (f", capability {caps[capability]}" if capability is not None else ", no capability")
                 + (f"; GIC_PRIO_IRQON {irq_on:#x}" if irq_on is not None else "")
                 + (f", GIC_PRIO_IRQOFF {'/'.join(f'{v:#x}' for v in irq_off)}" if irq_off else "")
                 + (f", normal interrupt priority {irq_priority:#x} ({priority_name})" if irq_priority is not None
                    else f", normal interrupt priority unknown ({'; '.join(problems)})")
                 + (f", boot PMR {boot:#x} (DEFAULT_PMR_VALUE, {GIC_DRIVER})" if boot is not None
                    else ", boot PMR unknown")
                 + ": asm/ptrace.h, <linux/irqchip/arm-gic-*.h> probed with entry-common.c's Kbuild command")
    return facts, described


def kernel_info(tree: Path, build_dir: Path) -> KernelInfo:
    header = cap_names_header(build_dir, tree)
    layout, caps, tif = read_layout(build_dir), read_cap_names(header) if header else {}, {}
    config = _dot_config(build_dir)
    aliases = {section: value & (2**64 - 1) for section, value in read_aliases(build_dir).items()}
    version = kernel_version(tree)
    derived = [f"version {version}: the tree's Makefile"]
    configuration = configuration_of(build_dir)
    if configuration:
        derived.append(f"configuration {configuration}: the build dir's stamp")
    compiler = read_compiler(config)
    if compiler:
        derived.append(f"compiler {compiler}: CONFIG_CC_VERSION_TEXT, .config")
    derived.append("layout " + ", ".join(f"{k}={v}" for k, v in layout.items())
                   + ": include/generated/asm-offsets.h" if layout else "layout: none in the build (contracts' own)")
    options = read_options(config)
    priority = PriorityFacts()
    if (build_dir / "arch/arm64/kernel/.entry-common.s.cmd").is_file():
        tif = read_tif(build_dir)
        derived.append(f"thread flags ({len(tif)} TIF_* bits, TIF_SINGLESTEP={tif.get('TIF_SINGLESTEP')}): "
                       "<linux/thread_info.h> probed with entry-common.c's Kbuild command")
        thread_size = read_thread_size(build_dir)
        if thread_size is not None:
            layout["THREAD_SIZE"] = thread_size
            derived.append(f"THREAD_SIZE={thread_size}: <asm/memory.h> probed with entry-common.c's Kbuild command")
        priority, described = read_priority(tree, build_dir, caps, options)
        derived.append(described)
    else:
        derived.append("thread flags: not probed (no entry-common.c build); the contracts' own")
        derived.append("priority masking: not probed (no entry-common.c build); PMR unconstrained")
    derived.append(", ".join(f"alias {s} at {v:#x}" for s, v in aliases.items()) + ": TRAMP_VALIAS, asm-offsets.h"
                   if aliases else "no KPTI trampoline alias (no TRAMP_VALIAS in asm-offsets.h)")
    where = "none found"
    if header:
        where = ("the build's " if header.is_relative_to(build_dir) else "the tree's ") + header.name
    derived.append(f"{len(caps)} CPU capability names: {where}")
    return KernelInfo(version, layout, caps, tif, aliases, tuple(derived), options, priority)
