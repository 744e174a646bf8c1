"""verifier.kernel.cmdfile: Kbuild's `.NAME.s.cmd` to the compiler command, its target flags and the
assembler the crosscheck runs (GNU as for GCC, LLVM's for clang, GNU as again for clang without its
integrated assembler), on .cmd lines as 5.10 (`cmd_`), 6.12 (`savedcmd_`) and LLVM builds write them."""

from __future__ import annotations

from pathlib import Path

import pytest

from verifier.cli.main import main
from verifier.kernel.cmdfile import (
    KERNEL_ASM_EXTENSIONS,
    TargetFlags,
    assembler_for,
    cmd_file,
    parse_command,
    read_build_command,
    target_flags,
)

EXT = "".join(f"+{e}" for e in KERNEL_ASM_EXTENSIONS)

GCC_510 = (
    "cmd_arch/arm64/kernel/entry-common.s := aarch64-linux-gnu-gcc -Wp,-MMD,arch/arm64/kernel/.entry-common.s.d "
    "-nostdinc -isystem /usr/lib/gcc-cross/aarch64-linux-gnu/12/include -I/src/arch/arm64/include "
    "-include /src/include/linux/kconfig.h -D__KERNEL__ -mlittle-endian -DKASAN_SHADOW_SCALE_SHIFT=3 "
    "-fmacro-prefix-map=/src/= -Wall -mgeneral-regs-only -DCONFIG_CC_HAS_K_CONSTRAINT=1 "
    "-fno-asynchronous-unwind-tables -fno-unwind-tables -mbranch-protection=pac-ret+leaf+bti "
    "-Wa,-march=armv8.4-a -DARM64_ASM_ARCH='\"armv8.4-a\"' "
    "-mabi=lp64 -O2 -DKBUILD_MODFILE='\"arch/arm64/kernel/entry-common\"' -DKBUILD_BASENAME='\"entry_common\"' "
    "-fverbose-asm -S -o arch/arm64/kernel/entry-common.s /src/arch/arm64/kernel/entry-common.c\n"
    "\n"
    "source_arch/arm64/kernel/entry-common.s := /src/arch/arm64/kernel/entry-common.c\n"
)
CLANG_612 = (
    "savedcmd_arch/arm64/kernel/entry-common.s := clang-19 -Wp,-MMD,arch/arm64/kernel/.entry-common.s.d -nostdinc "
    "-I/src/arch/arm64/include -D__KERNEL__ --target=aarch64-linux-gnu -fintegrated-as "
    "-Werror=unknown-warning-option -mlittle-endian -std=gnu11 -mbranch-protection=pac-ret+bti "
    "-Wa,-march=armv8.5-a -DARM64_ASM_ARCH='\"armv8.5-a\"' -O2 -mstack-protector-guard=sysreg "
    "-mstack-protector-guard-reg=sp_el0 -fverbose-asm -S -o arch/arm64/kernel/entry-common.s "
    "/src/arch/arm64/kernel/entry-common.c\n"
)
CLANG_ENTRY_S = (
    "savedcmd_arch/arm64/kernel/entry.s := clang-19 -E -Wp,-MMD,arch/arm64/kernel/.entry.s.d -nostdinc "
    "--target=aarch64-linux-gnu -fintegrated-as -mlittle-endian -D__ASSEMBLY__ -fno-PIE -g "
    "-o arch/arm64/kernel/entry.s /src/arch/arm64/kernel/entry.S\n"
)


def _with_cmd(tmp_path: Path, text: str, name: str = "entry-common.s") -> Path:
    asm = tmp_path / "arch/arm64/kernel" / name
    asm.parent.mkdir(parents=True, exist_ok=True)
    asm.write_text("\tnop\n")
    cmd_file(asm).write_text(text)
    return asm


def test_cmd_file_sits_next_to_the_s(tmp_path: Path) -> None:
    assert cmd_file(tmp_path / "entry-common.s") == tmp_path / ".entry-common.s.cmd"


def test_gcc_cmd_of_old_kernels(tmp_path: Path) -> None:
    asm = _with_cmd(tmp_path, GCC_510)
    command = read_build_command(asm)
    assert command is not None
    assert command.target == "arch/arm64/kernel/entry-common.s"
    assert command.compiler == "aarch64-linux-gnu-gcc" and command.kind == "gcc"
    assert command.argv[-1] == "/src/arch/arm64/kernel/entry-common.c"
    assert "-DARM64_ASM_ARCH=\"armv8.4-a\"" in command.argv  # the shell quoting is undone
    assert target_flags(command.argv) == TargetFlags(None, "armv8.4-a", None, False, "lp64")
    assembler = assembler_for(asm)
    assert assembler.argv == ("aarch64-linux-gnu-as", "-EL", "-mabi=lp64", "-march=armv8.4-a")
    assert assembler.kind == "gnu" and ".entry-common.s.cmd" in assembler.origin


def test_clang_cmd_uses_llvms_assembler_with_the_builds_arch(tmp_path: Path) -> None:
    asm = _with_cmd(tmp_path, CLANG_612)
    command = read_build_command(asm)
    assert command is not None and command.kind == "clang" and command.integrated_as()
    assert target_flags(command.argv) == TargetFlags("aarch64-linux-gnu", "armv8.5-a", None, False, None)
    assembler = assembler_for(asm)
    # -mbranch-protection and the rest do not reach the assembler; the inline-asm extensions do
    assert assembler.argv == ("clang-19", "--target=aarch64-linux-gnu", "-mlittle-endian",
                              f"-Wa,-march=armv8.5-a{EXT}")
    assert assembler.kind == "clang" and "integrated" in assembler.origin


