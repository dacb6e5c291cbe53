//! What a kept session's keep-alive check says about the session, and what
//! the keeper does next (no zombie sessions).
//!
//! - A sign of logout: the session ended, as a forced logout.
//! - A failure that says nothing about the session (a 5xx while the system
//!   restarts, a connect error, a request given up on): the session keeps its
//!   slot, its state is unknown, and the next check decides.
//! - Any other failure (an assertion failing with no sign of logout): the
//!   session is checked once more at once; a second such failure ends its
//!   life as `lost`, censored at the last moment it was known alive.
//!
//! A session whose state is unknown is not counted as active and adds no
//! exposure: only time a session is known to be alive counts.
//!
//! Pure: a step's outcome in, a decision out.

use crate::outcome::{KeptState, LogoutCause, Outcome, SessionEnd, StepRecord};

/// What one check showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sign {
    /// The session answered as logged in.
    Alive,
    /// The server showed that it had ended the session.
    LoggedOut(LogoutCause),
    /// The check failed in a way that says nothing about the session.
    SaysNothing,
    /// The check failed with no sign of logout.
    Failed,
}

impl Sign {
    pub fn of(step: &StepRecord) -> Sign {
        if step.agent_fault.is_some() {
            // The check never reached the server.
            return Sign::SaysNothing;
        }
        match step.outcome {
            Outcome::Ok | Outcome::Slow => Sign::Alive,
            // Complete but late: the server answered as logged in.
            Outcome::Frozen if !step.censored => Sign::Alive,
            Outcome::Frozen | Outcome::ConnectError => Sign::SaysNothing,
            Outcome::LoggedOut => {
                Sign::LoggedOut(step.logout_cause.unwrap_or(LogoutCause::LoginPage))
            }
            Outcome::HttpError if step.status.is_some_and(|s| s >= 500) => Sign::SaysNothing,
            Outcome::HttpError | Outcome::AssertionFailed | Outcome::Error => Sign::Failed,
        }
    }
}

/// What the keeper does after a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Wait for the next check as usual.
    Wait,
    /// Check again at once.
    CheckNow,
    /// The session's life is over.
    End(SessionEnd),
}

/// The judge of one kept session's life.
#[derive(Debug, Default)]
pub struct KeptJudge {
    /// The last telling check failed with no sign of logout.
    suspect: bool,
    state: Option<KeptState>,
}

impl KeptJudge {
    pub fn check(&mut self, sign: Sign) -> Next {
        let (state, next) = match sign {
            Sign::Alive => {
                self.suspect = false;
                (KeptState::Alive, Next::Wait)
            }
            Sign::LoggedOut(cause) => (KeptState::Ended, Next::End(SessionEnd::Forced(cause))),
            // Suspicion survives a check that says nothing: a later failure
            // with no sign still ends the life.
            Sign::SaysNothing => (KeptState::Unknown, Next::Wait),
            Sign::Failed if self.suspect => (KeptState::Ended, Next::End(SessionEnd::Lost)),
            Sign::Failed => {
                self.suspect = true;
                (KeptState::Suspect, Next::CheckNow)
            }
        };
        self.state = Some(state);
        next
    }

    /// What is known of the session after the last check.
    pub fn state(&self) -> KeptState {
        self.state.unwrap_or(KeptState::Alive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(signs: &[Sign]) -> Vec<(Next, KeptState)> {
        let mut judge = KeptJudge::default();
        signs
            .iter()
            .map(|s| {
                let next = judge.check(*s);
                (next, judge.state())
            })
            .collect()
    }

    #[test]
    fn a_sign_of_logout_ends_the_life_as_forced() {
        let cause = LogoutCause::LoginPage;
        assert_eq!(
            run(&[Sign::Alive, Sign::LoggedOut(cause)]),
            [
                (Next::Wait, KeptState::Alive),
                (Next::End(SessionEnd::Forced(cause)), KeptState::Ended)
            ]
        );
    }

    #[test]
    fn a_restart_leaves_the_session_unknown_until_the_next_check_decides() {
        // 503 while the system restarts, then the login page.
        let cause = LogoutCause::LoginPage;
        assert_eq!(
            run(&[Sign::SaysNothing, Sign::SaysNothing, Sign::LoggedOut(cause)]),
            [
                (Next::Wait, KeptState::Unknown),
                (Next::Wait, KeptState::Unknown),
                (Next::End(SessionEnd::Forced(cause)), KeptState::Ended)
            ]
        );
        // Or the session survived it.
        assert_eq!(
            run(&[Sign::SaysNothing, Sign::Alive]).last(),
            Some(&(Next::Wait, KeptState::Alive))
        );
    }

    #[test]
    fn a_failure_with_no_sign_is_checked_again_and_then_lost() {
        assert_eq!(
            run(&[Sign::Failed, Sign::Failed]),
            [
                (Next::CheckNow, KeptState::Suspect),
                (Next::End(SessionEnd::Lost), KeptState::Ended)
            ]
        );
        // A passing re-check clears the suspicion.
        assert_eq!(
            run(&[Sign::Failed, Sign::Alive, Sign::Failed]),
            [
                (Next::CheckNow, KeptState::Suspect),
                (Next::Wait, KeptState::Alive),
                (Next::CheckNow, KeptState::Suspect)
            ]
        );
        // A re-check that says nothing keeps the suspicion for the next one.
        assert_eq!(
            run(&[Sign::Failed, Sign::SaysNothing, Sign::Failed]).last(),
            Some(&(Next::End(SessionEnd::Lost), KeptState::Ended))
        );
    }

    #[test]
    fn outcomes_map_to_signs() {
        let step = |outcome, status, censored| StepRecord {
            target: "ics".into(),
            journey: String::new(),
            step: "keepalive".into(),
            phase: crate::outcome::StepPhase::Journey,
            kind: crate::outcome::JourneyKind::Interactive,
            sent_at: std::time::SystemTime::now(),
            ttfb: None,
            duration: std::time::Duration::ZERO,
            outcome,
            censored,
            status,
            bytes: 0,
            logout_cause: None,
            session_age: None,
            detail: String::new(),
            phases: Default::default(),
            browser: None,
            agent_fault: None,
            freeze_after: std::time::Duration::from_secs(5),
            agent_stalled: false,
        };
        assert_eq!(
            Sign::of(&step(Outcome::Slow, Some(200), false)),
            Sign::Alive
        );
        assert_eq!(
            Sign::of(&step(Outcome::Frozen, Some(200), false)),
            Sign::Alive
        );
        assert_eq!(
            Sign::of(&step(Outcome::Frozen, None, true)),
            Sign::SaysNothing
        );
        assert_eq!(
            Sign::of(&step(Outcome::HttpError, Some(503), false)),
            Sign::SaysNothing
        );
        assert_eq!(
            Sign::of(&step(Outcome::HttpError, Some(404), false)),
            Sign::Failed
        );
        assert_eq!(
            Sign::of(&step(Outcome::AssertionFailed, Some(200), false)),
            Sign::Failed
        );
        assert_eq!(
            Sign::of(&step(Outcome::ConnectError, None, false)),
            Sign::SaysNothing
        );
    }
}
