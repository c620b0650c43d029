#!/usr/bin/env bash
# Failover timings, median of N (5) each, with AutofailSleepSeconds: 1,
# ProbePeriodMs: 200 and ProbeTimeoutMs: 500:
#  - crash: SIGKILL of the primary's instance manager and PostgreSQL until
#    the first write through the primary service succeeds, minus the 1 s timer
#    (the primary is restarted in place or failed over, whichever is first);
#  - hang: the same with SIGSTOP, which only a failover ends;
#  - postmaster hang: SIGSTOP of the postmaster alone (backends and manager
#    run on), minus the timer;
#  - frozen storage: `fsfreeze -f` of the primary's volume (a loop-mounted
#    ext4, so as root only), minus the timer; a new cluster each time, since
#    only a volume made before its cluster can be a filesystem of its own.
#  The first write is the first of attempts started every 20 ms, each given
#  up after 2 s, so one stuck on the old primary holds up no other;
#  - switchover: the longest gap between acknowledged writes of a writer
#    running through `pgo failover --target`.
# Goals: at most 1 s for each.
source "$(dirname "$0")/lib.sh"
mkdir -p "$work/home"
printf 'Pgo:\n  ProbePeriodMs: 200\n  ProbeTimeoutMs: 500\n  AutofailSleepSeconds: 1\n' >"$work/home/pgo.yaml"
start_server
pgo="$bin/pgo"
"$pgo" create cluster fo --replica-count=2 --autofail >/dev/null
view() { "$pgo" show cluster fo -o json --show-secrets; }
field() { python3 -c "import json,sys; v=json.load(sys.stdin); print($1)"; }
port=$(view | field '[s["port"] for s in v["services"] if s["name"]=="fo"][0]')
pw=$(view | field '[s["password"] for s in v["secrets"] if s["username"]=="testuser"][0]')
PGPASSWORD=$pw psql -qAt "host=127.0.0.1 port=$port user=testuser dbname=userdb" -c "create table w (t timestamptz default now())"
# A write to frozen storage never returns: the client is given up after 2 s.
write_to() { PGPASSWORD=$2 timeout 2 psql -qAt "host=127.0.0.1 port=$1 user=testuser dbname=userdb connect_timeout=1" -c "insert into w default values" >/dev/null 2>&1; }
write_once() { write_to "$port" "$pw"; }
# The time of the first write that succeeds: a new attempt every 20 ms, each
# on its own, so one stuck on a hung or frozen primary holds up no other.
first_write() { # port password
  local done="$work/first.$RANDOM"
  until [ -s "$done" ]; do
    ( write_to "$1" "$2" && now >>"$done" ) &
    sleep 0.02
  done
  head -n 1 "$done"
}
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
  t1=$(first_write "$port" "$pw")
  sub "$(sub "$t1" "$t0")" 1
}
postmaster_hang() {
  whole
  local primary pm t0 t1
  primary=$(view | field 'v["primary"]')
  pm=$(head -n 1 "$work/home/volumes/$primary/pgdata/postmaster.pid")
  t0=$(now); kill -STOP "$pm"
  t1=$(first_write "$port" "$pw")
  sub "$(sub "$t1" "$t0")" 1
}
thaw_all() {
  for m in "$work"/home/volumes/fz*; do
    mountpoint -q "$m" 2>/dev/null || continue
    fsfreeze -u "$m" 2>/dev/null || true; umount -l "$m" 2>/dev/null || true
  done
}
trap 'thaw_all; cleanup' EXIT
frozen_storage() { # round
  local name="fz$1" mnt="$work/home/volumes/fz$1" img="$work/fz$1.img" v p w t0 t1
  truncate -s 256M "$img"; mkfs.ext4 -q -F "$img"; mkdir -p "$mnt"; mount -o loop "$img" "$mnt"
  "$pgo" create cluster "$name" --replica-count=1 --autofail >/dev/null
  v=$("$pgo" show cluster "$name" -o json --show-secrets)
  p=$(echo "$v" | field "[s['port'] for s in v['services'] if s['name']=='$name'][0]")
  w=$(echo "$v" | field '[s["password"] for s in v["secrets"] if s["username"]=="testuser"][0]')
  PGPASSWORD=$w psql -qAt "host=127.0.0.1 port=$p user=testuser dbname=userdb" -c "create table w (t timestamptz default now())"
  until [ "$("$pgo" show cluster "$name" -o json | field 'sum(1 for m in v["members"] if m["ready"])')" = 2 ]; do sleep 0.1; done
  t0=$(now); fsfreeze -f "$mnt"
  t1=$(first_write "$p" "$w")
  fsfreeze -u "$mnt"
  "$pgo" delete cluster "$name" --no-prompt >/dev/null
  umount -l "$mnt"; rm -f "$img"
  sub "$(sub "$t1" "$t0")" 1
}

crash=(); hang=(); pmhang=(); frozen=(); switch=()
for _ in $(seq 1 "$N"); do crash+=("$(outage KILL)"); done
for _ in $(seq 1 "$N"); do hang+=("$(outage STOP)"); done
for _ in $(seq 1 "$N"); do pmhang+=("$(postmaster_hang)"); done
if [ "$(id -u)" = 0 ]; then
  for i in $(seq 1 "$N"); do frozen+=("$(frozen_storage "$i")"); done
fi
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

printf 'failover, N=%s (AutofailSleepSeconds 1, ProbePeriodMs 200, ProbeTimeoutMs 500), goal <= 1s each\n' "$N"
printf '  crash (SIGKILL) -> first write, minus the timer  median %.3fs  (%s)\n' "$(printf '%s\n' "${crash[@]}" | median)" "$(printf '%.2f ' "${crash[@]}")"
printf '  hang (SIGSTOP)  -> first write, minus the timer  median %.3fs  (%s)\n' "$(printf '%s\n' "${hang[@]}" | median)" "$(printf '%.2f ' "${hang[@]}")"
printf '  postmaster only (SIGSTOP) -> first write, minus the timer  median %.3fs  (%s)\n' "$(printf '%s\n' "${pmhang[@]}" | median)" "$(printf '%.2f ' "${pmhang[@]}")"
if [ "${#frozen[@]}" -gt 0 ]; then
  printf '  frozen storage (fsfreeze) -> first write, minus the timer  median %.3fs  (%s)\n' "$(printf '%s\n' "${frozen[@]}" | median)" "$(printf '%.2f ' "${frozen[@]}")"
else
  printf '  frozen storage: not measured (needs root for mount -o loop and fsfreeze)\n'
fi
printf '  switchover: longest gap between writes           median %.3fs  (%s)\n' "$(printf '%s\n' "${switch[@]}" | median)" "$(printf '%.2f ' "${switch[@]}")"
printf '  failovers recorded: %s\n' "$(view | field 'len(v.get("failovers", []))')"