def test_preprocessed_entry_s_gets_the_base_architecture(tmp_path: Path) -> None:
    # entry.S is only run through cpp, with no -march: the assembler's default armv8-a, as Kbuild assembles it
    asm = _with_cmd(tmp_path, CLANG_ENTRY_S, "entry.s")
    assert assembler_for(asm).argv[-1] == f"-Wa,-march=armv8-a{EXT}"


def test_clang_without_integrated_as_hands_off_to_gnu_as(tmp_path: Path) -> None:
    # 5.10 with LLVM=1 and LLVM_IAS=0: clang runs GNU as through --prefix
    text = CLANG_612.replace("-fintegrated-as", "-no-integrated-as --prefix=/opt/cross/bin/aarch64-linux-gnu-")
    assembler = assembler_for(_with_cmd(tmp_path, text))
    assert assembler.argv == ("/opt/cross/bin/aarch64-linux-gnu-as", "-EL", "-march=armv8.5-a")
    text = CLANG_612.replace("-fintegrated-as", "-fno-integrated-as --prefix=/usr/bin/")  # a directory
    assert assembler_for(_with_cmd(tmp_path, text)).argv[0] == "/usr/bin/aarch64-linux-gnu-as"


def test_llvm_override_keeps_the_cmd_files_flags(tmp_path: Path) -> None:
    asm = _with_cmd(tmp_path, GCC_510)
    assembler = assembler_for(asm, "-19")
    assert assembler.argv == ("clang-19", "--target=aarch64-linux-gnu", "-mlittle-endian",
                              f"-Wa,-march=armv8.4-a{EXT}")
    assert assembler_for(asm, "/usr/lib/llvm-19/bin/").argv[0] == "/usr/lib/llvm-19/bin/clang"
    assert assembler_for(asm, "1").argv[0] == "clang"
    bare = tmp_path / "bare.s"
    bare.write_text("\tnop\n")
    assert assembler_for(bare, "-19").argv[-1] == f"-Wa,-march=armv8-a{EXT}"


def test_no_cmd_file_means_gnu_as(tmp_path: Path) -> None:
    asm = tmp_path / "t.s"
    asm.write_text("\tnop\n")
    assert read_build_command(asm) is None
    assert assembler_for(asm).argv == ("aarch64-linux-gnu-as",)
    assert "no .cmd file" in assembler_for(asm).origin


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        # make's escapes: `$$` is `$`, `$(pound)` and (older kernels) `\#` are `#`
        ("savedcmd_x.s := gcc -DA='$$x' -DB=$(pound)1 -DC=\\#2 -S x.c",
         ("gcc", "-DA=$x", "-DB=#1", "-DC=#2", "-S", "x.c")),
        # only the first command; wrappers and environment assignments before the compiler go
        ("cmd_x.s := ccache aarch64-linux-gnu-gcc -S x.c; rm -f x.tmp", ("aarch64-linux-gnu-gcc", "-S", "x.c")),
        ("cmd_x.s := LC_ALL=C clang -S x.c && true", ("clang", "-S", "x.c")),
    ],
)
def test_command_line_parsing(line: str, argv: tuple[str, ...]) -> None:
    command = parse_command(line + "\n", Path(".x.s.cmd"))
    assert command is not None and command.argv == argv


@pytest.mark.parametrize("text", ["", "deps_x.s := \\\n  foo.h\n", "cmd_x.s := gcc -DA='unbalanced\n", "cmd_x.s := \n"])
def test_unreadable_cmd_files_are_none(text: str) -> None:
    assert parse_command(text, Path(".x.s.cmd")) is None


def test_compilers_other_than_gcc_and_clang_fall_back_to_gnu_as(tmp_path: Path) -> None:
    assembler = assembler_for(_with_cmd(tmp_path, "cmd_x.s := icc -S x.c\n"))
    assert assembler.argv == ("aarch64-linux-gnu-as",) and "names no GCC or clang" in assembler.origin


def test_versioned_gcc_and_big_endian(tmp_path: Path) -> None:
    text = "cmd_x.s := /usr/bin/aarch64-linux-gnu-gcc-12 -mbig-endian -mabi=lp64 -march=armv8.2-a -S x.c\n"
    assembler = assembler_for(_with_cmd(tmp_path, text))
    assert assembler.argv == ("/usr/bin/aarch64-linux-gnu-as", "-EB", "-mabi=lp64", "-march=armv8.2-a")


def test_crosscheck_cli_follows_the_cmd_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a .cmd file naming a GCC that is not there: the crosscheck tries that toolchain's as, not the default
    asm = _with_cmd(tmp_path, "cmd_x.s := no-such-cross-gcc -S x.c\n", "x.s")
    assert main(["crosscheck", str(asm)]) == 2
    assert "assembler 'no-such-cross-as' not found" in capsys.readouterr().err
    assert main(["crosscheck", "--as", "aarch64-linux-gnu-as", str(asm)]) == 0  # --as overrides it
    assert "assembler: aarch64-linux-gnu-as (--as)" in capsys.readouterr().out
