//! The hostile-target matrix (issue 6): each test starts a small server that
//! misbehaves on purpose (raw bytes written by hand over a tokio
//! `TcpListener`, or TLS with a bad certificate) and checks three things:
//!
//! 1. the step ends in the outcome `casewatch::outcome` gives it, with a detail that
//!    says why and never carries the request's query;
//! 2. an agent probing the hostile target *and* a healthy simulator journey
//!    keeps the healthy journey on time (low lateness, no missed slot);
//! 3. memory and file descriptors return to baseline: no socket to the
//!    hostile server outlives the agent, and a 1 GiB body is never held.
//!
//! Timings are short (`freeze_after: 500ms`, `give_up_after: 2s`) so the file
//! runs in seconds with its tests in parallel.
//!
//! | case                              | outcome            | why (the table in `casewatch::outcome`)              |
//! |-----------------------------------|--------------------|------------------------------------------------------|
//! | never answers                     | `frozen`           | no response by `freeze_after`; censored at `give_up_after` |
//! | headers, then one byte a second   | `frozen`           | headers are not a complete response; censored        |
//! | endless (chunked) body            | `error`            | body over the size cap, cut off while streaming      |
//! | 1 GiB body (Content-Length)       | `error`            | body over the size cap, refused from its length      |
//! | endless header section            | `error`            | undecodable response (head too large)                |
//! | redirects in a loop               | `error`            | redirect loop                                        |
//! | redirects without end             | `error`            | more than `max_redirects`                            |
//! | redirect to another host          | `error`            | the agent never follows a session to another origin  |
//! | malformed status line             | `error`            | undecodable response                                 |
//! | invalid chunked encoding          | `error`            | undecodable body                                     |
//! | connection reset mid-body         | `error`            | the body broke off after the connection was made     |
//! | TLS, self-signed certificate      | `connect_error`    | TLS failure                                          |
//! | TLS, expired certificate          | `connect_error`    | TLS failure                                          |
//! | DNS name that does not resolve    | `connect_error`    | DNS failure (`.invalid`, RFC 6761)                   |
//! | connection refused                | `connect_error`    | TCP failure                                          |
//! | a storm of 500s                   | `http_error`       | unexpected status that is not a logout signal        |
//! | garbage where a CSRF token is due | `assertion_failed` | the response arrived but its content is wrong        |
//!
//! A TLS control case (a valid certificate from the same test CA) is `ok`, so
//! the expired case fails for its expiry and nothing else.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use casewatch::outcome::{Outcome, PlannedRun};
use casewatch::runner;
use casewatch::sim::SimProfile;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_rustls::rustls;

use crate::harness::*;

/// Sent as a query value on every hostile request; must never show up in a
/// step's detail, on `/metrics` or on the status page.
const QUERY_CANARY: &str = "qcanary-5521-zebra";

// ---------------------------------------------------------------------------
// Misbehaving servers
// ---------------------------------------------------------------------------

/// A server on 127.0.0.1:0 that runs `handler` on each connection. Dropping
/// it aborts the accept loop and every connection task, closing their sockets.
struct Hostile {
    addr: SocketAddr,
    /// Requests whose head was read (plain HTTP servers only).
    requests: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Hostile {
    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}/", self.addr)
    }
}

async fn serve_tcp<F, Fut>(handler: F) -> Hostile
where
    F: Fn(TcpStream, Arc<AtomicUsize>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let handler = Arc::new(handler);
    let accept = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let handler = handler.clone();
                    let counter = counter.clone();
                    connections.spawn(async move {
                        let _ = handler(stream, counter).await;
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    });
    Hostile {
        addr,
        requests,
        accept,
    }
}

/// A plain-HTTP server: reads each request head, then lets `behave` write
/// whatever it likes (given the request path).
async fn serve<F, Fut>(behave: F) -> Hostile
where
    F: Fn(TcpStream, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    let behave = Arc::new(behave);
    serve_tcp(move |mut stream, counter| {
        let behave = behave.clone();
        async move {
            let Some(path) = read_head(&mut stream).await? else {
                return Ok(());
            };
            counter.fetch_add(1, Ordering::Relaxed);
            behave(stream, path).await
        }
    })
    .await
}

