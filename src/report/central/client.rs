//! The Prometheus HTTP API as the central report uses it: `query_range`,
//! `query` (for a range selector's raw samples), `series` and label
//! values, which Prometheus and VictoriaMetrics both serve.
//!
//! Every request has a timeout; every answer is read through a cap
//! ([`MAX_ANSWER_BYTES`]) and refused whole past it; credentials come from
//! the environment or a file through [`crate::config::secret`], read once
//! at start, and never reach a message or the report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::file::{read_capped, FileError, MAX_PEM_FILE_BYTES};
use crate::config::secret::{self, EnvLookup, SecretError};
use crate::config::SecretSource;

/// The largest answer read: the reader plans queries of at most
/// [`super::read::POINTS_PER_QUERY`] points (about 40 MB of JSON).
pub const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// A series' labels, `__name__` included when the store gives it.
pub type SeriesLabels = BTreeMap<String, String>;

/// How the report proves itself to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreAuth {
    Basic {
        username: String,
        password: SecretSource,
    },
    Bearer(SecretSource),
}

/// Where the store is and how to reach it.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub url: url::Url,
    pub auth: Option<StoreAuth>,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    /// Each request's limit.
    pub timeout: Duration,
}

impl StoreOptions {
    /// The URL as the report may show it: no user name or password.
    pub fn shown_url(&self) -> String {
        let mut url = self.url.clone();
        let _ = url.set_password(None);
        let _ = url.set_username("");
        url.to_string()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read the CA file {path}")]
    CaFile {
        path: String,
        #[source]
        source: FileError,
    },
    #[error("cannot read the store's credential: {0}")]
    Secret(#[from] SecretError),
    #[error("cannot build an HTTP client")]
    Build(#[source] reqwest::Error),
    #[error("the store did not answer {what}")]
    Request {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the store answered {what} with {status}: {excerpt}")]
    Status {
        what: String,
        status: u16,
        excerpt: String,
    },
    #[error("the store's answer to {what} is over {MAX_ANSWER_BYTES} bytes")]
    TooLarge { what: String },
    #[error("the store's answer to {what} is not the Prometheus API's JSON")]
    Decode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the store refused {what}: {error_type}: {error}")]
    Api {
        what: String,
        error_type: String,
        error: String,
    },
}

#[derive(Deserialize)]
struct Answer<T> {
    status: String,
    data: Option<T>,
    #[serde(default, rename = "errorType")]
    error_type: String,
    #[serde(default)]
    error: String,
}

#[derive(Deserialize)]
struct Matrix {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<MatrixSeries>,
}

/// One series of a matrix: labels and (unix seconds, value) points.
#[derive(Clone, Debug, Deserialize)]
pub struct MatrixSeries {
    pub metric: SeriesLabels,
    #[serde(default, deserialize_with = "points")]
    pub values: Vec<(f64, f64)>,
}

fn points<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<(f64, f64)>, D::Error> {
    let raw: Vec<(f64, String)> = Vec::deserialize(d)?;
    Ok(raw
        .into_iter()
        .filter_map(|(t, v)| v.parse::<f64>().ok().map(|v| (t, v)))
        .collect())
}

pub struct Store {
    client: reqwest::Client,
    base: url::Url,
    auth: Option<(String, Option<String>)>,
    bearer: Option<String>,
}

impl Store {
    pub fn new(options: &StoreOptions, env: &EnvLookup) -> Result<Store, StoreError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("casewatch/", env!("CARGO_PKG_VERSION")))
            .danger_accept_invalid_certs(options.insecure_skip_verify)
            .no_proxy();
        if let Some(path) = &options.ca_file {
            let ca_error = |source| StoreError::CaFile {
                path: path.display().to_string(),
                source,
            };
            let pem = read_capped(path, MAX_PEM_FILE_BYTES).map_err(ca_error)?;
            let certificate = reqwest::Certificate::from_pem(&pem).map_err(StoreError::Build)?;
            builder = builder.add_root_certificate(certificate);
        }
        let client = builder.build().map_err(StoreError::Build)?;
        let (mut auth, mut bearer) = (None, None);
        match &options.auth {
            None => {}
            Some(StoreAuth::Basic { username, password }) => {
                auth = Some((username.clone(), Some(secret::read(password, env)?)));
            }
            Some(StoreAuth::Bearer(token)) => bearer = Some(secret::read(token, env)?),
        }
        // Credentials in the URL itself are sent as basic auth.
        let mut base = options.url.clone();
        if auth.is_none() && !base.username().is_empty() {
            auth = Some((
                base.username().to_string(),
                base.password().map(str::to_string),
            ));
        }
        let _ = base.set_password(None);
        let _ = base.set_username("");
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Store {
            client,
            base,
            auth,
            bearer,
        })
    }

    /// Sends `form` to `path` (under the store's URL), as a POST form or
    /// GET query, and decodes the answer's `data`.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        form: &[(&str, String)],
        what: &str,
    ) -> Result<T, StoreError> {
        let url = self.base.join(path).unwrap_or_else(|_| self.base.clone());
        // Label values are asked with GET: no store takes a POST there.
        let mut request = if path.starts_with("api/v1/label/") {
            self.client.get(url).query(form)
        } else {
            self.client.post(url).form(form)
        };
        if let Some((user, password)) = &self.auth {
            request = request.basic_auth(user, password.as_ref());
        }
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        let failed = |source| StoreError::Request {
            what: what.to_string(),
            source,
        };
        let mut response = request.send().await.map_err(failed)?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(StoreError::TooLarge {
                    what: what.to_string(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        let answer: Answer<T> = match serde_json::from_slice(&body) {
            Ok(a) => a,
            Err(_) if !status.is_success() => {
                let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
                return Err(StoreError::Status {
                    what: what.to_string(),
                    status: status.as_u16(),
                    excerpt: text.trim().to_string(),
                });
            }
            Err(source) => {
                return Err(StoreError::Decode {
                    what: what.to_string(),
                    source,
                })
            }
        };
        match answer.data {
            Some(data) if answer.status == "success" => Ok(data),
            _ => Err(StoreError::Api {
                what: what.to_string(),
                error_type: answer.error_type,
                error: answer.error,
            }),
        }
    }

    /// `query_range`: the points of `query` at `start`, `start + step`, ...
    /// up to `end`.
    pub async fn query_range(
        &self,
        query: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<Vec<MatrixSeries>, StoreError> {
        let form = [
            ("query", query.to_string()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", format!("{step:.3}")),
        ];
        let matrix: Matrix = self
            .call("api/v1/query_range", &form, &format!("query_range {query}"))
            .await?;
        Ok(matrix.result)
    }

    /// `query` of a range selector at `time`: each series' raw samples.
    pub async fn raw_samples(
        &self,
        query: &str,
        time: f64,
    ) -> Result<Vec<MatrixSeries>, StoreError> {
        let form = [("query", query.to_string()), ("time", format!("{time:.3}"))];
        let what = format!("query {query}");
        let matrix: Matrix = self.call("api/v1/query", &form, &what).await?;
        if matrix.result_type != "matrix" {
            return Err(StoreError::Api {
                what,
                error_type: "unexpected".into(),
                error: format!("a {} where a matrix was expected", matrix.result_type),
            });
        }
        Ok(matrix.result)
    }

    /// `series`: the label sets of the series `matchers` select between
    /// `start` and `end`.
    pub async fn series(
        &self,
        matchers: &[String],
        start: f64,
        end: f64,
    ) -> Result<Vec<SeriesLabels>, StoreError> {
        let mut form: Vec<(&str, String)> =
            matchers.iter().map(|m| ("match[]", m.clone())).collect();
        form.push(("start", format!("{start:.3}")));
        form.push(("end", format!("{end:.3}")));
        self.call("api/v1/series", &form, "series").await
    }

    /// The values label `name` takes on the series `matcher` selects.
    pub async fn label_values(
        &self,
        name: &str,
        matcher: &str,
        start: f64,
        end: f64,
    ) -> Result<Vec<String>, StoreError> {
        let form = [
            ("match[]", matcher.to_string()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
        ];
        let path = format!("api/v1/label/{name}/values");
        self.call(&path, &form, &format!("label values of {name}"))
            .await
    }
}

/// A PromQL string literal of `text`.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
