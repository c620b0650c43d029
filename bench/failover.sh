#!/usr/bin/env bash
# Failover timings, median of N (5) each, with AutofailSleepSeconds: 1 and
# ProbePeriodMs: 200:
#  - crash: SIGKILL of the primary's instance manager and PostgreSQL until
#    the first write through the primary service succeeds, minus the 1 s timer
#    (the primary is restarted in place or failed over, whichever is first);
#  - hang: the same with SIGSTOP, which only a failover ends;
#  - switchover: the longest gap between acknowledged writes of a writer
#    running through `pgo failover --target`.
# Goals: at most 1 s for each.
source "$(dirname "$0")/lib.sh"
mkdir -p "$work/home"
printf 'Pgo:\n  ProbePeriodMs: 200\n  AutofailSleepSeconds: 1\n' >"$work/home/pgo.yaml"
start_server
pgo="$bin/pgo"
"$pgo" create cluster fo --replica-count=2 --autofail >/dev/null
view() { "$pgo" show cluster fo -o json --show-secrets; }
field() { python3 -c "import json,sys; v=json.load(sys.stdin); print($1)"; }
port=$(view | field '[s["port"] for s in v["services"] if s["name"]=="fo"][0]')
pw=$(view | field '[s["password"] for s in v["secrets"] if s["username"]=="testuser"][0]')
PGPASSWORD=$pw psql -qAt "host=127.0.0.1 port=$port user=testuser dbname=userdb" -c "create table w (t timestamptz default now())"
write_once() { PGPASSWORD=$pw psql -qAt "host=127.0.0.1 port=$port user=testuser dbname=userdb connect_timeout=1" -c "insert into w default values" >/dev/null 2>&1; }
whole() {
  for _ in $(seq 1 600); do
    [ "$(view | field 'v["phase"]=="Ready" and sum(1 for m in v["members"] if m["role"]=="Replica" and m["ready"])==2')" = True ] && return 0
    sleep 0.1
  done
  echo "the cluster did not recover" >&2; exit 1
}
processes() {
  local primary pids pm
  primary=$(view | field 'v["primary"]')
  pids="$(cat "$work/home/instances/$primary/manager.pid")"
  pm=$(head -n 1 "$work/home/volumes/$primary/pgdata/postmaster.pid")
  echo "$pids $pm $(pgrep -P "$pm" | tr '\n' ' ')"
}
outage() { # signal
  whole
  local t0 t1
  # shellcheck disable=SC2046
  t0=$(now); kill "-$1" $(processes)
  until write_once; do sleep 0.01; done
  t1=$(now)
  sub "$(sub "$t1" "$t0")" 1
}

crash=(); hang=(); switch=()
for _ in $(seq 1 "$N"); do crash+=("$(outage KILL)"); done
for _ in $(seq 1 "$N"); do hang+=("$(outage STOP)"); done
for _ in $(seq 1 "$N"); do
  whole
  log="$work/writes.log"; : >"$log"
  ( while [ ! -f "$work/stop" ]; do write_once && now >>"$log"; done ) &
  writer=$!
  sleep 1
  target=$(view | field '[m["name"] for m in v["members"] if m["role"]=="Replica" and m["ready"]][0]')
  "$pgo" failover fo --target "$target" --no-prompt >/dev/null
  sleep 1
  touch "$work/stop"; wait "$writer"; rm -f "$work/stop"
  switch+=("$(awk 'NR>1 { g = $1 - prev; if (g > max) max = g } { prev = $1 } END { printf "%.4f", max }' "$log")")
done

printf 'failover, N=%s (AutofailSleepSeconds 1, ProbePeriodMs 200), goal <= 1s each\n' "$N"
printf '  crash (SIGKILL) -> first write, minus the timer  median %.3fs  (%s)\n' "$(printf '%s\n' "${crash[@]}" | median)" "$(printf '%.2f ' "${crash[@]}")"
printf '  hang (SIGSTOP)  -> first write, minus the timer  median %.3fs  (%s)\n' "$(printf '%s\n' "${hang[@]}" | median)" "$(printf '%.2f ' "${hang[@]}")"
printf '  switchover: longest gap between writes           median %.3fs  (%s)\n' "$(printf '%s\n' "${switch[@]}" | median)" "$(printf '%.2f ' "${switch[@]}")"
printf '  failovers recorded: %s\n' "$(view | field 'len(v.get("failovers", []))')"
