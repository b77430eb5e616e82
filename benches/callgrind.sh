#!/usr/bin/env bash
# Instructions per request, bare vs layered, counted by callgrind: a figure that does not move
# with the machine's speed, unlike requests/s on a shared VM.
#
# Builds examples/load_server.rs in release and runs it under `valgrind --tool=callgrind`, once
# per variant and request count, while a keep-alive client (python3, below) sends 50 warm-up
# requests and then N plain `GET /` with a browser user agent over one connection. Start-up,
# warm-up and shutdown cost the same in both runs of a variant, so
#   (instructions with N2 requests - instructions with N1 requests) / (N2 - N1)
# is the cost of one request. Counts user-space instructions of every thread in the process (the
# kernel's share of a request is not in them), and separately those of the serving thread.
#
# Environment: VARIANTS ("bare layered"; also "sink": the layer with a JSONL sink, and
# "pipeline": the layer with a sink that discards every batch), N1 (1000),
# N2 (3000). Installs valgrind with apt-get when it is missing; needs python3.
set -euo pipefail

VARIANTS=(${VARIANTS:-bare layered})
N1=${N1:-1000}
N2=${N2:-3000}

cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
BIN="$TARGET/release/examples/load_server"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if ! command -v valgrind >/dev/null; then
    echo "installing valgrind" >&2
    apt-get install -y valgrind >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y valgrind >/dev/null; }
fi
command -v python3 >/dev/null || { echo "python3 is required for the client" >&2; exit 1; }
cargo build --release --example load_server >&2

cat > "$TMP/client.py" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
ua = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
      "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36")
req = ("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: %s\r\nAccept: */*\r\n\r\n" % ua).encode()
s = socket.create_connection(("127.0.0.1", port))
def one():
    s.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        body += s.recv(65536)
for _ in range(50 + n):
    one()
PY

# Instructions of one run of the server for `n` requests: "total serving" (the serving thread is
# the process's main thread, callgrind's thread 1; the rest are the pipeline's threads).
run() {
    local layered=$1 sink=$2 n=$3 port=$((3300 + RANDOM % 500))
    local out="$TMP/cg.out" log="$TMP/server.log"
    rm -f "$out"*
    PORT=$port LAYERED=$layered SINK=$sink DURATION_SECS=600 \
        valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out" "$BIN" \
        >"$log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 300); do grep -q '^ready' "$log" && break; sleep 0.2; done
    python3 "$TMP/client.py" "$port" "$n"
    kill -TERM "$pid"
    wait "$pid" || true
    local f total=0 main=0 t
    for f in "$out"-*; do
        t=$(awk '/^totals:/ { print $2; exit }' "$f")
        total=$((total + ${t:-0}))
        [[ $f == *-01 ]] && main=${t:-0}
    done
    echo "$total $main"
}

declare -A PER
for v in "${VARIANTS[@]}"; do
    case $v in
        bare) args=(0 0) ;;
        layered) args=(1 0) ;;
        pipeline) args=(1 null) ;;
        sink) args=(1 1) ;;
        *) echo "unknown variant $v" >&2; exit 1 ;;
    esac
    read -r a am < <(run "${args[@]}" "$N1")
    read -r b bm < <(run "${args[@]}" "$N2")
    PER[$v]=$(( (b - a) / (N2 - N1) ))
    main=$(( (bm - am) / (N2 - N1) ))
    printf '%-8s %8d instructions per request (serving thread %d, other threads %d)\n' \
        "$v" "${PER[$v]}" "$main" "$((PER[$v] - main))"
done
for base in bare layered; do
    [[ -n "${PER[$base]:-}" ]] || continue
    for v in "${VARIANTS[@]}"; do
        [[ $v == bare || $v == "$base" ]] && continue
        [[ $base == layered && ( $v == bare ) ]] && continue
        awk -v v="$v" -v base="$base" -v a="${PER[$v]}" -v b="${PER[$base]}" \
            'BEGIN { printf "%-8s %+d instructions per request over %s (x%.3f)\n", v, a - b, base, a / b }'
    done
done
