//! One bad-config fixture per validation rule (tests/fixtures/bad/), each
//! tested for its exact, full message: `file:line: context: message`.
//!
//! A fixture breaks exactly one rule, so each produces exactly one problem.
//! Rules that reject a config are `Error`s; configs that parse and could run
//! but look wrong load with a `Warning`. Every fixture in the directory must
//! be listed here, and every listed fixture must exist.

use std::path::Path;
use std::process::Command;

use casewatch::config::{self, ConfigError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Error,
    Warning,
}
use Kind::*;

const DIR: &str = "tests/fixtures/bad";

/// (kind, full message); the fixture is named by the message's file.
const RULES: &[(Kind, &str)] = &[
    (
        Error,
        r##"tests/fixtures/bad/active_hours_empty.yaml:10: journey "lookup": schedule.active_hours "09:00-09:00" is an empty window: the journey would never run"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/active_hours_format.yaml:10: journey "lookup": schedule.active_hours "9am-5pm": write it as HH:MM-HH:MM"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/age_bands_invalid.yaml:4: agent.age_bands must be increasing durations above zero, e.g. [1h, 2h, 3h, 4h]"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/allowed_origins_invalid.yaml:6: target "ics": allowed_origins: "https://sso.example.gov.uk/login" is not an origin (a scheme, host and port) like https://sso.example.gov.uk"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/assert_header_name_invalid.yaml:14: journey "lookup", step "search": assert.headers: "Content Type" is not a valid header name"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/assert_status_invalid.yaml:14: journey "lookup", step "search": assert.status: 2000 is not an HTTP status"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/base_url_not_http.yaml:5: target "ics": base_url "ftp://127.0.0.1/" must be an http or https URL with a host"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/base_url_no_host.yaml:5: target "ics": base_url "http:///nohost" must be an http or https URL with a host"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/base_url_unparsable.yaml:5: target "ics": base_url "not a url": relative URL without a base"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/base_url_with_userinfo.yaml:5: target "ics": base_url must not carry a user name or password: give them in `credentials`"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/browser_and_http_steps.yaml:7: journey "page": a browser journey's steps go under `browser.steps`: give no `steps`"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/browser_login_missing.yaml:7: journey "page": logs in, but target "ics" has no `browser.login` steps (set `login: false` for anonymous journeys)"##,
    ),
    (
        Warning,
        r##"tests/fixtures/bad/browser_logout_think_time.yaml:15: target "ics", browser logout step "sign_out": think_time has no effect on a logout step: nothing runs after it"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/browser_max_contexts.yaml:4: browser: browser.max_contexts must be between 1 and 32"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/browser_password_in_goto.yaml:16: journey "page", step "open": ${password} may only be typed into the page with `fill`: in a `goto` it would leak into URLs and logs"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/browser_two_actions.yaml:13: journey "page", step "open": give at most one of `goto`, `fill`, `click` and `wait_for`"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/change_time_invalid.yaml:16: change "more_capacity": at: "1 March 2026" is not an RFC 3339 time like 2026-03-01T09:00:00Z: premature end of input"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/connect_timeout_zero.yaml:6: target "ics": connect_timeout must be above zero"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/credentials_missing.yaml:16: target "ics", login step "login_submit": uses ${password} but the target has no credentials.password"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/css_invalid.yaml:15: journey "lookup", step "search": extract "case_id": invalid CSS selector "div >": dangling combinator"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/duplicate_journey.yaml:14: journey "lookup": duplicate journey name"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/duplicate_key.yaml:3: not valid YAML: duplicate key "site" in mapping at 2:1 and 3:1"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/duplicate_login_step.yaml:14: target "ics", login step "login_page": duplicate step name"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/duplicate_step.yaml:14: journey "lookup", step "search": duplicate step name"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/duplicate_target.yaml:6: target "ics": duplicate target name"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/duration_invalid.yaml:10: journey "lookup": schedule.interval: cannot read duration "1 fortnight": unknown time unit "fortnight", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/extract_attr_without_css.yaml:15: journey "lookup", step "search": extract "case_id": `attr` only goes with `css`"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/extract_header_invalid.yaml:15: journey "lookup", step "search": extract "case_id": "X Case" is not a valid header name"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/extract_no_source.yaml:15: journey "lookup", step "search": extract "case_id": give exactly one of `regex`, `css`, `json_pointer`, `jsonpath` or `header`"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/extract_var_invalid.yaml:15: journey "lookup", step "search": extract: variable name "case id" must be letters, digits, '_' or '.'"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/extract_var_reserved.yaml:15: journey "lookup", step "search": extract "password": the variable name is reserved for the agent"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/freeze_above_give_up.yaml:6: target "ics": freeze_after (30s) is above give_up_after (10s): the agent would give up before it could call the step frozen"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/header_name_invalid.yaml:14: journey "lookup", step "search": headers: "X Case" is not a valid header name"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/heartbeat_every_zero.yaml:6: target "ics", heartbeat: heartbeat.every must be above zero"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/heartbeat_path_variable.yaml:6: target "ics", heartbeat: heartbeat.path cannot use variables: heartbeats run outside any session"##,
    ),
    (
        Warning,
        r##"tests/fixtures/bad/interval_below_worst_case.yaml:7: journey "lookup": schedule.interval (10s) is shorter than a run whose every step is just under freeze_after (20s): slow runs will miss slots"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/interval_zero.yaml:10: journey "lookup": schedule.interval must be above zero"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/invalid_yaml.yaml:4: not valid YAML: while parsing a flow mapping, did not find expected ',' or '}'"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/jitter_not_below_interval.yaml:10: journey "lookup": schedule.jitter must be below schedule.interval"##,
    ),
    (
        Warning,
        r##"tests/fixtures/bad/journal_keep_failures_shorter.yaml:15: journal: keep_failures is shorter than keep_successes: failures are the evidence, keep them longer"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/json_pointer_invalid.yaml:15: journey "lookup", step "search": extract "case_id": JSON pointer "results.0.id" must start with '/'"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/json_template.yaml:12: journey "lookup", step "search": json: empty or invalid variable name `${"}`"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/jsonpath_invalid.yaml:15: journey "lookup", step "search": extract "case_id": invalid JSONPath "$.results[": at position 9, parser error"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/keep_sessions_count_zero.yaml:21: target "ics", keep_sessions: keep_sessions.count must be above zero"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/keep_sessions_max_age.yaml:23: target "ics", keep_sessions: keep_sessions.max_age must be above keep_sessions.every, which must be above zero"##,
    ),
    (
        Warning,
        r##"tests/fixtures/bad/keepalive_think_time.yaml:24: target "ics", keepalive step "touch": think_time has no effect on a keepalive step: its checks are keep_sessions.every apart"##,
    ),
    (
        Warning,
        r##"tests/fixtures/bad/logout_extract.yaml:19: target "ics", logout step "logout": extract has no effect on a logout step: nothing runs after it to read what it extracts"##,
    ),
    (
        Warning,
        r##"tests/fixtures/bad/logout_think_time.yaml:21: target "ics", logout step "logout": think_time has no effect on a logout step: nothing runs after it"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/keep_sessions_without_login.yaml:7: target "ics", keep_sessions: kept sessions need the target's `login` steps"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/kind_invalid.yaml:10: journey "lookup": kind "batch" must be `interactive` or `report`"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/login_without_login_steps.yaml:7: journey "lookup": logs in, but target "ics" has no `login` steps (set `login: false` for anonymous journeys)"##,
    ),
    (
        Warning,
        r##"tests/fixtures/bad/login_without_password.yaml:4: target "ics": no login step uses ${password}: the login cannot really sign in"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/max_body_invalid.yaml:6: target "ics": max_body "lots": give a size like 512KiB or 10MiB"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/max_body_out_of_range.yaml:6: target "ics": max_body "2GiB" must be between 1B and 1GiB (bodies are held in memory)"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/max_sessions_below_kept.yaml:4: agent.max_sessions (4) must be at least 5: kept sessions take 4 and a journey needs one more"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/max_sessions_zero.yaml:4: agent.max_sessions (0) must be above zero"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/method_invalid.yaml:14: journey "lookup", step "search": method "GET NOW" is not an HTTP method"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/missing_field.yaml:4: at targets[0]: missing field `base_url`"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/name_invalid.yaml:4: target "case system": target name "case system" must be 1-64 characters of letters, digits, '_', '-' or '.' (it becomes a metric label)"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/nesting_too_deep.yaml:4: mappings and sequences nested more than 64 deep"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/no_journeys.yaml:1: no journeys: at least one journey is required"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/no_steps.yaml:7: journey "lookup": no steps"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/no_targets.yaml:1: no targets: at least one target is required"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/not_a_mapping.yaml:2: not valid YAML: top level must be a mapping"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/nul_byte.yaml:1: a NUL byte (U+0000) at column 47: YAML does not allow it"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/password_in_url.yaml:16: journey "lookup", step "search": ${password} may only be used in a form, json, body or header value: in a path or query it would leak into URLs and logs"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/path_other_origin.yaml:13: journey "lookup", step "search": path "http://elsewhere.invalid/x" leaves the target's origin (http://127.0.0.1:8181) for http://elsewhere.invalid: name it in allowed_origins to allow it"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/proxy_invalid.yaml:6: target "ics": proxy "::nope": relative URL without a base"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/regex_invalid.yaml:20: target "ics": session_rules.redirect_to: invalid regex "/login(\\?expired": unclosed group"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/remote_write_duplicate_name.yaml:19: remote_write "central": duplicate remote_write name"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/remote_write_max_samples_zero.yaml:20: remote_write "central": queue.max_samples must be above zero"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/remote_write_name_invalid.yaml:17: remote_write "county store": remote_write name "county store" must be 1-64 characters of letters, digits, '_', '-' or '.' (it becomes a metric label)"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/remote_write_push_interval_zero.yaml:19: remote_write "central": push_interval must be above zero"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/remote_write_queue_path_missing.yaml:15: remote_write "central": queue.path is required when there is no `journal` to keep the queue beside"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/remote_write_queue_path_shared.yaml:20: remote_write "central": queue.path "/var/lib/casewatch/journal.db" is already used by the journal: each queue needs a file of its own"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/remote_write_timeout_zero.yaml:19: remote_write "central": timeout must be above zero"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/remote_write_token_inline.yaml:19: remote_write "central": bearer_token: secrets are never written inline; read it from `env` or `file`"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/remote_write_two_auths.yaml:22: remote_write "central": give only one of `basic_auth` or `bearer_token`"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/remote_write_url_not_http.yaml:18: remote_write "central": url "ftp://metrics.example/api/v1/write" must be an http or https URL with a host"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/remote_write_url_unparsable.yaml:18: remote_write "central": url "not a url": relative URL without a base"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/remote_write_url_with_userinfo.yaml:18: remote_write "central": url must not carry a user name or password: give them in `basic_auth`"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/reserved_journey_name.yaml:7: journey "heartbeat": the journey name "heartbeat" is reserved for the agent's own requests"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/retry_without_login.yaml:7: journey "lookup": retry_after_relogin needs a journey that logs in"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/schedule_missing.yaml:7: journey "lookup": `schedule` is required (at least `interval`)"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/secret_inline_password.yaml:7: target "ics": credentials.password: secrets are never written inline; read it from `env` or `file`"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/secret_missing_source.yaml:7: target "ics": credentials.password: give one of `env` or `file`"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/secret_plain_string.yaml:7: at targets[0].credentials.password: invalid type: string, expected `{ env: NAME }` or `{ file: PATH }`: secrets are never written inline"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/secret_two_sources.yaml:7: target "ics": credentials.password: give only one of `env`, `file` or `value`"##,
    ),
    (
        Warning,
        r##"tests/fixtures/bad/session_cookie_without_login.yaml:6: target "ics": session_rules.cookie is set, but the target has no `login` steps to start a session"##,
    ),
    (
        Warning,
        r##"tests/fixtures/bad/session_rules_missing.yaml:4: target "ics": the target logs in but has no session_rules and login_page is off, so forced logouts cannot be told apart from other failures"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/practitioners_days_per_month.yaml:26: practitioners: working_days_per_month must be above 0 and at most 31"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/practitioners_headcount_zero.yaml:26: practitioners: headcount must be at least 1"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/practitioners_negative_rate.yaml:27: practitioners: transactions_per_hour of "lookup" must be zero or more"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/practitioners_unknown_journey.yaml:27: practitioners: transactions_per_hour names "case_notes", which is not a journey"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/practitioners_working_days.yaml:26: practitioners: working_days "mondays" must be `weekdays` or `all`"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/practitioners_working_hours.yaml:26: practitioners: working_hours "17:00-09:00" must look like 09:00-17:00, the end after the start"##,
    ),
    (
        Warning,
        r##"tests/fixtures/bad/session_rules_cookie_only.yaml:4: target "ics": session_rules has only `cookie` and login_page is off: a system that keeps the cookie after ending a session on the server would drop sessions unseen"##,
    ),
    (
        Warning,
        r##"tests/fixtures/bad/login_path_variable.yaml:10: target "ics": the first login step's path uses variables, so a redirect to the login page cannot be recognised by its path; only a page holding the login form is"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/session_status_invalid.yaml:19: target "ics": session_rules.statuses: 999 is not an HTTP status"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/session_status_success.yaml:19: target "ics": session_rules.statuses: 302 is not an error status: every such answer would count as a logout"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/several_bodies.yaml:12: journey "lookup", step "search": give at most one of `form`, `json` and `body`"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/site_missing.yaml:1: `site` is required: the office the agent probes from"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/slow_above_freeze.yaml:14: journey "lookup", step "search": slow_after (25s) is above freeze_after (20s): no step could ever be slow"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/template_bad_name.yaml:14: journey "lookup", step "search": query: empty or invalid variable name `${case id}`"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/template_unclosed.yaml:14: journey "lookup", step "search": query: unclosed `${` in template"##,
    ),
    (
        Warning,
        r##"tests/fixtures/bad/tls_ca_file_with_http.yaml:6: target "ics": tls.ca_file has no effect: base_url is http://"##,
    ),
    (
        Warning,
        r##"tests/fixtures/bad/tls_skip_verify_with_http.yaml:6: target "ics": tls.insecure_skip_verify has no effect: base_url is http://"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/too_many_steps.yaml:207: journey "j099": more than 10000 steps in all journeys (login and logout counted per journey): each step has its own metric series"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/undefined_variable.yaml:14: journey "lookup", step "search": uses ${surname} but no earlier step extracts it"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/unknown_key.yaml:6: at targets[0].bsae_url: unknown field `bsae_url`, expected one of `name`, `base_url`, `tls`, `proxy`, `connect_timeout`, `max_body`, `max_redirects`, `user_agent`, `credentials`, `defaults`, `login`, `logout`, `session_rules`, `heartbeat`, `keep_sessions`, `allowed_origins`, or `browser`"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/unknown_target.yaml:8: journey "lookup": unknown target "icss" (known: ics)"##,
    ),
    (
        Error,
        r##"tests/fixtures/bad/wrong_type.yaml:6: at targets[0].max_redirects: invalid digit found in string"##,
    ),
];