/// Reads a request head and returns its path, or `None` at end of stream.
async fn read_head(stream: &mut (impl AsyncRead + Unpin)) -> io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    Ok(Some(
        text.split_whitespace().nth(1).unwrap_or("/").to_string(),
    ))
}

/// Waits until the client closes its end (or errors).
async fn hold_until_closed(stream: &mut (impl AsyncRead + Unpin)) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    while stream.read(&mut buf).await? > 0 {}
    Ok(())
}

fn simple(status: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn redirect(location: &str) -> Vec<u8> {
    simple("302 Found", &format!("Location: {location}\r\n"), "")
}

/// Deterministic junk: invalid UTF-8, stray angle brackets and NULs.
fn garbage(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x2545_f491;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------

enum Cert {
    SelfSigned,
    /// Issued by the test CA (trusted through `tls.ca_file`), long expired.
    Expired,
    /// Issued by the test CA and valid: the control case.
    Valid,
}

struct TlsServer {
    server: Hostile,
    /// The test CA's PEM file, for `tls.ca_file`.
    ca_file: tempfile::NamedTempFile,
}

async fn serve_tls(cert: Cert) -> TlsServer {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "casewatch hostile test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let leaf_cert = match cert {
        Cert::SelfSigned => leaf.self_signed(&leaf_key).unwrap(),
        Cert::Expired => {
            leaf.not_before = rcgen::date_time_ymd(2019, 1, 1);
            leaf.not_after = rcgen::date_time_ymd(2020, 1, 1);
            leaf.signed_by(&leaf_key, &issuer).unwrap()
        }
        Cert::Valid => leaf.signed_by(&leaf_key, &issuer).unwrap(),
    };

    let ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_file.path(), ca_cert.pem()).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let server = serve_tcp(move |stream, counter| {
        let acceptor = acceptor.clone();
        async move {
            let mut tls = acceptor.accept(stream).await?;
            if read_head(&mut tls).await?.is_some() {
                counter.fetch_add(1, Ordering::Relaxed);
                tls.write_all(&simple("200 OK", "", "hello over TLS"))
                    .await?;
                tls.shutdown().await?;
            }
            Ok(())
        }
    })
    .await;
    TlsServer { server, ca_file }
}

// ---------------------------------------------------------------------------
// The case runner
// ---------------------------------------------------------------------------

/// One row of the matrix.
struct Case {
    /// The hostile target's base URL.
    base_url: String,
    /// YAML placed inside the hostile target (e.g. `tls:` or `login:` steps).
    target_extra: String,
    /// Whether the hostile journey logs in first.
    login: bool,
    expected: Outcome,
    /// Text the failing step's detail must contain.
    detail_has: &'static str,
    /// The port whose client sockets must all be closed afterwards.
    port: Option<u16>,
    /// The hostile server's request count (plain HTTP servers only).
    requests: Option<Arc<AtomicUsize>>,
}

/// What [`run_case`] saw of the agent.
struct CaseRun {
    /// The agent's last `/metrics` text.
    text: String,
    /// The hostile server's request count read just before `text` was
    /// scraped (when the case has a counting server).
    requests_before_text: Option<usize>,
    /// How long the agent lived: from before its start to after its stop,
    /// so no request it sent falls outside.
    ran: Duration,
}

impl Case {
    fn plain(server: &Hostile, expected: Outcome, detail_has: &'static str) -> Case {
        Case {
            base_url: server.url("http"),
            target_extra: String::new(),
            login: false,
            expected,
            detail_has,
            port: Some(server.addr.port()),
            requests: Some(server.requests.clone()),
        }
    }
}

fn hostile_config(case: &Case) -> String {
    let login = if case.login { "true" } else { "false" };
    format!(
        r#"site: test-site
targets:{ics}
  - name: hostile
    base_url: http://127.0.0.1:1/
    connect_timeout: 1s
    defaults: {{ slow_after: 200ms, freeze_after: 500ms, give_up_after: 2s }}
{extra}
journeys:
  - name: healthy
    target: ics
    login: false
    schedule: {{ interval: 500ms }}
    steps:
      - {{ name: ping, path: /ping }}
  - name: probe
    target: hostile
    login: {login}
    schedule: {{ interval: 1s }}
    steps:
      - name: fetch
        path: /a
        query: {{ ref: {QUERY_CANARY} }}
"#,
        ics = ics_target(""),
        extra = case.target_extra,
    )
}

