//! `Pgpolicy`: a named SQL script that can be applied to clusters.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "pgo.dev",
    version = "v1",
    kind = "Pgpolicy",
    plural = "pgpolicies",
    namespaced,
    status = "PgpolicyStatus",
    printcolumn = r#"{"name":"Applied To","type":"string","jsonPath":".status.appliedTo"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", default)]
pub struct PgpolicySpec {
    /// The SQL of the policy, given inline.
    pub sql: String,
    /// Or a URL it is read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct PgpolicyStatus {
    /// Clusters the policy was applied to.
    pub applied_to: Vec<String>,
}
