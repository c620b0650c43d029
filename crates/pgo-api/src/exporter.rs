//! The metrics exporter (postgres_exporter) beside every instance of a
//! cluster made with `--metrics`.

/// The queries it runs besides its own (`--extend.query-path`): replication
/// lag in bytes and seconds, archiving, database sizes.
pub const QUERIES: &str = include_str!("exporter-queries.yaml");
/// The Debian package's binary, on the local platform.
pub const BINARY: &str = "prometheus-postgres-exporter";
