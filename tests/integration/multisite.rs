//! Three office sites, live (issue 10): three agents on one simulated ICS,
//! scraped by one real Prometheus through the shipped config and a file_sd
//! list, evaluating the shipped rules on a time scale of 1/12 (two minutes
//! pass in ten seconds; the shipped files themselves are proven at
//! production rates by the promtool scenarios in config/alerts/tests/).
//!
//! - Two independent drops at two sites, six (scaled) minutes apart, never
//!   raise the multi-site page, not even as pending.
//! - A common cause, every session dropped at once, pages.
//! - A freeze seen from one office only (its network stalls, through a
//!   relay) reads "this office's network" on the Operations panel; a freeze
//!   of the system itself reads "the system" from every office.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use casewatch::config;
use casewatch::sim::SimProfile;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::harness::*;
use crate::prometheus::{rules_scaled_down, Prometheus};

/// A TCP relay standing for one office's network: it forwards both ways
/// until stalled, then holds every answer until released.
struct Relay {
    addr: SocketAddr,
    stalled: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Relay {
    async fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stalled, watch) = watch::channel(false);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let watch = watch.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let up = tokio::io::copy(&mut client_read, &mut server_write);
                    let down = async move {
                        let mut watch = watch;
                        let mut buffer = [0u8; 8192];
                        loop {
                            let n = server_read.read(&mut buffer).await?;
                            if n == 0 {
                                break;
                            }
                            while *watch.borrow_and_update() {
                                if watch.changed().await.is_err() {
                                    return Ok::<_, std::io::Error>(());
                                }
                            }
                            client_write.write_all(&buffer[..n]).await?;
                        }
                        client_write.shutdown().await
                    };
                    let _ = tokio::join!(up, down);
                });
            }
        });
        Relay {
            addr,
            stalled,
            accept,
        }
    }

    fn stall(&self, stalled: bool) {
        self.stalled.send_replace(stalled);
    }
}

const SITES: [&str; 3] = ["north-office", "south-office", "east-office"];

fn site_config(site: &str, ics: &str, sim: &TestSim) -> config::Config {
    let keep = "keep_sessions: { count: 1, every: 1s, max_age: 1h, keepalive: { name: keepalive_home, path: /home } }";
    let yaml = config_yaml(
        keep,
        "  - { name: ping, target: ics, login: false, schedule: { interval: 1s }, steps: [{ name: ping, path: /ping }] }\n",
    )
    .replace("site: test-site", &format!("site: {site}"));
    let mut urls = sim.base_urls();
    urls.insert("ics".to_string(), ics.to_string());
    config::from_yaml_str_with_base_urls(&yaml, "test.yaml", &urls)
        .unwrap_or_else(|e| panic!("test config is valid: {e}"))
        .config
}

async fn forced_logouts(agent: &TestAgent) -> f64 {
    metric(
        &agent.metrics().await,
        "casewatch_forced_logouts_total",
        &[("target", "ics")],
    )
}

async fn all_forced_logouts(agents: &[TestAgent]) -> Vec<f64> {
    let mut counts = Vec::new();
    for agent in agents {
        counts.push(forced_logouts(agent).await);
    }
    counts
}

/// The index of the one site whose count rose since `before`.
async fn wait_for_one_drop(agents: &[TestAgent], before: &[f64]) -> usize {
    wait_for(
        Duration::from_secs(20),
        "one site to lose its session",
        || async {
            let now = all_forced_logouts(agents).await;
            let risen: Vec<usize> = (0..agents.len()).filter(|&i| now[i] > before[i]).collect();
            (risen.len() == 1).then(|| risen[0])
        },
    )
    .await
}

