//! One synthetic user's session: its cookie jar, its variables and its age.
//!
//! Each session owns a private cookie jar (a real user's browser), so two
//! sessions on one target never share a login, while they share the target's
//! connection pool.

use std::collections::HashMap;
use std::time::Duration;

use cookie_store::CookieStore;
use reqwest::header::HeaderValue;
use tokio::time::Instant;
use url::Url;

pub struct Session {
    jar: CookieStore,
    /// Variables for `${var}` substitution: built-ins plus everything extracted.
    pub vars: HashMap<String, String>,
    logged_in_at: Option<Instant>,
    /// Set once the server has ended the session; no logout is attempted then.
    pub ended_by_server: bool,
}

impl Session {
    pub fn new(vars: HashMap<String, String>) -> Session {
        Session {
            jar: CookieStore::default(),
            vars,
            logged_in_at: None,
            ended_by_server: false,
        }
    }

    pub fn mark_logged_in(&mut self) {
        self.logged_in_at = Some(Instant::now());
    }

    pub fn is_logged_in(&self) -> bool {
        self.logged_in_at.is_some() && !self.ended_by_server
    }

    pub fn age(&self) -> Option<Duration> {
        self.logged_in_at.map(|t| t.elapsed())
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
