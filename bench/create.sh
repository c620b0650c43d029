#!/usr/bin/env bash
# `pgo create cluster` until the primary is ready, against bare
# `initdb && pg_ctl start -w` in the same run; median of N (5) each.
# Goal: at most 1.2x.
source "$(dirname "$0")/lib.sh"
start_server
pgo_times=()
for i in $(seq 1 "$N"); do
  t0=$(now); "$bin/pgo" create cluster "bench$i" >/dev/null; t1=$(now)
  pgo_times+=("$(sub "$t1" "$t0")")
  "$bin/pgo" delete cluster "bench$i" --no-prompt >/dev/null
done
bare_times=()
for i in $(seq 1 "$N"); do
  dir="$work/bare$i/primary"; pg_dir "$dir"; port=$(free_port)
  t0=$(now); as_postgres "$pgbin/initdb" -D "$dir" >/dev/null 2>&1; pg_start "$dir" "$port"; t1=$(now)
  bare_times+=("$(sub "$t1" "$t0")")
  pg_stop "$dir"
done
report "create -> primary ready (goal <= 1.20x)" "${pgo_times[@]}" -- "${bare_times[@]}"
