//! One HTTP request of remote_write 1.0 and what its answer means for the
//! queue: 2xx is accepted; 5xx, 429 and no answer at all are retried with
//! backoff (the push stays first in the queue); any other status is refused
//! for good (the push is removed and counted as failed), as Prometheus's
//! queue manager and vmagent do.

use std::time::Duration;

use reqwest::header;
use reqwest::StatusCode;

use super::wire;
use crate::config::file::{read_capped, FileError, MAX_PEM_FILE_BYTES};
use crate::config::remote_write::{RemoteAuth, RemoteWrite};
use crate::config::secret::{self, EnvLookup};

/// The first wait after a failed send; it doubles per failure up to
/// [`MAX_BACKOFF`] (Prometheus's queue manager uses 30 ms to 5 s).
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("remote_write {name:?}: cannot read CA file {path}")]
    CaFile {
        name: String,
        path: String,
        #[source]
        source: FileError,
    },
    #[error("remote_write {name:?}: cannot build an HTTP client")]
    Build {
        name: String,
        #[source]
        source: reqwest::Error,
    },
}

/// Why a push is to be tried again: each is logged in words of its own,
/// so an outage that changes its nature is seen to (the network goes,
/// then the store answers 503, then 429 while it catches up, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trouble {
    /// No connection: refused, no route, DNS, TLS.
    Unreachable,
    /// Connected, but no answer within `timeout`.
    NoAnswer,
    /// The connection broke before the answer (closed, reset).
    Broken,
    /// 429: the store asks for less.
    Overloaded,
    /// A 5xx answer.
    ServerError,
    /// The credential's secret could not be read.
    Credential,
}

impl Trouble {
    /// What the log says when this trouble begins.
    pub fn message(self) -> &'static str {
        match self {
            Trouble::Unreachable => {
                "cannot connect to the store; samples stay queued and are retried"
            }
            Trouble::NoAnswer => {
                "the store did not answer within the timeout; samples stay queued and are retried"
            }
            Trouble::Broken => {
                "the connection to the store broke before its answer; samples stay queued and are retried"
            }
            Trouble::Overloaded => {
                "the store asks for fewer requests (429); samples stay queued and are retried"
            }
            Trouble::ServerError => {
                "the store failed the push with a server error; samples stay queued and are retried"
            }
            Trouble::Credential => {
                "cannot read the credential for the store; samples stay queued and are retried"
            }
        }
    }
}

/// How a send ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    Accepted,
    /// Worth trying again: the store is down, overloaded or unreachable.
    Retry {
        trouble: Trouble,
        why: String,
    },
    /// The store will never take this push.
    Refused {
        status: u16,
        why: String,
    },
}

impl Sent {
    /// The `result` label of `casewatch_remote_write_requests_total`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Sent::Accepted => "accepted",
            Sent::Retry { .. } => "retried",
            Sent::Refused { .. } => "refused",
        }
    }
}

pub struct Sender {
    client: reqwest::Client,
    url: reqwest::Url,
    auth: Option<RemoteAuth>,
    env: EnvLookup,
}

impl Sender {
    pub fn new(config: &RemoteWrite, env: EnvLookup) -> Result<Sender, ClientError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("casewatch/", env!("CARGO_PKG_VERSION")))
            .danger_accept_invalid_certs(config.insecure_skip_verify)
            .no_proxy();
        if let Some(path) = &config.ca_file {
            let pem =
                read_capped(path, MAX_PEM_FILE_BYTES).map_err(|source| ClientError::CaFile {
                    name: config.name.clone(),
                    path: path.display().to_string(),
                    source,
                })?;
            let certificate =
                reqwest::Certificate::from_pem(&pem).map_err(|source| ClientError::Build {
                    name: config.name.clone(),
                    source,
                })?;
            builder = builder.add_root_certificate(certificate);
        }
        let client = builder.build().map_err(|source| ClientError::Build {
            name: config.name.clone(),
            source,
        })?;
        Ok(Sender {
            client,
            url: config.url.clone(),
            auth: config.auth.clone(),
            env,
        })
    }

    /// Sends one stored body. Secrets are read on every send, so a rotated
    /// token file is picked up without a restart; they never reach a message.
    pub async fn send(&self, body: Vec<u8>) -> Sent {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(header::CONTENT_TYPE, wire::CONTENT_TYPE)
            .header(header::CONTENT_ENCODING, wire::CONTENT_ENCODING)
            .header(wire::VERSION_HEADER, wire::VERSION)
            .body(body);
        match &self.auth {
            None => {}
            Some(RemoteAuth::Basic { username, password }) => {
                match (
                    secret::read(username, &self.env),
                    secret::read(password, &self.env),
                ) {
                    (Ok(u), Ok(p)) => request = request.basic_auth(u, Some(p)),
                    (Err(why), _) | (_, Err(why)) => {
                        return Sent::Retry {
                            trouble: Trouble::Credential,
                            why: why.to_string(),
                        }
                    }
                }
            }
            Some(RemoteAuth::Bearer(token)) => match secret::read(token, &self.env) {
                Ok(t) => request = request.bearer_auth(t),
                Err(why) => {
                    return Sent::Retry {
                        trouble: Trouble::Credential,
                        why: why.to_string(),
                    }
                }
            },
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let trouble = if e.is_timeout() {
                    Trouble::NoAnswer
                } else if e.is_connect() {
                    Trouble::Unreachable
                } else {
                    Trouble::Broken
                };
                return Sent::Retry {
                    trouble,
                    why: crate::error_chain(&e.without_url()),
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Sent::Accepted;
        }
        let why = short_body(response).await;
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            let trouble = if status == StatusCode::TOO_MANY_REQUESTS {
                Trouble::Overloaded
            } else {
                Trouble::ServerError
            };
            Sent::Retry {
                trouble,
                why: format!("{status}: {why}"),
            }
        } else {
            Sent::Refused {
                status: status.as_u16(),
                why,
            }
        }
    }
}

/// The start of an error answer, for the log: stores say why they refuse.
async fn short_body(response: reqwest::Response) -> String {
    const LIMIT: usize = 300;
    let text = response.text().await.unwrap_or_default();
    let text = text.trim();
    let mut end = text.len().min(LIMIT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// The wait before the `failures`-th retry in a row (1-based).
pub fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    MIN_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_trouble_has_words_of_its_own() {
        let all = [
            Trouble::Unreachable,
            Trouble::NoAnswer,
            Trouble::Broken,
            Trouble::Overloaded,
            Trouble::ServerError,
            Trouble::Credential,
        ];
        let messages: std::collections::HashSet<&str> = all.iter().map(|t| t.message()).collect();
        assert_eq!(messages.len(), all.len());
    }

    #[test]
    fn backoff_doubles_from_the_minimum_to_the_cap() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(800));
        assert_eq!(backoff(7), Duration::from_secs(5));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(5));
    }
}
