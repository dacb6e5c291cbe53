//! Where a step's time went (issue 10): DNS, connect, TLS, first byte and
//! transfer, against a TLS server that spends a known time in each phase,
//! and their way into `once`, `/metrics` and the journal.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use casewatch::outcome::{Outcome, PlannedRun, RunRecord};
use casewatch::sim::SimProfile;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::rustls;

use crate::harness::*;

/// How long the server spends before each part of its answer.
#[derive(Clone, Copy)]
struct Delays {
    /// After accepting TCP, before answering the ClientHello.
    handshake: Duration,
    /// After reading a request, before the response headers.
    first_byte: Duration,
    /// Between the response headers and the body.
    transfer: Duration,
}

/// An HTTPS server for `localhost` (a certificate from its own test CA),
/// keeping connections alive across requests.
struct SlowTls {
    addr: SocketAddr,
    ca_file: tempfile::NamedTempFile,
    accept: JoinHandle<()>,
}

impl Drop for SlowTls {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve_slow_tls(delays: Delays) -> SlowTls {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "casewatch phases test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_file.path(), ca_cert.pem()).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // Each write goes out at once: with Nagle's algorithm the body
            // would wait for the client's delayed ACK, real time that a
            // paused clock cannot see.
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delays.handshake).await;
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let _ = keep_answering(tls, delays).await;
            });
        }
    });
    SlowTls {
        addr,
        ca_file,
        accept,
    }
}

/// Answers every request on one connection with a small page.
async fn keep_answering<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    delays: Delays,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
        let end = buffer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        buffer.drain(..end);
        tokio::time::sleep(delays.first_byte).await;
        let body = b"<p>phases</p>";
        stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )
            .await?;
        stream.flush().await?;
        tokio::time::sleep(delays.transfer).await;
        stream.write_all(body).await?;
        stream.flush().await?;
    }
}

fn slow_config(server: &SlowTls, host: &str) -> String {
    format!(
        r#"site: test-site
targets:
  - name: slow
    base_url: https://{host}:{port}/
    tls: {{ ca_file: {ca:?} }}
    connect_timeout: 2s
    defaults: {{ slow_after: 2s, freeze_after: 4s, give_up_after: 8s }}
journeys:
  - name: two_pages
    target: slow
    login: false
    schedule: {{ interval: 1s }}
    steps:
      - {{ name: first, path: /a }}
      - {{ name: second, path: /b }}
"#,
        port = server.addr.port(),
        ca = server.ca_file.path(),
    )
}

async fn run_once(yaml: &str) -> RunRecord {
    let config =
        casewatch::config::from_yaml_str_with_base_urls(yaml, "test.yaml", &HashMap::new())
            .unwrap_or_else(|e| panic!("test config is valid: {e}"))
            .config;
    let journey = config.journeys[0].clone();
    let client = casewatch::runner::client_for(&journey.target).unwrap();
    let ctx = casewatch::runner::RunContext {
        client: &client,
        probes: None,
    };
    casewatch::runner::run_journey(&ctx, &journey, HashMap::new(), &PlannedRun::now(1)).await
}

fn ms(d: Option<Duration>) -> u128 {
    d.map(|d| d.as_millis()).unwrap_or(0)
}

const DELAYS: Delays = Delays {
    handshake: Duration::from_millis(300),
    first_byte: Duration::from_millis(200),
    transfer: Duration::from_millis(150),
};

/// Within a millisecond of tokio's timer wheel, with a paused clock.
const TICK: u128 = 2;

/// With tokio's clock paused, time moves only when every task waits on a
/// timer: the server's three sleeps are the only time that passes, and CPU
/// work (the handshake's crypto, a loaded machine) takes none. Each phase
/// must hold exactly the server's delay for it, and the phases must add up
/// to the step: a phase measured from the wrong moment, or one counted in
/// another's place (the handshake wait as connect time, TLS inside first
/// byte), is off by a whole delay. How closely the phases match on a real
/// clock is a benchmark figure (benches/NOTES.md, "Timing asserts moved
/// out of the tests").
#[tokio::test(start_paused = true)]
async fn each_phase_gets_the_time_the_server_spent_in_it() {
    let server = serve_slow_tls(DELAYS).await;
    let run = run_once(&slow_config(&server, "localhost")).await;
    assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    let first = &run.steps[0].phases;
    let within = |got: Option<Duration>, want: Duration| {
        let (got, want) = (ms(got), want.as_millis());
        got >= want && got < want + TICK
    };
    // A name is resolved; the TCP connect is the kernel's (no time on the
    // paused clock); the server's wait before the handshake is TLS time,
    // not connect time.
    assert!(first.dns.is_some(), "{first:?}");
    assert!(ms(first.connect) < TICK, "{first:?}");
    assert!(within(first.tls, DELAYS.handshake), "{first:?}");
    assert!(within(first.first_byte, DELAYS.first_byte), "{first:?}");
    assert!(within(first.transfer, DELAYS.transfer), "{first:?}");
    // The phases add up to the step.
    let sum: Duration = [
        first.dns,
        first.connect,
        first.tls,
        first.first_byte,
        first.transfer,
    ]
    .into_iter()
    .flatten()
    .sum();
    let total = run.steps[0].duration;
    assert!(
        sum <= total && (total - sum).as_millis() < TICK,
        "{sum:?} of {total:?}"
    );

    // The second step reuses the connection: no DNS, connect or TLS.
    let second = &run.steps[1].phases;
    assert_eq!((second.dns, second.connect, second.tls), (None, None, None));
    assert!(within(second.first_byte, DELAYS.first_byte), "{second:?}");
    assert!(within(second.transfer, DELAYS.transfer), "{second:?}");
}

