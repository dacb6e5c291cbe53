//! What an operator meets first: every flag explained, the book's Commands
//! chapter and `--help` agreeing on defaults, logs a log stack can parse (one JSON
//! object a line, each line on one stream), and ports that are taken before
//! any file is, with the demo moving aside when its default port is busy.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use casewatch::sim::SimProfile;
use clap::CommandFactory;

use crate::harness::{config_yaml, free_port, metric, start_sim, wait_for, PASSWORD};

fn casewatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_casewatch"))
}

/// Every argument of every subcommand, as `casewatch SUB --flag`.
fn arguments() -> Vec<(String, clap::Arg)> {
    fn walk(command: &clap::Command, path: String, out: &mut Vec<(String, clap::Arg)>) {
        for arg in command.get_arguments() {
            // A global flag is listed once, at the top.
            let inherited = arg.is_global_set() && path != "casewatch";
            if !inherited && !matches!(arg.get_id().as_str(), "help" | "version") {
                out.push((path.clone(), arg.clone()));
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, format!("{path} {}", sub.get_name()), out);
        }
    }
    let mut out = Vec::new();
    let mut cli = casewatch::cli::Cli::command();
    cli.build();
    walk(&cli, "casewatch".into(), &mut out);
    out
}

#[test]
fn every_flag_has_a_help_line() {
    let missing: Vec<String> = arguments()
        .into_iter()
        .filter(|(_, arg)| arg.get_help().is_none() && arg.get_long_help().is_none())
        .map(|(path, arg)| format!("{path} {}", arg.get_id()))
        .collect();
    assert!(missing.is_empty(), "no help text: {missing:?}");
}

/// The units of text of the book's Commands chapter (docs/src/commands.md),
/// which holds the flags: each table row, and each paragraph.
fn commands_blocks() -> Vec<String> {
    let text = std::fs::read_to_string("docs/src/commands.md").unwrap();
    let mut blocks = Vec::new();
    let mut paragraph = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with('|') {
            blocks.push(line.to_string());
        } else if line.trim().is_empty() {
            blocks.push(std::mem::take(&mut paragraph));
        } else {
            paragraph.push_str(line);
            paragraph.push('\n');
        }
    }
    blocks.push(paragraph);
    blocks
}

#[test]
fn the_commands_chapter_gives_every_default_that_help_gives() {
    let blocks = commands_blocks();
    let mut disagree = Vec::new();
    for (path, arg) in arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
            continue;
        }
        for default in arg.get_default_values() {
            let default = default.to_string_lossy();
            let flag = format!("--{long}");
            let said = blocks
                .iter()
                .any(|b| b.contains(&flag) && b.contains(default.as_ref()));
            if !said {
                disagree.push(format!("{path} {flag} (default {default})"));
            }
        }
    }
    assert!(
        disagree.is_empty(),
        "docs/src/commands.md names no flag and default together for: {disagree:#?}"
    );
}

