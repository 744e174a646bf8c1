"""Run the kernel's own Kbuild, out of tree, to get the assembly the verifier reads.

entry.S is only preprocessed (`make foo.s` on a .S runs cpp), while entry-common.c and
debug-monitors.c are compiled to assembly, so all three come out as `.s` with the real
config's macros, alternatives and inlining. The source tree is only ever read: everything
Kbuild writes lands in the build dir (O=).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from verifier.kernel.callees import CalleeRing, assembly_labels, callee_ring
from verifier.kernel.companions import callback_symbols, generic_entry_sources
from verifier.util.errors import UserError
from verifier.util.paths import cache_root

DEFAULT_FILES: tuple[str, ...] = (
    "arch/arm64/kernel/entry.S",
    "arch/arm64/kernel/entry-common.c",
    "arch/arm64/kernel/debug-monitors.c",
)
DEFAULT_CROSS = "aarch64-linux-gnu-"

# Files the tool keeps in the build dir, next to Kbuild's own.
STAMP_NAME = ".entry-verify-stamp.json"
LOCK_NAME = ".entry-verify.lock"
LOG_NAME = ".entry-verify-make.log"

# How much of make's output a failure shows; the whole log stays in the build dir.
TAIL_LINES = 40

# Variables that would make Kbuild write somewhere else (into the tree, for KBUILD_OUTPUT=.),
# build the wrong thing, or inherit an outer make's flags when we run under `make test`.
_SCRUBBED_ENV = (
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "MAKEOVERRIDES",
    "GNUMAKEFLAGS",
    "KBUILD_OUTPUT",
    "KBUILD_EXTMOD",
    "KCONFIG_CONFIG",
    "KBUILD_DEFCONFIG",
    "ARCH",
    "SRCARCH",
    "CROSS_COMPILE",
    "LLVM",
    "CC",
    "O",
    "M",
)


LLVM_LINE_TABLES = "-gline-tables-only"


def cache_dir() -> Path:
    """Where fetched trees and build dirs live: $ENTRY_VERIFY_CACHE or ~/.cache/entry-verify."""
    return cache_root()


def default_build_dir(tree: Path, toolchain: Toolchain | None = None, config: str = "defconfig") -> Path:
    # The path hash keeps two trees with the same basename (say two linux-6.1 checkouts) apart; an LLVM
    # build, and a build of another configuration, gets its own dir, so switching never reconfigures (and
    # rebuilds) another one's.
    tree = tree.resolve()
    digest = hashlib.sha256(str(tree).encode()).hexdigest()[:10]
    suffix = toolchain.dir_suffix() if toolchain else ""
    if config != "defconfig":
        suffix += "-config-" + config_choice(config)["sha256"][:8]
    return cache_dir() / "kbuild" / f"{tree.name}-{digest}{suffix}"


def source_path(source: str) -> PurePosixPath:
    """Check a tree-relative source name; a bare file name means arch/arm64/kernel/NAME,
    where all the entry code lives."""
    path = PurePosixPath(source.strip())
    if not path.parts:
        raise UserError("--files: empty file name")
    if path.is_absolute() or ".." in path.parts:
        raise UserError(f"--files: {source!r} must be a path relative to the kernel tree")
    if len(path.parts) == 1:
        path = PurePosixPath("arch/arm64/kernel") / path
    if path.suffix not in (".S", ".c"):
        raise UserError(f"--files: {source!r} is neither a .S nor a .c file")
    return path


def asm_target(source: str) -> str:
    """The Kbuild target for a source: `arch/arm64/kernel/entry.S` -> `arch/arm64/kernel/entry.s`."""
    return str(source_path(source).with_suffix(".s"))


def llvm_tool(name: str, llvm: str) -> str:
    """The LLVM program Kbuild runs for an LLVM= value: LLVM=-15 means clang-15, LLVM=/opt/llvm/bin/ means
    /opt/llvm/bin/clang, anything else (LLVM=1) plain clang."""
    if llvm.endswith("/"):
        return f"{llvm}{name}"
    if llvm.startswith("-"):
        return f"{name}{llvm}"
    return name


@dataclass(frozen=True)
class Toolchain:
    cross: str
    llvm: str | None  # the LLVM= value ("1", "-15", "/usr/lib/llvm-15/") or None for GCC

    def make_vars(self) -> list[str]:
        # Kbuild derives clang's --target from ARCH alone, so LLVM builds need no CROSS_COMPILE.
        # clang's -fverbose-asm writes no source lines (gcc's does), so LLVM builds get line tables:
        # their `.loc` directives say which C function an inlined instruction came from. clang makes
        # the same code with and without -g.
        if self.llvm:
            kcflags = " ".join(filter(None, (os.environ.get("KCFLAGS", ""), LLVM_LINE_TABLES)))
            return [f"LLVM={self.llvm}", f"KCFLAGS={kcflags}"]
        return [f"CROSS_COMPILE={self.cross}"]

    def describe(self) -> str:
        return f"LLVM={self.llvm}" if self.llvm else f"CROSS_COMPILE={self.cross}"

    def dir_suffix(self) -> str:
        """What a default build dir's name gets for this toolchain: nothing for GCC (the dirs that
        existed before LLVM builds did), `-llvm-19` for LLVM=-19, `-llvm` for LLVM=1."""
        if not self.llvm:
            return ""
        if self.llvm.startswith("-") and re.fullmatch(r"-[0-9.]+", self.llvm):
            return f"-llvm{self.llvm}"
        if self.llvm.endswith("/"):
            return "-llvm-" + hashlib.sha256(self.llvm.encode()).hexdigest()[:6]
        return "-llvm"

    def check(self) -> None:
        if self.llvm:
            clang = llvm_tool("clang", self.llvm)
            if not shutil.which(clang):
                raise UserError(f"{clang} not found (LLVM={self.llvm}); install clang, lld and llvm")
            return
        gcc = f"{self.cross}gcc"
        if not shutil.which(gcc):
            hint = (
                "install gcc-aarch64-linux-gnu (scripts/setup.sh does)"
                if self.cross == DEFAULT_CROSS
                else f"check --cross / $CROSS_COMPILE, or use the default {DEFAULT_CROSS}"
            )
            raise UserError(f"cross compiler {gcc} not found; {hint}")


@dataclass(frozen=True)
class KbuildJob:
    tree: Path
    build_dir: Path
    config: str  # "defconfig" or a path to a .config
    toolchain: Toolchain
    files: tuple[str, ...] = DEFAULT_FILES
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    verbose: bool = False
    # Also build the generic entry code (kernel/entry/) the files call into, where the tree has it.
    follow_generic_entry: bool = True


def toolchain_from(cross: str | None, llvm: bool | str) -> Toolchain:
    """`llvm` is --llvm: False, True (LLVM=1 unless $LLVM says more) or an explicit LLVM= value."""
    # Kbuild itself treats any non-empty LLVM as "use LLVM", so we do the same with the env var.
    env_llvm = os.environ.get("LLVM", "")
    llvm_value = llvm if isinstance(llvm, str) and llvm else env_llvm or ("1" if llvm else "")
    return Toolchain(
        cross=cross or os.environ.get("CROSS_COMPILE") or DEFAULT_CROSS,
        llvm=llvm_value or None,
    )


def check_tree(tree: Path) -> Path:
    """Resolve and validate a kernel source tree that we may only read."""
    if not tree.is_dir():
        raise UserError(f"kernel tree {tree} does not exist or is not a directory")
    tree = tree.resolve()
    if not (tree / "Makefile").is_file() or not (tree / "arch" / "arm64").is_dir():
        raise UserError(f"{tree} is not a Linux kernel tree (no Makefile or arch/arm64)")
    # The same test Kbuild's outputmakefile does; it would fail the build anyway, but later
    # and with a hint (`make mrproper`) that edits the tree, which is the user's call.
    for leftover in (".config", "include/config", "arch/arm64/include/generated"):
        if (tree / leftover).exists():
            raise UserError(
                f"kernel tree {tree} is not clean for out-of-tree builds (it has {leftover}); "
                "run `make mrproper` in it or use a fresh tree"
            )
    return tree


def check_build_dir(tree: Path, build_dir: Path) -> Path:
    build_dir = build_dir.expanduser().resolve()
    if build_dir == tree or build_dir.is_relative_to(tree):
        raise UserError(f"build dir {build_dir} is inside the kernel tree {tree}; choose one outside it")
    if tree.is_relative_to(build_dir):
        raise UserError(f"kernel tree {tree} is inside the build dir {build_dir}; choose another build dir")
    if build_dir.exists() and not build_dir.is_dir():
        raise UserError(f"build dir {build_dir} exists and is not a directory")
    return build_dir


@dataclass(frozen=True)
class Where:
    """Where a run builds, and the configuration it builds."""

    build_dir: Path  # the tool's own Kbuild output directory (written)
    config: str  # "defconfig" or a configuration file (only read)


def where_to_build(tree: Path, toolchain: Toolchain, config: str | None, configured: Path | None,
                   work_dir: Path | None) -> Where:
    """The build directory and configuration of a run. `configured` (--build-dir, O=, $KBUILD_OUTPUT) is the
    user's configured Kbuild output directory: its .config is the configuration, copied into the tool's own
    build directory (keyed by its content); nothing in it is written. `work_dir` (--work-dir) replaces the
    cache's build directory."""
    config = configuration(config, configured)
    build_dir = check_build_dir(tree, work_dir or default_build_dir(tree, toolchain, config))
    if configured is not None and build_dir == configured.expanduser().resolve():
        raise UserError(f"--work-dir {work_dir} is the build directory whose configuration is read; the tool "
                        "never builds in it: choose another (or leave out --work-dir)")
    return Where(build_dir, config)


