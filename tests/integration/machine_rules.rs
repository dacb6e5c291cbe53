//! What `check-config` checks on the machine after the file itself: one
//! fixture per rule (tests/fixtures/machine/), each valid as a file and
//! tested for its exact, full message, as config_rules.rs does for the
//! file's own rules. The environment is the test's own: only
//! CASEWATCH_PASSWORD is set, and CW_TEST_EMPTY is set to nothing.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use casewatch::config::secret::EnvLookup;

const DIR: &str = "tests/fixtures/machine";

/// Full messages; the fixture is named by the message's file.
const RULES: &[&str] = &[
    r##"tests/fixtures/machine/browser_executable_missing.yaml:4: browser: browser.executable /nonexistent/chromium is not there: install Debian's `chromium` package or fix the path"##,
    r##"tests/fixtures/machine/ca_file_missing.yaml:6: target "ics": tls.ca_file: cannot read tests/fixtures/machine/no-such-ca.pem: No such file or directory (os error 2)"##,
    r##"tests/fixtures/machine/journal_folder_missing.yaml:15: journal: journal.path: folder /nonexistent/casewatch does not exist"##,
    r##"tests/fixtures/machine/journal_folder_read_only.yaml:15: journal: journal.path: cannot create files in /sys: Permission denied (os error 13)"##,
    r##"tests/fixtures/machine/journal_is_a_folder.yaml:15: journal: journal.path: tests/fixtures is a folder, not a file"##,
    r##"tests/fixtures/machine/remote_write_queue_folder_missing.yaml:17: remote_write "central": queue.path: folder /nonexistent/casewatch does not exist"##,
    r##"tests/fixtures/machine/remote_write_token_not_set.yaml:17: remote_write "central": bearer_token: environment variable CW_TEST_TOKEN_NOT_SET is not set"##,
    r##"tests/fixtures/machine/secret_env_empty.yaml:8: target "ics": credentials.password: environment variable CW_TEST_EMPTY is empty"##,
    r##"tests/fixtures/machine/secret_env_not_set.yaml:8: target "ics": credentials.password: environment variable CW_TEST_NOT_SET is not set"##,
    r##"tests/fixtures/machine/secret_file_empty.yaml:8: target "ics": credentials.password: file tests/fixtures/machine/empty-password is empty"##,
    r##"tests/fixtures/machine/secret_file_missing.yaml:8: target "ics": credentials.password: cannot read tests/fixtures/machine/no-such-password: No such file or directory (os error 2)"##,
    r##"tests/fixtures/machine/secret_file_not_regular.yaml:8: target "ics": credentials.password: cannot read /dev/null: not a regular file"##,
    r##"tests/fixtures/machine/secret_file_too_large.yaml:8: target "ics": credentials.password: cannot read Cargo.lock: over the 65536-byte limit for a secret file"##,
];

fn env() -> EnvLookup {
    Arc::new(|name| match name {
        "CASEWATCH_PASSWORD" => Some("correct-horse".to_string()),
        "CW_TEST_EMPTY" => Some(String::new()),
        _ => None,
    })
}

fn fixture_of(message: &str) -> &str {
    let end = message.find(".yaml:").expect("message names a .yaml file") + ".yaml".len();
    &message[..end]
}

