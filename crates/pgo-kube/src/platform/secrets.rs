//! Secrets: one per database user (made once with a random password, never
//! changed by pgo afterwards; one made by hand beforehand is used as it is,
//! as the spec allows), and the token of a cluster's instance managers.

use super::apply::api_error;
use super::{KubePlatform, post_params};
use crate::render::token_secret;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::Api;
use pgo_api::labels;
use pgo_core::desired::SecretSpec;
use pgo_platform::{Credentials, PlatformError};
use std::collections::BTreeMap;

fn random(len: usize) -> Result<String, PlatformError> {
    pgo_platform::password(len).map_err(|_| PlatformError::Invalid("the system random source failed".into()))
}

/// Creates the secret unless one of that name exists.
async fn create_absent(api: &Api<Secret>, secret: Secret) -> Result<(), PlatformError> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let what = format!("Secret {name}");
    if api
        .get_opt(&name)
        .await
        .map_err(|e| api_error(&what, e))?
        .is_some()
    {
        return Ok(());
    }
    match api.create(&post_params(), &secret).await {
        Ok(_) => {
            tracing::info!(secret = %name, "created secret");
            Ok(())
        }
        // Made in between: the first one stays.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(api_error(&format!("creating {what}"), e)),
    }
}

fn meta(name: &str, cluster: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        labels: Some(BTreeMap::from([
            (labels::CLUSTER.to_string(), cluster.to_string()),
            (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
        ])),
        ..Default::default()
    }
}

pub async fn ensure_user(platform: &KubePlatform, spec: &SecretSpec) -> Result<(), PlatformError> {
    let secret = Secret {
        metadata: meta(&spec.name, &spec.cluster),
        data: Some(BTreeMap::from([
            (
                "username".to_string(),
                ByteString(spec.username.clone().into_bytes()),
            ),
            ("password".to_string(), ByteString(random(24)?.into_bytes())),
        ])),
        ..Default::default()
    };
    create_absent(&platform.api(), secret).await
}

fn field(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
}

pub async fn read_user(platform: &KubePlatform, name: &str) -> Result<Option<Credentials>, PlatformError> {
    let api: Api<Secret> = platform.api();
    let Some(secret) = api
        .get_opt(name)
        .await
        .map_err(|e| api_error(&format!("Secret {name}"), e))?
    else {
        return Ok(None);
    };
    match (field(&secret, "username"), field(&secret, "password")) {
        (Some(username), Some(password)) => Ok(Some(Credentials { username, password })),
        _ => Err(PlatformError::Invalid(format!(
            "Secret {name} lacks a UTF-8 username or password key"
        ))),
    }
}

/// The token the cluster's managers require, made with the cluster and
/// owned by it.
pub async fn ensure_token(
    platform: &KubePlatform,
    cluster: &str,
    owner_uid: Option<&str>,
) -> Result<(), PlatformError> {
    let mut metadata = meta(&token_secret(cluster), cluster);
    metadata.owner_references = owner_uid.map(|uid| {
        vec![OwnerReference {
            api_version: format!("{}/{}", pgo_api::GROUP, pgo_api::VERSION),
            kind: "Pgcluster".into(),
            name: cluster.to_string(),
            uid: uid.to_string(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]
    });
    let secret = Secret {
        metadata,
        data: Some(BTreeMap::from([(
            "token".to_string(),
            ByteString(random(40)?.into_bytes()),
        )])),
        ..Default::default()
    };
    create_absent(&platform.api(), secret).await
}

pub async fn read_token(platform: &KubePlatform, cluster: &str) -> Result<String, PlatformError> {
    let name = token_secret(cluster);
    let api: Api<Secret> = platform.api();
    let secret = api
        .get_opt(&name)
        .await
        .map_err(|e| api_error(&format!("Secret {name}"), e))?
        .ok_or_else(|| {
            PlatformError::Invalid(format!(
                "Secret {name} (the instance managers' token) does not exist"
            ))
        })?;
    field(&secret, "token")
        .map(|t| t.trim().to_string())
        .ok_or_else(|| PlatformError::Invalid(format!("Secret {name} has no token key")))
}
