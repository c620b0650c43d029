//! Resources as the API presents them.

use pgo_api::Pgcluster;
use pgo_api::rest::ClusterView;

pub fn cluster(c: &Pgcluster) -> ClusterView {
    let status = c.status.clone().unwrap_or_default();
    ClusterView {
        name: c.metadata.name.clone().unwrap_or_default(),
        phase: status.phase,
        message: status.message,
        primary: status.primary,
        replicas: c.spec.replicas,
        database: c.spec.database.clone(),
        user: c.spec.user.clone(),
        created: c
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
        members: status.members,
        services: status.services,
        failovers: status.failovers,
        restores: status.restores,
        autofail: c.spec.autofail,
        backrest: c.spec.backrest.is_some(),
        secrets: None,
    }
}
