#!/usr/bin/env bash
# Throughput and CPU cost of SiemLayer under HTTP load, on loopback.
#
# Builds examples/load_server.rs in release, then for ROUNDS rounds runs each variant in turn
# (bare, layered, layered+sink; the order rotates every round): the server pinned to core 0
# with one thread, wrk pinned to core 1. For each run it records requests/s and the CPU time
# the server process spent during the measured wrk run (read from /proc/PID/stat), and prints
# the per-round figures, the median of each variant, the layered/bare throughput ratio, the
# server CPU per request, and the median of the per-round ratios (layered/bare, and sink/layered
# when both ran: the pipeline's cost).
#
# Environment: ROUNDS (5), WRK_SECS (10), WARM_SECS (2), CONNS (32), PORT (3001),
# VARIANTS ("bare layered sink"; also "pipeline": the layer with a sink that discards every
# batch, the pipeline's own cost without a sink's encoding and I/O; "sqlite": the layer with
# the SQLite store; "layered-idle": the layer and one idle thread, which puts glibc's malloc on
# its multi-threaded paths as a pipeline's thread does, see examples/load_server.rs), UA (a
# Chrome user agent). Installs wrk with apt-get when it is missing.
#
# PIPELINE_CORE=1 moves every server thread except the request-serving one (the event pipeline's
# worker and the blocking threads it starts) to core 1, beside wrk: it measures what the
# pipeline costs the request thread alone, as on a machine with a spare core. By default the
# whole server shares core 0, so the pipeline's serialisation and I/O count against throughput.
set -euo pipefail

ROUNDS=${ROUNDS:-5}
WRK_SECS=${WRK_SECS:-10}
WARM_SECS=${WARM_SECS:-2}
CONNS=${CONNS:-32}
PORT=${PORT:-3001}
VARIANTS=(${VARIANTS:-bare layered sink})
URL="http://127.0.0.1:${PORT}/"
# Browser traffic: the layer inspects the user agent of every request.
UA=${UA:-"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"}

cd "$(dirname "$0")/.."
TMP=$(mktemp -d)
SERVER_PID=

cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

source benches/support/load_common.sh

# run VARIANT ROUND: appends "variant round rps requests cpu_ticks non2xx main_ticks" to
# $TMP/results (main_ticks: the serving thread alone, which is the process's main thread).
run() {
    local variant=$1 round=$2 vars
    vars=$(variant_env "$variant")
    if port_in_use "$PORT"; then
        echo "port $PORT is already in use" >&2
        return 1
    fi
    # shellcheck disable=SC2086
    env PORT="$PORT" DURATION_SECS=$((WARM_SECS + WRK_SECS + 10)) $vars \
        taskset -c 0 "$BIN" >"$TMP/server.log" 2>&1 &
    SERVER_PID=$!
    wait_for_port "$PORT" "$SERVER_PID"
    if [[ -n "${PIPELINE_CORE:-}" ]]; then
        local task
        for task in /proc/"$SERVER_PID"/task/*; do
            [[ "${task##*/}" == "$SERVER_PID" ]] || taskset -pc "$PIPELINE_CORE" "${task##*/}" >/dev/null
        done
    fi
    if (( WARM_SECS > 0 )); then
        taskset -c 1 wrk -t1 -c"$CONNS" -d"${WARM_SECS}s" -H "User-Agent: $UA" "$URL" >/dev/null
    fi
    local before after out
    before=$(cpu_ticks "$SERVER_PID")
    main_before=$(cpu_ticks "$SERVER_PID/task/$SERVER_PID")
    out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${WRK_SECS}s" -H "User-Agent: $UA" "$URL")
    after=$(cpu_ticks "$SERVER_PID")
    main_after=$(cpu_ticks "$SERVER_PID/task/$SERVER_PID")
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    # The sink's own accounting for the run (warm-up included): did it keep up?
    grep '^sink ' "$TMP/server.log" | sed "s/^/round $round  $variant  /" >&2 || true
    local rps requests non2xx
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    requests=$(awk '/ requests in / { print $1 }' <<<"$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $5 }' <<<"$out")
    if [[ -z "$rps" || -z "$requests" ]]; then
        echo "could not parse wrk output:" >&2
        echo "$out" >&2
        return 1
    fi
    echo "$variant $round $rps $requests $((after - before)) ${non2xx:-0} $((main_after - main_before))" \
        >>"$TMP/results"
    awk -v v="$variant" -v r="$round" -v rps="$rps" -v n="$requests" \
        -v t="$((after - before))" -v hz="$CLK_TCK" -v bad="${non2xx:-0}" 'BEGIN {
        printf "round %d  %-12s %10.0f req/s  %9d requests  cpu %6.2f s  %6.2f us/req%s\n",
            r, v, rps, n, t / hz, t / hz * 1e6 / n, (bad > 0 ? "  NON-2XX: " bad : "")
    }'
}

: >"$TMP/results"
n=${#VARIANTS[@]}
for round in $(seq 1 "$ROUNDS"); do
    for k in $(seq 0 $((n - 1))); do
        run "${VARIANTS[$(((k + round - 1) % n))]}" "$round"
    done
done

# Medians per variant, ratio to bare, CPU per request.
awk -v hz="$CLK_TCK" '
function median(a, m,   i, j, t) {
    for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
        t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
    }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
{
    k = ++cnt[$1]; order[$1] = order[$1] ? order[$1] : ++nv; name[order[$1]] = $1
    rps[$1, k] = $3; us[$1, k] = $5 / hz * 1e6 / $4; bad[$1] += $6; main[$1, k] = $7 / hz * 1e6 / $4
}
END {
    print ""
    print "median over " cnt[name[1]] " rounds:"
    for (v = 1; v <= nv; v++) {
        s = name[v]; m = cnt[s]
        for (i = 1; i <= m; i++) { r[i] = rps[s, i]; c[i] = us[s, i]; t[i] = main[s, i] }
        mr[s] = median(r, m); mc[s] = median(c, m); mt = median(t, m)
        printf "  %-12s %10.0f req/s  %6.2f us CPU/req (serving thread %.2f, other threads %.2f)%s\n",
            s, mr[s], mc[s], mt, mc[s] - mt, (bad[s] > 0 ? "  (" bad[s] " non-2xx responses)" : "")
    }
    if ("bare" in mr) {
        for (v = 1; v <= nv; v++) {
            s = name[v]
            if (s == "bare") continue
            printf "  %s/bare throughput ratio %.3f (target >= 0.90); CPU/req +%.2f us\n",
                s, mr[s] / mr["bare"], mc[s] - mc["bare"]
        }
    }
    # The machine drifts between rounds; a ratio of two runs next to each other does not, so
    # the median of the per-round ratios is the steadier figure.
    pairs = 0
    for (v = 1; v <= nv; v++) {
        s = name[v]
        base = (s == "sink" || s == "sqlite" || s == "pipeline") && ("layered" in mr) ? "layered" : "bare"
        if (s == base || !(base in mr)) continue
        m = 0
        for (i = 1; i <= cnt[s] && i <= cnt[base]; i++) pr[++m] = rps[s, i] / rps[base, i]
        if (!pairs++) print "median of the per-round ratios:"
        printf "  %s/%s %.3f\n", s, base, median(pr, m)
    }
}' "$TMP/results"
