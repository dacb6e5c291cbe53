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
use crate::outcome::{LogoutCause, SessionEnd, SessionSpan};

pub struct Session {
    jar: CookieStore,
    /// Variables for `${var}` substitution: built-ins plus everything extracted.
    pub vars: HashMap<String, String>,
    logged_in_at: Option<(Instant, SystemTime)>,
    /// Set once the server has ended the session; no logout is attempted then.
    pub ended_by_server: Option<LogoutCause>,
    /// Reports the session as live until it is dropped.
    guard: Option<SessionGuard>,
}

impl Session {
    pub fn new(vars: HashMap<String, String>) -> Session {
        Session {
            jar: CookieStore::default(),
            vars,
            logged_in_at: None,
            ended_by_server: None,
            guard: None,
        }
    }

    pub fn mark_logged_in(&mut self, probes: Option<&Probes>, target: &str) {
        self.logged_in_at = Some((Instant::now(), SystemTime::now()));
        self.guard = probes.map(|p| p.session_opened(target));
    }

    pub fn is_logged_in(&self) -> bool {
        self.logged_in_at.is_some() && self.ended_by_server.is_none()
    }

    pub fn age(&self) -> Option<Duration> {
        self.logged_in_at.map(|(t, _)| t.elapsed())
    }

    /// The session's whole life as a span ending now with `end`, if it ever
    /// logged in. Closes its live report.
    pub fn finish(&mut self, origin: &str, target: &str, end: SessionEnd) -> Option<SessionSpan> {
        self.guard = None;
        let (since, login_at) = self.logged_in_at?;
        Some(SessionSpan {
            target: target.to_string(),
            origin: origin.to_string(),
            login_at,
            age_from: Duration::ZERO,
            age_to: since.elapsed(),
            end: Some(end),
        })
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