/// Runs the case: one direct run for the outcome and its detail, and an
/// agent run for timeliness and resource use.
async fn run_case(case: Case) -> CaseRun {
    let before = Usage::now();
    // The machine's own hold-ups meanwhile, which the healthy journey's
    // timeliness is allowed (see `assert_healthy_on_time`).
    let machine = SchedulingProbe::start();
    let sim = start_sim(SimProfile::quiet()).await;
    let mut urls = sim.base_urls();
    urls.insert("hostile".into(), case.base_url.clone());
    let yaml = hostile_config(&case);
    let config = casewatch::config::from_yaml_str_with_base_urls(&yaml, "hostile.yaml", &urls)
        .unwrap_or_else(|e| panic!("hostile config is valid: {e}"))
        .config;
    let journey = config
        .journeys
        .iter()
        .find(|j| j.name == "probe")
        .unwrap()
        .clone();

    let started = Instant::now();
    let agent = start_agent(config).await;

    // 1. The outcome and its detail, from a direct run.
    let client = runner::client_for(&journey.target).unwrap();
    let ctx = runner::RunContext {
        client: &client,
        probes: None,
    };
    let vars = HashMap::from([
        ("username".to_string(), "sw.demo".to_string()),
        ("password".to_string(), PASSWORD.to_string()),
    ]);
    let run = runner::run_journey(&ctx, &journey, vars, &PlannedRun::now(1)).await;
    drop(client);
    let failed = run.steps.last().expect("the run has a step");
    assert_eq!(run.outcome, case.expected, "{run:#?}");
    assert_eq!(failed.outcome, case.expected, "{run:#?}");
    assert!(
        failed.detail.contains(case.detail_has),
        "detail {:?} should contain {:?}",
        failed.detail,
        case.detail_has
    );
    assert!(!failed.detail.contains(QUERY_CANARY), "{:?}", failed.detail);
    assert!(!failed.detail.contains(PASSWORD), "{:?}", failed.detail);
    if case.expected == Outcome::Frozen {
        assert!(failed.censored, "a step given up on is censored: {run:#?}");
        assert!(failed.duration >= Duration::from_secs(2), "{run:#?}");
    }

    // 2. The agent: the hostile outcome counted, the healthy journey on time.
    let expected = case.expected.as_str();
    let hostile_step = [("target", "hostile"), ("step", "fetch")];
    let healthy = [("journey", "healthy")];
    let (text, requests_before_text) = wait_for(
        Duration::from_secs(20),
        "a hostile outcome and several healthy runs",
        || async {
            let requests = case.requests.as_ref().map(|r| r.load(Ordering::SeqCst));
            let text = agent.metrics().await;
            let hostile = metric(
                &text,
                "casewatch_step_outcomes_total",
                &[("target", "hostile"), ("outcome", expected)],
            );
            let healthy_runs = metric(&text, "casewatch_schedule_lateness_seconds_count", &healthy);
            (hostile >= 1.0 && healthy_runs >= 5.0).then_some((text, requests))
        },
    )
    .await;
    for outcome in Outcome::ALL {
        let success_expected = case.expected.is_success() || case.login;
        if outcome == case.expected || (success_expected && outcome.is_success()) {
            continue;
        }
        let labels = if case.login {
            vec![("target", "hostile"), ("outcome", outcome.as_str())]
        } else {
            let mut l = hostile_step.to_vec();
            l.push(("outcome", outcome.as_str()));
            l
        };
        assert_eq!(
            metric(&text, "casewatch_step_outcomes_total", &labels),
            0.0,
            "the hostile step must only ever be {expected}, not {outcome}:\n{text}"
        );
    }
    assert_healthy_on_time(&text, &machine);
    assert!(!text.contains(QUERY_CANARY));
    let status_page = reqwest::get(format!("http://{}/", agent.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!status_page.contains(QUERY_CANARY));
    // Connections given up on are closed, not left to pile up.
    if let Some(port) = case.port {
        let open = client_sockets_to(port);
        assert!(open <= 3, "{open} sockets open to the hostile server");
    }

    agent.stop().await;
    let ran = started.elapsed();
    sim.stop().await;

    // 3. Resources back to baseline.
    if let Some(port) = case.port {
        wait_for(
            Duration::from_secs(10),
            "every socket to the hostile server to close",
            || async { (client_sockets_to(port) == 0).then_some(()) },
        )
        .await;
    }
    let after = wait_for(Duration::from_secs(10), "fds back to baseline", || async {
        let now = Usage::now();
        (now.fds <= before.fds + 20).then_some(now)
    })
    .await;
    // The test process is shared with the tests running beside this one
    // (an in-process browser client, report builds): what they freed is
    // trimmed before each reading, and 64 MiB allows for what they hold
    // live, still far below what any hostile case would leak (an endless
    // or 1 GiB body, a redirect loop's responses).
    assert!(
        after.rss_kib <= before.rss_kib + 64 * 1024,
        "RSS grew from {} KiB to {} KiB",
        before.rss_kib,
        after.rss_kib
    );
    CaseRun {
        text,
        requests_before_text,
        ran,
    }
}

/// The healthy journey kept its timetable: every run started within half a
/// second of its slot, no slot was missed, every run succeeded. Half a
/// second and no missed slot are for a quiet machine; on a loaded one the
/// allowance grows by what `machine` measured the machine itself held up a
/// thread that waits on nothing of the agent's (`SchedulingProbe`). A
/// healthy journey held up by the hostile one waits a give-up (2 s) or a
/// freeze, and misses slots, while the probe is not held up: that still
/// fails. What lateness the agent keeps on a real clock is measured by
/// `scripts/bench.sh` (benches/NOTES.md, "Timing asserts moved out of the
/// tests").
fn assert_healthy_on_time(text: &str, machine: &SchedulingProbe) {
    let healthy = [("journey", "healthy")];
    let allowed = machine.allow_late(Duration::from_millis(500));
    let (on_time, bound, count) = runs_started_within(text, "healthy", allowed);
    assert!(count >= 5.0, "{text}");
    assert_eq!(
        on_time,
        count,
        "healthy runs started later than {bound} s ({allowed:?} allowed; {}):\n{text}",
        machine.describe()
    );
    let missed = metric(text, "casewatch_schedule_missed_total", &healthy);
    let allowed_missed = machine.allow_missed(Duration::from_millis(500));
    eprintln!(
        "machine: {}; healthy: {on_time} of {count} runs within {bound} s ({allowed:?} allowed), {missed} missed ({allowed_missed} allowed); lateness {}",
        machine.describe(),
        lateness_buckets(text, "healthy")
    );
    assert!(
        missed <= allowed_missed as f64,
        "healthy journey missed {missed} slots ({allowed_missed} allowed; {}):\n{text}",
        machine.describe()
    );
    for outcome in Outcome::ALL.into_iter().filter(|o| !o.is_success()) {
        assert_eq!(
            metric(
                text,
                "casewatch_journey_runs_total",
                &[("journey", "healthy"), ("outcome", outcome.as_str())]
            ),
            0.0,
            "healthy journey had a {outcome} run:\n{text}"
        );
    }
}

// ---------------------------------------------------------------------------
// Process resources
// ---------------------------------------------------------------------------

struct Usage {
    fds: usize,
    rss_kib: u64,
    hwm_kib: u64,
}

impl Usage {
    fn now() -> Usage {
        // Memory the tests beside this one freed but the allocator kept is
        // handed back first, so RSS is what is live now: a neighbour's
        // retained arenas are no one's leak.
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only returns free memory to the system; it
        // takes the allocator's own locks and touches no live allocation.
        unsafe {
            libc::malloc_trim(0);
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} in /proc/self/status"))
        };
        Usage {
            fds: std::fs::read_dir("/proc/self/fd").unwrap().count(),
            rss_kib: field("VmRSS:"),
            hwm_kib: field("VmHWM:"),
        }
    }
}

