#!/usr/bin/env bash
# `pgo create cluster --replica-count=2` until the primary and both replicas
# are ready, against the bare sequential equivalent in the same run (initdb,
# start, then pg_basebackup + start twice); median of N (5) each.
# Goal: at most 1.0x (pgo's replicas copy the primary at the same time).
source "$(dirname "$0")/lib.sh"
start_server
pgo_times=()
for i in $(seq 1 "$N"); do
  t0=$(now); "$bin/pgo" create cluster "bench$i" --replica-count=2 >/dev/null; t1=$(now)
  pgo_times+=("$(sub "$t1" "$t0")")
  "$bin/pgo" delete cluster "bench$i" --no-prompt >/dev/null
done
bare_times=()
for i in $(seq 1 "$N"); do
  primary="$work/bare$i/primary"; pg_dir "$primary"; port=$(free_port)
  t0=$(now)
  as_postgres "$pgbin/initdb" -D "$primary" >/dev/null 2>&1
  pg_start "$primary" "$port"
  for r in 1 2; do
    dir="$work/bare$i/replica$r"; pg_dir "$dir"
    as_postgres "$pgbin/pg_basebackup" -D "$dir" -h 127.0.0.1 -p "$port" -X stream -c fast -R >/dev/null
    pg_start "$dir" "$(free_port)"
  done
  t1=$(now)
  bare_times+=("$(sub "$t1" "$t0")")
  for d in "$work/bare$i"/*; do pg_stop "$d"; done
done
report "create -> primary + 2 replicas ready (goal <= 1.00x)" "${pgo_times[@]}" -- "${bare_times[@]}"