/// The fixture path a message names.
fn fixture_of(message: &str) -> &str {
    let end = message.find(".yaml:").expect("message names a .yaml file") + ".yaml".len();
    &message[..end]
}

/// Loads `path` and returns its problems (errors or, if it loads, warnings).
fn problems(path: &str) -> (Kind, Vec<String>) {
    match config::load(Path::new(path)) {
        Ok(loaded) => (
            Warning,
            loaded.warnings.iter().map(|w| w.to_string()).collect(),
        ),
        Err(ConfigError::Invalid { problems, .. }) => {
            (Error, problems.iter().map(|p| p.to_string()).collect())
        }
        Err(ConfigError::Parse(problem)) => (Error, vec![problem.to_string()]),
        Err(e @ ConfigError::Read { .. }) => panic!("{path}: {e}"),
    }
}

#[test]
fn each_fixture_gives_exactly_its_message() {
    let mut failures = Vec::new();
    for (kind, expected) in RULES {
        let path = fixture_of(expected);
        let (got_kind, got) = problems(path);
        if got_kind != *kind || got != [expected.to_string()] {
            failures.push(format!(
                "{path}\n  expected {kind:?}: {expected}\n  got {got_kind:?}: {got:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fixture_is_listed_once() {
    let mut on_disk: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| format!("{DIR}/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = RULES
        .iter()
        .map(|(_, m)| fixture_of(m).to_string())
        .collect();
    listed.sort();
    let before = listed.len();
    listed.dedup();
    assert_eq!(before, listed.len(), "a fixture is listed twice");
    assert_eq!(on_disk, listed);
}

#[test]
fn messages_are_short_lowercase_and_name_their_key() {
    for (_, message) in RULES {
        // After "file:line: ", an optional context, then the message itself.
        let text = message.splitn(3, ':').nth(2).unwrap().trim_start();
        let first = text.chars().next().unwrap();
        assert!(
            !first.is_uppercase(),
            "message should start lowercase: {message}"
        );
        assert!(!text.ends_with('.'), "no trailing full stop: {message}");
    }
}

fn check_config(path: &str) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_casewatch"))
        .args(["check-config", path])
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_config_rejects_a_rule_breaker_with_exit_1() {
    for fixture in [
        "password_in_url",
        "max_sessions_below_kept",
        "duplicate_key",
    ] {
        let path = format!("{DIR}/{fixture}.yaml");
        let (code, stdout, stderr) = check_config(&path);
        assert_eq!(code, Some(1), "{path}: {stderr}");
        assert_eq!(stdout, "");
        let expected = RULES
            .iter()
            .find(|(_, m)| fixture_of(m) == path)
            .map(|(_, m)| m)
            .unwrap();
        assert_eq!(
            stderr.lines().collect::<Vec<_>>(),
            [format!("error: {expected}"), format!("{path}: 1 error(s)")],
        );
    }
}

#[test]
fn check_config_accepts_a_warned_config_with_its_reason() {
    let path = format!("{DIR}/tls_skip_verify_with_http.yaml");
    let (code, stdout, stderr) = check_config(&path);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "warning: {path}:6: target \"ics\": tls.insecure_skip_verify has no effect: base_url is http://"
        )
    );
    assert!(stdout.contains("1 warning(s)"), "{stdout}");
}

#[test]
fn a_password_in_a_header_or_form_is_fine() {
    // The counterpart of `password_in_url`: the same value where it belongs.
    let yaml = r#"site: north-office
targets:
  - name: ics
    base_url: http://127.0.0.1:8181/
    credentials:
      password: { env: CASEWATCH_PASSWORD }
journeys:
  - name: lookup
    target: ics
    login: false
    schedule: { interval: 60s }
    steps:
      - name: search
        method: POST
        path: /cases/search
        headers: { X-Api-Key: "${password}" }
        form: { pw: "${password}" }
"#;
    let loaded = config::from_yaml_str(yaml, "ok.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}