/// The machine's problems with a fixture that must be valid as a file.
fn problems(path: &str) -> Vec<String> {
    let loaded = casewatch::config::load(Path::new(path))
        .unwrap_or_else(|e| panic!("{path} is valid as a file: {e}"));
    assert!(loaded.warnings.is_empty(), "{path}: {:?}", loaded.warnings);
    casewatch::readiness::check(&loaded.config, &env())
        .iter()
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn each_machine_fixture_gives_exactly_its_message() {
    let mut failures = Vec::new();
    for expected in RULES {
        let path = fixture_of(expected);
        let got = problems(path);
        if got != [expected.to_string()] {
            failures.push(format!("{path}\n  expected: {expected}\n  got: {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_machine_fixture_is_listed_once() {
    let mut on_disk: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .map(|name| format!("{DIR}/{name}"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = RULES.iter().map(|m| fixture_of(m).to_string()).collect();
    listed.sort();
    let before = listed.len();
    listed.dedup();
    assert_eq!(before, listed.len(), "a fixture is listed twice");
    assert_eq!(on_disk, listed);
}

#[test]
fn a_machine_with_everything_passes() {
    // The same kinds of requirement, each met: a secret in the environment
    // and in a file, a CA file, a journal folder that takes files.
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not checked here").unwrap();
    let yaml = std::fs::read_to_string(format!("{DIR}/secret_file_missing.yaml"))
        .unwrap()
        .replace(
            "tests/fixtures/machine/no-such-password",
            &password.display().to_string(),
        )
        .replace(
            "    base_url: https://ics.example.org/\n",
            &format!(
                "    base_url: https://ics.example.org/\n    tls: {{ ca_file: {} }}\n",
                ca.display()
            ),
        )
        + &format!("journal:\n  path: {}/journal.db\n", dir.path().display());
    let loaded = casewatch::config::from_yaml_str(&yaml, "ok.yaml").unwrap();
    assert_eq!(casewatch::readiness::check(&loaded.config, &env()), vec![]);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "nothing left behind"
    );
}

fn check_config(args: &[&str], path_var: &str) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_casewatch"))
        .arg("check-config")
        .args(args)
        .env_remove("CASEWATCH_PASSWORD")
        .env("PATH", path_var)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_config_reports_every_machine_problem_in_one_pass_and_offline_skips_them() {
    let file = "tests/fixtures/machine_several.yaml";
    // A PATH with no Chromium on it.
    let (code, stdout, stderr) = check_config(&[file], "/nonexistent");
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            r#"error: tests/fixtures/machine_several.yaml:10: target "ics": credentials.password: environment variable CASEWATCH_PASSWORD is not set"#,
            r#"error: tests/fixtures/machine_several.yaml:27: journey "page": no Chromium found on PATH (tried chromium, chromium-browser, google-chrome, google-chrome-stable): install Debian's `chromium` package or set browser.executable"#,
            r#"error: tests/fixtures/machine_several.yaml:36: journal: journal.path: folder /nonexistent/casewatch does not exist"#,
            "tests/fixtures/machine_several.yaml: 3 error(s) on this machine (the file itself is valid; --offline checks only the file)",
        ]
    );
    let (code, stdout, stderr) = check_config(&["--offline", file], "/nonexistent");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stderr, "");
    assert_eq!(
        stdout.trim_end(),
        "tests/fixtures/machine_several.yaml: OK: site north-office, 1 target(s), 2 journey(s), 2 step(s), 0 warning(s); this machine not checked (--offline)"
    );
}

#[test]
fn every_parse_mistake_is_reported_in_one_pass() {
    let file = "tests/fixtures/two_parse_mistakes.yaml";
    let (code, stdout, stderr) = check_config(&[file], "/nonexistent");
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            "error: tests/fixtures/two_parse_mistakes.yaml:9: at targets[1].bsae_url: unknown field `bsae_url`, expected one of `name`, `base_url`, `tls`, `proxy`, `connect_timeout`, `max_body`, `max_redirects`, `user_agent`, `credentials`, `defaults`, `login`, `logout`, `session_rules`, `heartbeat`, `keep_sessions`, `allowed_origins`, or `browser`",
            "error: tests/fixtures/two_parse_mistakes.yaml:19: at journeys[1].schedule.every: unknown field `every`, expected one of `interval`, `jitter`, or `active_hours`",
            "error: tests/fixtures/two_parse_mistakes.yaml:23: at journal.keep_forever: unknown field `keep_forever`, expected one of `path`, `keep_successes`, or `keep_failures`",
            "tests/fixtures/two_parse_mistakes.yaml: 3 error(s)",
        ]
    );
}
