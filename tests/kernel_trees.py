"""Fetch and cache the real Debian kernel source trees the `kernel` tests run against.

Layout under the cache ($ENTRY_VERIFY_CACHE or ~/.cache/entry-verify):
    debs/linux-source-6.1_*.deb        what `apt-get download` fetched
    src/linux-source-6.1/              the extracted tree (never written to afterwards)
    src/.linux-source-6.1.complete     marker: extraction finished (kept outside the tree)
Extraction happens once, into a temp dir that is renamed into place, under a file lock, so
parallel or interrupted runs never leave or see a half-extracted tree.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from verifier.kernel.kbuild import cache_dir

VERSIONS = ("6.1", "6.12")


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


def fetch_deb(version: str) -> Path:
    """The linux-source-VERSION .deb, downloaded with apt-get into the cache on first use."""
    debs = cache_dir() / "debs"
    package = f"linux-source-{version}"
    found = sorted(debs.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    if not shutil.which("apt-get"):
        raise TreeUnavailable(f"apt-get not found: cannot fetch {package} (needs a Debian machine)")
    debs.mkdir(parents=True, exist_ok=True)
    result = _run(["apt-get", "download", package], cwd=debs)
    if result.returncode != 0 and os.geteuid() == 0:
        # Fresh machines often have no package lists yet; refreshing them is harmless as root.
        _run(["apt-get", "update"])
        result = _run(["apt-get", "download", package], cwd=debs)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if result.returncode != 0 or not found:
        raise RuntimeError(
            f"apt-get download {package} failed (exit {result.returncode}); "
            f"try `apt-get update` first:\n{result.stderr.strip()}"
        )
    return found[-1]


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
        _extract(fetch_deb(version), version, tree)
        marker.touch()
    return tree
