#!/usr/bin/env bash
# pgBackRest through pgo against bare pgBackRest, in the same run, on a
# pgbench database of about 1 GB (SCALE=70):
# - a full backup: `pgo backup` (Pgbackup, job, status) against
#   `pgbackrest backup --type=full` with the same config; median of N (3)
#   each, alternating. Goal: ratio at most 1.1. MB/s of each.
# - WAL archive lag under a pgbench write load (DURATION=30 s): seconds
#   from a segment's completion (the primary moved past it) to its arrival
#   in the repository. Goal: median at most 1 s.
# - a restore of the newest backup into a new volume: `pgo restore
#   --to-pvc` (Pgtask, job, status; the job replays to the end of the
#   archive and promotes, so the volume stands alone) against the same by
#   hand: `pgbackrest restore` into an empty directory with the same config,
#   then PostgreSQL started until it takes connections (with hot_standby
#   off, once promoted) and stopped; median of N each. Goal: ratio at most
#   1.1. MB/s of each.
source "$(dirname "$0")/lib.sh"
N="${N:-3}"
SCALE="${SCALE:-70}"
DURATION="${DURATION:-30}"
start_server
"$bin/pgo" create cluster bb >/dev/null
view=$("$bin/pgo" show cluster bb -o json --show-secrets)
port=$(python3 -c 'import json,sys; v=json.load(sys.stdin); print([s["port"] for s in v["services"] if s["name"]=="bb"][0])' <<<"$view")
pw=$(python3 -c 'import json,sys; v=json.load(sys.stdin); print([s["password"] for s in v["secrets"] if s["username"]=="postgres"][0])' <<<"$view")
export PGPASSWORD="$pw"
echo "loading pgbench scale $SCALE ..."
"$pgbin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -i -s "$SCALE" -q userdb >/dev/null 2>&1
size=$(psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atc "SELECT sum(pg_database_size(datname)) FROM pg_database")
vol="$work/home/volumes/bb/pgbackrest"
bare_backup() {
  as_postgres env PGHOST=127.0.0.1 PGPASSFILE="$vol/.pgpass" pgbackrest --config="$vol/pgbackrest.conf" --stanza=db backup --type=full >/dev/null
}
pgo_backup() { "$bin/pgo" backup bb --backup-opts=--type=full >/dev/null; }
# The first backup after the load reads what the page cache does not hold
# yet: not timed, so neither side pays it.
pgo_backup
pgo_times=(); bare_times=()
for i in $(seq 1 "$N"); do
  # Alternating which goes first: each would otherwise always follow the
  # other's checkpoint and archive.
  for side in $([ $((i % 2)) = 1 ] && echo "pgo bare" || echo "bare pgo"); do
    t0=$(now); "${side}_backup"; t1=$(now)
    if [ "$side" = pgo ]; then pgo_times+=("$(sub "$t1" "$t0")"); else bare_times+=("$(sub "$t1" "$t0")"); fi
  done
done
report "full backup of $((size / 1000000)) MB (goal <= 1.10x)" "${pgo_times[@]}" -- "${bare_times[@]}"
pm=$(printf '%s\n' "${pgo_times[@]}" | median); bm=$(printf '%s\n' "${bare_times[@]}" | median)
awk -v s="$size" -v p="$pm" -v b="$bm" 'BEGIN { printf "  MB/s  pgo %.0f   bare %.0f\n", s / 1e6 / p, s / 1e6 / b }'

pgo_times=(); bare_times=()
for i in $(seq 1 "$N"); do
  t0=$(now); "$bin/pgo" restore bb --to-pvc="r$i" >/dev/null; t1=$(now)
  pgo_times+=("$(sub "$t1" "$t0")")
  target="$work/bare-restore-$i"; pg_dir "$target"
  t0=$(now)
  as_postgres env PGHOST=127.0.0.1 PGPASSFILE="$vol/.pgpass" pgbackrest --config="$vol/pgbackrest.conf" --stanza=db \
    --pg1-path="$target" restore --recovery-option=hot_standby=off >/dev/null
  as_postgres "$pgbin/pg_ctl" -D "$target" -l "$target/replay.log" -w -t 600 \
    -o "-p $(free_port) -c listen_addresses= -c unix_socket_directories=$target -c archive_mode=off -c ssl=off" start >/dev/null
  as_postgres "$pgbin/pg_ctl" -D "$target" -m fast -w stop >/dev/null
  t1=$(now)
  bare_times+=("$(sub "$t1" "$t0")")
  # Each restore writes a data directory: keep the disk to one at a time.
  rm -rf "$target" "$work/home/volumes/r$i/pgdata"
done
report "restore of $((size / 1000000)) MB into a new volume (goal <= 1.10x)" "${pgo_times[@]}" -- "${bare_times[@]}"
pm=$(printf '%s\n' "${pgo_times[@]}" | median); bm=$(printf '%s\n' "${bare_times[@]}" | median)
awk -v s="$size" -v p="$pm" -v b="$bm" 'BEGIN { printf "  MB/s  pgo %.0f   bare %.0f\n", s / 1e6 / p, s / 1e6 / b }'

echo "archive lag under pgbench for ${DURATION}s ..."
"$pgbin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -c 4 -T "$DURATION" userdb >/dev/null 2>&1 &
load=$!
python3 - "$port" "$work/home/volumes/bb-backrestrepo/archive/db" "$DURATION" <<'PY'
import os, subprocess, sys, time, statistics
port, archive, duration = sys.argv[1], sys.argv[2], float(sys.argv[3])
def current():
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "postgres", "-Atc",
                          "SELECT pg_walfile_name(pg_current_wal_lsn())"], capture_output=True, text=True)
    return out.stdout.strip()
def arrived():
    names = set()
    for root, _, files in os.walk(archive):
        names.update(f[:24] for f in files if len(f) > 24 and f[:24].isalnum())
    return names
completed, arrival = {}, {}
last, end = current(), time.time() + duration + 10
while time.time() < end:
    now = time.time()
    seg = current()
    if seg and seg != last:
        completed.setdefault(last, now)
        last = seg
    for name in arrived():
        arrival.setdefault(name, now)
    time.sleep(0.1)
lags = [arrival[s] - t for s, t in completed.items() if s in arrival]
if not lags:
    print("  no segment completed and arrived")
else:
    print(f"  segments {len(lags)}  lag median {statistics.median(lags):.2f}s  max {max(lags):.2f}s (goal: median <= 1 s)")
PY
wait "$load" || true
