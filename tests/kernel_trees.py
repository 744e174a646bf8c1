"""Fetch and cache the real Debian kernel source trees the `kernel` tests run against.

Layout under the cache ($ENTRY_VERIFY_CACHE or ~/.cache/entry-verify):
    apt/                               private apt sources, lists and cache (bullseye .. sid, this
                                       machine's mirror); the machine's own sources are never touched
    debs/linux-source-6.1_*.deb        what `apt-get download` fetched (kept: results name its version)
    debs/linux-config-6.1_*_arm64.deb  Debian's arm64 kernel configurations (architecture arm64)
    configs/linux-config-6.1_VER/      the configurations extracted from it (config.arm64_none_arm64.xz, ...)
    src/linux-source-6.1/              the extracted tree (never written to afterwards)
    src/.linux-source-6.1.complete     marker: extraction finished, holding the Debian package version
Extraction happens once, into a temp dir that is renamed into place, under a file lock, so
parallel or interrupted runs never leave or see a half-extracted tree.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from verifier.kernel.kbuild import cache_dir

# Debian's kernel source packages the tests run on, and the suite that serves each. Only bookworm is
# in this machine's own sources; the others are reached through a private apt configuration in the
# cache (never by editing the machine's sources).
SUITES = {"5.10": "bullseye", "6.1": "bookworm", "6.12": "trixie", "7.2": "sid", "7.3": "trixie-backports"}
VERSIONS = tuple(SUITES)
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
FALLBACK_MIRROR = "http://deb.debian.org/debian"
# How old the private package lists may get before a fetch refreshes them (sid and backports move on).
LISTS_MAX_AGE = 24 * 3600


class TreeUnavailable(Exception):
    """The tree cannot be fetched on this machine (no apt-get, say); the caller skips or fails."""


def tree_dir(version: str) -> Path:
    return cache_dir() / "src" / f"linux-source-{version}"


def _marker(version: str) -> Path:
    return cache_dir() / "src" / f".linux-source-{version}.complete"


def _looks_complete(tree: Path) -> bool:
    # A tree extracted by hand (or by an older version of this code) has no marker; the two
    # files we need most are a good enough sign that the untar finished.
    return (tree / "Makefile").is_file() and (tree / "arch/arm64/kernel/entry.S").is_file()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)


def machine_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's bookworm sources use (deb822 `URIs:` or one-line `deb URI`)."""
    files = [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*"))]
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for block in re.split(r"\n\s*\n", text):
            if re.search(r"^Suites:.*\bbookworm\b", block, re.MULTILINE):
                uri = re.search(r"^URIs:\s*(\S+)", block, re.MULTILINE)
                if uri and "security" not in uri.group(1):
                    return uri.group(1).rstrip("/")
        for uri in re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", text, re.MULTILINE):
            return uri.rstrip("/")
    return FALLBACK_MIRROR


def _apt_dir() -> Path:
    return cache_dir() / "apt"


def _architectures() -> list[str]:
    """The lists hold this machine's architecture (linux-source is `all`) and arm64 (linux-config)."""
    native = _run(["dpkg", "--print-architecture"]).stdout.strip() if shutil.which("dpkg") else ""
    return sorted({native or "amd64", "arm64"})


def _apt_options() -> list[str]:
    apt = _apt_dir()
    architectures = [option for arch in _architectures() for option in ("-o", f"APT::Architectures::={arch}")]
    return [*architectures,
        "-o", f"Dir::Etc::sourcelist={apt / 'sources.list'}",
        "-o", "Dir::Etc::sourceparts=/dev/null",
        "-o", f"Dir::State::Lists={apt / 'lists'}",
        "-o", f"Dir::Cache={apt / 'cache'}",
        "-o", "Dir::State::status=/dev/null",
    ]


def _refresh_lists() -> None:
    """Write the private sources (every suite of SUITES, the machine's mirror) and `apt-get update`
    them when missing or older than LISTS_MAX_AGE."""
    apt = _apt_dir()
    mirror = machine_mirror()
    keyring = f" [signed-by={KEYRING}]" if Path(KEYRING).is_file() else ""
    sources = f"# architectures: {' '.join(_architectures())}\n"  # another set of them means new lists
    sources += "".join(f"deb{keyring} {mirror} {suite} main\n" for suite in sorted(set(SUITES.values())))
    stamp = apt / ".updated"  # outside lists/, which apt-get update prunes
    listed = apt / "sources.list"
    fresh = (stamp.is_file() and listed.is_file() and listed.read_text() == sources
             and time.time() - stamp.stat().st_mtime < LISTS_MAX_AGE)
    if fresh:
        return
    for sub in ("lists/partial", "cache/archives/partial"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    listed.write_text(sources)
    for binary in (apt / "cache").glob("*.bin"):
        binary.unlink()  # apt rebuilds its package cache; an interrupted run may have left a broken one
    result = _run(["apt-get", *_apt_options(), "update"])
    if result.returncode != 0:
        raise RuntimeError(f"apt-get update (private lists in {apt}) failed:\n{result.stderr.strip()}")
    stamp.touch()


def available_versions(prefix: str) -> list[str]:
    """Kernel source versions the mirror has whose VERSION.PATCHLEVEL starts with PREFIX ("7." -> the
    7.x series), oldest first: what "the newest 7.x" resolves to at run time."""
    with _file_lock(_apt_dir() / ".lock"):  # another run may be refreshing the lists meanwhile
        _refresh_lists()
        result = _run(["apt-cache", *_apt_options(), "pkgnames", "linux-source-"])
    if result.returncode != 0:
        raise RuntimeError(f"apt-cache pkgnames (private lists in {_apt_dir()}) failed:\n{result.stderr.strip()}")
    found = {name.removeprefix("linux-source-") for name in result.stdout.split()}
    versions = [v for v in found if re.fullmatch(r"\d+\.\d+", v) and v.startswith(prefix)]
    return sorted(versions, key=lambda v: tuple(int(n) for n in v.split(".")))


def _download(package: str, pattern: str) -> Path:
    """PATTERN's newest .deb in the cache, `apt-get download PACKAGE` (private lists) first if none."""
    debs = cache_dir() / "debs"
    found = sorted(debs.glob(pattern))
    if found:
        return found[-1]
    if not shutil.which("apt-get"):
        raise TreeUnavailable(f"apt-get not found: cannot fetch {package} (needs a Debian machine)")
    debs.mkdir(parents=True, exist_ok=True)
    with _file_lock(_apt_dir() / ".lock"):
        _refresh_lists()
        result = _run(["apt-get", *_apt_options(), "download", package], cwd=debs)
    found = sorted(debs.glob(pattern))
    if result.returncode != 0 or not found:
        raise RuntimeError(f"apt-get download {package} failed (exit {result.returncode}):\n{result.stderr.strip()}")
    return found[-1]


def fetch_deb(version: str) -> Path:
    """The linux-source-VERSION .deb, downloaded with apt-get (private lists) into the cache on first use.
    A cached .deb is kept until it is deleted, so results stay reproducible while sid moves on."""
    return _download(f"linux-source-{version}", f"linux-source-{version}_*.deb")


# Debian's arm64 configurations by flavour: the file in linux-config-VERSION (RT is spelt two ways).
FLAVOURS = {
    "generic": ("config.arm64_none_arm64.xz",),
    "cloud": ("config.arm64_none_cloud-arm64.xz",),
    "rt": ("config.arm64_none_rt-arm64.xz", "config.arm64_rt_arm64.xz"),
    "16k": ("config.arm64_none_arm64-16k.xz",),
}


def kernel_config(version: str, flavour: str) -> Path:
    """Debian's arm64 configuration of that flavour for VERSION (xz, as Debian ships it; `--config` takes it),
    from linux-config-VERSION:arm64, fetched and extracted into the cache on first use."""
    deb = _download(f"linux-config-{version}:arm64", f"linux-config-{version}_*_arm64.deb")
    dest = cache_dir() / "configs" / deb.name.removesuffix("_arm64.deb")
    if not dest.is_dir():
        with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=".configs-") as tmp:
            result = _run(["dpkg-deb", "-x", str(deb), tmp])
            if result.returncode != 0:
                raise RuntimeError(f"could not unpack {deb.name}: {result.stderr.strip()}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            unpacked = Path(tmp) / "usr" / "src" / f"linux-config-{version}"
            with contextlib.suppress(FileExistsError, OSError):
                unpacked.rename(dest)
    for name in FLAVOURS[flavour]:
        if (dest / name).is_file():
            return dest / name
    raise TreeUnavailable(f"{deb.name} has no {flavour} configuration ({', '.join(FLAVOURS[flavour])})")


def config_package_version(version: str) -> str:
    found = sorted((cache_dir() / "debs").glob(f"linux-config-{version}_*_arm64.deb"))
    return found[-1].name.split("_")[1] if found else "unknown"


def package_version(version: str) -> str:
    """The Debian package version of the cached tree ("7.3.4-1~bpo13+1"), from the .deb it came from."""
    marker = _marker(version)
    recorded = marker.read_text().strip() if marker.is_file() else ""
    if recorded:
        return recorded
    found = sorted((cache_dir() / "debs").glob(f"linux-source-{version}_*.deb"))
    return found[-1].name.split("_")[1] if found else "unknown"


def _extract(deb: Path, version: str, dest: Path) -> None:
    member = f"linux-source-{version}.tar.xz"
    if not shutil.which("dpkg-deb"):
        raise TreeUnavailable("dpkg-deb not found: cannot unpack the kernel source .deb")
    # Work inside src/ so the final rename stays on one file system and is atomic.
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".extract-{version}-") as tmp_name:
        tmp = Path(tmp_name)
        with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as deb_tar:
            untar = subprocess.run(
                ["tar", "-x", "-C", str(tmp), "--wildcards", f"*/{member}"],
                stdin=deb_tar.stdout,
                capture_output=True,
                text=True,
            )
        if deb_tar.returncode != 0 or untar.returncode != 0:
            raise RuntimeError(f"could not extract {member} from {deb}: {untar.stderr.strip()}")
        tarball = next(tmp.rglob(member))
        out = tmp / "out"
        out.mkdir()
        result = _run(["tar", "-xJf", str(tarball), "-C", str(out)])
        if result.returncode != 0:
            raise RuntimeError(f"could not untar {tarball.name}: {result.stderr.strip()}")
        tarball.unlink()  # ~140 MB we no longer need
        extracted = out / f"linux-source-{version}"
        if not _looks_complete(extracted):
            raise RuntimeError(f"{deb.name} did not contain a linux-source-{version} tree")
        extracted.rename(dest)


def ensure_tree(version: str) -> Path:
    """The extracted linux-source-VERSION tree, fetching and extracting it on first use."""
    tree, marker = tree_dir(version), _marker(version)
    if marker.exists() and _looks_complete(tree):
        return tree
    with _file_lock(cache_dir() / "src" / f".linux-source-{version}.lock"):
        # Another process may have finished while we waited for the lock.
        if _looks_complete(tree):
            marker.touch()
            return tree
        if tree.exists():
            # A partial tree can only come from outside this code (we rename complete ones in);
            # move it aside rather than delete what someone may still want.
            tree.rename(tree.with_name(f".{tree.name}.broken-{os.getpid()}"))
        deb = fetch_deb(version)
        _extract(deb, version, tree)
        marker.write_text(deb.name.split("_")[1] + "\n")
    return tree


def newest(series: str) -> str:
    """The newest VERSION.PATCHLEVEL of a series the mirror has now ("7" -> "7.3"), resolved at run time:
    sid and backports replace versions, so no test hard-codes which 7.x is current."""
    versions = available_versions(f"{series}.")
    if not versions:
        raise TreeUnavailable(f"the mirror has no linux-source-{series}.* package")
    return versions[-1]


def results_title(version: str, flavour: str | None = None) -> str:
    """The heading of proofs/results/linux-VERSION[-FLAVOUR].md: which packages the verdicts are for."""
    if flavour is None:
        configuration = "defconfig"
    elif flavour == "pseudo-nmi":
        configuration = "defconfig with CONFIG_ARM64_PSEUDO_NMI=y"
    else:
        configuration = f"Debian's {flavour} configuration, linux-config-{version} {config_package_version(version)}"
    return (f"Linux {version} (Debian linux-source-{version} {package_version(version)}, {SUITES[version]}, "
            f"{configuration}, gcc) under proposed-2020")


def results_name(version: str, flavour: str | None = None) -> str:
    return f"linux-{version}-{flavour}.md" if flavour else f"linux-{version}.md"


def pseudo_nmi_config(version: str, defconfig: Path) -> Path:
    """The tree's defconfig (`defconfig`: the .config a defconfig build made) with CONFIG_ARM64_PSEUDO_NMI=y;
    olddefconfig settles what follows from it."""
    path = cache_dir() / "configs" / f"defconfig-pseudo-nmi-{version}.config"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [line for line in defconfig.read_text().splitlines() if "CONFIG_ARM64_PSEUDO_NMI" not in line]
    text = "\n".join([*lines, "CONFIG_ARM64_PSEUDO_NMI=y", ""])
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path

