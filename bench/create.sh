#!/usr/bin/env bash
# Benchmark: `pgo create cluster` until the primary is Ready, against the bare
# equivalent on the same machine in the same run (`initdb && pg_ctl start -w`),
# median of N runs each, and the ratio. Goal: at most 1.2x.
#
#   bench/create.sh            # N=5
#   N=9 bench/create.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-5}"
./scripts/deps.sh >/dev/null
cargo build --release --locked --bins -q
bin="$PWD/target/release"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
  [ -n "${server:-}" ] && kill -9 "$server" 2>/dev/null || true
  for pidfile in "$work"/home/instances/*/manager.pid; do [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true; done
  for pidfile in "$work"/home/volumes/*/pgdata/postmaster.pid "$work"/bare*/postmaster.pid; do
    [ -f "$pidfile" ] && kill -9 "$(head -n 1 "$pidfile")" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", a - b }'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

"$bin/postgres-operator" run --home "$work/home" --listen 127.0.0.1:0 >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do [ -f "$work/home/client/env" ] && break; sleep 0.1; done
# shellcheck disable=SC1091
source "$work/home/client/env"

pgo_times=()
for i in $(seq 1 "$N"); do
  t0=$(now)
  "$bin/pgo" create cluster "bench$i" >/dev/null
  t1=$(now)
  pgo_times+=("$(sub "$t1" "$t0")")
  "$bin/pgo" delete cluster "bench$i" --no-prompt >/dev/null
done

bare_times=()
for i in $(seq 1 "$N"); do
  dir="$work/bare$i"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$dir" && chmod 700 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  t0=$(now)
  as_postgres "$pgbin/initdb" -D "$dir" >/dev/null
  as_postgres "$pgbin/pg_ctl" -D "$dir" -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" -l "$dir/log" -w start >/dev/null
  t1=$(now)
  bare_times+=("$(sub "$t1" "$t0")")
  as_postgres "$pgbin/pg_ctl" -D "$dir" -m immediate stop >/dev/null
done

pgo_median=$(printf '%s\n' "${pgo_times[@]}" | median)
bare_median=$(printf '%s\n' "${bare_times[@]}" | median)
ratio=$(awk -v a="$pgo_median" -v b="$bare_median" 'BEGIN { printf "%.4f", a / b }')
printf 'create -> primary Ready, N=%s\n' "$N"
printf '  pgo create cluster        median %.3fs   (%s)\n' "$pgo_median" "$(printf '%.2f ' "${pgo_times[@]}")"
printf '  initdb && pg_ctl start -w median %.3fs   (%s)\n' "$bare_median" "$(printf '%.2f ' "${bare_times[@]}")"
printf '  ratio %.2fx (goal <= 1.20x)\n' "$ratio"
