//! Users' ConfigMaps (`pgo create configmap`): applied with pgo's field
//! manager, so a new content replaces the keys pgo wrote before, and
//! labelled so that `pgo show configmap` finds them. One made with
//! kubectl (as the original's docs did) is read, never written.

use super::KubePlatform;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use pgo_api::labels;
use pgo_platform::PlatformError;
use std::collections::BTreeMap;

pub async fn put(p: &KubePlatform, name: &str, data: &BTreeMap<String, String>) -> Result<(), PlatformError> {
    let map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([
                (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
                (
                    labels::USER_CONFIG_MAP.to_string(),
                    labels::USER_CONFIG_MAP_VALUE.to_string(),
                ),
            ])),
            ..Default::default()
        },
        data: Some(data.clone()),
        ..Default::default()
    };
    p.apply(&map).await
}

pub async fn get(p: &KubePlatform, name: &str) -> Result<Option<BTreeMap<String, String>>, PlatformError> {
    Ok(p.get_opt::<ConfigMap>(name)
        .await?
        .map(|m| m.data.unwrap_or_default()))
}

pub async fn list(p: &KubePlatform) -> Result<Vec<String>, PlatformError> {
    let mut names: Vec<String> = p
        .list_ours::<ConfigMap>(Some((labels::USER_CONFIG_MAP, labels::USER_CONFIG_MAP_VALUE)))
        .await?
        .into_iter()
        .filter_map(|m| m.metadata.name)
        .collect();
    names.sort();
    Ok(names)
}

pub async fn remove(p: &KubePlatform, name: &str) -> Result<(), PlatformError> {
    p.delete_ours::<ConfigMap>(name).await
}
