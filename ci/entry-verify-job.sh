#!/usr/bin/env bash
# The entry-verify CI job: prove every commit of a kernel branch and report in SARIF, JUnit and markdown.
# ci/github/entry-verify.yml and ci/gitlab/entry-verify.yml run exactly these commands (and
# tests/test_ci_job.py runs the command lines it reads from those files).
#
#   entry-verify-job.sh setup   install the cross toolchain and the tool (scripts/setup.sh; idempotent)
#   entry-verify-job.sh all     prove EV_BASE..EV_TIP on this machine, write the reports
#   entry-verify-job.sh shard   prove shard EV_SHARD (I/N) of the series, write $EV_OUT/shard-I.json
#   entry-verify-job.sh merge   combine $EV_OUT/shard-*.json, write the reports
#
# Environment: EV_TREE kernel git repository (default .); EV_BASE the base revision (required for all and
# shard); EV_TIP (default HEAD); EV_OUT report directory (default entry-verify-out); EV_POLICY policy file
# (default the tool's proofs/policies/proposed-2020.policy; "none" for the obligations alone); EV_SHARD
# I/N (default GitLab's CI_NODE_INDEX/CI_NODE_TOTAL); EV_FAIL_ON any|new|none (default new); EV_JOBS.
#
# Exit status: that of `entry-verify series`/`merge` with --fail-on $EV_FAIL_ON (0 pass, 1 a violation to
# fail on, 2 bad input, 3 unknown); the reports are written in every case.
set -euo pipefail

TOOL="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EV="$TOOL/.venv/bin/entry-verify"
TREE="${EV_TREE:-.}"
OUT="${EV_OUT:-entry-verify-out}"
TIP="${EV_TIP:-HEAD}"
FAIL_ON="${EV_FAIL_ON:-new}"
POLICY="${EV_POLICY:-$TOOL/proofs/policies/proposed-2020.policy}"
SHARD="${EV_SHARD:-${CI_NODE_INDEX:+$CI_NODE_INDEX/${CI_NODE_TOTAL:-1}}}"
JOBS=(-j "${EV_JOBS:-$(nproc)}")
POLICY_ARGS=()
[ "$POLICY" = none ] || POLICY_ARGS=(--policy "$POLICY")

need_base() {
    if [ -z "${EV_BASE:-}" ]; then
        echo "entry-verify-job: set EV_BASE to the revision the series starts from" >&2
        exit 2
    fi
}

series() {
    "$EV" series --tree "$TREE" --range "$EV_BASE..$TIP" "${POLICY_ARGS[@]}" "${JOBS[@]}" "$@"
}

# The first report decides the exit status; the others reuse its cached proofs (seconds).
reports() {
    local rc=0
    "$@" --fail-on "$FAIL_ON" --format sarif -o "$OUT/entry-verify.sarif" || rc=$?
    if [ "$rc" -ne 2 ]; then
        "$@" --fail-on "$FAIL_ON" --format junit -o "$OUT/entry-verify-junit.xml" || true
        "$@" --fail-on "$FAIL_ON" --format markdown -o "$OUT/entry-verify.md" || true
        cat "$OUT/entry-verify.md"
    fi
    return "$rc"
}

mkdir -p "$OUT"
case "${1:-all}" in
setup)
    bash "$TOOL/scripts/setup.sh"
    ;;
all)
    need_base
    reports series
    ;;
shard)
    need_base
    if [ -z "$SHARD" ]; then
        echo "entry-verify-job: shard needs EV_SHARD=I/N (or GitLab's parallel: N)" >&2
        exit 2
    fi
    series --shard "$SHARD" -o "$OUT/shard-${SHARD%%/*}.json"
    ;;
merge)
    shopt -s nullglob
    shards=("$OUT"/shard-*.json)
    if [ "${#shards[@]}" -eq 0 ]; then
        echo "entry-verify-job: no $OUT/shard-*.json to merge" >&2
        exit 2
    fi
    reports "$EV" merge "${shards[@]}" --tree "$TREE"
    ;;
*)
    echo "usage: $0 setup|all|shard|merge" >&2
    exit 2
    ;;
esac
