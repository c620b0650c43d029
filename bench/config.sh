#!/usr/bin/env bash
# Configuration changes, median of N (5) each, ProbePeriodMs: 200, a cluster
# with one replica and a custom configuration:
#  - reload: from `pgo reload` (after `pgo create configmap --overwrite`
#    with a new work_mem) until `SHOW work_mem` through the primary Service
#    returns it, against the same change on a bare PostgreSQL (the file
#    rewritten, `pg_ctl reload`, SHOW polled the same way). Goal <= 1 s.
#  - restart: the longest gap between acknowledged writes of a writer
#    running through `pgo restart`, against the gap a bare `pg_ctl restart
#    -m fast` leaves in the same writer. Goal <= 1 s.
source "$(dirname "$0")/lib.sh"
mkdir -p "$work/home"
printf 'Pgo:\n  ProbePeriodMs: 200\n' >"$work/home/pgo.yaml"
start_server
pgo="$bin/pgo"
conf="$work/conf"
mkdir -p "$conf"
printf '[global]\n' >"$conf/pgbackrest.conf"
printf "work_mem = '4MB'\n" >"$conf/postgresql.conf"
"$pgo" create configmap tuned --from-file="$conf" >/dev/null
"$pgo" create cluster cfg --replica-count=1 --custom-config=tuned >/dev/null
view() { "$pgo" show cluster cfg -o json --show-secrets; }
field() { python3 -c "import json,sys; v=json.load(sys.stdin); print($1)"; }
port=$(view | field '[s["port"] for s in v["services"] if s["name"]=="cfg"][0]')
root=$(view | field '[s["password"] for s in v["secrets"] if s["username"]=="postgres"][0]')
show_at() { PGPASSWORD=$2 psql -qAt "host=127.0.0.1 port=$1 user=postgres dbname=postgres connect_timeout=1" -c "show work_mem" 2>/dev/null || true; }
until_shows() { # port password value
  until [ "$(show_at "$1" "$2")" = "$3" ]; do sleep 0.01; done
}

# A bare PostgreSQL, its settings in a file of its own.
bare="$work/bare1/primary"
pg_dir "$bare"
as_postgres "$pgbin/initdb" -D "$bare" --auth=trust >/dev/null 2>&1
echo "include_if_exists = 'tuned.conf'" | as_postgres tee -a "$bare/postgresql.conf" >/dev/null
bport=$(free_port)
pg_start "$bare" "$bport"

reload=(); bare_reload=()
for i in $(seq 1 "$N"); do
  value="$((4 + i))MB"
  printf "work_mem = '%s'\n" "$value" >"$conf/postgresql.conf"
  "$pgo" create configmap tuned --from-file="$conf" --overwrite >/dev/null
  t0=$(now)
  "$pgo" reload cfg --no-prompt >/dev/null
  until_shows "$port" "$root" "$value"
  reload+=("$(sub "$(now)" "$t0")")

  printf "work_mem = '%s'\n" "$value" | as_postgres tee "$bare/tuned.conf" >/dev/null
  t0=$(now)
  as_postgres "$pgbin/pg_ctl" -D "$bare" reload >/dev/null
  until_shows "$bport" "" "$value"
  bare_reload+=("$(sub "$(now)" "$t0")")
done

# The longest gap between acknowledged writes while `$@` runs.
PGPASSWORD=$root psql -qAt "host=127.0.0.1 port=$port user=postgres dbname=postgres" -c "create table w (t timestamptz default now())"
psql -qAt "host=127.0.0.1 port=$bport user=postgres dbname=postgres" -c "create table w (t timestamptz default now())"
gap_during() { # port password command...
  local p=$1 pw=$2; shift 2
  local log="$work/writes.log"; : >"$log"
  rm -f "$work/stop"
  ( while [ ! -f "$work/stop" ]; do
      PGPASSWORD=$pw timeout 2 psql -qAt "host=127.0.0.1 port=$p user=postgres dbname=postgres connect_timeout=1" \
        -c "insert into w default values" >/dev/null 2>&1 && now >>"$log"
    done ) &
  local writer=$!
  sleep 1
  "$@" >/dev/null
  sleep 1
  touch "$work/stop"; wait "$writer"
  awk 'NR>1 { g = $1 - prev; if (g > max) max = g } { prev = $1 } END { printf "%.4f", max }' "$log"
}
ready() {
  for _ in $(seq 1 600); do
    [ "$(view | field 'v["phase"]=="Ready" and all(m["ready"] for m in v["members"]) and len(v["members"])==2')" = True ] && return 0
    sleep 0.1
  done
  echo "the cluster did not come back" >&2; exit 1
}
restart=(); bare_restart=()
for _ in $(seq 1 "$N"); do
  ready
  restart+=("$(gap_during "$port" "$root" "$pgo" restart cfg --no-prompt)")
  bare_restart+=("$(gap_during "$bport" "" as_postgres "$pgbin/pg_ctl" -D "$bare" -m fast -w restart -o "-p $bport -c listen_addresses=127.0.0.1 -c unix_socket_directories=''")")
done
pg_stop "$bare"

report "reload: pgo reload until SHOW has the new value (goal <= 1s)" "${reload[@]}" -- "${bare_reload[@]}"
report "restart: longest gap between acknowledged writes (goal <= 1s)" "${restart[@]}" -- "${bare_restart[@]}"