/// Sockets this process holds whose remote end is 127.0.0.1:`port` (the
/// agent's side of connections to a hostile server).
fn client_sockets_to(port: u16) -> usize {
    let inodes: HashSet<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            link.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    let mut count = 0;
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(remote), Some(inode)) = (fields.get(2), fields.get(9)) else {
                continue;
            };
            let remote_port = remote
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            let inode: u64 = inode.parse().unwrap_or(0);
            if remote_port == Some(port) && inodes.contains(&inode) {
                count += 1;
            }
        }
    }
    count
}

// ---------------------------------------------------------------------------
// The matrix
// ---------------------------------------------------------------------------

#[tokio::test]
async fn never_answers_is_frozen_and_censored() {
    let server =
        serve(|mut stream, _path| async move { hold_until_closed(&mut stream).await }).await;
    let case = Case::plain(&server, Outcome::Frozen, "no complete response after 2s");
    let text = run_case(case).await.text;
    // The freeze was seen live, as an episode on the hostile target only.
    assert!(
        metric(
            &text,
            "casewatch_freeze_episodes_total",
            &[("target", "hostile")]
        ) + metric(
            &text,
            "casewatch_freeze_in_progress",
            &[("target", "hostile")]
        ) >= 1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "casewatch_freeze_episodes_total",
            &[("target", "ics")]
        ),
        0.0
    );
}