def configuration(config: str | None, configured: Path | None) -> str:
    """--config, or the .config of the user's configured build directory (checked), else defconfig."""
    if configured is not None:
        configured = configured.expanduser()
        if not configured.is_dir():
            raise UserError(f"build directory {configured} does not exist (--build-dir, O= or $KBUILD_OUTPUT)")
        if not (configured / ".config").is_file():
            raise UserError(f"{configured}: not a configured Kbuild output directory (it has no .config); "
                            f"configure it (make O={configured} ARCH=arm64 defconfig), or leave out "
                            "--build-dir / O= / $KBUILD_OUTPUT for defconfig")
        if config is not None:
            raise UserError("--config and a build directory (--build-dir, O= or $KBUILD_OUTPUT) both name the "
                            "configuration: give one")
        return str((configured / ".config").resolve())
    return config or "defconfig"


def configured_dir(given: Path | None) -> Path | None:
    """--build-dir or O=, else $KBUILD_OUTPUT as Kbuild reads it."""
    if given is not None:
        return given
    env = os.environ.get("KBUILD_OUTPUT")
    return Path(env) if env else None


def config_text(path: Path) -> bytes:
    """A configuration file's text; Debian's linux-config packages ship them xz-compressed."""
    data = path.read_bytes()
    if data.startswith(b"\xfd7zXZ\x00"):
        try:
            return lzma.decompress(data)
        except lzma.LZMAError as err:
            raise UserError(f"--config: {path}: not a readable xz file ({err})") from None
    return data


