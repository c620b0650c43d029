#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need, then
# formatting, lints, and every test (real PostgreSQL, no mocks of it).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh --test
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo nextest run --workspace --locked --no-fail-fast
./scripts/validate-k8s.sh
