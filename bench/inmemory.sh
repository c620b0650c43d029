#!/usr/bin/env bash
# The operator's runtime on the in-memory API server with stand-in
# managers: CLUSTERS (1000) clusters to Ready, and API calls per cluster per
# minute at steady state (goal <= 3). See crates/pgo-kube/examples/scale.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --locked -q -p pgo-kube --example scale
