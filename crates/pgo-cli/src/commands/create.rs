use super::{cluster_table, replicas_ready, segment};
use crate::CliError;
use crate::args::CreateCluster;
use crate::client::Client;
use crate::output::{say, sayln};
use crate::wait::{self, Look};
use pgo_api::cluster::ClusterPhase;
use pgo_api::rest::{ClusterView, CreateClusterRequest};
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub async fn cluster(client: &Client, args: &CreateCluster) -> Result<ExitCode, CliError> {
    let req = CreateClusterRequest {
        name: args.name.clone(),
        replica_count: args.replica_count,
        node_name: args.node_name.clone(),
        custom_config: args.custom_config.clone(),
        storage_size: args.storage_size.clone(),
        storage_config: args.storage_config.clone(),
        replica_storage_config: args.replica_storage_config.clone(),
        pvc_name: args.pvc_name.clone(),
        metrics: args.metrics,
        autofail: args.autofail.then_some(true),
        sync_replication: args.sync_replication,
        resources_config: args.resources_config.clone(),
        pgbackrest: args.pgbackrest,
        restore_from: args.restore_from.clone(),
        pitr_target: args.pitr_target.clone(),
        pitr_type: args.pitr_type.clone(),
        backup_opts: args.backup_opts.clone(),
        backup_pvc: args.backup_pvc.clone(),
        backup_path: args.backup_path.clone(),
        secret_from: args.secret_from.clone(),
    };
    let started = Instant::now();
    let created: ClusterView = client.post("/clusters", &req).await?;
    if args.no_wait {
        sayln!("created cluster {}", created.name);
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = started + Duration::from_secs(args.timeout);
    let path = format!("/clusters/{}", segment(&args.name));
    let view = wait::until(
        deadline,
        Duration::from_millis(50),
        async || {
            let view: ClusterView = client.get(&path).await?;
            let ready = replicas_ready(&view);
            Ok(match view.phase {
                ClusterPhase::Ready if ready >= view.replicas as usize => Look::Done(view),
                ClusterPhase::Failed => Look::Failed(format!(
                    "cluster {} failed: {}",
                    view.name,
                    view.message.unwrap_or_else(|| "no reason given".into())
                )),
                ClusterPhase::Ready => Look::Waiting(format!(
                    "cluster {}: primary ready, {ready} of {} replicas ready",
                    view.name, view.replicas
                )),
                phase => Look::Waiting(format!(
                    "cluster {} is {phase} {}",
                    view.name,
                    view.message.unwrap_or_default()
                )),
            })
        },
        || {
            format!(
                "cluster {} was created but was not ready within {}s; see 'pgo show cluster {}'",
                args.name, args.timeout, args.name
            )
        },
    )
    .await?;
    let what = match view.replicas {
        0 => "primary".to_string(),
        n => format!("primary and {n} replica{}", if n == 1 { "" } else { "s" }),
    };
    sayln!(
        "created cluster {}: {what} ready in {:.1}s",
        view.name,
        started.elapsed().as_secs_f64()
    );
    say!("{}", cluster_table::render(&view));
    sayln!("  passwords: pgo show cluster {} --show-secrets", view.name);
    Ok(ExitCode::SUCCESS)
}
