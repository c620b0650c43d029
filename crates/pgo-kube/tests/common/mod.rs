//! Objects the rendering tests start from.

use pgo_api::{Pgcluster, PgclusterSpec, StorageSpec};

/// A cluster of strategy 1 with pgo.yaml's usual names and 1G volumes.
pub fn cluster(name: &str) -> Pgcluster {
    let storage = StorageSpec {
        size: "1G".into(),
        ..Default::default()
    };
    Pgcluster::new(
        name,
        PgclusterSpec {
            port: 5432,
            strategy: "1".into(),
            database: "userdb".into(),
            user: "testuser".into(),
            primary_storage: storage.clone(),
            replica_storage: storage,
            ..Default::default()
        },
    )
}
