//! Secrets: one per database user (made once with a random password, never
//! changed by pgo afterwards; one made by hand beforehand is used as it is,
//! as the spec allows), and each instance manager's token and certificate.

use super::apply::{api_error, not_ours, ours};
use super::{KubePlatform, post_params};
use crate::render::{self, cluster_owner, manager_secret};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use pgo_api::labels;
use pgo_core::desired::{InstanceSpec, SecretSpec};
use pgo_platform::{Credentials, PlatformError, pki};
use std::collections::BTreeMap;

fn random(len: usize) -> Result<String, PlatformError> {
    pgo_platform::password(len).map_err(|_| PlatformError::Invalid("the system random source failed".into()))
}

/// Creates the secret unless one of that name exists.
async fn create_absent(p: &KubePlatform, secret: Secret) -> Result<(), PlatformError> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let what = format!("Secret {name}");
    if p.get_opt::<Secret>(&name).await?.is_some() {
        return Ok(());
    }
    match p.api::<Secret>().create(&post_params(), &secret).await {
        Ok(made) => {
            p.wrote(made);
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
    if platform.get_opt::<Secret>(&spec.name).await?.is_some() {
        return Ok(());
    }
    // A database restored or copied from another cluster keeps that
    // cluster's passwords.
    let password = match &spec.copy_from {
        Some(source) => {
            read_user(platform, source)
                .await?
                .ok_or_else(|| {
                    PlatformError::Failed(format!(
                        "Secret {source} is gone, so the password of {} in the restored data is unknown",
                        spec.username
                    ))
                })?
                .password
        }
        None => random(24)?,
    };
    let secret = Secret {
        metadata: meta(&spec.name, &spec.cluster),
        data: Some(BTreeMap::from([
            (
                "username".to_string(),
                ByteString(spec.username.clone().into_bytes()),
            ),
            ("password".to_string(), ByteString(password.into_bytes())),
        ])),
        ..Default::default()
    };
    create_absent(platform, secret).await
}

pub(super) fn field(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
}

pub async fn read_user(platform: &KubePlatform, name: &str) -> Result<Option<Credentials>, PlatformError> {
    let Some(secret) = platform.get_opt::<Secret>(name).await? else {
        return Ok(None);
    };
    match (field(&secret, "username"), field(&secret, "password")) {
        (Some(username), Some(password)) => Ok(Some(Credentials { username, password })),
        _ => Err(PlatformError::Invalid(format!(
            "Secret {name} lacks a UTF-8 username or password key"
        ))),
    }
}

/// How long an instance manager's certificate is valid, and how close to
/// its end it is made anew (from the same CA, keeping the token).
const MANAGER_CERT_DAYS: i64 = 365;
const MANAGER_CERT_RENEW_DAYS: i64 = 30;
/// Annotation on a manager's Secret: the last day of its certificate.
const CERT_EXPIRES: &str = "pgo.dev/cert-expires";
/// Annotation on a manager's Secret: the names its certificate holds.
const CERT_NAMES: &str = "pgo.dev/cert-names";

/// True when `secret` holds a token and a certificate from the current CA,
/// for `names`, that is not yet due, and a client certificate when `want`
/// asks for one.
fn certified_current(secret: &Secret, ca: &pki::Ca, names: &str, want: &Certified<'_>) -> bool {
    let annotation = |key: &str| {
        secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .cloned()
    };
    let expires = annotation(CERT_EXPIRES).and_then(|d| d.parse::<jiff::civil::Date>().ok());
    field(secret, "token").is_some_and(|t| !t.trim().is_empty())
        && field(secret, "tls.key").is_some()
        && field(secret, "ca.crt").as_deref() == Some(ca.pem.cert.as_str())
        && annotation(CERT_NAMES).as_deref() == Some(names)
        && !pki::due(expires, MANAGER_CERT_RENEW_DAYS)
        && (want.client.is_none() || field(secret, "client.key").is_some())
}

/// The Secret of an instance's manager: a token of its own and a server
/// certificate for its name, owned by the cluster. A certificate that is
/// due, or from another CA, is made anew; the token stays.
pub async fn ensure_manager(platform: &KubePlatform, spec: &InstanceSpec) -> Result<(), PlatformError> {
    ensure_certified(
        platform,
        Certified {
            name: manager_secret(&spec.name),
            cluster: &spec.cluster,
            owner_uid: spec.owner_uid.as_deref(),
            hosts: render::certificate_names(&spec.name, &spec.cluster, &platform.opts.namespace),
            common_name: spec.name.clone(),
            client: None,
        },
    )
    .await
}

/// A Secret of a token, a server certificate and, with `client`, a client
/// certificate of that CN, all from the operator's CA.
pub struct Certified<'a> {
    pub name: String,
    pub cluster: &'a str,
    pub owner_uid: Option<&'a str>,
    pub hosts: Vec<String>,
    pub common_name: String,
    pub client: Option<String>,
}

