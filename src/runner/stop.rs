//! The agent's forced stop, as a run in progress sees it.
//!
//! At shutdown, runs in flight get until the stop deadline to finish. When it
//! passes, the supervisor cancels the token given to [`scope`]; a step that is
//! frozen by then (or becomes frozen in the short grace that follows) ends at
//! once as `frozen` and censored, and its run skips the logout and is recorded
//! as usual. Without this the task was simply aborted and a frozen run, the
//! very thing the journal is for, never reached it.
//!
//! The token travels as a task-local so that runs, which the supervisor's
//! journey and keeper tasks start, need no extra argument; outside a scope
//! (as in `casewatch once`) nothing is ever forced.

use std::future::Future;

use tokio_util::sync::CancellationToken;

tokio::task_local! {
    static FORCED: CancellationToken;
}

/// Runs `task` with `forced` as its forced-stop signal.
pub fn scope<F: Future>(forced: CancellationToken, task: F) -> impl Future<Output = F::Output> {
    FORCED.scope(forced, task)
}

/// Resolves when the stop deadline has passed; never outside a [`scope`].
pub(crate) async fn forced() {
    match FORCED.try_with(CancellationToken::clone) {
        Ok(token) => token.cancelled_owned().await,
        Err(_) => std::future::pending().await,
    }
}

/// Whether the stop deadline has passed.
pub(crate) fn is_forced() -> bool {
    FORCED
        .try_with(CancellationToken::is_cancelled)
        .unwrap_or(false)
}
