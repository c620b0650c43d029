//! The pgBackRest stanza, made by a primary once per manager life, in the
//! background: a repository on hung storage must not stall the probes.

use crate::backrest;
use crate::osuser::RunAs;
use pgo_api::instance::InstanceConfig;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long after a failure the stanza is tried again: a repository on
/// this machine that fails is not fixed in moments; a repository host
/// across the network may just be starting.
const RETRY: Duration = Duration::from_secs(15);
const REMOTE_RETRY: Duration = Duration::from_secs(2);
/// How long after finding pgBackRest's lock taken: a promoted replica's
/// archiving holds it while it pushes the new timeline's first files,
/// which takes moments, and is no failure to report.
const BUSY_RETRY: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, Default)]
enum State {
    #[default]
    NotTried,
    Making,
    Made,
    Failed {
        error: String,
        at: Instant,
    },
    /// Another pgBackRest process held the stanza's lock.
    Busy {
        at: Instant,
    },
}

#[derive(Clone, Default)]
pub struct Stanza(Arc<Mutex<State>>);

impl Stanza {
    fn state(&self) -> State {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn set(&self, state: State) {
        if let Ok(mut s) = self.0.lock() {
            *s = state;
        }
    }

    /// Starts making the stanza unless it is made, being made, or failed
    /// moments ago. Only a primary makes it: pgBackRest needs one.
    pub fn ensure(&self, config: &InstanceConfig, run_as: &RunAs) {
        let Some(b) = config.backrest.clone() else {
            return;
        };
        let retry = if b.remote.is_some() { REMOTE_RETRY } else { RETRY };
        match self.state() {
            State::Made | State::Making => return,
            State::Failed { at, .. } if at.elapsed() < retry => return,
            State::Busy { at } if at.elapsed() < BUSY_RETRY => return,
            State::NotTried | State::Failed { .. } | State::Busy { .. } => {}
        }
        self.set(State::Making);
        let (me, config, run_as) = (self.clone(), config.clone(), run_as.clone());
        tokio::spawn(async move {
            match backrest::stanza_create(&config, &b, &run_as).await {
                Ok(()) => {
                    tracing::info!(stanza = %b.stanza, repository = %b.repo_path.display(), "pgBackRest stanza ready");
                    me.set(State::Made);
                }
                Err(error) if error.contains("unable to acquire lock") => {
                    tracing::debug!(stanza = %b.stanza, "pgBackRest's lock is taken; the stanza is tried again in a moment");
                    me.set(State::Busy { at: Instant::now() });
                }
                Err(error) => {
                    tracing::warn!(stanza = %b.stanza, "the pgBackRest stanza cannot be made: {error}");
                    me.set(State::Failed {
                        error,
                        at: Instant::now(),
                    });
                }
            }
        });
    }

    pub fn made(&self) -> bool {
        matches!(self.state(), State::Made)
    }

    /// Why the repository cannot take WAL yet, if it cannot.
    pub fn error(&self) -> Option<String> {
        match self.state() {
            State::Failed { error, .. } => Some(format!("the pgBackRest stanza cannot be made: {error}")),
            State::NotTried | State::Making | State::Made | State::Busy { .. } => None,
        }
    }
}
