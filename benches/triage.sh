#!/usr/bin/env bash
# Offline triage speed: `tower-siem triage` (built-in pack, full replay) on a generated
# combined-format access log, side by side with goaccess and fail2ban-regex on the same file.
#
# Generates LINES lines with the labelled traffic generator (`tower-siem generate`, seed SEED;
# or with GEN, a command that writes a combined log of $LINES lines to stdout), then times RUNS runs of
# `tower-siem triage FILE --output json` and prints the median wall time, lines/s and the CPU
# seconds of that run; then PEER_RUNS runs of `goaccess FILE --log-format=COMBINED -o
# report.json` and of `fail2ban-regex FILE <filter>` for each of FILTERS (stock HTTP filters of
# the Debian package), with their lines/s. The file is read once beforehand so every tool
# starts from the page cache.
#
# Environment: LINES (1000000), SEED (1), RUNS (3), PEER_RUNS (1), FILTERS ("apache-badbots
# nginx-botsearch"), GEN, KEEP (keep the generated log in this path), PROFILE (release) and
# CARGO_ARGS (extra cargo arguments, e.g. `--config profile.x.inherits="release"`). Installs goaccess and
# fail2ban with apt-get when they are missing (set NO_PEERS=1 to skip them).
set -euo pipefail

LINES=${LINES:-1000000}
RUNS=${RUNS:-3}
PEER_RUNS=${PEER_RUNS:-1}
FILTERS=(${FILTERS:-apache-badbots nginx-botsearch})

cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

PROFILE=${PROFILE:-release}
cargo build ${CARGO_ARGS:-} --profile "$PROFILE" --features cli --bin tower-siem >&2
BIN="$TARGET/$PROFILE/tower-siem"
LOG=${KEEP:-$TMP/access.log}
if [[ -n "${GEN:-}" ]]; then
    $GEN > "$LOG"
else
    "$BIN" generate --lines "$LINES" --seed "${SEED:-1}" --out "$LOG" --truth "$TMP/truth.json" >&2
fi
N=$(wc -l < "$LOG")
cat "$LOG" > /dev/null
echo "log: $N lines, $(du -m "$LOG" | cut -f1) MiB, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# Runs "$@" once; prints "wall user+sys".
timed() {
    /usr/bin/time -f "%e %U %S" -o "$TMP/time" "$@" > "$TMP/out" 2> "$TMP/err" || {
        echo "failed: $*" >&2
        cat "$TMP/err" >&2
        return 1
    }
    awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' "$TMP/time"
}

# Median (by wall time) of $1 runs of "${@:2}"; prints "tool wall cpu lines/s".
bench() {
    local runs=$1 name=$2
    shift 2
    for _ in $(seq "$runs"); do timed "$@"; done | sort -n | awk -v n="$N" -v name="$name" '
        { w[NR] = $1; c[NR] = $2 }
        END { m = int((NR + 1) / 2); printf "%-34s %8.2f s %8.2f cpu-s %12.0f lines/s\n", name, w[m], c[m], n / w[m] }'
}

bench "$RUNS" "tower-siem triage" "$BIN" triage "$LOG" --output json
head -c 300 "$TMP/out" | sed 's/^/  /'
echo

if [[ -n "${NO_PEERS:-}" ]]; then
    exit 0
fi
if ! command -v goaccess >/dev/null || ! command -v fail2ban-regex >/dev/null; then
    echo "installing goaccess and fail2ban" >&2
    apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y goaccess fail2ban >/dev/null
fi
bench "$PEER_RUNS" "goaccess (COMBINED, json report)" goaccess "$LOG" --log-format=COMBINED -o "$TMP/report.json"
for f in "${FILTERS[@]}"; do
    bench "$PEER_RUNS" "fail2ban-regex $f" fail2ban-regex "$LOG" "/etc/fail2ban/filter.d/$f.conf"
done