#[tokio::test]
async fn headers_then_one_byte_a_second_is_frozen() {
    let server = serve(|mut stream, _path| async move {
        stream
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n",
            )
            .await?;
        loop {
            stream.write_all(b"x").await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;
    run_case(Case::plain(
        &server,
        Outcome::Frozen,
        "no complete response after 2s",
    ))
    .await;
}

#[tokio::test]
async fn an_endless_body_is_cut_off_at_the_cap() {
    let server = serve(|mut stream, _path| async move {
        stream
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n",
            )
            .await?;
        let chunk = format!("4000\r\n{}\r\n", "a".repeat(0x4000));
        loop {
            stream.write_all(chunk.as_bytes()).await?;
        }
    })
    .await;
    run_case(Case::plain(
        &server,
        Outcome::Error,
        "body over the 10485760 byte cap",
    ))
    .await;
}

#[tokio::test]
async fn a_gigabyte_body_is_refused_without_holding_it() {
    let server = serve(|mut stream, _path| async move {
        stream
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1073741824\r\n\r\n",
            )
            .await?;
        let block = vec![b'z'; 64 * 1024];
        for _ in 0..(1 << 30) / block.len() {
            stream.write_all(&block).await?;
        }
        Ok(())
    })
    .await;
    let hwm_before = Usage::now().hwm_kib;
    run_case(Case::plain(
        &server,
        Outcome::Error,
        "body of 1073741824 bytes is over the 10485760 byte cap",
    ))
    .await;
    let grown = Usage::now().hwm_kib.saturating_sub(hwm_before);
    assert!(
        grown < 256 * 1024,
        "peak RSS grew by {grown} KiB: the body was held in memory"
    );
}

#[tokio::test]
async fn an_endless_header_section_is_an_error() {
    let server = serve(|mut stream, _path| async move {
        stream.write_all(b"HTTP/1.1 200 OK\r\n").await?;
        let line = format!("X-Junk: {}\r\n", "j".repeat(1000));
        loop {
            stream.write_all(line.as_bytes()).await?;
        }
    })
    .await;
    run_case(Case::plain(
        &server,
        Outcome::Error,
        "message head is too large",
    ))
    .await;
}

#[tokio::test]
async fn redirects_in_a_loop_are_an_error() {
    let server = serve(|mut stream, path| async move {
        let next = if path.starts_with("/a") { "/b" } else { "/a" };
        stream.write_all(&redirect(next)).await
    })
    .await;
    run_case(Case::plain(&server, Outcome::Error, "redirect loop at /")).await;
}

