//! The `remote_write:` block: where the agent pushes its own metrics
//! (Prometheus remote_write 1.0), raw as written and validated.
//!
//! Validation lives in `validate/remote_write.rs`, beside the other rules.

use std::path::PathBuf;
use std::time::Duration;

use marked_yaml::Spanned;
use serde::Deserialize;
use url::Url;

use super::model::SecretSource;
use super::raw::{RawSecret, RawTls, S};

/// One central store, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteWrite {
    /// Names the queue file and the `remote` label of the queue's metrics.
    pub name: S,
    pub url: S,
    pub basic_auth: Option<RawBasicAuth>,
    pub bearer_token: Option<Spanned<RawSecret>>,
    pub tls: Option<RawTls>,
    pub push_interval: Option<S>,
    pub timeout: Option<S>,
    pub job: Option<S>,
    pub instance: Option<S>,
    pub queue: Option<RawQueue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasicAuth {
    pub username: Spanned<RawSecret>,
    pub password: Spanned<RawSecret>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    pub path: Option<S>,
    pub max_samples: Option<Spanned<u64>>,
}

/// Default time between two pushes.
pub const DEFAULT_PUSH_INTERVAL: Duration = Duration::from_secs(15);
/// Default time one request may take, as Prometheus's `remote_timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default queue cap: 48 hours of a 1,500-series agent pushing every 15 s
/// (1,500 × 5,760 pushes a day × 2 days is 17.3 million samples), about
/// 330 MB of stored request bodies at 16 bytes a sample.
pub const DEFAULT_MAX_SAMPLES: u64 = 20_000_000;

/// One validated central store.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteWrite {
    pub name: String,
    pub url: Url,
    pub auth: Option<RemoteAuth>,
    pub insecure_skip_verify: bool,
    pub ca_file: Option<PathBuf>,
    pub push_interval: Duration,
    pub timeout: Duration,
    /// The `job` label on every pushed series.
    pub job: String,
    /// The `instance` label on every pushed series (default: the site).
    pub instance: String,
    /// The SQLite file holding samples not yet accepted by the store.
    pub queue_path: PathBuf,
    /// Beyond this many pending samples the oldest are dropped (and counted).
    pub max_samples: u64,
}

/// How the agent proves itself to the store; never inline in the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteAuth {
    Basic {
        username: SecretSource,
        password: SecretSource,
    },
    Bearer(SecretSource),
}
