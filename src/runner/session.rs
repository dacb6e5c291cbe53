//! One synthetic user's session: its cookie jar, its variables and its age.
//!
//! Each session owns a private cookie jar (a real user's browser), so two
//! sessions on one target never share a login, while they share the target's
//! connection pool.

use std::collections::HashMap;
use std::time::Duration;

use std::time::SystemTime;

use cookie_store::CookieStore;
use reqwest::header::HeaderValue;
use tokio::time::Instant;
use url::Url;

use super::probes::{Probes, SessionGuard};
use crate::outcome::{LogoutCause, SessionEnd, SessionOrigin, SessionSpan};

pub struct Session {
    jar: CookieStore,
    /// Variables for `${var}` substitution: built-ins plus everything extracted.
    pub vars: HashMap<String, String>,
    /// When the login completed; ages count from here.
    logged_in_at: Option<(Instant, SystemTime)>,
    /// When the login's last request was sent: the server cannot have made
    /// the session before, so the latest age a loss can have happened at is
    /// counted from here.
    login_sent: Option<Instant>,
    /// When the last request the session passed was sent: it was alive then.
    alive_at: Option<Instant>,
    /// Whether the last check showed the session alive (false while its
    /// state is unknown).
    known_alive: bool,
    /// Set once the server has ended the session; no logout is attempted then.
    pub ended_by_server: Option<LogoutCause>,
    /// When the answer that showed the loss (or the last failure) arrived.
    seen_at: Option<Instant>,
    /// Reports the session as live until it is dropped.
    guard: Option<SessionGuard>,
}

impl Session {
    pub fn new(vars: HashMap<String, String>) -> Session {
        Session {
            jar: CookieStore::default(),
            vars,
            logged_in_at: None,
            login_sent: None,
            alive_at: None,
            known_alive: false,
            ended_by_server: None,
            seen_at: None,
            guard: None,
        }
    }

    /// The login completed; its last request was sent at `login_sent`.
    pub fn mark_logged_in(&mut self, probes: Option<&Probes>, target: &str, login_sent: Instant) {
        let now = Instant::now();
        self.logged_in_at = Some((now, SystemTime::now()));
        self.login_sent = Some(login_sent.min(now));
        self.alive_at = Some(now);
        self.known_alive = true;
        self.guard = probes.map(|p| p.session_opened(target));
    }

    pub fn is_logged_in(&self) -> bool {
        self.logged_in_at.is_some() && self.ended_by_server.is_none()
    }

    pub fn age(&self) -> Option<Duration> {
        self.logged_in_at.map(|(t, _)| t.elapsed())
    }

    /// A request sent at `sent` came back as the session's own: the session
    /// was alive when it was sent.
    pub fn confirm_alive(&mut self, sent: Instant) {
        if !self.is_logged_in() {
            return;
        }
        self.alive_at = Some(self.alive_at.map_or(sent, |a| a.max(sent)));
        self.set_known(true);
    }

    /// The last check said nothing about the session: its state is unknown
    /// until a later one decides.
    pub fn mark_unknown(&mut self) {
        self.set_known(false);
    }

    fn set_known(&mut self, alive: bool) {
        if self.known_alive != alive {
            self.known_alive = alive;
            if let Some(guard) = &self.guard {
                guard.known(alive);
            }
        }
    }

    /// The server showed, in an answer that arrived at `seen`, that it had
    /// ended the session.
    pub fn mark_ended(&mut self, cause: LogoutCause, seen: Instant) {
        self.ended_by_server = Some(cause);
        self.seen_at = Some(seen);
        self.set_known(false);
    }

    /// A failure that may have lost the session was seen at `seen`.
    pub fn mark_failed(&mut self, seen: Instant) {
        self.seen_at = Some(seen);
    }

    /// The age up to which the session is known to have been alive.
    pub fn alive_age(&self) -> Duration {
        match (self.logged_in_at, self.alive_at) {
            (Some((login, _)), Some(alive)) => alive.saturating_duration_since(login),
            _ => Duration::ZERO,
        }
    }

    /// When (wall clock) the answer that showed the loss arrived: the
    /// login's wall time plus the time since the login completed. Not
    /// `login_at + seen_age`, which counts from the login's send.
    fn seen_wall(&self) -> Option<SystemTime> {
        let (login, wall) = self.logged_in_at?;
        let seen = self.seen_at.unwrap_or_else(Instant::now);
        Some(wall + seen.saturating_duration_since(login))
    }

    /// The latest age at which a loss seen at `seen_at` can have happened.
    fn seen_age(&self) -> Duration {
        let seen = self.seen_at.unwrap_or_else(Instant::now);
        match self.login_sent.or(self.logged_in_at.map(|(t, _)| t)) {
            Some(from) => seen.saturating_duration_since(from),
            None => Duration::ZERO,
        }
    }

