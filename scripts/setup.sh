#!/usr/bin/env bash
# Set up a Debian machine for entry-verify. Safe to run again: it only installs what is missing.
#   scripts/setup.sh demo   what `make demo` needs: the prover (.venv) and GNU as for arm64 (Unicorn runs
#                           the bundled subjects' objects)
#   scripts/setup.sh test   (the default) what `make test` needs besides: the arm64 cross compiler and what
#                           Kbuild needs, LLVM 19 (clang builds of the kernel with LLVM=-19, crosschecked
#                           with LLVM's assembler), dpkg-dev and xz (Debian's kernel packages), headless
#                           Chromium (the HTML report's rendering test), the test tools
set -euo pipefail

cd "$(dirname "$0")/.."

PROFILE="${1:-test}"
case "$PROFILE" in
    demo)
        PACKAGES=(binutils-aarch64-linux-gnu python3 python3-venv)
        EXTRAS=""
        ;;
    test)
        PACKAGES=(
            gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu
            clang-19 lld-19 llvm-19
            make flex bison bc libssl-dev libelf-dev
            dpkg-dev xz-utils
            python3 python3-venv
            chromium
        )
        EXTRAS="[test]"
        ;;
    *)
        echo "setup: unknown profile '$PROFILE' (demo or test)" >&2
        exit 2
        ;;
esac
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

# Reinstall only when pyproject.toml changed since the last install (pip is slow even as a no-op), or the
# test tools are wanted and the last install was the demo's.
stamp="$VENV/.entry-verify-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)$EXTRAS"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$have" != "$want" ] && { [ -n "$EXTRAS" ] || [ "${have%\[test\]}" != "$want" ]; } \
        || [ ! -x "$VENV/bin/entry-verify" ]; then
    echo "setup: installing entry-verify$EXTRAS into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet -e ".$EXTRAS"
    echo "$want" > "$stamp"
fi
