#!/usr/bin/env bash
# Detection quality side by side on one generated access log, scored against its ground truth by
# one piece of code (scripts/score.py):
#
#   - tower-siem triage with the built-in rules;
#   - fail2ban (Debian package): fail2ban-regex with each stock HTTP filter, bans computed from the
#     jail's stock maxretry/findtime in /etc/fail2ban/jail.conf (scripts/f2b_bans.py);
#   - CrowdSec (Debian package): replay mode (`crowdsec -dsn file://… -type nginx`) with the items
#     the package enables from its offline hub, in a throw-away configuration (own database, own
#     local API port, no Central API).
#
# usage: scripts/peers.sh [LINES [SEED]]        (default 200000 lines, seed 1)
# env:   TOWER_SIEM=path/to/tower-siem  (default: cargo build --release --features cli)
#        PEERS_TIMEOUT=seconds per tool run (default 900); KEEP=1 keeps the work directory.
#
# A tool that is not installed, or that does not finish within the timeout, is reported as such;
# the script never waits longer than the timeouts.
set -euo pipefail

LINES=${1:-200000}
SEED=${2:-1}
TIMEOUT=${PEERS_TIMEOUT:-900}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE="$ROOT/scripts"

BIN=${TOWER_SIEM:-}
if [ -z "$BIN" ]; then
  cargo build --quiet --release --features cli --manifest-path "$ROOT/Cargo.toml" >&2
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/tower-siem"
fi

WORK=$(mktemp -d)
if [ "${KEEP:-0}" = 1 ]; then
  echo "work directory: $WORK" >&2
else
  trap 'rm -rf "$WORK"' EXIT
fi
LOG="$WORK/access.log"
TRUTH="$WORK/truth.json"
"$BIN" generate --lines "$LINES" --seed "$SEED" --out "$LOG" --truth "$TRUTH" >&2

now() { date +%s.%N; }
rate() { python3 -c "import sys; n,a,b=map(float,sys.argv[1:]); print(f'{n/(b-a):,.0f}')" "$@"; }

TOOLS=()
SPEEDS=()
NOTES=()

# ---- tower-siem ---------------------------------------------------------------------------
t0=$(now)
"$BIN" triage "$LOG" --output json >"$WORK/tower-siem.json" 2>"$WORK/tower-siem.err"
t1=$(now)
TOOLS+=("tower-siem=$WORK/tower-siem.json")
SPEEDS+=("tower-siem=$(rate "$LINES" "$t0" "$t1")")

# ---- fail2ban -----------------------------------------------------------------------------
# Stock filters that concern HTTP. Only some read access logs (apache-badbots, php-url-fopen,
# nginx-bad-request, and nginx-botsearch's access-log pattern); the others are written for
# error logs and are run anyway, so the table shows that they find nothing here.
# apache-fakegooglebot is left out: its jail runs a reverse-DNS command per address.
F2B_FILTERS="apache-auth apache-badbots apache-botsearch apache-noscript apache-overflows apache-nohome apache-shellshock nginx-http-auth nginx-botsearch nginx-bad-request nginx-limit-req php-url-fopen"
if command -v fail2ban-regex >/dev/null; then
  : >"$WORK/fail2ban.ips"
  f2b_secs=0
  for f in $F2B_FILTERS; do
    conf="/etc/fail2ban/filter.d/$f.conf"
    [ -f "$conf" ] || continue
    t0=$(now)
    if ! timeout "$TIMEOUT" fail2ban-regex -o row "$LOG" "$conf" >"$WORK/f2b-$f.rows" 2>/dev/null; then
      NOTES+=("fail2ban $f: did not finish within ${TIMEOUT}s")
    fi
    t1=$(now)
    f2b_secs=$(python3 -c "print($f2b_secs + $t1 - $t0)")
    params=$(python3 "$HERE/f2b_bans.py" "$f" <"$WORK/f2b-$f.rows" 2>&1 >"$WORK/f2b-$f.ips")
    matched=$(grep -c '^\[' "$WORK/f2b-$f.rows" || true)
    banned=$(wc -l <"$WORK/f2b-$f.ips")
    NOTES+=("fail2ban $f (maxretry findtime: $params): $matched matching lines, $banned addresses banned, $(rate "$LINES" "$t0" "$t1") lines/s")
    cat "$WORK/f2b-$f.ips" >>"$WORK/fail2ban.ips"
  done
  sort -u -o "$WORK/fail2ban.ips" "$WORK/fail2ban.ips"
  n=$(echo "$F2B_FILTERS" | wc -w)
  TOOLS+=("fail2ban=$WORK/fail2ban.ips")
  SPEEDS+=("fail2ban=$(python3 -c "print(f'{$LINES/($f2b_secs/$n):,.0f} per filter')")")
