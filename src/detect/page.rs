//! Where a browser step's time went, and which side of the wire a frozen
//! step was waiting on.
//!
//! A browser step can wait on two things, and the agent watches both: the
//! **network** (a request the page sent and that has no answer yet) and the
//! page's **main thread** (a long task the page reports, or one of the
//! agent's own probes of the page left unanswered: a page whose script is
//! stuck cannot answer either). Each gives stretches of time; overlapping
//! stretches are merged and the longest one counts:
//!
//! - **server**: the network waited on the server for at least
//!   `freeze_after`;
//! - **client**: the main thread was blocked for at least `freeze_after`
//!   while the server kept answering;
//! - when both did, the longer of the two; when neither alone did but the
//!   step still passed `freeze_after`, **mixed**.
//!
//! A probe cannot be answered while the main frame waits for a new
//! document's first byte (there is no document yet to answer it), so that
//! part of a probe's silence is cut out ([`without`]): it is the server's
//! wait, already counted as such.
//!
//! Only network waits ever reach the freeze-episode detector
//! ([`super::freeze`]): a page stuck in its own script is not the server
//! failing to answer, and it must not open a server freeze episode.
//!
//! The same signals say whether a page is **busy** now. A step waiting for
//! an element that is missing while nothing is in flight and the main
//! thread answers is waiting for something that is simply not there: that
//! is an assertion failure, decided at `freeze_after`, not a freeze.
//!
//! Pure: instants in, durations and verdicts out.

use std::time::Duration;

use tokio::time::Instant;

use crate::outcome::FreezeSide;

/// How long a probe of the page may go unanswered before the main thread
/// counts as blocked now (a probe answered normally takes a millisecond).
pub const PROBE_SLACK: Duration = Duration::from_millis(250);

/// The longest stretch covered by `stretches` (each `(from, to)`) inside
/// `window`, overlapping stretches merged.
pub fn longest(stretches: &[(Instant, Instant)], window: (Instant, Instant)) -> Duration {
    let mut clipped: Vec<(Instant, Instant)> = stretches
        .iter()
        .map(|&(from, to)| (from.max(window.0), to.min(window.1)))
        .filter(|(from, to)| to > from)
        .collect();
    clipped.sort();
    let mut best = Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    for (from, to) in clipped {
        current = match current {
            Some((start, end)) if from <= end => Some((start, end.max(to))),
            Some((start, end)) => {
                best = best.max(end - start);
                Some((from, to))
            }
            None => Some((from, to)),
        };
    }
    if let Some((start, end)) = current {
        best = best.max(end - start);
    }
    best
}

/// `stretches` with every part covered by one of `holes` cut out (a
/// stretch split in two where a hole falls inside it).
pub fn without(
    stretches: &[(Instant, Instant)],
    holes: &[(Instant, Instant)],
) -> Vec<(Instant, Instant)> {
    let mut pieces: Vec<(Instant, Instant)> = stretches.to_vec();
    for &(hole_from, hole_to) in holes {
        pieces = pieces
            .into_iter()
            .flat_map(|(from, to)| {
                let before = (from, to.min(hole_from));
                let after = (from.max(hole_to), to);
                [before, after]
            })
            .filter(|(from, to)| to > from)
            .collect();
    }
    pieces
}

/// The part of each stretch inside `window`, summed (long tasks never
/// overlap one another, so nothing is counted twice).
pub fn total(stretches: &[(Instant, Instant)], window: (Instant, Instant)) -> Duration {
    stretches
        .iter()
        .map(|&(from, to)| {
            to.min(window.1)
                .saturating_duration_since(from.max(window.0))
        })
        .sum()
}

/// Which side a frozen step waited on, from the longest network wait and
/// the longest main-thread block during it.
pub fn freeze_side(server_wait: Duration, blocked: Duration, freeze_after: Duration) -> FreezeSide {
    match (server_wait >= freeze_after, blocked >= freeze_after) {
        (true, true) if blocked > server_wait => FreezeSide::Client,
        (true, _) => FreezeSide::Server,
        (false, true) => FreezeSide::Client,
        (false, false) => FreezeSide::Mixed,
    }
}

/// Whether the page is busy at `now`: a request waits on a server, or the
/// agent's probe of the main thread has gone unanswered for longer than
/// [`PROBE_SLACK`].
pub fn busy(server_waiting: bool, probe_unanswered_since: Option<Instant>, now: Instant) -> bool {
    server_waiting
        || probe_unanswered_since
            .is_some_and(|sent| now.saturating_duration_since(sent) > PROBE_SLACK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[tokio::test(start_paused = true)]
    async fn overlapping_stretches_merge_and_the_window_clips_them() {
        let t0 = Instant::now();
        let at = |s: f64| t0 + secs(s);
        let stretches = [
            (at(0.5), at(1.5)),
            (at(1.0), at(2.0)),
            (at(3.0), at(3.2)),
            (at(4.0), at(9.0)),
        ];
        // 0.5..2.0 merged is 1.5 s; 4..9 clipped to the window is 2 s.
        assert_eq!(longest(&stretches, (at(0.0), at(6.0))), secs(2.0));
        assert_eq!(longest(&stretches, (at(0.0), at(3.5))), secs(1.5));
        assert_eq!(longest(&[], (at(0.0), at(1.0))), Duration::ZERO);
        assert_eq!(
            total(
                &[(at(0.0), at(1.0)), (at(2.0), at(5.0))],
                (at(0.5), at(3.0))
            ),
            secs(1.5)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_for_a_new_document_is_cut_out_of_the_page_being_blocked() {
        let t0 = Instant::now();
        let at = |s: f64| t0 + secs(s);
        // Probes unanswered 0..4 s; the document was awaited 0.5..3 s.
        let left = without(&[(at(0.0), at(4.0))], &[(at(0.5), at(3.0))]);
        assert_eq!(left, vec![(at(0.0), at(0.5)), (at(3.0), at(4.0))]);
        assert_eq!(longest(&left, (at(0.0), at(4.0))), secs(1.0));
        // A hole covering the whole stretch leaves nothing; one beside it
        // leaves it whole.
        assert!(without(&[(at(1.0), at(2.0))], &[(at(0.0), at(5.0))]).is_empty());
        assert_eq!(
            without(&[(at(1.0), at(2.0))], &[(at(3.0), at(5.0))]),
            vec![(at(1.0), at(2.0))]
        );
    }

    #[test]
    fn a_page_blocked_past_freeze_after_is_a_client_freeze() {
        let fa = secs(2.0);
        assert_eq!(freeze_side(secs(0.02), secs(3.0), fa), FreezeSide::Client);
        assert_eq!(freeze_side(secs(4.0), secs(0.0), fa), FreezeSide::Server);
        // Both past it: the longer one is the story.
        assert_eq!(freeze_side(secs(5.0), secs(3.0), fa), FreezeSide::Server);
        assert_eq!(freeze_side(secs(3.0), secs(5.0), fa), FreezeSide::Client);
        // 1.5 s on the server then 1.5 s in the page: neither alone.
        assert_eq!(freeze_side(secs(1.5), secs(1.5), fa), FreezeSide::Mixed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_unanswered_past_the_slack_means_busy() {
        let sent = Instant::now();
        assert!(!busy(false, None, Instant::now()));
        assert!(busy(true, None, Instant::now()));
        advance(secs(0.1)).await;
        assert!(!busy(false, Some(sent), Instant::now()));
        advance(secs(0.2)).await;
        assert!(busy(false, Some(sent), Instant::now()));
    }
}
