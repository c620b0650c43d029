//! A cluster's custom configuration, taken from its ConfigMap at create
//! and at `pgo reload`: checked whole before anything changes.

use crate::{ApiError, AppState};
use pgo_api::custom_config::{self, CustomFiles, DEFAULT_NAME, PGBACKREST_CONF};

/// The files of the ConfigMap a cluster takes: `named`, or the default
/// one when it exists; `None` when it takes none.
pub async fn take(
    state: &AppState,
    named: Option<&str>,
    backrest: bool,
    what: &str,
) -> Result<Option<CustomFiles>, ApiError> {
    let name = named.unwrap_or(DEFAULT_NAME);
    let Some(data) = state.platform.config_map(name).await? else {
        return match named {
            Some(n) => Err(ApiError::NotFound(format!(
                "{what}: configmap {n:?} not found; make it with 'pgo create configmap {n} --from-file=…'"
            ))),
            None => Ok(None),
        };
    };
    if backrest && !data.contains_key(PGBACKREST_CONF) {
        return Err(ApiError::BadRequest(format!(
            "{what}: configmap {name} has no {PGBACKREST_CONF} key, which a custom configuration of a cluster with pgBackRest must hold; add one (pgo create configmap {name} --from-file=… --overwrite) or create the cluster with --pgbackrest=false"
        )));
    }
    let files = CustomFiles::from_data(name, &data);
    check(state, &files)
        .await
        .map_err(|e| ApiError::BadRequest(format!("{what}: configmap {name}: {e}")))?;
    Ok(Some(files))
}

/// The files as PostgreSQL would take them: postgresql.conf read by this
/// PostgreSQL, each pg_hba.conf rule's type and method known.
async fn check(state: &AppState, files: &CustomFiles) -> Result<(), String> {
    if let Some(conf) = &files.postgresql_conf {
        pgo_platform::conf_check::check(conf, state.platform.pg_bin_dir().as_deref()).await?;
    }
    if let Some(hba) = &files.pg_hba_conf {
        custom_config::check_pg_hba_conf(hba)?;
    }
    Ok(())
}
