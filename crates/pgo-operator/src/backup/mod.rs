//! Pgbackups: each backup a job on the platform, driven from the store.
//! Observe (the Pgbackup, its cluster, its job), plan
//! ([`pgo_core::backup::plan`]), act.

pub mod controller;
