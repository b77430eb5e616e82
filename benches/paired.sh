#!/usr/bin/env bash
# CPU per request of two variants measured at the same time, so the machine's drift cancels.
#
# `load.sh` runs variants one after another; on a shared VM whose speed moves by 10 % within
# minutes, that drift is larger than the differences worth measuring (a few points). Here the
# two servers run side by side on core 0, each loaded by its own wrk on core 1, for ROUNDS
# rounds of WRK_SECS. Both see the same machine at every moment. For each server the script
# reads the CPU time it spent (all its threads, /proc/PID/stat) and the requests wrk completed,
# and prints each round's CPU per request and the ratio B/A. The median ratio is the figure:
# with CPU the bottleneck, A's throughput over B's on the same core is that ratio's inverse.
#
# The comparison is by CPU per request, not by requests/s: the scheduler shares core 0 by
# thread, so a server with more runnable threads may get a larger share of it. A last line
# compares the serving threads alone (the pipeline's thread left out): roughly what a server
# with a spare core for its pipeline would see, though here that thread still shares the core
# and its caches.
#
# Environment: A ("layered"), B ("pipeline"), ROUNDS (7), WRK_SECS (8), WARM_SECS (2),
# CONNS (16 per server), PORT (3101; B uses PORT+1), UA (a Chrome user agent), BIN_A and BIN_B
# (a load_server binary for each side, by default this tree's: to compare two builds, say before
# and after a change, with the same variant on both sides). Variants are
# load.sh's: bare, layered, layered-idle (the layer and one idle thread), pipeline (a sink that
# discards), sink (JSONL), sqlite. Installs wrk with apt-get when it is missing.
#
# A sink's pipeline brings a second thread into the process, and from then on glibc's malloc
# takes its multi-threaded paths for every allocation of every request: about 1 point on this
# server, the same as an idle thread. `A=layered-idle` compares against a layer that pays this
# too, as any server with a multi-thread tokio runtime does.
set -euo pipefail

A=${A:-layered}
B=${B:-pipeline}
ROUNDS=${ROUNDS:-7}
WRK_SECS=${WRK_SECS:-8}
WARM_SECS=${WARM_SECS:-2}
CONNS=${CONNS:-16}
PORT=${PORT:-3101}
UA=${UA:-"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"}

cd "$(dirname "$0")/.."
TMP=$(mktemp -d)
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

source benches/support/load_common.sh
variant_env "$A" >/dev/null
variant_env "$B" >/dev/null

start() {
    local variant=$1 port=$2 bin=$3
    if port_in_use "$port"; then
        echo "port $port is already in use" >&2
        return 1
    fi
    # shellcheck disable=SC2046
    env PORT="$port" DURATION_SECS=$((WARM_SECS + WRK_SECS + 20)) $(variant_env "$variant") \
        taskset -c 0 "$bin" >"$TMP/$variant.$port.log" 2>&1 &
    PIDS+=($!)
    wait_for_port "$port" "$!"
}

load() {
    taskset -c 1 wrk -t1 -c"$CONNS" -d"$1s" -H "User-Agent: $UA" "http://127.0.0.1:$2/"
}

: >"$TMP/results"
for round in $(seq 1 "$ROUNDS"); do
    PIDS=()
    start "$A" "$PORT" "${BIN_A:-$BIN}"
    start "$B" $((PORT + 1)) "${BIN_B:-$BIN}"
    pa=${PIDS[0]} pb=${PIDS[1]}
    if (( WARM_SECS > 0 )); then
        load "$WARM_SECS" "$PORT" >/dev/null &
        warm=$!
        load "$WARM_SECS" $((PORT + 1)) >/dev/null
        wait "$warm"
    fi
    a0=$(cpu_ticks "$pa") b0=$(cpu_ticks "$pb")
    # The serving thread is the main thread (its id is the process's).
    as0=$(cpu_ticks "$pa/task/$pa") bs0=$(cpu_ticks "$pb/task/$pb")
    load "$WRK_SECS" "$PORT" >"$TMP/wrk.a" &
    wa=$!
    load "$WRK_SECS" $((PORT + 1)) >"$TMP/wrk.b"
    wait "$wa"
    a1=$(cpu_ticks "$pa") b1=$(cpu_ticks "$pb")
    as1=$(cpu_ticks "$pa/task/$pa") bs1=$(cpu_ticks "$pb/task/$pb")
    for pid in "$pa" "$pb"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
    na=$(awk '/ requests in / { print $1 }' "$TMP/wrk.a")
    nb=$(awk '/ requests in / { print $1 }' "$TMP/wrk.b")
    if [[ -z "$na" || -z "$nb" ]] || grep -q "Non-2xx" "$TMP/wrk.a" "$TMP/wrk.b"; then
        echo "wrk failed or saw errors:" >&2
        cat "$TMP/wrk.a" "$TMP/wrk.b" >&2
        exit 1
    fi
    echo "$round $na $((a1 - a0)) $nb $((b1 - b0)) $((as1 - as0)) $((bs1 - bs0))" >>"$TMP/results"
    awk -v r="$round" -v a="$A" -v b="$B" -v na="$na" -v ta=$((a1 - a0)) -v nb="$nb" \
        -v tb=$((b1 - b0)) -v hz="$CLK_TCK" -v s="$WRK_SECS" 'BEGIN {
        ua = ta / hz * 1e6 / na; ub = tb / hz * 1e6 / nb
        printf "round %d  %s %7.0f req/s %6.2f us CPU/req   %s %7.0f req/s %6.2f us CPU/req   CPU/req %s/%s %.3f\n",
            r, a, na / s, ua, b, nb / s, ub, b, a, ub / ua
    }'
done

awk -v a="$A" -v b="$B" -v hz="$CLK_TCK" '
function median(x, m,   i, j, t) {
    for (i = 2; i <= m; i++) for (j = i; j > 1 && x[j - 1] > x[j]; j--) {
        t = x[j]; x[j] = x[j - 1]; x[j - 1] = t
    }
    return m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2
}
{
    n++; ua[n] = $3 / hz * 1e6 / $2; ub[n] = $5 / hz * 1e6 / $4; q[n] = ub[n] / ua[n]
    qs[n] = ($7 / $4) / ($6 / $2)
}
END {
    for (i = 1; i <= n; i++) { sa[i] = ua[i]; sb[i] = ub[i]; sq[i] = q[i]; sqs[i] = qs[i] }
    m = median(sq, n)
    ms = median(sqs, n)
    printf "\nmedian over %d rounds: %s %.2f us CPU/req, %s %.2f us CPU/req\n", n, a, median(sa, n), b, median(sb, n)
    printf "CPU per request %s/%s: median %.3f (rounds from %.3f to %.3f)\n", b, a, m, sq[1], sq[n]
    printf "throughput %s/%s on a shared core: %.3f\n", b, a, 1 / m
    printf "serving thread only, CPU per request %s/%s: median %.3f (rounds from %.3f to %.3f)\n", b, a, ms, sqs[1], sqs[n]
}' "$TMP/results"
