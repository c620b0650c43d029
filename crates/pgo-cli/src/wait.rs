//! Waiting for the server to finish what a verb asked for: one loop for
//! every verb that waits, with progress on a terminal.

use crate::CliError;
use crate::progress::Progress;
use std::time::{Duration, Instant};

/// What one look at the server found.
pub enum Look<T> {
    Done(T),
    Failed(String),
    /// Not yet; what to show meanwhile.
    Waiting(String),
}

/// Looks every `poll` until `look` finds the work done or failed, or
/// `deadline` passes (then the error is `timed_out`).
pub async fn until<T>(
    deadline: Instant,
    poll: Duration,
    mut look: impl AsyncFnMut() -> Result<Look<T>, CliError>,
    timed_out: impl FnOnce() -> String,
) -> Result<T, CliError> {
    let mut progress = Progress::new();
    loop {
        match look().await {
            Ok(Look::Waiting(what)) => progress.update(&what),
            Ok(Look::Done(t)) => {
                progress.finish();
                return Ok(t);
            }
            Ok(Look::Failed(why)) => {
                progress.finish();
                return Err(CliError::Api(why));
            }
            Err(e) => {
                progress.finish();
                return Err(e);
            }
        }
        if Instant::now() >= deadline {
            progress.finish();
            return Err(CliError::Api(timed_out()));
        }
        tokio::time::sleep(poll).await;
    }
}