#[tokio::test]
async fn redirects_without_end_are_an_error() {
    let server = serve(|mut stream, path| async move {
        let n: u64 = path
            .strip_prefix("/r/")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        stream.write_all(&redirect(&format!("/r/{}", n + 1))).await
    })
    .await;
    let ran = run_case(Case::plain(
        &server,
        Outcome::Error,
        "more than 10 redirects",
    ))
    .await
    .ran;
    // Each run gives up after 11 requests; no retry storm.
    let runs = ran.as_secs_f64().ceil() as usize + 2;
    assert!(server.requests.load(Ordering::Relaxed) <= runs * 11);
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed() {
    let server = serve(|mut stream, _path| async move {
        stream
            .write_all(&redirect("http://elsewhere.invalid/landing?session=stolen"))
            .await
    })
    .await;
    run_case(Case::plain(
        &server,
        Outcome::Error,
        "redirect to another origin (http://elsewhere.invalid)",
    ))
    .await;
}

#[tokio::test]
async fn a_malformed_status_line_is_an_error() {
    let server = serve(|mut stream, _path| async move {
        stream
            .write_all(b"HTTP/1.1 2OO Fine\r\nContent-Length: 0\r\n\r\n")
            .await?;
        hold_until_closed(&mut stream).await
    })
    .await;
    run_case(Case::plain(
        &server,
        Outcome::Error,
        "invalid HTTP status-code",
    ))
    .await;
}

#[tokio::test]
async fn invalid_chunked_encoding_is_an_error() {
    let server = serve(|mut stream, _path| async move {
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nnot-hex\r\nxyz\r\n")
            .await?;
        hold_until_closed(&mut stream).await
    })
    .await;
    run_case(Case::plain(&server, Outcome::Error, "body broke off")).await;
}

#[tokio::test]
async fn a_reset_mid_body_is_an_error() {
    let server = serve(|mut stream, _path| async move {
        stream
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000000\r\n\r\n",
            )
            .await?;
        stream.write_all(&[b'r'; 8192]).await?;
        stream.flush().await?;
        // Let the client read what was sent, then reset (RST, not FIN).
        tokio::time::sleep(Duration::from_millis(50)).await;
        stream.set_zero_linger()?;
        drop(stream);
        Ok(())
    })
    .await;
    run_case(Case::plain(&server, Outcome::Error, "body broke off")).await;
}