/// A config with one quick anonymous journey on the simulator's ICS.
fn write_config(dir: &Path, ics: std::net::SocketAddr) -> std::path::PathBuf {
    let journey = "  - name: look\n    target: ics\n    login: false\n    schedule: { interval: 300ms }\n    steps:\n      - { name: home, path: /login }\n";
    let yaml = config_yaml("", journey).replace("http://127.0.0.1:1/", &format!("http://{ics}/"));
    let path = dir.join("casewatch.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Runs the agent in `format`, refuses a reload of a config with two
/// problems (an error of several lines), stops it, and returns its standard
/// output and error.
async fn run_and_refuse_a_reload(format: &str) -> (String, String) {
    let sim = start_sim(SimProfile::quiet()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), sim.ics);
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = casewatch()
        .args(["--log-format", format, "run", "--config"])
        .arg(&path)
        .args(["--listen", &addr, "--journal"])
        .arg(dir.path().join("journal.db"))
        .env("CASEWATCH_PASSWORD", PASSWORD)
        .env("CASEWATCH_LOG", "info")
        .env_remove("RUST_LOG")
        .env_remove("CASEWATCH_LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://{addr}/metrics");
    let scrape = || async { reqwest::get(&url).await.ok()?.text().await.ok() };
    wait_for(Duration::from_secs(30), "a run", || async {
        let text = scrape().await?;
        (metric(&text, "casewatch_journey_runs_total", &[]) >= 1.0).then_some(())
    })
    .await;
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("connect_timeout: 1s", "connect_timeout: 0s")
            .replace("target: ics\n    login", "target: icss\n    login"),
    )
    .unwrap();
    signal(&child, "HUP");
    wait_for(
        Duration::from_secs(20),
        "the reload to be refused",
        || async {
            let text = scrape().await?;
            (metric(&text, "casewatch_config_last_reload_successful", &[]) == 0.0).then_some(())
        },
    )
    .await;
    signal(&child, "TERM");
    let output = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut stdout = String::new();
        let mut stderr = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(status.code(), Some(0), "{stderr}");
        (stdout, stderr)
    })
    .await
    .unwrap();
    sim.stop().await;
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_a_line_with_a_refused_reload_in_one_field() {
    let (stdout, stderr) = run_and_refuse_a_reload("json").await;
    assert_eq!(stdout, "", "logs go to standard error only");
    let mut messages = Vec::new();
    let mut refused = None;
    for line in stderr.lines() {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"));
        for key in ["timestamp", "level", "target"] {
            assert!(event[key].is_string(), "no {key}: {line}");
        }
        assert!(
            chrono::DateTime::parse_from_rfc3339(event["timestamp"].as_str().unwrap()).is_ok(),
            "{line}"
        );
        let message = event["fields"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no fields.message: {line}"))
            .to_string();
        if message.starts_with("configuration reload refused") {
            refused = Some(event["fields"]["error"].as_str().unwrap().to_string());
            assert_eq!(event["level"], "ERROR");
        }
        messages.push(message);
    }
    for expected in ["agent started", "serving the status page", "stopped"] {
        assert!(
            messages.iter().any(|m| m.starts_with(expected)),
            "no {expected:?} in {messages:#?}"
        );
    }
    // The error of several lines is one field of one line, its line breaks
    // escaped by JSON.
    let refused = refused.unwrap_or_else(|| panic!("no refused reload in {stderr}"));
    assert!(refused.contains("2 problem(s):\n"), "{refused}");
    assert!(refused.contains("unknown target \"icss\""), "{refused}");
    assert!(
        refused.contains("connect_timeout must be above zero"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_keep_a_refused_reload_on_one_line() {
    let (stdout, stderr) = run_and_refuse_a_reload("text").await;
    assert_eq!(stdout, "", "logs go to standard error only");
    let line = stderr
        .lines()
        .find(|l| l.contains("configuration reload refused"))
        .unwrap_or_else(|| panic!("no refused reload in {stderr}"));
    assert!(line.contains("2 problem(s):\\n"), "{line}");
    assert!(
        line.contains("unknown target") && line.contains("must be above zero"),
        "{line}"
    );
}

/// Holds 127.0.0.1:9898 for the test if it is free; if another process
/// holds it, it is busy all the same.
fn hold_default_port() -> Option<std::net::TcpListener> {
    std::net::TcpListener::bind("127.0.0.1:9898").ok()
}

#[test]
fn demo_takes_a_free_port_when_the_default_is_busy_and_says_where() {
    let _held = hold_default_port();
    let dir = tempfile::tempdir().unwrap();
    let output = casewatch()
        .args(["demo", "--duration", "3s"])
        .current_dir(dir.path())
        .env("CASEWATCH_LOG", "warn")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("(127.0.0.1:9898 is in use, so the demo took a free port)"),
        "{stdout}"
    );
    let page = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("status page:"))
        .unwrap_or_else(|| panic!("no status page line: {stdout}"))
        .trim();
    assert!(page.starts_with("http://127.0.0.1:"), "{page}");
    assert_ne!(page, "http://127.0.0.1:9898/", "{stdout}");
    assert!(dir.path().join("casewatch-demo.db").exists());
}

#[test]
fn a_port_that_cannot_be_had_stops_a_command_before_it_creates_any_file() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    let path = write_config(&config, "127.0.0.1:1".parse().unwrap());
    let runs: [Vec<String>; 3] = [
        vec!["demo".into(), "--listen".into(), busy.clone()],
        vec!["demo".into(), "--ics-listen".into(), busy.clone()],
        vec![
            "run".into(),
            "--config".into(),
            path.display().to_string(),
            "--journal".into(),
            "journal.db".into(),
            "--listen".into(),
            busy.clone(),
        ],
    ];
    for args in runs {
        let output = casewatch()
            .args(&args)
            .current_dir(dir.path())
            .env("CASEWATCH_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot listen on {busy}"))
                || stderr.contains("Address already in use"),
            "{args:?}: {stderr}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|name| name != "config")
            .collect();
        assert!(left.is_empty(), "{args:?} left {left:?} behind");
    }
}

