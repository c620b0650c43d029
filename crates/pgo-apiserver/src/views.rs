//! Resources as the API presents them.

use pgo_api::Pgcluster;
use pgo_api::rest::ClusterView;

/// A cluster's labels as `pgo show cluster` lists them and `--selector`
/// matches them: the user's, and pgo's own (which win).
pub fn cluster_labels(c: &Pgcluster) -> std::collections::BTreeMap<String, String> {
    let mut labels = c.spec.user_labels.clone();
    labels.extend(c.metadata.labels.clone().unwrap_or_default());
    labels
}

pub fn cluster(c: &Pgcluster) -> ClusterView {
    let status = c.status.clone().unwrap_or_default();
    // What a custom configuration makes the user should know (a trust
    // line, settings pgo keeps) is part of the cluster's message.
    let warnings = c
        .spec
        .custom_config_files
        .as_ref()
        .map(|f| f.warnings())
        .unwrap_or_default();
    let message = status
        .message
        .into_iter()
        .chain(warnings)
        .collect::<Vec<_>>()
        .join("; ");
    ClusterView {
        name: c.metadata.name.clone().unwrap_or_default(),
        phase: status.phase,
        message: (!message.is_empty()).then_some(message),
        labels: cluster_labels(c),
        custom_config: c.spec.custom_config.clone(),
        restarts: c.spec.restarts,
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
