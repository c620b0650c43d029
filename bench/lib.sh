# Shared by the benchmarks: a release build, a pgo server in a scratch home,
# PostgreSQL's binaries, timing and medians. Sourced, not run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
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
  # Metrics exporters the managers ran (their command lines name the volume).
  pkill -9 -f "prometheus-postgres-exporter.*$work" 2>/dev/null || true
  # SIGQUIT (an immediate shutdown) lets each postmaster remove its shared
  # memory; SIGKILL would leave it behind, and after a few runs initdb fails
  # for want of segments. Whatever is left after 10 s is killed.
  local pids=()
  for pidfile in "$work"/home/volumes/*/pgdata/postmaster.pid "$work"/bare*/*/postmaster.pid; do
    if [ -f "$pidfile" ]; then pids+=("$(head -n 1 "$pidfile")"); fi
  done
  if [ ${#pids[@]} -gt 0 ]; then
    kill -QUIT "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 1 100); do
      local alive=0 p
      for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
      [ "$alive" = 0 ] && break
      sleep 0.1
    done
    kill -9 "${pids[@]}" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", a - b }'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# A directory PostgreSQL's user owns.
pg_dir() { mkdir -p "$1" && chmod 700 "$1" && { [ "$(id -u)" != 0 ] || chown postgres: "$1"; }; }
pg_start() { as_postgres "$pgbin/pg_ctl" -D "$1" -o "-p $2 -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" -l "$1/log" -w start >/dev/null; }
pg_stop() { as_postgres "$pgbin/pg_ctl" -D "$1" -m immediate stop >/dev/null 2>&1 || true; }

start_server() {
  "$bin/postgres-operator" run --home "$work/home" --listen 127.0.0.1:0 >"$work/server.log" 2>&1 &
  server=$!
  disown "$server"
  for _ in $(seq 1 100); do [ -f "$work/home/client/env" ] && break; sleep 0.1; done
  # shellcheck disable=SC1091
  source "$work/home/client/env"
}

report() { # title, pgo times..., --, bare times...
  local title=$1; shift
  local pgo=() bare=() side=pgo
  for t in "$@"; do
    if [ "$t" = "--" ]; then side=bare; continue; fi
    if [ $side = pgo ]; then pgo+=("$t"); else bare+=("$t"); fi
  done
  local pm bm
  pm=$(printf '%s\n' "${pgo[@]}" | median)
  bm=$(printf '%s\n' "${bare[@]}" | median)
  printf '%s, N=%s\n' "$title" "$N"
  printf '  pgo   median %.3fs   (%s)\n' "$pm" "$(printf '%.2f ' "${pgo[@]}")"
  printf '  bare  median %.3fs   (%s)\n' "$bm" "$(printf '%.2f ' "${bare[@]}")"
  printf '  ratio %.2fx\n' "$(awk -v a="$pm" -v b="$bm" 'BEGIN { print a / b }')"
}