#[tokio::test]
async fn tls_with_a_self_signed_certificate_is_a_connect_error() {
    let tls = serve_tls(Cert::SelfSigned).await;
    let mut case = Case::plain(
        &tls.server,
        Outcome::ConnectError,
        "invalid peer certificate",
    );
    case.base_url = tls.server.url("https");
    run_case(case).await;
    assert_eq!(tls.server.requests.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn tls_with_an_expired_certificate_is_a_connect_error() {
    let tls = serve_tls(Cert::Expired).await;
    let mut case = Case::plain(&tls.server, Outcome::ConnectError, "certificate expired");
    case.base_url = tls.server.url("https");
    case.target_extra = format!("    tls: {{ ca_file: {:?} }}", tls.ca_file.path());
    run_case(case).await;
    assert_eq!(tls.server.requests.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn tls_control_a_valid_certificate_from_the_test_ca_is_ok() {
    let tls = serve_tls(Cert::Valid).await;
    let mut case = Case::plain(&tls.server, Outcome::Ok, "");
    case.base_url = tls.server.url("https");
    case.target_extra = format!("    tls: {{ ca_file: {:?} }}", tls.ca_file.path());
    run_case(case).await;
    assert!(tls.server.requests.load(Ordering::Relaxed) >= 2);
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_connect_error() {
    run_case(Case {
        base_url: "http://casewatch-hostile.invalid/".into(),
        target_extra: String::new(),
        login: false,
        expected: Outcome::ConnectError,
        detail_has: "dns error",
        port: None,
        requests: None,
    })
    .await;
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    run_case(Case {
        base_url: format!("http://{closed}/"),
        target_extra: String::new(),
        login: false,
        expected: Outcome::ConnectError,
        detail_has: "connect",
        port: Some(closed.port()),
        requests: None,
    })
    .await;
}

#[tokio::test]
async fn a_storm_of_500s_is_an_http_error_without_retries() {
    let server = serve(|mut stream, _path| async move {
        stream
            .write_all(&simple(
                "500 Internal Server Error",
                "",
                "Internal Server Error",
            ))
            .await
    })
    .await;
    let run = run_case(Case::plain(&server, Outcome::HttpError, "got status 500")).await;
    // One request per step, no retries: when the agent's metrics were read,
    // the server had seen at most a request for each step they count, the
    // direct run's and one whose step was still being recorded. A retry
    // doubles the requests of every step.
    let steps = metric(
        &run.text,
        "casewatch_step_outcomes_total",
        &[("target", "hostile")],
    );
    let seen = run.requests_before_text.unwrap();
    assert!(
        seen as f64 <= steps + 2.0,
        "{seen} requests for {steps} steps:\n{}",
        run.text
    );
    // One run per second (the timetable's slots), plus the direct run: the
    // agent does not hammer a failing system. `ran` spans the agent's whole
    // life, so a loaded machine only lowers the count.
    let ran = run.ran;
    let most = ran.as_secs_f64().ceil() as usize + 2;
    let seen = server.requests.load(Ordering::Relaxed);
    assert!(seen <= most, "{seen} requests in {ran:?}");
}

#[tokio::test]
async fn garbage_where_a_csrf_token_is_due_is_an_assertion_failure() {
    let server = serve(|mut stream, _path| async move {
        let body = garbage(64 * 1024);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await
    })
    .await;
    let mut case = Case::plain(
        &server,
        Outcome::AssertionFailed,
        "extract csrf_token: CSS selector matched nothing",
    );
    case.login = true;
    case.target_extra = r#"    credentials:
      username: { value: sw.demo }
      password: { env: CASEWATCH_PASSWORD }
    login:
      - name: login_page
        path: /login
        extract:
          - { var: csrf_token, css: 'input[name="csrf_token"]', attr: value }
      - name: login_submit
        method: POST
        path: /login
        form: { username: "${username}", password: "${password}", csrf_token: "${csrf_token}" }
    session_rules: { statuses: [401, 440] }"#
        .to_string();
    let text = run_case(case).await.text;
    assert!(
        metric(
            &text,
            "casewatch_step_outcomes_total",
            &[("step", "login_page"), ("outcome", "assertion_failed")]
        ) >= 1.0,
        "{text}"
    );
    assert!(!text.contains(PASSWORD));
}

// ---------------------------------------------------------------------------
// Servers that behave as real ones do (issue 21)
// ---------------------------------------------------------------------------

/// A server that closes each connection a moment after its answer, without
/// `Connection: close`: the next request on the kept-alive connection meets
/// a closed one ("connection closed before message completed"). The agent
/// sends such a GET again on a new connection and counts it; the steps are
/// `ok`, never a false `error`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_closes_after_each_answer_gives_no_false_errors() {
    let server = serve(|mut stream, _path| async move {
        let body = "<html><body>fine</body></html>";
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(answer.as_bytes()).await?;
        // The next request arrives on this connection meanwhile, unread.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(())
    })
    .await;
    let yaml = format!(
        r#"site: test-site
targets:
  - name: ics
    base_url: {}
    defaults: {{ slow_after: 1s, freeze_after: 2s, give_up_after: 5s }}
journeys:
  - name: pages
    target: ics
    login: false
    schedule: {{ interval: 500ms }}
    steps:
      - {{ name: one, path: /one }}
      - {{ name: two, path: /two }}
      - {{ name: three, method: HEAD, path: /three }}
"#,
        server.url("http")
    );
    let config = casewatch::config::from_yaml_str(&yaml, "closing.yaml")
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    let agent = start_agent(config).await;
    let text = wait_for(Duration::from_secs(30), "ten runs", || async {
        let text = agent.metrics().await;
        (metric(
            &text,
            "casewatch_journey_runs_total",
            &[("journey", "pages")],
        ) >= 10.0)
            .then_some(text)
    })
    .await;
    agent.stop().await;
    let outcomes = |o: &str| metric(&text, "casewatch_step_outcomes_total", &[("outcome", o)]);
    assert_eq!(outcomes("error"), 0.0, "{text}");
    assert!(outcomes("ok") >= 30.0, "{text}");
    assert!(
        metric(&text, "casewatch_http_retries_total", &[("target", "ics")]) >= 10.0,
        "{text}"
    );
}
