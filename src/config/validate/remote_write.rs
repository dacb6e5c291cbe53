//! Rules for the `remote_write:` block: a reachable http(s) URL with no
//! credentials in it, at most one way to authenticate (never inline), sane
//! intervals, and a queue file of its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::super::model::Need;
use super::super::remote_write::*;
use super::{http_url, line_of, secret, Checker};

/// Validates every `remote_write` entry. `journal` is the configured journal
/// file, beside which queues go by default.
pub(super) fn remote_writes(
    c: &mut Checker,
    raw: &[RawRemoteWrite],
    site: &str,
    journal: Option<&Path>,
) -> Vec<RemoteWrite> {
    let mut built: Vec<RemoteWrite> = Vec::new();
    for rw in raw {
        let context = format!("remote_write {:?}", rw.name.as_str());
        c.name(&rw.name, "remote_write", &context);
        if built.iter().any(|b| b.name == *rw.name) {
            c.error(line_of(&rw.name), &context, "duplicate remote_write name");
            continue;
        }
        let Some(one) = remote_write(c, rw, site, journal, &context) else {
            continue;
        };
        let shared = if journal == Some(one.queue_path.as_path()) {
            Some("the journal".to_string())
        } else {
            built
                .iter()
                .find(|b| b.queue_path == one.queue_path)
                .map(|b| format!("remote_write {:?}", b.name))
        };
        if let Some(other) = shared {
            let line = rw
                .queue
                .as_ref()
                .and_then(|q| q.path.as_ref())
                .map(line_of)
                .unwrap_or_else(|| line_of(&rw.name));
            c.error(
                line,
                &context,
                format!(
                    "queue.path {:?} is already used by {other}: each queue needs a file of its own",
                    one.queue_path.display().to_string()
                ),
            );
        }
        built.push(one);
    }
    built
}

fn remote_write(
    c: &mut Checker,
    rw: &RawRemoteWrite,
    site: &str,
    journal: Option<&Path>,
    context: &str,
) -> Option<RemoteWrite> {
    let url = match http_url(rw.url.trim(), "url", "basic_auth") {
        Ok(url) => Some(url),
        Err(problem) => {
            c.error(line_of(&rw.url), context, problem);
            None
        }
    };
    let auth = auth(c, rw, context);
    let push_interval = positive_duration(
        c,
        &rw.push_interval,
        "push_interval",
        context,
        DEFAULT_PUSH_INTERVAL,
    );
    let timeout = positive_duration(c, &rw.timeout, "timeout", context, DEFAULT_TIMEOUT);
    let (insecure_skip_verify, ca_file) = tls(c, rw, context);
    let max_samples = max_samples(c, rw, context);
    let queue_path = queue_path(c, rw, journal, context);
    Some(RemoteWrite {
        name: rw.name.to_string(),
        url: url?,
        auth,
        insecure_skip_verify,
        ca_file,
        push_interval,
        timeout,
        job: rw
            .job
            .as_ref()
            .map(|j| j.to_string())
            .unwrap_or_else(|| "casewatch".to_string()),
        instance: rw
            .instance
            .as_ref()
            .map(|i| i.to_string())
            .unwrap_or_else(|| site.to_string()),
        queue_path,
        max_samples,
    })
}

/// `basic_auth` or `bearer_token`, never both; secrets come from the
/// environment or a file (a user name may be written inline).
fn auth(c: &mut Checker, rw: &RawRemoteWrite, context: &str) -> Option<RemoteAuth> {
    match (&rw.basic_auth, &rw.bearer_token) {
        (Some(_), Some(token)) => {
            c.error(
                line_of(token),
                context,
                "give only one of `basic_auth` or `bearer_token`",
            );
            None
        }
        (Some(basic), None) => {
            let username = secret(c, &basic.username, "basic_auth.username", context, true);
            let password = secret(c, &basic.password, "basic_auth.password", context, false);
            username
                .zip(password)
                .map(|(username, password)| RemoteAuth::Basic { username, password })
        }
        (None, Some(token)) => {
            secret(c, token, "bearer_token", context, false).map(RemoteAuth::Bearer)
        }
        (None, None) => None,
    }
}

/// `tls`: whether to skip verification, and the CA file, which must exist.
fn tls(c: &mut Checker, rw: &RawRemoteWrite, context: &str) -> (bool, Option<PathBuf>) {
    if let Some(ca) = rw.tls.as_ref().and_then(|t| t.ca_file.as_ref()) {
        let need = Need::File {
            key: "tls.ca_file".into(),
            path: PathBuf::from(ca.as_str()),
        };
        c.require(line_of(ca), context, need);
    }
    match &rw.tls {
        Some(tls) => (
            tls.insecure_skip_verify.as_ref().is_some_and(|b| **b),
            tls.ca_file.as_ref().map(|f| PathBuf::from(f.as_str())),
        ),
        None => (false, None),
    }
}

fn max_samples(c: &mut Checker, rw: &RawRemoteWrite, context: &str) -> u64 {
    match rw.queue.as_ref().and_then(|q| q.max_samples.as_ref()) {
        Some(max) if **max == 0 => {
            c.error(
                line_of(max),
                context,
                "queue.max_samples must be above zero",
            );
            DEFAULT_MAX_SAMPLES
        }
        Some(max) => **max,
        None => DEFAULT_MAX_SAMPLES,
    }
}

/// The queue file: as given, or beside the journal.
fn queue_path(
    c: &mut Checker,
    rw: &RawRemoteWrite,
    journal: Option<&Path>,
    context: &str,
) -> PathBuf {
    let given = rw.queue.as_ref().and_then(|q| q.path.as_ref());
    let queue_path = match (given, journal) {
        (Some(path), _) => PathBuf::from(path.as_str()),
        (None, Some(journal)) => journal
            .parent()
            .unwrap_or(Path::new(""))
            .join(format!("remote-write-{}.db", rw.name.as_str())),
        (None, None) => {
            c.error(
                line_of(&rw.name),
                context,
                "queue.path is required when there is no `journal` to keep the queue beside",
            );
            PathBuf::new()
        }
    };
    // Beside the journal, the journal's own requirement covers the folder.
    if let Some(path) = given {
        let need = Need::Writable {
            key: "queue.path".into(),
            path: queue_path.clone(),
        };
        c.require(line_of(path), context, need);
    }
    queue_path
}

fn positive_duration(
    c: &mut Checker,
    value: &Option<super::S>,
    what: &str,
    context: &str,
    default: Duration,
) -> Duration {
    let parsed = c.opt_duration(value, what, context);
    if let (Some(d), Some(v)) = (parsed, value) {
        if d.is_zero() {
            c.error(line_of(v), context, format!("{what} must be above zero"));
            return default;
        }
    }
    parsed.unwrap_or(default)
}
