//! The board's report from the central store agrees with the report from
//! the journals: three agents (three sites, one of them against a slower
//! system) journal and push to a real Prometheus and a real
//! VictoriaMetrics at once; one agent is stopped for a while and started
//! again (a gap, and counters that start again from zero). The fleet
//! report from each store then has the journals' counts exactly, p95
//! within one bucket, the same sites worse and the same verdicts; the gap
//! is named unmeasured.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use casewatch::sim::SimProfile;
use serde_json::{json, Value};

use crate::central_store::{agent_yaml, start_agent_process, Engine, RunningAgent, Store};
use crate::harness::*;

const SITES: [&str; 3] = ["north-office", "south-office", "east-office"];
/// The step-duration histogram's bounds (seconds) for this config.
const BOUNDS: [f64; 18] = [
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    3.0,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
    120.0,
    300.0,
    f64::INFINITY,
];

fn bucket(ms: f64) -> usize {
    BOUNDS
        .iter()
        .position(|b| ms / 1000.0 <= b * (1.0 + 1e-9))
        .unwrap_or(BOUNDS.len())
}

fn start_agent(
    site: &'static str,
    sim: &TestSim,
    dir: &Path,
    stores: &[(Engine, String)],
) -> RunningAgent {
    let mut yaml = agent_yaml(site, sim, dir, stores, false);
    yaml.push_str(&format!(
        "journal:\n  path: {}\n",
        dir.join(format!("journals/{site}.db")).display()
    ));
    start_agent_process(site, &yaml, dir)
}

async fn serving(agent: &RunningAgent) {
    wait_for(Duration::from_secs(30), "the agent to serve", || async {
        let url = format!("http://{}/-/healthy", agent.addr);
        reqwest::get(&url)
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .map(|_| ())
    })
    .await;
}

fn report(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_casewatch"))
        .arg("report")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "report {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_from_prometheus_and_victoriametrics_agrees_with_the_journals() {
    let (Some(prometheus), Some(victoria)) =
        (require_tool("prometheus"), require_tool("victoria-metrics"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("journals")).unwrap();
    let sim = start_sim(SimProfile::quiet()).await;
    let mut slow = SimProfile::quiet();
    slow.latency.page = serde_json::from_value(json!({"median": "120ms", "p99": "600ms"})).unwrap();
    let slow_sim = start_sim(slow).await;
    let mut stores = Vec::new();
    for (engine, binary) in [
        (Engine::Prometheus, prometheus),
        (Engine::Victoria, victoria),
    ] {
        let store_dir = dir.path().join(format!("{engine:?}"));
        std::fs::create_dir_all(&store_dir).unwrap();
        let mut store = Store {
            engine,
            binary,
            port: free_port(),
            dir: store_dir,
            process: None,
            http: reqwest::Client::new(),
        };
        store.start().await;
        stores.push(store);
    }
    let refs: Vec<(Engine, String)> = stores.iter().map(|s| (s.engine, s.write_url())).collect();
    let from = SystemTime::now() - Duration::from_secs(5);
    let mut agents = Vec::new();
    for site in SITES {
        let target = if site == "south-office" {
            &slow_sim
        } else {
            &sim
        };
        agents.push(start_agent(site, target, dir.path(), &refs));
    }
    for agent in &agents {
        serving(agent).await;
    }
    tokio::time::sleep(Duration::from_secs(40)).await;
    // Every session at the healthy system dropped: forced logouts to count.
    sim.control("logout", json!({"which": "all"})).await;
    tokio::time::sleep(Duration::from_secs(10)).await;

    // East goes down for a while and comes back: a gap, counters from zero.
    let east = agents.pop().unwrap();
    east.process.stop();
    tokio::time::sleep(Duration::from_secs(40)).await;
    let east = start_agent("east-office", &sim, dir.path(), &refs);
    serving(&east).await;
    agents.push(east);
    tokio::time::sleep(Duration::from_secs(40)).await;
    for agent in agents {
        agent.process.stop();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let to = SystemTime::now();
    let window = [
        "--from".to_string(),
        rfc3339(from),
        "--to".to_string(),
        rfc3339(to),
    ];
    let window: Vec<&str> = window.iter().map(String::as_str).collect();

    let journals = dir.path().join("journals");
    let mut args = vec!["--journal", journals.to_str().unwrap()];
    args.extend(&window);
    let expected = report(&args);
    for store in &stores {
        let url = store.url();
        let mut args = vec!["--prometheus", url.as_str()];
        args.extend(&window);
        // A store makes the last pushes searchable a little after they
        // arrive (VictoriaMetrics caches recent results): ask again, for at
        // most half a minute, until it holds every run the journals hold.
        let runs = |r: &Value| -> Vec<Value> {
            r["sites"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["runs"].clone())
                .collect()
        };
        let mut central = report(&args);
        for _ in 0..10 {
            if runs(&central) == runs(&expected) {
                break;
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
            central = report(&args);
        }
        let what = format!("{:?}", store.engine);
        for site in SITES {
            let row = |r: &Value| {
                r["sites"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| s["site"] == site)
                    .cloned()
                    .unwrap_or_else(|| panic!("{what}: no row for {site}"))
            };
            let (want, got) = (row(&expected), row(&central));
            assert!(want["runs"].as_u64().unwrap() > 20, "{site}: {want}");
            eprintln!(
                "{what} {site}: runs {} steps {} logouts {} p95 {} (journals: {} {} {} {})",
                got["runs"],
                got["steps"],
                got["forced_logouts"],
                got["p95_ms"]["value"],
                want["runs"],
                want["steps"],
                want["forced_logouts"],
                want["p95_ms"]["value"]
            );
            for field in [
                "runs",
                "successes",
                "steps",
                "given_up",
                "freezes",
                "forced_logouts",
            ] {
                assert_eq!(
                    got[field], want[field],
                    "{what} {site} {field}: {got} against {want}"
                );
            }
            let p95 = |r: &Value| r["p95_ms"]["value"].as_f64().unwrap();
            let (a, b) = (bucket(p95(&want)), bucket(p95(&got)));
            assert!(
                a.abs_diff(b) <= 1,
                "{what} {site}: p95 {} against {}",
                p95(&got),
                p95(&want)
            );
        }
        eprintln!(
            "{what}: worse {} against {}; {:?}",
            central["worse"], expected["worse"], central["methods"]["unmeasured"]
        );
        assert_eq!(central["worse"], expected["worse"], "{what}: sites worse");
        let verdicts = |r: &Value| -> Vec<String> {
            r["comparisons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| format!("{} {}", c["site"], c["verdict"]))
                .collect()
        };
        assert_eq!(verdicts(&central), verdicts(&expected), "{what}: verdicts");
        // The gap is named unmeasured, and east's report has no run in it.
        let gaps = central["methods"]["unmeasured"]
            .as_str()
            .unwrap_or_default();
        assert!(gaps.contains("east-office"), "{what}: {gaps:?}");
        let mut args = vec!["--prometheus", url.as_str(), "--site", "east-office"];
        args.extend(&window);
        let east = report(&args);
        assert!(east["methods"]["unmeasured"]
            .as_str()
            .unwrap_or_default()
            .contains("east-office"));
    }
    sim.stop().await;
    slow_sim.stop().await;
}
