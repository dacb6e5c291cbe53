//! TLS and basic auth for the agent's web endpoints, from a web-config file
//! in the Prometheus exporter-toolkit format (`--web.config.file`):
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: /etc/casewatch/tls.crt
//!   key_file: /etc/casewatch/tls.key
//! basic_auth_users:
//!   prometheus: $2y$10$...   # a bcrypt hash, e.g. from `htpasswd -nBC 10 ""`
//! ```
//!
//! The same file is checked by `promtool check web-config`, so Prometheus and
//! the agent agree on it.
//!
//! bcrypt takes tens of milliseconds of CPU on purpose. A flood of wrong
//! passwords must not take that time from the probes, so, as the exporter
//! toolkit does, each verdict is remembered under a keyed hash of the
//! credentials presented (never the credentials themselves), and a scrape with
//! credentials already verified costs one HMAC. Verifications that are needed
//! run on the blocking pool, at most [`BasicAuth::verifying`] at once (half
//! the cores), with a bounded queue behind them; past it a request is told
//! to come back later (429). Refusals are remembered apart from successes,
//! so no number of wrong passwords can push Prometheus's out of the cache.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawServerTls>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

/// The `tls_server_config` mapping.
#[derive(Debug, Deserialize)]
// Errors say what was expected in the file's own words, not a type name.
#[serde(
    deny_unknown_fields,
    expecting = "a tls_server_config mapping with cert_file and key_file"
)]
struct RawServerTls {
    cert_file: String,
    key_file: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("cannot read web config {0}")]
    Read(String, #[source] crate::config::file::FileError),
    #[error("web config {file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    #[error("web config {0}: basic_auth_users.{1} is not a bcrypt hash")]
    NotBcrypt(String, String),
}

/// A loaded web config: where TLS material lives and who may log in.
#[derive(Clone, Debug, Default)]
pub struct WebConfig {
    /// Certificate and key files, resolved relative to the config file.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub users: Arc<BasicAuth>,
}

impl WebConfig {
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let file = path.display().to_string();
        let limit = crate::config::preflight::MAX_CONFIG_BYTES as u64;
        let bytes = crate::config::file::read_capped(path, limit)
            .map_err(|e| WebConfigError::Read(file.clone(), e))?;
        let text = String::from_utf8(bytes).map_err(|_| WebConfigError::Invalid {
            file: file.clone(),
            line: 1,
            message: "not valid UTF-8".to_string(),
        })?;
        let text =
            crate::config::preflight::check(&text).map_err(|refusal| WebConfigError::Invalid {
                file: file.clone(),
                line: refusal.line,
                message: refusal.message,
            })?;
        let raw: RawWebConfig = marked_yaml::from_yaml(0, text).map_err(|e| {
            let line = match &e {
                marked_yaml::FromYamlError::FromNode(node) => node.start_mark().map(|m| m.line()),
                marked_yaml::FromYamlError::ParseYaml(_) => None,
            };
            WebConfigError::Invalid {
                file: file.clone(),
                line: line.unwrap_or(1),
                message: e.to_string(),
            }
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for (user, hash) in &raw.basic_auth_users {
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(WebConfigError::NotBcrypt(file.clone(), user.clone()));
            }
        }
        Ok(WebConfig {
            tls: raw
                .tls_server_config
                .map(|t| (base.join(t.cert_file), base.join(t.key_file))),
            users: Arc::new(BasicAuth::new(raw.basic_auth_users)),
        })
    }
}

/// How many verified credentials are remembered; Prometheus needs one.
const ALLOWED_KEPT: usize = 64;
/// How many refused credentials are remembered, so a client retrying one
/// wrong password costs one bcrypt, not one per request.
const REFUSED_KEPT: usize = 256;
/// Requests that may wait for a verification; more are answered 429.
const MAX_WAITING: usize = 64;

/// The verdict on a request's credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Refused,
    /// Too many verifications are queued: try again later.
    Busy,
}

