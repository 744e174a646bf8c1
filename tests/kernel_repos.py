"""Git repositories made from the Debian kernel trees, for the series tests.

`base_repo("6.1")` imports the extracted tree as one commit into a bare repository under the cache (once;
about a minute), with fixed identities and dates so its commit id is the same on every machine.
`user_repo(tmp, "6.1")` is a cheap clone of it that stands for a developer's repository, and `commit_edits`
adds commits to it with git plumbing (no checkout: a kernel checkout is 1.5 GB).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from kernel_trees import _file_lock, ensure_tree

from verifier.kernel.kbuild import cache_dir

IDENTITY = {"GIT_AUTHOR_NAME": "Test Author", "GIT_AUTHOR_EMAIL": "author@example.org",
            "GIT_COMMITTER_NAME": "Test Author", "GIT_COMMITTER_EMAIL": "author@example.org",
            "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}


def git(repo: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None,
        raw: bool = False) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, input=stdin,
                            env={**os.environ, **IDENTITY, **(env or {})})
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout if raw else result.stdout.strip()


def base_repo(version: str) -> Path:
    """A bare repository whose branch `base` is the Debian linux-source-VERSION tree, as one commit."""
    repo = cache_dir() / "git" / f"linux-source-{version}.git"
    marker = repo / "entry-verify-complete"
    if marker.exists():
        return repo
    tree = ensure_tree(version)
    with _file_lock(cache_dir() / "git" / f".linux-source-{version}.lock"):
        if marker.exists():
            return repo
        subprocess.run(["rm", "-rf", str(repo)], check=True)
        subprocess.run(["git", "init", "--quiet", "--bare", str(repo)], check=True)
        with tempfile.TemporaryDirectory() as tmp:
            index = {"GIT_INDEX_FILE": str(Path(tmp) / "index"), "GIT_WORK_TREE": str(tree),
                     "GIT_DIR": str(repo)}
            # Debian's top-level .gitignore ignores everything but debian/: add by force (the tree is pristine).
            subprocess.run(["git", "add", "--all", "--force"], cwd=tree, check=True, capture_output=True,
                           env={**os.environ, **index})
            sha = subprocess.run(["git", "write-tree"], cwd=tree, check=True, capture_output=True, text=True,
                                 env={**os.environ, **index}).stdout.strip()
        commit = git(repo, "commit-tree", sha, "-m", f"Linux {version} (Debian linux-source-{version})")
        git(repo, "update-ref", "refs/heads/base", commit)
        marker.touch()
    return repo


def user_repo(tmp: Path, version: str) -> Path:
    """A developer's repository: a clone sharing the base repository's objects, no checkout."""
    repo = tmp / f"linux-{version}"
    subprocess.run(["git", "clone", "--quiet", "--shared", "--no-checkout", "--branch", "base",
                    str(base_repo(version)), str(repo)], check=True, capture_output=True)
    return repo


Edit = tuple[str, str]  # the first `old` in a file becomes `new`


def commit_edits(repo: Path, parent: str, edits: dict[str, list[Edit]], message: str, branch: str) -> str:
    """A commit on `parent` making the edits in each file; `branch` moves to it."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(repo, "read-tree", parent, env=env)
        for path, changes in edits.items():
            text = git(repo, "cat-file", "blob", f"{parent}:{path}", raw=True)
            for old, new in changes:
                assert text.count(old) == 1, (path, old)
                text = text.replace(old, new)
            blob = git(repo, "hash-object", "-w", "--stdin", stdin=text)
            git(repo, "update-index", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = git(repo, "write-tree", env=env)
    sha = git(repo, "commit-tree", tree, "-p", parent, "-m", message)
    git(repo, "update-ref", f"refs/heads/{branch}", sha)
    return sha
