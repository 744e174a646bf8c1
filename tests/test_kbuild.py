"""`entry-verify kernel-asm`: validation errors, build-dir reuse (with a stand-in make), and one
real Kbuild run against the Debian 6.1 tree."""

from __future__ import annotations

import lzma
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from verifier.cli.main import main
from verifier.kernel import kbuild
from verifier.util.errors import UserError

# Stands in for make: logs its arguments, writes .config for the config targets and a .s for
# every other target, the way Kbuild lays them out under O=.
FAKE_MAKE = r"""#!/bin/bash
set -eu
out=""; targets=()
for arg in "$@"; do
    case "$arg" in
        O=*) out="${arg#O=}" ;;
        -C|-j*|ARCH=*|CROSS_COMPILE=*|LLVM=*) ;;
        /*) ;;
        *) targets+=("$arg") ;;
    esac
done
echo "${targets[*]} KBUILD_OUTPUT=${KBUILD_OUTPUT:-} MAKEFLAGS=${MAKEFLAGS:-}" >> "$out/make-calls"
if [ -n "${FAKE_MAKE_FAIL:-}" ]; then
    for i in $(seq 1 100); do echo "noise line $i"; done
    echo "entry.S:42: Error: unknown mnemonic" >&2
    exit 2
fi
for t in "${targets[@]}"; do
    case "$t" in
        defconfig) echo "CONFIG_DEFAULT=y" > "$out/.config" ;;
        olddefconfig) echo "# olddefconfig" >> "$out/.config" ;;
        *) if [ -z "${FAKE_MAKE_NO_OUTPUT:-}" ]; then
               mkdir -p "$out/$(dirname "$t")"; echo "// $t" > "$out/$t"
           fi ;;
    esac
done
"""