/// Users and their bcrypt hashes, with a cache of verdicts.
pub struct BasicAuth {
    hashes: BTreeMap<String, String>,
    /// Keys the cache: HMAC-SHA256 of user and password under a key made at
    /// start, so the cache holds nothing from which a password can be found.
    key: ring::hmac::Key,
    allowed: Mutex<HashMap<[u8; 32], ()>>,
    refused: Mutex<HashMap<[u8; 32], ()>>,
    /// Before a bcrypt verification, a permit is taken from here: at most
    /// half the cores verify at once, so probes and scrapes keep the rest.
    verifying: tokio::sync::Semaphore,
    /// Requests waiting for a permit, bounded by [`MAX_WAITING`].
    waiting: AtomicUsize,
    /// Verifications in progress, by cache key. A request whose
    /// credentials are being verified already waits for that verdict and
    /// takes no place in the queue: Prometheus's first scrapes, many at
    /// once before any verdict is cached, cost one bcrypt and no 429.
    in_progress: Mutex<HashMap<[u8; 32], Arc<tokio::sync::OnceCell<Verdict>>>>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("users", &self.hashes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Default for BasicAuth {
    fn default() -> BasicAuth {
        BasicAuth::new(BTreeMap::new())
    }
}

/// Takes one place in the queue for a verification; gives it back on drop,
/// also when the client goes away while waiting.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl BasicAuth {
    pub fn new(hashes: BTreeMap<String, String>) -> BasicAuth {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &rand::random::<[u8; 32]>());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        BasicAuth {
            hashes,
            key,
            allowed: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
            verifying: tokio::sync::Semaphore::new((cores / 2).max(1)),
            waiting: AtomicUsize::new(0),
            in_progress: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.hashes.is_empty()
    }

    fn cache_key(&self, user: &str, password: &str) -> [u8; 32] {
        let mut context = ring::hmac::Context::with_key(&self.key);
        context.update(&(user.len() as u64).to_le_bytes());
        context.update(user.as_bytes());
        context.update(password.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(context.sign().as_ref());
        out
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Verdict> {
        if lock(&self.allowed).contains_key(key) {
            return Some(Verdict::Allowed);
        }
        lock(&self.refused)
            .contains_key(key)
            .then_some(Verdict::Refused)
    }

    fn remember(&self, key: [u8; 32], verdict: Verdict) {
        let (cache, cap) = match verdict {
            Verdict::Allowed => (&self.allowed, ALLOWED_KEPT),
            Verdict::Refused => (&self.refused, REFUSED_KEPT),
            Verdict::Busy => return,
        };
        let mut cache = lock(cache);
        if cache.len() >= cap {
            // An arbitrary entry (the map's order is randomly seeded).
            if let Some(old) = cache.keys().next().copied() {
                cache.remove(&old);
            }
        }
        cache.insert(key, ());
    }

    /// The verdict on an `Authorization` header value.
    pub async fn check(&self, authorization: &str) -> Verdict {
        let Some((user, password)) = basic_credentials(authorization) else {
            return Verdict::Refused;
        };
        let key = self.cache_key(&user, &password);
        if let Some(verdict) = self.cached(&key) {
            return verdict;
        }
        let cell = lock(&self.in_progress).entry(key).or_default().clone();
        // If the request verifying goes away, a waiting one takes over.
        let verdict = *cell.get_or_init(|| self.verify(key, user, password)).await;
        let mut in_progress = lock(&self.in_progress);
        if in_progress.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            in_progress.remove(&key);
        }
        verdict
    }

    /// Verifies credentials not in the cache, through the bounded queue.
    async fn verify(&self, key: [u8; 32], user: String, password: String) -> Verdict {
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Verdict::Busy;
        }
        let waiting = Waiting(&self.waiting);
        let Ok(_permit) = self.verifying.acquire().await else {
            return Verdict::Refused;
        };
        drop(waiting);
        // The same credentials may have been verified while this one waited.
        if let Some(verdict) = self.cached(&key) {
            return verdict;
        }
        // An unknown user costs a bcrypt all the same, against some user's
        // hash, so that timing does not tell which user names exist.
        let known = self.hashes.contains_key(&user);
        let Some(hash) = self
            .hashes
            .get(&user)
            .or(self.hashes.values().next())
            .cloned()
        else {
            return Verdict::Refused;
        };
        let matches =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        let verdict = if known && matches {
            Verdict::Allowed
        } else {
            Verdict::Refused
        };
        self.remember(key, verdict);
        verdict
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The user and password of a `Basic` authorization header value.
fn basic_credentials(authorization: &str) -> Option<(String, String)> {
    let encoded = authorization.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Middleware: 401 with a `WWW-Authenticate` challenge unless the request
/// carries credentials of a configured user; 429 while too many
/// verifications are queued.
pub async fn require_basic_auth(
    State(auth): State<Arc<BasicAuth>>,
    request: Request,
    next: Next,
) -> Response {
    let header_value = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match auth.check(header_value).await {
        Verdict::Allowed => next.run(request).await,
        Verdict::Refused => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"casewatch\"")],
            "Unauthorized\n",
        )
            .into_response(),
        Verdict::Busy => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "Too many authentication attempts at once\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user `prometheus` with password `right` (bcrypt's cheapest cost).
    fn auth() -> BasicAuth {
        let hash = bcrypt::hash("right", 4).unwrap();
        BasicAuth::new(BTreeMap::from([("prometheus".to_string(), hash)]))
    }

    fn header(user: &str, password: &str) -> String {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {token}")
    }

    #[test]
    fn a_tls_server_config_that_is_not_a_mapping_says_what_it_should_be() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(&path, "tls_server_config: nope\n").unwrap();
        let error = WebConfig::load(&path).unwrap_err().to_string();
        assert!(
            error.contains("expected a tls_server_config mapping with cert_file and key_file"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn verdicts_on_credentials() {
        let auth = auth();
        assert_eq!(
            auth.check(&header("prometheus", "right")).await,
            Verdict::Allowed
        );
        assert_eq!(
            auth.check(&header("prometheus", "wrong")).await,
            Verdict::Refused
        );
        assert_eq!(
            auth.check(&header("nobody", "right")).await,
            Verdict::Refused
        );
        for garbage in ["", "Bearer x", "Basic !!!", "Basic bm9jb2xvbg=="] {
            assert_eq!(auth.check(garbage).await, Verdict::Refused, "{garbage:?}");
        }
    }

    #[tokio::test]
    async fn verdicts_are_remembered_under_a_keyed_hash_apart() {
        let auth = auth();
        auth.check(&header("prometheus", "right")).await;
        auth.check(&header("prometheus", "wrong")).await;
        let allowed = lock(&auth.allowed).keys().copied().collect::<Vec<_>>();
        let refused = lock(&auth.refused).keys().copied().collect::<Vec<_>>();
        assert_eq!(allowed, [auth.cache_key("prometheus", "right")]);
        assert_eq!(refused, [auth.cache_key("prometheus", "wrong")]);
        // The key is no plain digest of what was sent.
        assert_ne!(
            auth.cache_key("prometheus", "right"),
            BasicAuth::default().cache_key("prometheus", "right")
        );
        // Refusals fill their own cache, never the one Prometheus is in.
        for i in 0..REFUSED_KEPT + 10 {
            auth.remember(
                auth.cache_key("prometheus", &format!("guess-{i}")),
                Verdict::Refused,
            );
        }
        assert_eq!(lock(&auth.refused).len(), REFUSED_KEPT);
        assert_eq!(auth.cached(&allowed[0]), Some(Verdict::Allowed));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_first_requests_with_the_same_credentials_wait_for_one_verdict() {
        let auth = Arc::new(auth());
        let checks: Vec<_> = (0..150)
            .map(|_| {
                let auth = auth.clone();
                tokio::spawn(async move { auth.check(&header("prometheus", "right")).await })
            })
            .collect();
        for check in checks {
            assert_eq!(check.await.unwrap(), Verdict::Allowed);
        }
        assert!(lock(&auth.in_progress).is_empty());
        assert_eq!(auth.waiting.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let auth = auth();
        auth.waiting.store(MAX_WAITING, Ordering::Relaxed);
        assert_eq!(
            auth.check(&header("prometheus", "unseen")).await,
            Verdict::Busy
        );
        assert_eq!(auth.waiting.load(Ordering::Relaxed), MAX_WAITING);
        // A credential already verified needs no place in the queue.
        auth.waiting.store(0, Ordering::Relaxed);
        auth.check(&header("prometheus", "right")).await;
        auth.waiting.store(MAX_WAITING, Ordering::Relaxed);
        assert_eq!(
            auth.check(&header("prometheus", "right")).await,
            Verdict::Allowed
        );
    }
}