/// The Operations panel's "Network or system?" query.
fn verdict_query() -> String {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string("dashboards/casewatch-operations.json").unwrap(),
    )
    .unwrap();
    dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == "Network or system?")
        .expect("the Operations dashboard has the Network or system? panel")["targets"][0]["expr"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The panel's reading for `site` on the ICS: 0 normal, 1 this office's
/// network, 2 the system.
async fn verdict(prometheus: &Prometheus, site: &str) -> Option<f64> {
    let expr = verdict_query()
        .replace("$site", site)
        .replace("$target", ".*");
    let result = prometheus.vector(&expr).await;
    result
        .iter()
        .find(|r| r["metric"]["target"] == "ics")
        .and_then(|r| r["value"][1].as_str()?.parse().ok())
}

async fn wait_for_verdicts(prometheus: &Prometheus, expected: &[(&str, f64)], what: &str) {
    wait_for(Duration::from_secs(30), what, || async {
        for (site, value) in expected {
            if verdict(prometheus, site).await != Some(*value) {
                return None;
            }
        }
        Some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sites_page_on_a_common_cause_only_and_tell_an_office_network_from_the_system() {
    let (Some(prometheus_bin), Some(_promtool)) =
        (require_tool("prometheus"), require_tool("promtool"))
    else {
        return;
    };
    let sim = start_sim(SimProfile::quiet()).await;
    // east-office reaches the ICS through its own network, the relay.
    let relay = Relay::start(sim.ics).await;
    let ics_urls: HashMap<&str, String> = HashMap::from([
        ("north-office", format!("http://{}/", sim.ics)),
        ("south-office", format!("http://{}/", sim.ics)),
        ("east-office", format!("http://{}/", relay.addr)),
    ]);
    // One after the other, each with its kept session logged in, so the
    // simulator's "oldest session" is north's, then south's.
    let mut agents = Vec::new();
    for site in SITES {
        let agent = start_agent(site_config(site, &ics_urls[site], &sim)).await;
        wait_for(Duration::from_secs(20), "a kept session", || async {
            let text = agent.metrics().await;
            (metric(&text, "casewatch_sessions_active", &[("target", "ics")]) >= 1.0).then_some(())
        })
        .await;
        agents.push(agent);
    }
    let rules = rules_scaled_down(12);
    let scraped: Vec<(SocketAddr, &str)> =
        agents.iter().zip(SITES).map(|(a, s)| (a.addr, s)).collect();
    let prometheus = Prometheus::start(&prometheus_bin, &scraped, "", rules.path()).await;
    prometheus.wait_until_scraping().await;
    for site in SITES {
        let up = format!(r#"up{{job="casewatch",site="{site}"}} == 1"#);
        assert_eq!(prometheus.vector(&up).await.len(), 1, "{site}");
    }

    // Independent drops at two sites, 6 scaled minutes (30 s) apart.
    let before = all_forced_logouts(&agents).await;
    sim.control("logout", json!({"which": "oldest", "count": 1}))
        .await;
    let first = wait_for_one_drop(&agents, &before).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let before = all_forced_logouts(&agents).await;
    sim.control("logout", json!({"which": "oldest", "count": 1}))
        .await;
    let second = wait_for_one_drop(&agents, &before).await;
    assert_ne!(first, second, "the two drops were at one site");
    // Past the 2-minute (10 s) window and a few evaluations more.
    tokio::time::sleep(Duration::from_secs(14)).await;
    // The page never even went pending...
    let raised = prometheus
        .vector(r#"max_over_time(ALERTS{alertname="CasewatchForcedLogoutsMultipleSites"}[5m])"#)
        .await;
    assert!(
        raised.is_empty(),
        "independent drops raised the page: {raised:?}"
    );
    // ... though the rules saw each drop, one site at a time.
    let seen = prometheus
        .vector(r#"max_over_time(target:casewatch_forced_logout_sites:count2m{target="ics"}[2m])"#)
        .await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["value"][1], "1", "{seen:?}");

    // A common cause: every session on the ICS dropped at once.
    sim.control("logout", json!({"which": "all"})).await;
    prometheus
        .wait_for_firing(
            "CasewatchForcedLogoutsMultipleSites",
            Duration::from_secs(30),
        )
        .await;
    let page = prometheus
        .alerts("CasewatchForcedLogoutsMultipleSites")
        .await;
    let firing: Vec<&Value> = page.iter().filter(|a| a["state"] == "firing").collect();
    assert_eq!(firing.len(), 1, "{page:?}");
    assert_eq!(firing[0]["labels"]["target"], "ics");
    assert_eq!(firing[0]["labels"]["severity"], "page");
    let sites: f64 = firing[0]["value"].as_str().unwrap().parse().unwrap();
    assert_eq!(sites, 3.0, "{page:?}");

    // Network or system? All normal first.
    wait_for_verdicts(
        &prometheus,
        &[("north-office", 0.0), ("east-office", 0.0)],
        "all normal",
    )
    .await;
    // East's network stalls: a freeze seen from one office only.
    relay.stall(true);
    wait_for_verdicts(
        &prometheus,
        &[
            ("east-office", 1.0),
            ("north-office", 0.0),
            ("south-office", 0.0),
        ],
        "east to read as its own network",
    )
    .await;
    relay.stall(false);
    wait_for_verdicts(&prometheus, &[("east-office", 0.0)], "east to recover").await;
    // The system itself freezes: every office sees it.
    sim.control("freeze", json!({"seconds": 15.0, "system": "ics"}))
        .await;
    wait_for_verdicts(
        &prometheus,
        &[
            ("east-office", 2.0),
            ("north-office", 2.0),
            ("south-office", 2.0),
        ],
        "every office to read the system",
    )
    .await;

    for agent in agents {
        agent.stop().await;
    }
    sim.stop().await;
}
