#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need, then
# formatting, lints, and every test (real PostgreSQL, no mocks of it).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh --test
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Each test that drives the operator against the in-memory API server
# leaves the requests it made here; the RBAC audit, run after, checks that
# deploy/rbac.yaml grants each and that every rule it grants was used.
rm -rf "${CARGO_TARGET_DIR:-target}/tmp/rbac-audit"
cargo nextest run --workspace --locked --no-fail-fast
cargo nextest run --workspace --locked --run-ignored only -E 'test(=every_rule_granted_to_the_operator_is_used)'
./scripts/validate-k8s.sh
