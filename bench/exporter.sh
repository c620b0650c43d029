#!/usr/bin/env bash
# The metrics exporter of a `--metrics` cluster (one primary), median of N
# (20) scrapes: the time of `GET /metrics` against the same exporter binary
# run by hand on a bare PostgreSQL as its superuser with no extra queries;
# then each one's CPU over IDLE (60) seconds scraped every 15 s (a
# Prometheus default), in % of a core, and its RSS.
source "$(dirname "$0")/lib.sh"
N="${N:-20}"
IDLE="${IDLE:-60}"
mkdir -p "$work/home"
printf 'Pgo:\n  ProbePeriodMs: 2000\n' >"$work/home/pgo.yaml"
start_server
pgo="$bin/pgo"
"$pgo" create cluster mx --metrics --pgbackrest=false >/dev/null
url=$("$pgo" show cluster mx -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["members"][0]["metrics"])')
pgo_pid=$(pgrep -f "prometheus-postgres-exporter.*$work" | head -n 1)

bare="$work/bare1/primary"
pg_dir "$bare"
as_postgres "$pgbin/initdb" -D "$bare" --auth=trust >/dev/null 2>&1
bport=$(free_port)
pg_start "$bare" "$bport"
eport=$(free_port)
DATA_SOURCE_NAME="postgresql://postgres@127.0.0.1:$bport/postgres?sslmode=disable" \
  prometheus-postgres-exporter --web.listen-address="127.0.0.1:$eport" >/dev/null 2>&1 &
bare_pid=$!
bare_url="http://127.0.0.1:$eport/metrics"
until curl -sf "$url" | grep -q '^pg_up 1'; do sleep 0.2; done
until curl -sf "$bare_url" | grep -q '^pg_up 1'; do sleep 0.2; done

scrape_time() { curl -sf -o /dev/null -w '%{time_total}\n' "$1"; }
pgo_t=(); bare_t=()
for _ in $(seq 1 "$N"); do
  pgo_t+=("$(scrape_time "$url")")
  bare_t+=("$(scrape_time "$bare_url")")
done
report "exporter: one scrape of /metrics (pgo's queries included)" "${pgo_t[@]}" -- "${bare_t[@]}"

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
p0=$(ticks "$pgo_pid"); b0=$(ticks "$bare_pid"); t0=$(now)
for _ in $(seq 1 $((IDLE / 15))); do
  curl -sf -o /dev/null "$url"; curl -sf -o /dev/null "$bare_url"
  sleep 15
done
p1=$(ticks "$pgo_pid"); b1=$(ticks "$bare_pid"); secs=$(sub "$(now)" "$t0")
hz=$(getconf CLK_TCK)
cpu() { awk -v c="$1" -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.3f", 100 * c / hz / s }'; }
printf '  CPU over %.0fs, scraped every 15 s: pgo %s%% of a core, bare %s%%\n' "$secs" "$(cpu $((p1 - p0)))" "$(cpu $((b1 - b0)))"
printf '  RSS: pgo %s MB, bare %s MB\n' "$(rss "$pgo_pid")" "$(rss "$bare_pid")"
kill "$bare_pid"
pg_stop "$bare"