#[tokio::test]
async fn an_address_is_not_resolved_and_plain_http_has_no_tls() {
    let sim = start_sim(SimProfile::quiet()).await;
    let yaml = config_yaml(
        "",
        "  - { name: ping, target: ics, login: false, schedule: { interval: 1s }, steps: [{ name: ping, path: /ping }] }\n",
    );
    let run = run_first_journey(&yaml, &sim, PASSWORD).await;
    assert_eq!(run.outcome, Outcome::Ok, "{run:?}");
    let phases = run.steps[0].phases;
    assert_eq!(phases.dns, None, "{phases:?}");
    assert!(phases.connect.is_some(), "{phases:?}");
    assert_eq!(phases.tls, None, "{phases:?}");
    assert!(phases.first_byte.is_some() && phases.transfer.is_some());
    sim.stop().await;
}

#[tokio::test(start_paused = true)]
async fn once_prints_the_phases_of_every_step() {
    let server = serve_slow_tls(DELAYS).await;
    let run = run_once(&slow_config(&server, "localhost")).await;
    let table = casewatch::commands::run_table(&run);
    for header in [
        "dns ms",
        "connect ms",
        "tls ms",
        "first byte ms",
        "transfer ms",
    ] {
        assert!(table.contains(header), "{table}");
    }
    let first_row = table.lines().find(|l| l.starts_with("│ first ")).unwrap();
    let tls_ms = format!(
        "{:.1}",
        run.steps[0].phases.tls.unwrap().as_secs_f64() * 1e3
    );
    assert!(first_row.contains(&tls_ms), "{first_row}");
    // The reused connection shows dashes for the phases it skipped.
    let second_row = table.lines().find(|l| l.starts_with("│ second ")).unwrap();
    assert!(second_row.matches(" - ").count() >= 3, "{second_row}");
}

#[tokio::test]
async fn the_agent_exports_phases_and_journals_them() {
    let server = serve_slow_tls(Delays {
        handshake: Duration::from_millis(100),
        first_byte: Duration::from_millis(50),
        transfer: Duration::from_millis(20),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    let yaml = format!(
        "{}journal: {{ path: {:?} }}\n",
        slow_config(&server, "localhost"),
        journal
    );
    let config =
        casewatch::config::from_yaml_str_with_base_urls(&yaml, "test.yaml", &HashMap::new())
            .unwrap()
            .config;
    let agent = start_agent(config).await;
    // Every phase's series exists from the start, at zero.
    let text = agent.metrics().await;
    for phase in ["dns", "connect", "tls", "first_byte", "transfer"] {
        assert_eq!(
            series(
                &text,
                "casewatch_http_phase_seconds_count",
                &[("target", "slow"), ("phase", phase)]
            )
            .len(),
            1,
            "{phase}"
        );
    }
    wait_for(Duration::from_secs(20), "two runs", || async {
        let text = agent.metrics().await;
        (metric(
            &text,
            "casewatch_journey_runs_total",
            &[("journey", "two_pages"), ("outcome", "ok")],
        ) >= 2.0)
            .then_some(())
    })
    .await;
    let text = agent.metrics().await;
    let count = |phase| {
        metric(
            &text,
            "casewatch_http_phase_seconds_count",
            &[("site", "test-site"), ("target", "slow"), ("phase", phase)],
        )
    };
    // Two steps a run; only the first of each run makes a connection (the
    // pool keeps it for the second, and runs a second apart reuse it too).
    assert!(count("first_byte") >= 4.0);
    assert!(count("transfer") >= 4.0);
    assert!(count("tls") >= 1.0 && count("tls") < count("first_byte"));
    assert!(count("connect") == count("tls") && count("dns") == count("tls"));
    let tls_sum = metric(
        &text,
        "casewatch_http_phase_seconds_sum",
        &[("target", "slow"), ("phase", "tls")],
    );
    assert!(tls_sum >= 0.1 * count("tls"), "{tls_sum}");
    agent.stop().await;

    let conn = rusqlite::Connection::open(&journal).unwrap();
    let (with_tls, total, first_byte_ok): (i64, i64, i64) = conn
        .query_row(
            "SELECT count(tls), count(*), sum(first_byte >= 0.05) FROM steps",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert!(total >= 4, "{total}");
    assert!(with_tls >= 1 && with_tls < total, "{with_tls} of {total}");
    assert_eq!(first_byte_ok, total);
    let reused: Option<f64> = conn
        .query_row(
            "SELECT connect FROM steps WHERE step = 'second' LIMIT 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(reused, None);
}
