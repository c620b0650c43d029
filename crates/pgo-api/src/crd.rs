//! The CustomResourceDefinitions of all six kinds, as Kubernetes reads them.

use crate::{Pgbackup, Pgcluster, Pgpolicy, Pgreplica, Pgtask, Pgupgrade};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD pgo serves, in a fixed order so the rendered file is stable.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        Pgcluster::crd(),
        Pgreplica::crd(),
        Pgbackup::crd(),
        Pgtask::crd(),
        Pgpolicy::crd(),
        Pgupgrade::crd(),
    ]
}

/// All CRDs as one multi-document YAML stream (what `postgres-operator crd` prints).
pub fn yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in all() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_kinds_with_the_spec_plural_names() {
        let plurals: Vec<String> = all().into_iter().map(|c| c.spec.names.plural).collect();
        assert_eq!(
            plurals,
            [
                "pgclusters",
                "pgreplicas",
                "pgbackups",
                "pgtasks",
                "pgpolicies",
                "pgupgrades"
            ]
        );
    }

    #[test]
    fn every_crd_has_a_status_subresource() {
        for crd in all() {
            let version = &crd.spec.versions[0];
            assert!(
                version
                    .subresources
                    .as_ref()
                    .and_then(|s| s.status.as_ref())
                    .is_some(),
                "{} has no status subresource",
                crd.spec.names.kind
            );
        }
    }
}
