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

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
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
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: String,
    key_file: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("cannot read web config {0}")]
    Read(String, #[source] std::io::Error),
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
        let text =
            std::fs::read_to_string(path).map_err(|e| WebConfigError::Read(file.clone(), e))?;
        let raw: RawWebConfig = marked_yaml::from_yaml(0, &text).map_err(|e| {
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
            users: Arc::new(BasicAuth {
                hashes: raw.basic_auth_users,
                verified: Mutex::new(HashSet::new()),
            }),
        })
    }
}

/// Users and their bcrypt hashes. bcrypt is slow on purpose, so credentials
/// once verified are remembered (as the exporter toolkit does) and a scrape
/// every few seconds costs nothing.
#[derive(Debug, Default)]
pub struct BasicAuth {
    hashes: BTreeMap<String, String>,
    /// Header values already verified.
    verified: Mutex<HashSet<String>>,
}

impl BasicAuth {
    pub fn is_enabled(&self) -> bool {
        !self.hashes.is_empty()
    }

    fn allows(&self, authorization: &str) -> bool {
        if let Ok(verified) = self.verified.lock() {
            if verified.contains(authorization) {
                return true;
            }
        }
        let Some(encoded) = authorization.strip_prefix("Basic ") else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return false;
        };
        let Some((user, password)) = text.split_once(':') else {
            return false;
        };
        let ok = self
            .hashes
            .get(user)
            .is_some_and(|hash| bcrypt::verify(password, hash).unwrap_or(false));
        if ok {
            if let Ok(mut verified) = self.verified.lock() {
                verified.insert(authorization.to_string());
            }
        }
        ok
    }
}

/// Middleware: 401 with a `WWW-Authenticate` challenge unless the request
/// carries credentials of a configured user.
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
    if auth.allows(header_value) {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"casewatch\"")],
            "Unauthorized\n",
        )
            .into_response()
    }
}