def _write_exe(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _make_fake_tree(root: Path) -> Path:
    tree = root / "linux"
    (tree / "arch/arm64/kernel").mkdir(parents=True)
    (tree / "Makefile").write_text("# not really Kbuild\n")
    for name in ("entry.S", "entry-common.c", "debug-monitors.c"):
        (tree / "arch/arm64/kernel" / name).write_text("")
    return tree


def _run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["kernel-asm", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def fake_tree(tmp_path: Path) -> Path:
    return _make_fake_tree(tmp_path)


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with a stand-in make and cross gcc, and a private cache dir."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _write_exe(bin_dir / "make", FAKE_MAKE)
    _write_exe(bin_dir / "aarch64-linux-gnu-gcc", "#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ENTRY_VERIFY_CACHE", str(tmp_path / "cache"))
    for var in ("CROSS_COMPILE", "LLVM", "FAKE_MAKE_FAIL", "FAKE_MAKE_NO_OUTPUT"):
        monkeypatch.delenv(var, raising=False)
    return bin_dir


def _assert_usage_error(rc: int, out: str, err: str, *needles: str) -> None:
    assert rc == 2
    assert out == ""
    assert "Traceback" not in err
    assert "error:" in err
    for needle in needles:
        assert needle in err


# --- validation: fast, no make ----------------------------------------------------------------


def test_not_a_kernel_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Makefile").write_text("")
    _assert_usage_error(*_run_cli(capsys, "--tree", str(tmp_path)), "is not a Linux kernel tree")


def test_missing_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _assert_usage_error(*_run_cli(capsys, "--tree", str(tmp_path / "nope")), "does not exist")


@pytest.mark.parametrize("inside", [".", "build", "arch/arm64/out"])
def test_build_dir_inside_tree(fake_tree: Path, inside: str, capsys: pytest.CaptureFixture[str]) -> None:
    build = fake_tree / inside
    result = _run_cli(capsys, "--tree", str(fake_tree), "--work-dir", str(build))
    _assert_usage_error(*result, "inside the kernel tree")
    assert not (fake_tree / "build").exists()


@pytest.mark.parametrize("leftover", [".config", "include/config", "arch/arm64/include/generated"])
def test_unclean_tree(fake_tree: Path, leftover: str, capsys: pytest.CaptureFixture[str]) -> None:
    if leftover == ".config":
        (fake_tree / leftover).write_text("CONFIG_X=y\n")
    else:
        (fake_tree / leftover).mkdir(parents=True)
    result = _run_cli(capsys, "--tree", str(fake_tree), "--work-dir", str(fake_tree.parent / "b"))
    _assert_usage_error(*result, "not clean", leftover, "mrproper")


def test_missing_cross_compiler(fake_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = _run_cli(
        capsys, "--tree", str(fake_tree), "--work-dir", str(tmp_path / "b"), "--cross", "bogus-prefix-"
    )
    _assert_usage_error(*result, "bogus-prefix-gcc not found")


def test_missing_default_cross_compiler_hints_package(
    fake_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CROSS_COMPILE", raising=False)
    monkeypatch.delenv("LLVM", raising=False)
    monkeypatch.setattr(kbuild.shutil, "which", lambda name: None if name.endswith("gcc") else "/bin/x")
    result = _run_cli(capsys, "--tree", str(fake_tree), "--work-dir", str(tmp_path / "b"))
    _assert_usage_error(*result, "aarch64-linux-gnu-gcc not found", "gcc-aarch64-linux-gnu")


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ("arch/arm64/kernel/entry.o", "neither a .S nor a .c"),
        ("../entry.S", "relative to the kernel tree"),
        ("/abs/entry.S", "relative to the kernel tree"),
        ("arch/arm64/kernel/nope.c", "does not exist"),
        (",", "no files given"),
    ],
)
def test_bad_files(
    fake_tree: Path, fake_tools: Path, files: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _assert_usage_error(*_run_cli(capsys, "--tree", str(fake_tree), "--files", files), needle)


def test_missing_config_file(fake_tree: Path, fake_tools: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = _run_cli(capsys, "--tree", str(fake_tree), "--config", "no-such.config")
    _assert_usage_error(*result, "--config")


def test_asm_targets() -> None:
    assert kbuild.asm_target("arch/arm64/kernel/entry.S") == "arch/arm64/kernel/entry.s"
    assert kbuild.asm_target("arch/arm64/kernel/entry-common.c") == "arch/arm64/kernel/entry-common.s"
    assert kbuild.asm_target("debug-monitors.c") == "arch/arm64/kernel/debug-monitors.s"
    assert kbuild.asm_target("arch/arm64/mm/fault.c") == "arch/arm64/mm/fault.s"


def test_default_build_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTRY_VERIFY_CACHE", str(tmp_path / "cache"))
    a, b = tmp_path / "a" / "linux", tmp_path / "b" / "linux"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    build_a = kbuild.default_build_dir(a)
    assert build_a.parent == tmp_path / "cache" / "kbuild"
    assert build_a.name.startswith("linux-")
    assert build_a != kbuild.default_build_dir(b)
    assert build_a == kbuild.default_build_dir(a)


def test_toolchain_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLVM", raising=False)
    monkeypatch.setenv("CROSS_COMPILE", "aarch64-none-elf-")
    assert kbuild.toolchain_from(None, llvm=False).make_vars() == ["CROSS_COMPILE=aarch64-none-elf-"]
    assert kbuild.toolchain_from("x-", llvm=False).make_vars() == ["CROSS_COMPILE=x-"]
    monkeypatch.delenv("KCFLAGS", raising=False)
    lines = "KCFLAGS=-gline-tables-only"  # clang writes source lines only in line tables
    assert kbuild.toolchain_from(None, llvm=True).make_vars() == ["LLVM=1", lines]
    monkeypatch.setenv("LLVM", "-15")
    assert kbuild.toolchain_from(None, llvm=False).make_vars() == ["LLVM=-15", lines]
    assert kbuild.toolchain_from(None, llvm="-19").make_vars() == ["LLVM=-19", lines]  # --llvm=-19 beats $LLVM
    monkeypatch.setenv("KCFLAGS", "-Werror")  # the user's own flags are kept
    assert kbuild.toolchain_from(None, llvm="-19").make_vars() == ["LLVM=-19", "KCFLAGS=-Werror -gline-tables-only"]


def test_llvm_build_dirs_are_their_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clang build never reconfigures the GCC build dir of the same tree (nor one of another LLVM)."""
    monkeypatch.setenv("ENTRY_VERIFY_CACHE", str(tmp_path / "cache"))
    tree = tmp_path / "linux"
    tree.mkdir()
    gcc = kbuild.default_build_dir(tree)
    assert kbuild.default_build_dir(tree, kbuild.Toolchain(kbuild.DEFAULT_CROSS, None)) == gcc
    llvm19 = kbuild.default_build_dir(tree, kbuild.Toolchain(kbuild.DEFAULT_CROSS, "-19"))
    assert llvm19 == gcc.with_name(gcc.name + "-llvm-19")
    assert kbuild.default_build_dir(tree, kbuild.Toolchain(kbuild.DEFAULT_CROSS, "1")).name == gcc.name + "-llvm"
    other = kbuild.default_build_dir(tree, kbuild.Toolchain(kbuild.DEFAULT_CROSS, "/opt/llvm/bin/"))
    assert other.name.startswith(gcc.name + "-llvm-") and other not in (gcc, llvm19)


def test_llvm_tool_names() -> None:
    assert kbuild.llvm_tool("clang", "1") == "clang"
    assert kbuild.llvm_tool("clang", "-19") == "clang-19"
    assert kbuild.llvm_tool("clang", "/usr/lib/llvm-19/bin/") == "/usr/lib/llvm-19/bin/clang"


def test_llvm_option_takes_kbuild_values_only(capsys: pytest.CaptureFixture[str]) -> None:
    # `--llvm FILE.s` must not swallow the file as the LLVM= value
    with pytest.raises(SystemExit) as err:
        main(["kernel-asm", "--tree", "/nonexistent", "--llvm", "entry.s"])
    assert err.value.code == 2
    assert "no LLVM= value" in capsys.readouterr().err


# --- the build flow, with a stand-in make -------------------------------------------------------


def _calls(build: Path) -> list[str]:
    return (build / "make-calls").read_text().splitlines()


def test_configures_once_then_reuses(
    fake_tree: Path, fake_tools: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Variables that would send an inner make elsewhere must not leak through ($KBUILD_OUTPUT names the
    # configuration to read: test_a_configured_build_dir_is_only_read).
    monkeypatch.delenv("KBUILD_OUTPUT", raising=False)
    monkeypatch.setenv("MAKEFLAGS", "-s O=/tmp")
    rc, out, err = _run_cli(capsys, "--tree", str(fake_tree))
    assert rc == 0, err
    build = kbuild.default_build_dir(fake_tree)
    expected = [
        str(build / "arch/arm64/kernel" / n) for n in ("entry.s", "entry-common.s", "debug-monitors.s")
    ]
    assert out.splitlines() == expected
    assert "KBUILD  defconfig" in err
    assert _calls(build)[0] == "defconfig KBUILD_OUTPUT= MAKEFLAGS="
    assert _calls(build)[1].startswith("arch/arm64/kernel/entry.s arch/arm64/kernel/entry-common.s")

    rc, out2, err2 = _run_cli(capsys, "--tree", str(fake_tree))
    assert rc == 0, err2
    assert out2 == out
    assert "defconfig" not in err2
    assert len(_calls(build)) == 3 and "defconfig" not in _calls(build)[2]

    # A build dir that lost its .config is configured again.
    (build / ".config").unlink()
    rc, _, err3 = _run_cli(capsys, "--tree", str(fake_tree))
    assert rc == 0 and "KBUILD  defconfig" in err3


def test_config_file_and_its_changes(
    fake_tree: Path, fake_tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "my.config"
    config.write_text("CONFIG_MINE=y\n")
    build = tmp_path / "build"
    args = ("--tree", str(fake_tree), "--work-dir", str(build), "--files", "entry.S")
    args += ("--config", str(config))
    rc, out, err = _run_cli(capsys, *args)
    assert rc == 0, err
    assert out.splitlines() == [str(build / "arch/arm64/kernel/entry.s")]
    assert "olddefconfig" in err
    assert (build / ".config").read_text() == "CONFIG_MINE=y\n# olddefconfig\n"

    rc, _, err = _run_cli(capsys, *args)
    assert rc == 0 and "olddefconfig" not in err

    config.write_text("CONFIG_MINE=m\n")
    rc, _, err = _run_cli(capsys, *args)
    assert rc == 0 and "olddefconfig" in err
    assert (build / ".config").read_text().startswith("CONFIG_MINE=m\n")

    # Switching back to defconfig is a change of choice too.
    rc, _, err = _run_cli(capsys, *args[:-2])
    assert rc == 0 and "KBUILD  defconfig" in err


def test_make_failure_shows_tail(
    fake_tree: Path,
    fake_tools: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FAKE_MAKE_FAIL", "1")
    build = tmp_path / "build"
    rc, out, err = _run_cli(capsys, "--tree", str(fake_tree), "--work-dir", str(build))
    _assert_usage_error(rc, out, err, "make defconfig failed (exit 2)", "unknown mnemonic", kbuild.LOG_NAME)
    assert "noise line 100" in err and "noise line 1\n" not in err  # only the tail
    assert not (build / kbuild.STAMP_NAME).exists()  # so the next run configures again


def test_missing_output_is_an_error(
    fake_tree: Path, fake_tools: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_MAKE_NO_OUTPUT", "1")
    _assert_usage_error(*_run_cli(capsys, "--tree", str(fake_tree)), "did not produce", "entry.s")


# --- the real thing --------------------------------------------------------------------------


def _tree_listing(tree: Path) -> list[tuple[str, int, int]]:
    # Cheap but enough to see a stray .config, include/config or generated file: the top
    # level and the entry code's directory, with sizes and mtimes.
    entries = list(tree.iterdir()) + list((tree / "arch/arm64/kernel").rglob("*"))
    entries += list((tree / "include").iterdir()) + list((tree / "arch/arm64/include").iterdir())
    return sorted((str(p.relative_to(tree)), p.lstat().st_size, p.lstat().st_mtime_ns) for p in entries)


@pytest.mark.kernel
def test_kernel_asm_real_tree(kernel_tree: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    tree = kernel_tree("6.1")
    before = _tree_listing(tree)

    rc, out, err = _run_cli(capsys, "--tree", str(tree))
    assert rc == 0, err
    paths = [Path(line) for line in out.splitlines()]
    assert [p.name for p in paths] == ["entry.s", "entry-common.s", "debug-monitors.s"]
    for path in paths:
        assert path.is_file() and path.stat().st_size > 0
    build = kbuild.default_build_dir(tree)
    assert all(p.is_relative_to(build) for p in paths)
    # The .S is only preprocessed (its asm macros survive), the .c files are compiled.
    assert "kernel_ventry 0, t, 64, sync" in paths[0].read_text()
    assert ".global\tel0t_64_sync_handler" in paths[1].read_text()
    config_mtime = (build / ".config").stat().st_mtime_ns

    rc, out2, err2 = _run_cli(capsys, "--tree", str(tree))
    assert rc == 0, err2
    assert out2 == out
    assert "defconfig" not in err2
    assert (build / ".config").stat().st_mtime_ns == config_mtime

    assert _tree_listing(tree) == before
    assert not (tree / ".config").exists() and not (tree / "include/config").exists()


@pytest.mark.kernel
@pytest.mark.parametrize("version", ["6.1", "6.12"])
def test_kernel_asm_fixture(kernel_asm: Callable[[str], dict[str, Path]], version: str) -> None:
    asm = kernel_asm(version)
    assert sorted(asm) == ["debug-monitors.c", "entry-common.c", "entry.S"]
    assert asm["entry.S"].name == "entry.s"
    assert all(path.is_file() and path.stat().st_size > 0 for path in asm.values())
    assert kernel_asm(version) is asm  # built once per session


def test_each_configuration_builds_in_its_own_dir_and_xz_is_read(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Debian ships its configurations xz-compressed; a build of one never reconfigures the defconfig build,
    and the same configuration (compressed or not, anywhere) names the same dir."""
    monkeypatch.setenv("ENTRY_VERIFY_CACHE", str(tmp_path / "cache"))
    tree = tmp_path / "linux"
    tree.mkdir()
    plain = tmp_path / "config"
    plain.write_text("CONFIG_PREEMPT_VOLUNTARY=y\n")
    packed = tmp_path / "config.arm64_none_arm64.xz"
    packed.write_bytes(lzma.compress(plain.read_bytes()))
    gcc = kbuild.default_build_dir(tree)
    one = kbuild.default_build_dir(tree, None, str(plain))
    assert one != gcc and one.name.startswith(gcc.name + "-config-")
    assert kbuild.default_build_dir(tree, None, str(packed)) == one
    assert kbuild.config_text(packed) == plain.read_bytes()
    broken = tmp_path / "broken.xz"
    broken.write_bytes(packed.read_bytes()[:20])
    with pytest.raises(UserError, match="not a readable xz file"):
        kbuild.config_text(broken)


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("how", ["--build-dir", "O=", "KBUILD_OUTPUT"])
def test_a_configured_build_dir_is_only_read(fake_tree: Path, fake_tools: Path, tmp_path: Path, how: str,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    # the user's own Kbuild output directory: its .config is the configuration, built in the tool's own
    # directory; not a byte of it (or of the tree) changes
    monkeypatch.setenv("ENTRY_VERIFY_CACHE", str(tmp_path / "cache"))
    mine = tmp_path / "my-build"
    mine.mkdir()
    (mine / ".config").write_text("# my own line\nCONFIG_MINE=y\n# CONFIG_OFF is not set\n")
    (mine / "vmlinux").write_bytes(b"\x7fELF...")
    before, tree_before = _snapshot(mine), _snapshot(fake_tree)
    args = ["--tree", str(fake_tree), "--files", "entry.S"]
    if how == "--build-dir":
        args += ["--build-dir", str(mine)]
    elif how == "O=":
        args += [f"O={mine}"]
    else:
        monkeypatch.setenv("KBUILD_OUTPUT", str(mine))
    rc, out, err = _run_cli(capsys, *args)
    assert rc == 0, err
    assert f"olddefconfig ({mine.resolve() / '.config'})" in err
    built = Path(out.splitlines()[0]).parents[3]
    assert not built.is_relative_to(mine) and built.is_relative_to(tmp_path / "cache")
    assert (built / ".config").read_text().startswith("# my own line\nCONFIG_MINE=y\n# CONFIG_OFF is not set\n")
    assert _snapshot(mine) == before and _snapshot(fake_tree) == tree_before


@pytest.mark.parametrize(("args", "message"), [
    (["--build-dir", "{nothing}"], "does not exist"),
    (["--build-dir", "{empty}"], "not a configured Kbuild output directory"),
    (["O={empty}"], "not a configured Kbuild output directory"),
    (["--build-dir", "{configured}", "--config", "defconfig"], "both name the configuration"),
    (["O={configured}", "--build-dir", "{configured}"], "O= and --build-dir"),
    (["ARCH=x86"], "arm64 only"),
    (["V=1"], "not a Kbuild variable this tool takes"),
    (["LLVM=clang"], "LLVM=clang"),
])
def test_kbuild_variables_and_build_dirs_that_cannot_be_used(fake_tree: Path, tmp_path: Path, args: list[str],
                                                             message: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "configured").mkdir()
    (tmp_path / "configured" / ".config").write_text("CONFIG_X=y\n")
    paths = {name: str(tmp_path / name) for name in ("nothing", "empty", "configured")}
    rc, out, err = _run_cli(capsys, "--tree", str(fake_tree), *(a.format(**paths) for a in args))
    _assert_usage_error(rc, out, err, message)
