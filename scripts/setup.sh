#!/usr/bin/env bash
# Set up a Debian machine for entry-verify: the arm64 cross toolchain, LLVM 19 (clang builds of the
# kernel with LLVM=-19, crosschecked with LLVM's assembler), what Kbuild needs, then .venv with the
# package (editable) and its test tools. Safe to run again: it only installs what is missing.
set -euo pipefail

cd "$(dirname "$0")/.."

PACKAGES=(
    gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu
    clang-19 lld-19 llvm-19
    make flex bison bc libssl-dev libelf-dev
    dpkg-dev xz-utils
    python3 python3-venv
)
VENV=.venv

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    # Only refresh the package lists when there is something to install: it is the slow part.
    as_root apt-get -q update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends "${missing[@]}"
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV" >&2
    python3 -m venv "$VENV"
fi

# Reinstall only when pyproject.toml changed since the last install (pip is slow even as a no-op).
stamp="$VENV/.entry-verify-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x "$VENV/bin/entry-verify" ]; then
    echo "setup: installing entry-verify into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet -e '.[test]'
    echo "$want" > "$stamp"
fi