    /// The session's whole life as a span ending with `end`, if it ever
    /// logged in. Closes its live report. A life that was forced or lost,
    /// or whose state is unknown, ends at the last moment it was known
    /// alive; one the agent ended while known alive, now.
    pub fn finish(
        &mut self,
        origin: SessionOrigin,
        target: &str,
        end: SessionEnd,
    ) -> Option<SessionSpan> {
        self.guard = None;
        let (since, login_at) = self.logged_in_at?;
        let lost = matches!(end, SessionEnd::Forced(_) | SessionEnd::Lost);
        let age_to = if lost || !self.known_alive {
            self.alive_age()
        } else {
            since.elapsed()
        };
        Some(SessionSpan {
            target: target.to_string(),
            origin,
            login_at,
            age_from: Duration::ZERO,
            age_to,
            end: Some(end),
            seen_age: lost.then(|| self.seen_age().max(age_to)),
            seen_at: if lost { self.seen_wall() } else { None },
            detail: String::new(),
        })
    }

    /// The session's life as a span, once no logout is left to try: forced
    /// if an answer showed the server had ended it, else `end`.
    pub fn close(
        &mut self,
        origin: SessionOrigin,
        target: &str,
        end: SessionEnd,
    ) -> Option<SessionSpan> {
        let end = self.ended_by_server.map_or(end, SessionEnd::Forced);
        self.finish(origin, target, end)
    }

    /// When the session logged in (wall clock).
    pub fn login_at(&self) -> Option<SystemTime> {
        self.logged_in_at.map(|(_, wall)| wall)
    }

    /// The `Cookie` header for a request to `url`, if any cookie applies.
    pub fn cookie_header(&self, url: &Url) -> Option<HeaderValue> {
        let value = self
            .jar
            .get_request_values(url)
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        if value.is_empty() {
            None
        } else {
            HeaderValue::from_str(&value).ok()
        }
    }

    /// Stores every `Set-Cookie` of a response; malformed ones are ignored, as
    /// a browser would.
    pub fn store_cookies(&mut self, headers: &reqwest::header::HeaderMap, url: &Url) {
        for value in headers.get_all(reqwest::header::SET_COOKIE) {
            if let Ok(text) = value.to_str() {
                let _ = self.jar.parse(text, url);
            }
        }
    }

    /// The value of a live (unexpired) cookie named `name`, on any path.
    pub fn cookie_value(&self, name: &str) -> Option<String> {
        self.jar
            .iter_unexpired()
            .find(|c| c.name() == name)
            .map(|c| c.value().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A forced logout is seen when the answer that showed it arrived:
    /// not at `login_at + seen_age`, which counts from the login's send
    /// and so was late by the login's length.
    #[tokio::test(start_paused = true)]
    async fn a_loss_is_seen_when_its_answer_arrives() {
        let mut s = Session::new(HashMap::new());
        let sent = Instant::now();
        // The login takes 1.5 s.
        tokio::time::advance(Duration::from_millis(1500)).await;
        s.mark_logged_in(None, "ics", sent);
        let login_wall = s.login_at().unwrap();
        tokio::time::advance(Duration::from_secs(60)).await;
        s.confirm_alive(Instant::now());
        tokio::time::advance(Duration::from_secs(30)).await;
        s.mark_ended(LogoutCause::Redirect, Instant::now());
        // The span is made a little later.
        tokio::time::advance(Duration::from_secs(5)).await;
        let span = s
            .finish(
                SessionOrigin::Kept { slot: 0 },
                "ics",
                SessionEnd::Forced(LogoutCause::Redirect),
            )
            .unwrap();
        assert_eq!(span.seen_at, Some(login_wall + Duration::from_secs(90)));
        // The bracket is unchanged: alive at 60 s of age, seen by 91.5 s
        // counted from the login's send.
        assert_eq!(span.age_to, Duration::from_secs(60));
        assert_eq!(span.seen_age, Some(Duration::from_millis(91_500)));
        let old_way = login_wall + span.seen_age.unwrap();
        assert_eq!(
            old_way.duration_since(span.seen_at.unwrap()).unwrap(),
            Duration::from_millis(1500)
        );
        // A life the agent ended has no loss to have seen.
        let mut s = Session::new(HashMap::new());
        s.mark_logged_in(None, "ics", Instant::now());
        let span = s
            .finish(
                SessionOrigin::Kept { slot: 0 },
                "ics",
                SessionEnd::AgentStop,
            )
            .unwrap();
        assert_eq!((span.seen_at, span.seen_age), (None, None));
    }
}
