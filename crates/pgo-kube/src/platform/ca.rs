//! The CA of the instance managers' control channel, kept in a Secret in
//! the operator's namespace so that every operator replica, and every
//! restart, signs with and trusts the same one.

use super::apply::{api_error, not_ours, ours};
use super::post_params;
use super::secrets::field;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use pgo_api::labels;
use pgo_platform::PlatformError;
use pgo_platform::pki::{Ca, Pem};
use std::collections::BTreeMap;

/// The Secret that holds the CA (`ca.crt`, `ca.key`). Deleting it makes a
/// new CA at the next start, and every manager's certificate is made anew.
pub const CA_SECRET: &str = "pgo-instance-ca";
const CA_NAME: &str = "pgo instance manager CA";
const CA_DAYS: i64 = 3650;

fn from_secret(secret: &Secret) -> Result<Ca, PlatformError> {
    let (Some(cert), Some(key)) = (field(secret, "ca.crt"), field(secret, "ca.key")) else {
        return Err(PlatformError::Invalid(format!(
            "Secret {CA_SECRET} lacks ca.crt or ca.key: delete it and pgo makes a new CA"
        )));
    };
    Ca::from_pem(CA_NAME, Pem { cert, key }).map_err(|e| {
        PlatformError::Invalid(format!(
            "Secret {CA_SECRET}: {e}; delete it and pgo makes a new CA"
        ))
    })
}

/// The CA, read (or made) at first use and kept: the operator starts, and
/// says what is wrong, even while the API server cannot be reached.
pub struct InstanceCa {
    client: kube::Client,
    namespace: String,
    ca: tokio::sync::OnceCell<Ca>,
}

impl InstanceCa {
    pub fn new(client: kube::Client, namespace: &str) -> std::sync::Arc<Self> {
        std::sync::Arc::new(InstanceCa {
            client,
            namespace: namespace.to_string(),
            ca: tokio::sync::OnceCell::new(),
        })
    }

    pub async fn get(&self) -> Result<&Ca, PlatformError> {
        self.ca
            .get_or_try_init(|| load_or_create(self.client.clone(), &self.namespace))
            .await
    }
}

/// The CA in `namespace`, made if there is none.
async fn load_or_create(client: kube::Client, namespace: &str) -> Result<Ca, PlatformError> {
    let api: Api<Secret> = Api::namespaced(client, namespace);
    let what = format!("Secret {CA_SECRET}");
    if let Some(secret) = api.get_opt(CA_SECRET).await.map_err(|e| api_error(&what, e))? {
        if !ours(&secret.metadata) {
            return Err(not_ours("Secret", CA_SECRET));
        }
        return from_secret(&secret);
    }
    let ca = Ca::generate(CA_NAME, CA_DAYS)
        .map_err(|e| PlatformError::Invalid(format!("the instance managers' CA: {e}")))?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(CA_SECRET.into()),
            labels: Some(BTreeMap::from([(
                labels::MANAGED_BY.to_string(),
                labels::MANAGER.to_string(),
            )])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            ("ca.crt".to_string(), ByteString(ca.pem.cert.clone().into_bytes())),
            ("ca.key".to_string(), ByteString(ca.pem.key.clone().into_bytes())),
        ])),
        ..Default::default()
    };
    match api.create(&post_params(), &secret).await {
        Ok(_) => {
            tracing::info!(secret = CA_SECRET, "made the instance managers' CA");
            Ok(ca)
        }
        // Another operator made it first: theirs is the one.
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let secret = api.get(CA_SECRET).await.map_err(|e| api_error(&what, e))?;
            from_secret(&secret)
        }
        Err(e) => Err(api_error(&format!("creating {what}"), e)),
    }
}
