//! The pgo binaries live in `src/bin`; their logic in `pgo-cli` and `pgo-server`.