else
  NOTES+=("fail2ban: fail2ban-regex not installed (apt-get install fail2ban)")
fi

# ---- CrowdSec -----------------------------------------------------------------------------
if command -v crowdsec >/dev/null && command -v cscli >/dev/null && [ -f /etc/crowdsec/config.yaml ]; then
  CS="$WORK/crowdsec"
  mkdir -p "$CS/data"
  cp /usr/share/crowdsec/data/* "$CS/data/" 2>/dev/null || true
  # Debian's crowdsec 1.4.6 ships web/path_traversal.txt as `path_traversal.txt`, while the
  # enabled scenario http-path-traversal-probing loads it as `http_path_traversal.txt` (cscli
  # would download it, which needs the network): without this copy that scenario fails on every
  # event. Any data file an enabled item names and the package ships under its source name is
  # put in place the same way.
  python3 - "$CS/data" <<'EOF'
import glob, os, re, shutil, sys
data = sys.argv[1]
for item in glob.glob('/etc/crowdsec/scenarios/*.yaml') + glob.glob('/etc/crowdsec/parsers/*/*.yaml'):
    text = open(item, encoding='utf-8', errors='replace').read()
    for src, dest in re.findall(r'source_url:\s*(\S+)\s*\n\s*dest_file:\s*(\S+)', text):
        shipped = os.path.join('/usr/share/crowdsec/data', os.path.basename(src))
        target = os.path.join(data, dest)
        if not os.path.exists(target) and os.path.exists(shipped):
            shutil.copy(shipped, target)
            print(f'crowdsec: {os.path.basename(item)} needs {dest}; using the shipped {os.path.basename(src)}', file=sys.stderr)
EOF
  port=$((20000 + RANDOM % 20000))
  python3 - "$CS" "$port" <<'EOF'
import re, sys
cs, port = sys.argv[1], sys.argv[2]
s = open('/etc/crowdsec/config.yaml').read()
s = s.replace('daemonize: true', 'daemonize: false').replace('log_media: file', 'log_media: stdout')
s = re.sub(r'data_dir: .*', f'data_dir: {cs}/data/', s)
s = re.sub(r'db_path: .*', f'db_path: {cs}/crowdsec.db\n  use_wal: true', s)
s = re.sub(r'listen_uri: .*', f'listen_uri: 127.0.0.1:{port}', s)
s = s.replace('credentials_path: /etc/crowdsec/local_api_credentials.yaml', f'credentials_path: {cs}/local_api_credentials.yaml')
# No Central API: nothing leaves the machine, nothing is needed from the network.
s = re.sub(r'    online_client:.*\n      credentials_path: .*\n', '', s)
s = s.replace('prometheus:\n  enabled: true', 'prometheus:\n  enabled: false')
open(f'{cs}/config.yaml', 'w').write(s)
EOF
  cscli -c "$CS/config.yaml" machines add peers --auto --force -f "$CS/local_api_credentials.yaml" \
    --url "http://127.0.0.1:$port" >"$CS/cscli.log" 2>&1
  t0=$(now)
  status=0
  timeout "$TIMEOUT" crowdsec -c "$CS/config.yaml" -dsn "file://$LOG" -type nginx >"$CS/crowdsec.log" 2>&1 || status=$?
  t1=$(now)
  grep -o "Ip [0-9a-f.:]* performed" "$CS/crowdsec.log" | awk '{print $2}' | sort -u >"$WORK/crowdsec.ips" || true
  TOOLS+=("crowdsec=$WORK/crowdsec.ips")
  if [ "$status" = 124 ]; then
    SPEEDS+=("crowdsec=unfinished")
    NOTES+=("crowdsec: did not finish within ${TIMEOUT}s; its figures cover the part it read")
  else
    SPEEDS+=("crowdsec=$(rate "$LINES" "$t0" "$t1")")
  fi
  NOTES+=("crowdsec: $(grep -c ' performed ' "$CS/crowdsec.log" || true) alerts; scenarios it could not load: $(grep -c 'not found in expr library' "$CS/crowdsec.log" || true)")
else
  NOTES+=("crowdsec: not installed (apt-get install crowdsec; see README.Debian for an offline install)")
fi

echo
echo "$LINES generated lines, seed $SEED"
python3 "$HERE/score.py" "$TRUTH" "${TOOLS[@]}" --lines-per-sec "${SPEEDS[@]}" ${MARKDOWN:+--markdown}
echo
printf '%s\n' "${NOTES[@]}"
