#!/usr/bin/env bash
# From a fresh machine to a running PostgreSQL cluster you can psql into:
# builds pgo, starts the local server (apiserver + operator) in the
# background, creates the cluster "demo", and prints how to connect.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cargo build --release --locked --bins
bin="$PWD/target/release"
home="${PGO_HOME:-$HOME/.pgo}"
cluster="${1:-demo}"

run_args=(run --platform local --home "$home")
# As root, PostgreSQL runs as 'postgres', which cannot enter a 0700 /root:
# keep the data where it can.
if [ "$(id -u)" = 0 ]; then
  run_args+=(--data-dir /var/lib/pgo/data)
fi

if [ -f "$home/client/env" ] && (source "$home/client/env" && "$bin/pgo" version >/dev/null 2>&1); then
  echo "postgres-operator is already running (home $home)"
else
  mkdir -p "$home"
  rm -f "$home/client/env"
  nohup "$bin/postgres-operator" "${run_args[@]}" >>"$home/server.log" 2>&1 &
  for _ in $(seq 1 100); do
    [ -f "$home/client/env" ] && break
    if ! kill -0 $! 2>/dev/null; then
      echo "postgres-operator did not start; its log ($home/server.log) says:" >&2
      tail -n 5 "$home/server.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "postgres-operator started (log: $home/server.log)"
fi
# shellcheck disable=SC1091
source "$home/client/env"

if "$bin/pgo" show cluster "$cluster" >/dev/null 2>&1; then
  echo "cluster $cluster exists"
else
  "$bin/pgo" create cluster "$cluster"
fi
view=$("$bin/pgo" show cluster "$cluster" -o json --show-secrets)
port=$(python3 -c 'import json,sys; v=json.load(sys.stdin); print([s["port"] for s in v["services"] if s["name"]==v["name"]][0])' <<<"$view")
password=$(python3 -c 'import json,sys; v=json.load(sys.stdin); print([s["password"] for s in v["secrets"] if s["username"]==v["user"]][0])' <<<"$view")
cat <<MSG

Cluster $cluster is ready. Connect with:

  PGPASSWORD=$password psql "host=127.0.0.1 port=$port user=testuser dbname=userdb"

Use pgo from this shell with:

  export PATH=$bin:\$PATH
  source $home/client/env
  pgo show cluster all

MSG
