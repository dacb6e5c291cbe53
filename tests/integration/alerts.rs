//! The shipped alert and recording rules (issue 10): promtool's unit tests,
//! including the production-rate scenarios of config/alerts/tests/ (one
//! failure of a 5-minute journey pages nobody, three in a row do, one
//! failure of a 15-minute report pages nobody, the volume guard holds for 3
//! days, independent drops at 2 of 40 sites page nobody while a common
//! cause does, keep-alive noise pages nobody, each silent site is named),
//! and no recording rule that nothing reads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;

use crate::harness::require_tool;

fn promtool_test(file: &str) {
    let Some(promtool) = require_tool("promtool") else {
        return;
    };
    let output = Command::new(promtool)
        .args(["test", "rules", file])
        .current_dir("config/alerts/tests")
        .output()
        .expect("promtool runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("SUCCESS"),
        "promtool test rules {file}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_alert_fires_with_its_labels_and_text_and_is_silent_when_all_is_well() {
    promtool_test("casewatch.test.yml");
}

#[test]
fn promtool_scenarios_at_production_rates_page_only_when_it_matters() {
    promtool_test("scenarios.test.yml");
}

#[test]
fn promtool_scenarios_over_days_hold_the_volume_guard_and_ignore_keepalive_noise() {
    promtool_test("scenarios-days.test.yml");
}

#[test]
fn time_lost_rules_add_up_to_the_minutes_worked_out_by_hand() {
    promtool_test("time-lost.test.yml");
}

/// The scenario files and the dashboards are generated; what is checked in
/// is what the generators write.
#[test]
fn generated_scenarios_and_dashboards_are_up_to_date() {
    let Some(python) = require_tool("python3") else {
        return;
    };
    for script in ["scripts/alert-scenarios.py", "scripts/dashboards.py"] {
        let output = Command::new(&python)
            .args([script, "--check"])
            .output()
            .expect("python3 runs");
        assert!(
            output.status.success(),
            "{script} --check:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    record: Option<String>,
    alert: Option<String>,
    expr: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Every rule file Prometheus loads (`rule_files: [alerts/*.yml]`).
fn rule_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir("config/alerts")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    files
}

fn rules(path: &str) -> Vec<Rule> {
    let text = std::fs::read_to_string(path).unwrap();
    let file: RuleFile = marked_yaml::from_yaml(0, &text).unwrap();
    file.groups.into_iter().flat_map(|g| g.rules).collect()
}

fn dashboard_exprs() -> Vec<String> {
    let mut exprs = Vec::new();
    for entry in std::fs::read_dir("dashboards").unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut stack = vec![&dashboard];
        while let Some(value) = stack.pop() {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::String(expr)) = map.get("expr") {
                        exprs.push(expr.clone());
                    }
                    stack.extend(map.values());
                }
                serde_json::Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
    }
    exprs
}

/// Whether `expr` reads the series `name` (a whole metric name, not a
/// prefix of a longer one).
fn reads(expr: &str, name: &str) -> bool {
    expr.match_indices(name).any(|(at, _)| {
        let before = expr[..at].chars().next_back();
        let after = expr[at + name.len()..].chars().next();
        let part = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        !part(before) && !part(after)
    })
}

#[test]
fn every_recording_rule_is_read_by_an_alert_or_a_dashboard() {
    let recording = rules("config/alerts/casewatch.rules.yml");
    let alerts = rules("config/alerts/casewatch.alerts.yml");
    assert!(alerts.iter().all(|r| r.alert.is_some()));
    let mut readers: Vec<String> = alerts.iter().map(|r| r.expr.clone()).collect();
    readers.extend(dashboard_exprs());
    let defined: BTreeMap<String, String> = recording
        .iter()
        .map(|r| {
            (
                r.record.clone().expect("only recording rules"),
                r.expr.clone(),
            )
        })
        .collect();
    // A rule is used when an alert or a dashboard reads it, or a used rule.
    let mut used: BTreeSet<String> = BTreeSet::new();
    loop {
        let mut grew = false;
        for name in defined.keys() {
            if used.contains(name) {
                continue;
            }
            let by_rule = used.iter().any(|u| reads(&defined[u], name));
            if by_rule || readers.iter().any(|e| reads(e, name)) {
                used.insert(name.clone());
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    let unused: Vec<&String> = defined.keys().filter(|n| !used.contains(*n)).collect();
    assert!(
        unused.is_empty(),
        "recording rules nothing reads: {unused:?}"
    );
    assert!(
        defined.len() >= 30,
        "only {} recording rules",
        defined.len()
    );
}

/// Alert names are unique across every rule file, so a name (and its
/// runbook anchor) means one alert.
#[test]
fn alert_names_are_unique_across_every_rule_file() {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for file in rule_files() {
        for rule in rules(&file) {
            let Some(name) = rule.alert else { continue };
            if let Some(first) = seen.insert(name.clone(), file.clone()) {
                panic!("alert {name} is defined in {first} and again in {file}");
            }
        }
    }
    assert!(seen.len() >= 15, "only {} alerts", seen.len());
}

/// Each alert's `runbook_url` is the operator's runbook address (the
/// external label casewatch_runbook_url) plus the alert's own anchor, never
/// an address of ours; each anchor is in config/alerts/RUNBOOK.md exactly
/// once; and that file is the one copy of the runbook: the book's chapter
/// includes it, and neither the README nor another chapter copies it
/// (tests/integration/docs.rs checks the book renders it).
#[test]
fn every_alert_has_its_runbook_section_and_the_runbook_is_in_one_place() {
    let runbook = std::fs::read_to_string("config/alerts/RUNBOOK.md").unwrap();
    let mut anchors = BTreeSet::new();
    for file in rule_files() {
        for rule in rules(&file) {
            let Some(name) = rule.alert else { continue };
            let anchor = format!("alert-{}", name.to_lowercase());
            assert_eq!(
                rule.annotations.get("runbook_url").map(String::as_str),
                Some(
                    format!(
                        "{{{{ with $externalLabels.casewatch_runbook_url }}}}{{{{ . }}}}#{anchor}{{{{ end }}}}"
                    )
                    .as_str()
                ),
                "{file}: {name}: runbook_url"
            );
            assert!(anchors.insert(anchor.clone()), "{name}: anchor twice");
            let tag = format!("<a id=\"{anchor}\"></a>");
            assert_eq!(
                runbook.matches(&tag).count(),
                1,
                "RUNBOOK.md must have one section for {name}"
            );
        }
    }
    // No runbook anchor is left without its alert, or doubled.
    let mut found = BTreeSet::new();
    for (at, _) in runbook.match_indices("<a id=\"alert-") {
        let rest = &runbook[at + "<a id=\"".len()..];
        let anchor = &rest[..rest.find('"').unwrap()];
        assert!(
            found.insert(anchor.to_string()),
            "RUNBOOK.md: {anchor} twice"
        );
    }
    assert_eq!(
        found, anchors,
        "RUNBOOK.md: runbook anchors and alerts differ"
    );
    // The book's chapter is the file itself.
    assert_eq!(
        std::fs::read_to_string("docs/src/runbook.md")
            .unwrap()
            .trim(),
        "{{#include ../../config/alerts/RUNBOOK.md}}"
    );
    // No other document holds a runbook section, and none gives a wrong
    // command.
    assert!(!runbook.contains("check-config --config"));
    let mut others = vec![PathBuf::from("README.md")];
    others.extend(
        std::fs::read_dir("docs/src")
            .unwrap()
            .map(|entry| entry.unwrap().path()),
    );
    for doc in &others {
        let text = std::fs::read_to_string(doc).unwrap();
        assert!(
            !text.contains("<a id=\"alert-"),
            "{} copies a runbook section: the runbook lives in config/alerts/RUNBOOK.md only",
            doc.display()
        );
        assert!(!text.contains("check-config --config"), "{}", doc.display());
    }
}

fn dashboard(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(format!("dashboards/{name}")).unwrap()).unwrap()
}

fn panel_list(dashboard: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut out = Vec::new();
    let mut stack: Vec<&serde_json::Value> =
        dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(panel) = stack.pop() {
        stack.extend(panel["panels"].as_array().into_iter().flatten());
        out.push(panel);
    }
    out
}

fn exprs(panel: &serde_json::Value) -> Vec<&str> {
    panel["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["expr"].as_str())
        .collect()
}

/// What was seen at 40 sites: "All" by default (160 tiles), 30-day board
/// queries over raw series, a 0/1 gauge sampled for reports in flight,
/// sliding counts drawn as stacked bars, zero series drawn, "Agents up"
/// losing a site down for over an hour, no before/after per change.
#[test]
fn dashboards_hold_at_fleet_scale_and_panels_mean_what_they_say() {
    let raw = regex::Regex::new(r"(^|[^:\w])casewatch_[a-z_]+($|[^:\w])").unwrap();
    for name in [
        "casewatch-operations.json",
        "casewatch-board.json",
        "casewatch-reporting.json",
    ] {
        let d = dashboard(name);
        let site = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "site")
            .unwrap();
        assert_eq!(site["multi"], false, "{name}: site is multi-select");
        assert_eq!(site["includeAll"], false, "{name}: site offers All");
        for panel in panel_list(&d) {
            let title = panel["title"].as_str().unwrap_or("");
            for expr in exprs(panel) {
                assert!(
                    !expr.contains("casewatch_journey_in_flight"),
                    "{name}: {title}: samples the 0/1 in-flight gauge"
                );
                if name == "casewatch-board.json" {
                    assert!(
                        !raw.is_match(expr),
                        "{name}: {title}: reads raw series: {expr}"
                    );
                }
                // Bars are counts per interval of the panel, never a
                // sliding window.
                if panel["fieldConfig"]["defaults"]["custom"]["drawStyle"] == "bars" {
                    assert!(
                        expr.contains("[$__interval]"),
                        "{name}: {title}: bars from a sliding window: {expr}"
                    );
                }
            }
        }
    }
    // The Fleet board: every site at once, from one series per site, so its
    // panels read 40 series at 40 sites whatever the range.
    let fleet = dashboard("casewatch-fleet.json");
    let names: Vec<&str> = fleet["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(names, ["datasource"], "the Fleet board picks no site");
    let fleet_panels = panel_list(&fleet);
    assert!(fleet_panels.iter().any(|p| p["type"] == "state-timeline"));
    for panel in fleet_panels {
        for expr in exprs(panel) {
            let read: Vec<&str> = expr
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .filter(|w| w.contains("casewatch"))
                .collect();
            assert_eq!(read, ["site:casewatch_alert_state:max"], "{expr}");
        }
        let links = &panel["fieldConfig"]["defaults"]["links"][0]["url"];
        assert!(
            links
                .as_str()
                .is_some_and(|u| u.starts_with("/d/casewatch-operations/")),
            "{}: no link to a site's Operations board",
            panel["title"]
        );
    }
    let operations = dashboard("casewatch-operations.json");
    let panels = panel_list(&operations);
    let find = |title: &str| {
        *panels
            .iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("no panel {title:?}"))
    };
    let up = exprs(find("Agents up"))[0];
    assert!(!up.contains('['), "Agents up looks back: {up}");
    assert!(up.contains("by (site)"), "{up}");
    let outcomes = exprs(find("Step outcomes other than ok (per interval)"))[0];
    assert!(outcomes.trim_end().ends_with("> 0"), "{outcomes}");
    let reporting = dashboard("casewatch-reporting.json");
    let running = panel_list(&reporting)
        .into_iter()
        .find(|p| p["title"] == "Reports running")
        .unwrap();
    assert!(exprs(running)[0].contains("casewatch_journey_duration_seconds_sum"));
    // The board: a row repeated for each change, with its before/after panels.
    let board = dashboard("casewatch-board.json");
    let top = board["panels"].as_array().unwrap();
    let row = top
        .iter()
        .position(|p| p["type"] == "row" && p["repeat"] == "change")
        .expect("a row repeated per change");
    let after_row: Vec<&serde_json::Value> = top[row + 1..]
        .iter()
        .take_while(|p| p["type"] != "row")
        .collect();
    assert!(after_row.len() >= 4);
    for panel in after_row {
        let legends: Vec<&str> = panel["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["legendFormat"].as_str().unwrap())
            .collect();
        assert_eq!(legends, ["before", "after"], "{}", panel["title"]);
    }
}

/// The metrics reference's table rows (docs/src/metrics.md): name and what
/// exists at start.
fn documented_metrics() -> Vec<(String, String)> {
    let text = std::fs::read_to_string("docs/src/metrics.md").unwrap();
    let table = &text[text.find("| metric | type | labels | at start |").unwrap()..];
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_string(), cells[4].to_string())
        })
        .collect()
}

/// The metrics reference (docs/src/metrics.md) lists every family the agent
/// exports and says truly which exist as soon as it starts.
#[tokio::test]
async fn the_metrics_reference_is_complete_and_says_what_exists_at_start() {
    use crate::harness::*;
    let sim = start_sim(casewatch::sim::SimProfile::quiet()).await;
    let dir = tempfile::tempdir().unwrap();
    // A journey whose active hours are half a day away: it does not run.
    let later = chrono::Local::now() + chrono::Duration::hours(12);
    let hours = format!(
        "{}-{}",
        later.format("%H:%M"),
        (later + chrono::Duration::minutes(1)).format("%H:%M")
    );
    // One kept session, one central store (unreachable), a configured
    // redo time and a browser journey (not due, so no browser starts), so
    // every family the agent can export is there.
    let keep = "keep_sessions: { count: 1, every: 1h, max_age: 2h, keepalive: { name: home, path: /home } }";
    let yaml = format!(
        "{}journal: {{ path: {:?} }}\nchanges:\n  - {{ name: more_servers, at: 2026-01-01T00:00:00Z }}\nremote_write:\n  - {{ name: county, url: \"http://127.0.0.1:1/api/v1/write\", queue: {{ path: {:?} }} }}\npractitioners: {{ redo_after_logout: 5m }}\n",
        config_yaml(
            keep,
            &format!("  - {{ name: note, target: ics, schedule: {{ interval: 1s, active_hours: \"{hours}\" }}, steps: [{{ name: ping, path: /ping }}] }}\n  - {{ name: page, target: ics, login: false, schedule: {{ interval: 1s, active_hours: \"{hours}\" }}, browser: {{ steps: [{{ name: open, goto: /login }}] }} }}\n"),
        ),
        dir.path().join("journal.db"),
        dir.path().join("queue.db"),
    );
    let agent = start_agent(load(&yaml, &sim)).await;
    let text = agent.metrics().await;
    agent.stop().await;
    sim.stop().await;

    let rows = documented_metrics();
    let exported: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    for family in &exported {
        let documented = rows.iter().any(|(name, _)| {
            name == family
                || (name.ends_with('*') && family.starts_with(name.trim_end_matches('*')))
        });
        assert!(
            documented,
            "{family} is exported but not in the metrics reference (docs/src/metrics.md)"
        );
    }
    let has_samples = |name: &str| {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .any(|n| {
                n == name
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| n == format!("{name}{s}"))
            })
    };
    for (name, at_start) in &rows {
        if name.ends_with('*') {
            continue;
        }
        let present = at_start.starts_with("every")
            || at_start.starts_with("yes")
            || at_start == "with a journal"
            || at_start == "with `redo_after_logout`";
        let absent = at_start.starts_with("after") || at_start == "while due";
        assert!(
            present || absent,
            "{name}: unknown at-start note {at_start:?}"
        );
        assert_eq!(
            has_samples(name),
            present,
            "{name} is documented as \"{at_start}\" at start"
        );
    }
}
