"""Git glue for series runs: read commits from the user's repository, and check them out (or apply patches
with `git am`) in a scratch clone under the cache.

The user's repository is only read. The scratch clone borrows its objects (`git clone --shared`, an
alternates file in the scratch clone) and has its own checkout, index and refs; nothing is ever written to
the user's checkout, index, branches or object store. (When `git am` in the scratch clone writes an object
the user's store already has, git refreshes that object file's time, as it does to keep objects from being
pruned; contents never change.)"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from verifier.util.errors import UserError

# Reading a repository owned by another user (CI containers) is safe here: we run no hooks in it.
_GIT = ["git", "-c", "safe.directory=*", "-c", "core.hooksPath=/dev/null", "-c", "advice.detachedHead=false"]
_IDENTITY = {"GIT_COMMITTER_NAME": "entry-verify", "GIT_COMMITTER_EMAIL": "entry-verify@localhost",
             "GIT_AUTHOR_NAME": "entry-verify", "GIT_AUTHOR_EMAIL": "entry-verify@localhost"}


@dataclass(frozen=True)
class Commit:
    sha: str
    tree: str  # the tree object: what the build depends on
    subject: str

    @property
    def short(self) -> str:
        return self.sha[:12]


def git(args: Sequence[str], cwd: Path, what: str | None = None, env: dict[str, str] | None = None) -> str:
    if not shutil.which("git"):
        raise UserError("git not found; install git")
    result = subprocess.run([*_GIT, *args], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            env={**os.environ, "LC_ALL": "C", **(env or {})})
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() + result.stdout.strip().splitlines()  # git am says why on stdout
        errors = [line for line in lines if line.startswith(("error:", "fatal:", "Patch failed", "Patch is empty",
                                                             "Applying:"))]
        detail = "; ".join(errors) if errors else (lines[-1] if lines else f"exit {result.returncode}")
        raise UserError(f"{what or 'git ' + ' '.join(args)}: {detail}", str(cwd))
    return result.stdout


def check_repo(tree: Path) -> Path:
    """The repository's top directory (its git dir, if bare): what `git clone` takes."""
    if not tree.is_dir():
        raise UserError("no such directory", str(tree))
    bare = git(["rev-parse", "--is-bare-repository"], tree, "not a git repository (--tree must be a kernel git tree)")
    if bare.strip() == "true":
        return Path(git(["rev-parse", "--absolute-git-dir"], tree).strip())
    return Path(git(["rev-parse", "--show-toplevel"], tree).strip())


def resolve(repo: Path, rev: str) -> str:
    return git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], repo, f"unknown revision '{rev}'").strip()


def commits(repo: Path, revs: Sequence[str]) -> list[Commit]:
    """`git log` order reversed (oldest first), following first parents: the series as it was applied."""
    out = git(["log", "--reverse", "--first-parent", "--format=%H%x00%T%x00%s", *revs, "--"], repo)
    return [Commit(*line.split("\0", 2)) for line in out.splitlines() if line]


def commit(repo: Path, rev: str) -> Commit:
    found = commits(repo, ["-1", "--no-walk", resolve(repo, rev)])
    return found[0]


class Scratch:
    """A scratch clone of a repository, with its checkout and a Kbuild output dir, reused across runs."""

    def __init__(self, cache: Path, source: Path) -> None:
        digest = hashlib.sha256(str(source).encode()).hexdigest()[:10]
        self.source = source
        self.dir = cache / "series" / f"{source.name}-{digest}"
        self.repo = self.dir / "tree"
        self.build = self.dir / "build"

    @contextmanager
    def locked(self) -> Iterator[Scratch]:
        """Exclusive use of the scratch clone (two runs on one repository take turns)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._ensure()
                yield self
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _ensure(self) -> None:
        if (self.repo / ".git").is_dir():
            return
        if self.repo.exists():
            shutil.rmtree(self.repo)
        git(["clone", "--quiet", "--shared", "--no-checkout", str(self.source), str(self.repo)], self.dir,
            "cannot make a scratch clone")

    def checkout(self, sha: str) -> None:
        self._abort_am()
        git(["checkout", "--quiet", "--force", "--detach", sha], self.repo, f"cannot check out {sha[:12]}")

    def apply(self, base: str, patches: Sequence[Path]) -> list[Commit]:
        """Apply patches (mbox files or `git format-patch` files) onto base with `git am`; the new commits."""
        self.checkout(base)
        try:
            git(["am", "--quiet", "--keep-cr", *[str(p.resolve()) for p in patches]], self.repo,
                "git am could not apply the series", env=_IDENTITY)
        except UserError:
            self._abort_am()
            raise
        return commits(self.repo, [f"{base}..HEAD"])

    def _abort_am(self) -> None:
        if (self.repo / ".git" / "rebase-apply").exists():
            subprocess.run([*_GIT, "am", "--abort"], cwd=self.repo, capture_output=True, stdin=subprocess.DEVNULL)