def config_choice(config: str) -> dict[str, str]:
    if config == "defconfig":
        return {"config": "defconfig"}
    path = Path(config).expanduser()
    if not path.is_file():
        raise UserError(f"--config: {config} is neither `defconfig` nor an existing file")
    digest = hashlib.sha256(config_text(path)).hexdigest()
    return {"config": "file", "sha256": digest, "path": str(path.resolve())}


def configuration_of(build_dir: Path) -> str | None:
    """Which configuration a build dir was made with ("defconfig", or the file and its digest)."""
    stamp = _read_stamp(build_dir)
    if stamp is None:
        return None
    if stamp.get("config") == "defconfig":
        return "defconfig"
    return f"{stamp.get('path')} (sha256 {stamp.get('sha256', '')[:12]}, olddefconfig)"


def _stamp_key(stamp: dict[str, str]) -> dict[str, str]:
    # The config file's path is informational: the same content elsewhere needs no reconfigure.
    return {k: v for k, v in stamp.items() if k != "path"}


def _read_stamp(build_dir: Path) -> dict[str, str] | None:
    try:
        data = json.loads((build_dir / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextmanager
def _locked(build_dir: Path) -> Iterator[None]:
    # Two runs (parallel pytest workers, say) sharing a build dir would race inside make.
    with open(build_dir / LOCK_NAME, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def progress(what: str, detail: str) -> None:
    print(f"  {what:<7} {detail}", file=sys.stderr, flush=True)


def _make_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env["LC_ALL"] = "C"  # stable messages in the error tail
    return env


def _run_make(job: KbuildJob, targets: Sequence[str], what: str) -> None:
    cmd = [
        "make",
        "-C",
        str(job.tree),
        f"O={job.build_dir}",
        "ARCH=arm64",
        *job.toolchain.make_vars(),
        f"-j{job.jobs}",
        *targets,
    ]
    log_path = job.build_dir / LOG_NAME
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        # make's stdout must never reach ours, which carries only the result paths.
        if job.verbose:
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_make_env(), text=True
            )
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                sys.stderr.write(line)
            rc = proc.wait()
        else:
            rc = subprocess.run(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_make_env()
            ).returncode
    if rc != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-TAIL_LINES:]
        raise UserError(
            f"make {what} failed (exit {rc}); last lines of its output "
            f"(full log: {log_path}):\n" + "\n".join(tail)
        )


def _configure(job: KbuildJob, choice: dict[str, str]) -> bool:
    """Configure the build dir unless it already has the chosen config. Returns whether it ran."""
    stamp_path = job.build_dir / STAMP_NAME
    old = _read_stamp(job.build_dir)
    wanted = {**choice, "toolchain": job.toolchain.describe(), "tree": str(job.tree)}
    if (job.build_dir / ".config").is_file() and old is not None and _stamp_key(old) == _stamp_key(wanted):
        if old != wanted:  # the same configuration from another file: say which one this run used
            stamp_path.write_text(json.dumps(wanted, indent=2) + "\n")
        return False
    # Drop the stamp first so an interrupted configure is redone next time.
    stamp_path.unlink(missing_ok=True)
    if choice["config"] == "defconfig":
        progress("KBUILD", "defconfig")
        _run_make(job, ["defconfig"], "defconfig")
    else:
        progress("KBUILD", f"olddefconfig ({choice['path']})")
        (job.build_dir / ".config").write_bytes(config_text(Path(choice["path"])))
        _run_make(job, ["olddefconfig"], "olddefconfig")
    stamp_path.write_text(json.dumps(wanted, indent=2) + "\n")
    return True


@dataclass
class BuiltRing:
    """The callee ring's assembly, and why some callees have none (trusted contracts)."""

    outputs: list[Path]
    missing: dict[str, str]


def build_callee_ring(job: KbuildJob, assembly: list[Path]) -> BuiltRing:
    """Build the .s of each file that defines a function ASSEMBLY calls (callees.py), for contract checking.
    A file Kbuild cannot compile alone leaves its functions' contracts trusted, with make's reason."""
    ring = callee_ring(job.tree, job.build_dir, assembly)
    outputs, missing = _build_ring(job, ring, "the callee ring (contract checking)")
    # the callbacks' own callees (aarch64_insn_gen_nop() and the like): what a callback writes is read from
    # its code, and the code it calls
    callbacks = callback_symbols(assembly) & set(ring.sources)
    files = [job.build_dir / PurePosixPath(ring.sources[name]).with_suffix(".s") for name in sorted(callbacks)]
    defined = assembly_labels([*assembly, *outputs])
    more = callee_ring(job.tree, job.build_dir, [f for f in files if f.is_file()], defined)
    more.sources = {name: source for name, source in more.sources.items() if source not in ring.files()}
    if more.sources:
        extra, extra_missing = _build_ring(job, more, "the callbacks' callees")
        outputs += extra
        missing.update(extra_missing)
    return BuiltRing(outputs, missing)


def _build_ring(job: KbuildJob, ring: CalleeRing, what: str) -> tuple[list[Path], dict[str, str]]:
    missing = dict(ring.missing)
    targets = [str(PurePosixPath(source).with_suffix(".s")) for source in ring.files()]
    outputs: list[Path] = []
    with _locked(job.build_dir):
        progress("KBUILD", f"{len(targets)} files of {what}")
        with contextlib.suppress(UserError):  # -k: build what builds; each missing output is said below
            _run_make(job, ["-k", *targets], what)
        for source, target in zip(ring.files(), targets, strict=True):
            path = job.build_dir / target
            if path.is_file():
                outputs.append(path)
            else:
                for name, defined_in in ring.sources.items():
                    if defined_in == source:
                        missing[name] = f"{source} did not build to assembly (see {job.build_dir / LOG_NAME})"
    return outputs, missing


def build_asm(job: KbuildJob) -> list[Path]:
    """Configure (if needed) and build the `.s` of each requested file; return their paths."""
    sources = [source_path(f) for f in job.files]
    for src in sources:
        if not (job.tree / src).is_file():
            raise UserError(f"--files: {src} does not exist in the kernel tree {job.tree}")
    targets = [str(src.with_suffix(".s")) for src in sources]
    if not shutil.which("make"):
        raise UserError("make not found; install make (scripts/setup.sh does)")
    job.toolchain.check()
    choice = config_choice(job.config)
    job.build_dir.mkdir(parents=True, exist_ok=True)
    outputs = [job.build_dir / t for t in targets]
    with _locked(job.build_dir):
        _configure(job, choice)
        progress("KBUILD", " ".join(targets))
        start = time.monotonic()
        _run_make(job, targets, " ".join(targets))
        more = generic_entry_sources(job.tree, job.build_dir, outputs) if job.follow_generic_entry else []
        more = [source for source in more if str(PurePosixPath(source).with_suffix(".s")) not in targets]
        if more:
            extra = [str(PurePosixPath(source).with_suffix(".s")) for source in more]
            progress("KBUILD", " ".join(extra) + " (generic entry code the entry assembly calls)")
            _run_make(job, extra, " ".join(extra))
            outputs += [job.build_dir / t for t in extra]
        progress("DONE", f"{time.monotonic() - start:.1f}s in {job.build_dir}")
    missing = [str(p) for p in outputs if not p.is_file()]
    if missing:
        raise UserError(f"make succeeded but did not produce {', '.join(missing)}")
    return outputs
