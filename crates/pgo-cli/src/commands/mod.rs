//! One module per verb.

mod backup;
mod cluster_table;
mod configmap;
mod create;
mod delete;
mod failover;
mod health;
mod pvc;
mod restart;
mod restore;
mod scale;
mod schedule;
mod show;
mod status;
mod version;

use crate::CliError;
use crate::args::{Cli, Command, CreateWhat, DeleteWhat, ShowWhat};
use crate::client::Client;
use std::process::ExitCode;

pub async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match &cli.command {
        Command::Version => version::run(&cli).await,
        command => {
            let client = Client::new(&cli)?;
            match command {
                Command::Create {
                    what: CreateWhat::Cluster(args),
                } => create::cluster(&client, args).await,
                Command::Show {
                    what:
                        ShowWhat::Cluster {
                            names,
                            output,
                            show_secrets,
                        },
                } => show::cluster(&client, names, *output, *show_secrets).await,
                Command::Show {
                    what: ShowWhat::Backup { names, output },
                } => backup::show(&client, names, *output).await,
                Command::Backup(args) => backup::run(&client, args).await,
                Command::Create {
                    what:
                        CreateWhat::Schedule {
                            name,
                            schedule,
                            schedule_type,
                            pgbackrest_backup_type,
                            schedule_name,
                        },
                } => {
                    let req = pgo_api::rest::CreateScheduleRequest {
                        cluster_name: name.clone(),
                        schedule: schedule.clone(),
                        schedule_type: schedule_type.clone(),
                        pgbackrest_backup_type: pgbackrest_backup_type.clone(),
                        schedule_name: schedule_name.clone(),
                    };
                    schedule::create(&client, &req).await
                }
                Command::Show {
                    what: ShowWhat::Pvc { name, output },
                } => pvc::show(&client, name, *output).await,
                Command::Create {
                    what:
                        CreateWhat::Configmap {
                            name,
                            from_file,
                            overwrite,
                        },
                } => configmap::create(&client, name, from_file, *overwrite).await,
                Command::Show {
                    what: ShowWhat::Config { output },
                } => {
                    let config: pgo_api::config::PgoConfig = client.get("/config").await?;
                    // A table of a nested file reads worse than the file.
                    let format = match output {
                        crate::args::Format::Table => crate::args::Format::Yaml,
                        f => *f,
                    };
                    crate::output::structured(format, &config)?;
                    Ok(ExitCode::SUCCESS)
                }
                Command::Show {
                    what: ShowWhat::Configmap { name, output },
                } => configmap::show(&client, name.as_deref(), *output).await,
                Command::Delete {
                    what: DeleteWhat::Configmap { name, no_prompt },
                } => configmap::delete(&client, name, *no_prompt).await,
                Command::Restart {
                    name,
                    no_prompt,
                    no_wait,
                    timeout,
                } => restart::run(&client, name, *no_prompt, *no_wait, *timeout).await,
                Command::Reload {
                    names,
                    selector,
                    no_prompt,
                } => configmap::reload(&client, names, selector.as_deref(), *no_prompt).await,
                Command::Show {
                    what: ShowWhat::Schedule { name, output },
                } => schedule::show(&client, name, *output).await,
                Command::Delete {
                    what:
                        DeleteWhat::Schedule {
                            name,
                            schedule_name,
                            no_prompt,
                        },
                } => schedule::delete(&client, name, schedule_name.as_deref(), *no_prompt).await,
                Command::Delete {
                    what:
                        DeleteWhat::Backup {
                            name,
                            target,
                            no_prompt,
                            no_wait,
                            timeout,
                        },
                } => backup::expire(&client, name, target, *no_prompt, *no_wait, *timeout).await,
                Command::Restore {
                    name,
                    pitr_target,
                    pitr_type,
                    backup_opts,
                    to_pvc,
                    no_prompt,
                    no_wait,
                    timeout,
                } => {
                    let req = pgo_api::rest::RestoreRequest {
                        pitr_target: pitr_target.clone(),
                        pitr_type: pitr_type.clone(),
                        backup_opts: backup_opts.clone(),
                        to_pvc: to_pvc.clone(),
                    };
                    if to_pvc.is_some() {
                        restore::to_pvc(&client, name, &req, *no_wait, *timeout).await
                    } else {
                        restore::run(&client, name, &req, *no_prompt, *no_wait, *timeout).await
                    }
                }
                Command::Delete {
                    what:
                        DeleteWhat::Cluster {
                            names,
                            delete_data,
                            delete_backups,
                            no_prompt,
                            no_wait,
                            timeout,
                        },
                } => {
                    let what = delete::Removes {
                        data: *delete_data,
                        backups: *delete_backups,
                    };
                    delete::cluster(&client, names, what, *no_prompt, *no_wait, *timeout).await
                }
                Command::Status { output } => status::run(&client, *output).await,
                Command::Scale {
                    name,
                    replica_count,
                    storage_config,
                    resources_config,
                    no_wait,
                    timeout,
                } => {
                    scale::scale(
                        &client,
                        name,
                        *replica_count,
                        storage_config.as_deref(),
                        resources_config.as_deref(),
                        *no_wait,
                        *timeout,
                    )
                    .await
                }
                Command::Scaledown {
                    name,
                    query,
                    target,
                    delete_data,
                    no_prompt,
                    output,
                } => match (query, target) {
                    (true, _) | (false, None) => scale::query(&client, name, *output).await,
                    (false, Some(target)) => {
                        scale::scaledown(&client, name, target, *delete_data, *no_prompt).await
                    }
                },
                Command::Failover {
                    name,
                    query,
                    target,
                    no_prompt,
                    autofail_replace_replica,
                    output,
                } => match (query, target) {
                    (false, Some(target)) => {
                        failover::run(&client, name, target, *no_prompt, *autofail_replace_replica).await
                    }
                    _ => failover::replicas(&client, name, *output, "has no replicas to fail over to").await,
                },
                Command::Test { name, output } => health::test(&client, name, *output).await,
                Command::Df { name, output } => health::df(&client, name, *output).await,
                Command::Version => version::run(&cli).await,
            }
        }
    }
}

/// Path segment for a cluster name; the server refuses bad names, this only
/// keeps the URL well formed whatever was typed.
/// The replicas of a cluster that are ready.
fn replicas_ready(view: &pgo_api::rest::ClusterView) -> usize {
    view.members
        .iter()
        .filter(|m| m.role == pgo_api::cluster::MemberRole::Replica && m.ready)
        .count()
}

fn segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
