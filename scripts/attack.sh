#!/usr/bin/env bash
# A noisy attack on the quickstart, for watching the dashboard: ordinary traffic from 127.0.0.1,
# and from other loopback networks (127.0.0.0/8 all reaches the demo on Linux) an attack tool
# (127.0.1.x), a path scanner (127.0.2.x), password guessing against alice and bob (127.0.3.x,
# 127.0.4.x) and script injection (127.0.5.x), in waves, each wave from new addresses.
#
# usage: scripts/attack.sh [SECONDS [BASE_URL]]      (default 60 s, http://127.0.0.1:3000)
#
# Needs curl and a loopback interface that answers every 127.x address (Linux does; macOS
# answers 127.0.0.1 only, so run it there with the addresses below replaced by 127.0.0.1).
set -u
secs=${1:-60}
base=${2:-http://127.0.0.1:3000}
end=$((SECONDS + secs))

get() { curl -s -o /dev/null --max-time 2 --interface "$1" "${@:2}"; }
login() {
  curl -s -o /dev/null --max-time 2 --interface "$1" -X POST "$base/login" \
       -H 'content-type: application/json' -d "{\"username\":\"$2\",\"password\":\"$3\"}"
}

# Ordinary users: a page now and then, and a successful login.
( while [ $SECONDS -lt $end ]; do
    get 127.0.0.1 "$base/"; login 127.0.0.1 alice wonderland; sleep 0.2
  done ) &

wave=0
while [ $SECONDS -lt $end ]; do
  wave=$((wave + 1))
  # An attack tool, from a new address each wave.
  get "127.0.1.$((10 + wave % 40))" -A 'sqlmap/1.7' "$base/?id=1%27%20or%201=1--" &
  # A scanner looking for secrets and admin panels.
  scanner="127.0.2.$((60 + wave % 20))"
  for p in /.env /.git/config /wp-login.php /backup.zip /phpmyadmin/ /admin/.htpasswd; do
    get "$scanner" "$base$p"
  done &
  # Password guessing spread over addresses (credential stuffing).
  for i in 1 2 3; do
    login "127.0.3.$((100 + (wave * 3 + i) % 30))" alice "guess$wave$i"
    login "127.0.4.$((140 + (wave * 3 + i) % 30))" bob "hunter$wave$i"
  done &
  # An injection attempt in a query string.
  get "127.0.5.$((200 + wave % 10))" "$base/?q=%3Cscript%3Ealert(1)%3C/script%3E" &
  wait_for=$((RANDOM % 3))
  sleep "1.$wait_for"
done
wait
