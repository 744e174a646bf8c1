"""The tree shows the pipeline: the import-linter contract in pyproject.toml holds, it breaks when a lower
layer imports a higher one, and no module imports inside a function (the way around a cycle)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")], cwd=tree,
                          env=env, capture_output=True, text=True)


def test_the_layers_contract_holds() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def lint_with_an_import(tmp: Path, module: str, statement: str) -> subprocess.CompletedProcess[str]:
    """lint-imports on a copy of the package in which `module` (a path under verifier/) has one more import."""
    shutil.copytree(ROOT / "verifier", tmp / "verifier", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    source = tmp / "verifier" / module
    source.write_text(source.read_text() + f"\n{statement}  # noqa: E402, F401\n")
    return lint_imports(tmp)


def test_a_lower_layer_importing_a_higher_one_breaks_the_contract(tmp_path: Path) -> None:
    result = lint_with_an_import(tmp_path, "semantics/state.py", "from verifier.spec import verdicts")
    assert result.returncode != 0
    assert "verifier.semantics is not allowed to import verifier.spec" in result.stdout
    assert "verifier.semantics.state -> verifier.spec.verdicts" in result.stdout


def test_an_import_cycle_inside_a_package_breaks_the_contract(tmp_path: Path) -> None:
    result = lint_with_an_import(tmp_path, "proof/config.py", "from verifier.proof import run")
    assert result.returncode != 0
    assert "No cycles are allowed in verifier.proof" in result.stdout


def _local_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    found.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    return found


def test_no_module_imports_inside_a_function() -> None:
    found = [where for path in sorted((ROOT / "verifier").rglob("*.py")) for where in _local_imports(path)]
    assert found == []