#[test]
fn sim_help_names_every_user_page_and_control_route() {
    let output = casewatch().args(["sim", "--help"]).output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for user in SimProfile::embedded_default().users {
        assert!(help.contains(&user), "{user} is not in sim --help");
    }
    let route = regex::Regex::new(r#"\.route\("([^"]+)""#).unwrap();
    for file in ["src/sim/app.rs", "src/sim/control.rs"] {
        let source = std::fs::read_to_string(file).unwrap();
        for found in route.captures_iter(&source) {
            let path = found[1].replace("{id}", "ID").replace("{name}", "NAME");
            if path == "/" {
                continue;
            }
            assert!(help.contains(&path), "{file}: {path} is not in sim --help");
        }
    }
    for form in [
        "csrf_token",
        "note-form",
        "textarea note",
        "username, password",
    ] {
        assert!(help.contains(form), "{form} is not in sim --help");
    }
}

/// `Key=value` lines of the packaged unit, in order.
fn unit() -> Vec<(String, String)> {
    std::fs::read_to_string("packaging/casewatch.service")
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn the_unit_runs_the_packaged_config_hardened_with_room_for_its_connections() {
    let unit = unit();
    let get = |key: &str| {
        unit.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("the unit has no {key}="))
    };
    for (key, value) in [
        ("User", "casewatch"),
        ("StateDirectory", "casewatch"),
        ("ConfigurationDirectory", "casewatch"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("Restart", "on-failure"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("EnvironmentFile", "-/etc/casewatch/casewatch.env"),
        (
            "ExecStartPre",
            "/usr/bin/casewatch check-config /etc/casewatch/casewatch.yaml",
        ),
        (
            "ExecStart",
            "/usr/bin/casewatch run --config /etc/casewatch/casewatch.yaml $ARGS",
        ),
    ] {
        assert_eq!(get(key), value, "{key}");
    }
    // No secret on a command line: the config names variables, which
    // systemd reads from the root-only environment file.
    assert!(!unit
        .iter()
        .any(|(k, v)| k.starts_with("Exec") && v.contains("PASSWORD")));
    // Browser journeys need what Chromium's JavaScript engine does.
    assert!(!unit.iter().any(|(k, _)| k == "MemoryDenyWriteExecute"));

    let limit: u64 = get("LimitNOFILE").parse().unwrap();
    let config = casewatch::config::load(Path::new("packaging/casewatch.yaml"))
        .unwrap_or_else(|e| panic!("the packaged config: {e}"))
        .config;
    assert!(limit >= casewatch::agent::descriptors_needed(&config));
    // Every web connection the endpoints allow, beside a large agent's.
    assert!(
        limit
            >= casewatch::web::MAX_CONNECTIONS as u64
                + casewatch::agent::DESCRIPTOR_RESERVE
                + 2 * 7000,
        "LimitNOFILE={limit}"
    );
}

#[test]
fn the_packaged_config_passes_check_config_and_names_its_journal_in_the_state_directory() {
    let output = casewatch()
        .args(["check-config", "--offline", "packaging/casewatch.yaml"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let loaded = casewatch::config::load(Path::new("packaging/casewatch.yaml")).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let journal = loaded.config.journal.unwrap().path;
    assert!(journal.starts_with("/var/lib/casewatch"), "{journal:?}");
    // Valid as shipped and needing no secret, so a fresh install's
    // check-config passes before anything is filled in.
    assert!(loaded.config.requirements.iter().all(|r| !matches!(
        r.need,
        casewatch::config::Need::Secret { .. } | casewatch::config::Need::Browser
    )));
}