/// Makes the Secret `want` describes, or makes it anew when its
/// certificates are due, from another CA, or for other names; the token
/// stays.
pub async fn ensure_certified(platform: &KubePlatform, want: Certified<'_>) -> Result<(), PlatformError> {
    let name = want.name.clone();
    let what = format!("Secret {name}");
    let api: Api<Secret> = platform.api();
    let ca = platform.ca.get().await?;
    let mut names = want.hosts.join(",");
    if let Some(client) = &want.client {
        names.push_str(&format!(";client={client}"));
    }
    let existing = platform.get_opt::<Secret>(&name).await?;
    if let Some(s) = &existing {
        if !ours(&s.metadata) {
            return Err(not_ours("Secret", &name));
        }
        if certified_current(s, ca, &names, &want) {
            return Ok(());
        }
    }
    let invalid = |e: pki::PkiError| PlatformError::Invalid(format!("{what}: {e}"));
    let (pem, expires) = ca
        .issue(&want.hosts, &want.common_name, MANAGER_CERT_DAYS)
        .map_err(invalid)?;
    let token = match existing.as_ref().and_then(|s| field(s, "token")) {
        Some(t) if !t.trim().is_empty() => t,
        _ => random(40)?,
    };
    let mut metadata = meta(&name, want.cluster);
    metadata.owner_references = want.owner_uid.map(|uid| vec![cluster_owner(want.cluster, uid)]);
    metadata.annotations = Some(BTreeMap::from([
        (CERT_EXPIRES.to_string(), expires.to_string()),
        (CERT_NAMES.to_string(), names),
    ]));
    let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
    let mut data = BTreeMap::from([
        ("token".to_string(), bytes(&token)),
        ("tls.crt".to_string(), bytes(&pem.cert)),
        ("tls.key".to_string(), bytes(&pem.key)),
        ("ca.crt".to_string(), bytes(&ca.pem.cert)),
    ]);
    if let Some(client) = &want.client {
        let (pem, _) = ca.issue_client(client, MANAGER_CERT_DAYS).map_err(invalid)?;
        data.insert("client.crt".to_string(), bytes(&pem.cert));
        data.insert("client.key".to_string(), bytes(&pem.key));
    }
    let mut secret = Secret {
        metadata,
        data: Some(data),
        ..Default::default()
    };
    match existing {
        None => match api.create(&post_params(), &secret).await {
            Ok(made) => platform.wrote(made),
            // Made in between: the next pass checks that one.
            Err(kube::Error::Api(s)) if s.code == 409 => return Ok(()),
            Err(e) => return Err(api_error(&format!("creating {what}"), e)),
        },
        Some(old) => {
            // Replaced only if unchanged since read: a concurrent renewal wins.
            secret.metadata.resource_version = old.metadata.resource_version;
            match api.replace(&name, &post_params(), &secret).await {
                Ok(renewed) => {
                    platform.wrote(renewed);
                    tracing::info!(secret = %name, %expires, "renewed the certificates")
                }
                Err(kube::Error::Api(s)) if s.code == 409 => return Ok(()),
                Err(e) => return Err(api_error(&format!("replacing {what}"), e)),
            }
        }
    }
    Ok(())
}

/// The token instance `name`'s manager requires.
pub async fn read_token(platform: &KubePlatform, instance: &str) -> Result<String, PlatformError> {
    let name = manager_secret(instance);
    let secret = platform.get_opt::<Secret>(&name).await?.ok_or_else(|| {
        PlatformError::Invalid(format!(
            "Secret {name} (the token of instance {instance}'s manager) does not exist"
        ))
    })?;
    field(&secret, "token")
        .map(|t| t.trim().to_string())
        .ok_or_else(|| PlatformError::Invalid(format!("Secret {name} has no token key")))
}
