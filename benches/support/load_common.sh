# Shared by benches/load.sh and benches/paired.sh (sourced, from the repository's root):
# installs wrk when missing, checks for taskset and two cores, builds the load server, and
# defines the helpers both scripts use.

if ! command -v wrk >/dev/null; then
    echo "installing wrk" >&2
    if ! apt-get install -y wrk >/dev/null 2>&1; then
        apt-get update >/dev/null
        apt-get install -y wrk >/dev/null
    fi
fi
command -v taskset >/dev/null || { echo "taskset (util-linux) is required" >&2; exit 1; }
if (( $(nproc) < 2 )); then
    echo "needs 2 cores: server on core 0, wrk on core 1" >&2
    exit 1
fi

TARGET=${CARGO_TARGET_DIR:-target}
BIN="$TARGET/release/examples/load_server"
cargo build --release --example load_server >&2
CLK_TCK=$(getconf CLK_TCK)

# variant_env VARIANT: examples/load_server.rs's environment for a variant.
variant_env() {
    case $1 in
        bare) echo "LAYERED=0 SINK=0" ;;
        layered) echo "LAYERED=1 SINK=0" ;;
        layered-idle) echo "LAYERED=1 SINK=0 IDLE_THREAD=1" ;;
        pipeline) echo "LAYERED=1 SINK=null" ;;
        sink) echo "LAYERED=1 SINK=1" ;;
        sqlite) echo "LAYERED=1 SINK=sqlite" ;;
        *) echo "unknown variant $1" >&2; return 1 ;;
    esac
}

# cpu_ticks PID (or PID/task/TID): utime + stime in clock ticks (fields 14 and 15, counted
# after the command name, which may hold spaces).
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat")
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_for_port PORT PID: until the server answers, failing if it exits or takes 10 s.
wait_for_port() {
    local i
    for i in $(seq 1 100); do
        port_in_use "$1" && return 0
        kill -0 "$2" 2>/dev/null || { echo "server exited early" >&2; return 1; }
        sleep 0.1
    done
    echo "server did not answer on port $1" >&2
    return 1
}
