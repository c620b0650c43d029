#!/usr/bin/env bash
# 100 clusters on one server (CLUSTERS to change it):
# - `pgo create cluster --no-wait` for each, then the time until all are
#   Ready, against CLUSTERS bare `initdb && pg_ctl start` run two at a time
#   (goal: ratio <= 0.8);
# - the server's RSS (goal <= 32 MB) and its CPU while idle (goal <= 1% of
#   a core), over IDLE seconds (60);
# - reconciles per cluster per minute while idle, and of one cluster under a
#   pgbench writer (goal <= 60000/ProbePeriodMs + 2), from /metrics.
source "$(dirname "$0")/lib.sh"
CLUSTERS="${CLUSTERS:-100}"
IDLE="${IDLE:-60}"
start_server

scrape() { # the cluster controller's reconciles so far
  curl -sf --cacert "$PGO_CA_CERT" -u "$(cat "$PGOUSER")" "$PGO_APISERVER_URL/metrics" |
    awk '/^pgo_operator_reconciles_total\{controller="cluster"/ { n += $2 } END { print n + 0 }'
}
ready_count() {
  "$bin/pgo" show cluster all -o json | jq '[.[] | select(.phase == "Ready")] | length'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$server/stat"; }

t0=$(now)
for i in $(seq 1 "$CLUSTERS"); do "$bin/pgo" create cluster "s$i" --no-wait >/dev/null; done
until [ "$(ready_count)" -eq "$CLUSTERS" ]; do sleep 0.5; done
pgo_time=$(sub "$(now)" "$t0")

bare() {
  local dir="$work/bare$1/primary" port
  pg_dir "$dir"; port=$(free_port)
  as_postgres "$pgbin/initdb" -D "$dir" >/dev/null 2>&1
  pg_start "$dir" "$port"
}
t0=$(now)
for i in $(seq 1 2 "$CLUSTERS"); do
  bare "$i" & a=$!
  if [ $((i + 1)) -le "$CLUSTERS" ]; then bare $((i + 1)); fi
  wait "$a"
done
bare_time=$(sub "$(now)" "$t0")
for d in "$work"/bare*/primary; do pg_stop "$d"; done

period=$(grep -oP 'ProbePeriodMs: \K[0-9]+' "$work/home/pgo.yaml" 2>/dev/null || echo 2000)
sleep 5
rss_kb=$(awk '/^VmRSS/ { print $2 }' "/proc/$server/status")
r0=$(scrape); c0=$(cpu_ticks); t0=$(now)
sleep "$IDLE"
r1=$(scrape); c1=$(cpu_ticks); t1=$(now)
hz=$(getconf CLK_TCK)
secs=$(sub "$t1" "$t0")

# One cluster alone under a writer: its reconciles per minute.
for i in $(seq 2 "$CLUSTERS"); do "$bin/pgo" delete cluster "s$i" --no-prompt >/dev/null; done
sleep 5
port=$("$bin/pgo" show cluster s1 -o json --show-secrets | jq -r '.services[] | select(.name == "s1") | .port')
pw=$("$bin/pgo" show cluster s1 -o json --show-secrets | jq -r '.secrets[] | select(.username == "postgres") | .password')
export PGPASSWORD="$pw"
pgbench -h 127.0.0.1 -p "$port" -U postgres -i -q postgres >/dev/null 2>&1
pgbench -h 127.0.0.1 -p "$port" -U postgres -c 2 -T "$IDLE" postgres >/dev/null 2>&1 &
bench=$!
sleep 2
w0=$(scrape); tw0=$(now)
wait "$bench" || true
w1=$(scrape); tw1=$(now)

goal=$(awk -v p="$period" 'BEGIN { printf "%.1f", 60000 / p + 2 }')
printf 'scale: %s clusters, created with --no-wait until all Ready\n' "$CLUSTERS"
printf '  pgo   %.1fs\n  bare  %.1fs (initdb && pg_ctl start, two at a time)\n' "$pgo_time" "$bare_time"
printf '  ratio %.2fx (goal <= 0.80x)\n' "$(awk -v a="$pgo_time" -v b="$bare_time" 'BEGIN { print a / b }')"
printf '  server RSS %.1f MB at %s clusters (goal <= 32 MB)\n' "$(awk -v k="$rss_kb" 'BEGIN { print k / 1024 }')" "$CLUSTERS"
printf '  server CPU idle %.2f%% of a core over %ss (goal <= 1%%)\n' \
  "$(awk -v c="$((c1 - c0))" -v hz="$hz" -v s="$secs" 'BEGIN { print 100 * c / hz / s }')" "$IDLE"
printf '  reconciles per cluster per minute, idle: %.1f (goal <= %s at ProbePeriodMs %s)\n' \
  "$(awk -v r="$((r1 - r0))" -v n="$CLUSTERS" -v s="$secs" 'BEGIN { print r / n / s * 60 }')" "$goal" "$period"
printf '  reconciles per minute of one cluster under pgbench: %.1f (goal <= %s)\n' \
  "$(awk -v r="$((w1 - w0))" -v s="$(sub "$tw1" "$tw0")" 'BEGIN { print r / s * 60 }')" "$goal"
