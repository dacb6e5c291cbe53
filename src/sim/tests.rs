//! HTTP tests of the sim as the agent sees it: a real client on port 0, the
//! journey (login with CSRF, search, record, note, report, logout), and the
//! faults injected through the control API.

use std::time::{Duration, Instant};

use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::*;

const PASSWORD: &str = "correct horse";

struct Running {
    ics: String,
    css: String,
    token: CancellationToken,
    handle: SimHandle,
}

async fn start_with(profile: SimProfile, control: bool) -> Running {
    let token = CancellationToken::new();
    let opts = SimOptions {
        ics_listen: "127.0.0.1:0".parse().unwrap(),
        css_listen: "127.0.0.1:0".parse().unwrap(),
        control,
        password: PASSWORD.into(),
        profile,
    };
    let handle = start(opts, token.clone()).await.unwrap();
    Running {
        ics: format!("http://{}", handle.ics_addr),
        css: format!("http://{}", handle.css_addr),
        token,
        handle,
    }
}

async fn start_quiet() -> Running {
    start_with(SimProfile::quiet(), true).await
}

impl Running {
    async fn stop(self) {
        self.token.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.handle.wait())
            .await
            .expect("sim did not stop");
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let resp = Client::new()
            .post(format!("{}/_control/{path}", self.ics))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "control {path}");
        resp.json().await.unwrap()
    }

    async fn truth(&self) -> Vec<Value> {
        let v: Value = reqwest::get(format!("{}/_control/truth", self.ics))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["events"].as_array().cloned().unwrap_or_default()
    }
}

/// A browser-like client: follows no redirects and keeps the session cookie
/// by hand, as the agent does (so these tests need no reqwest cookie feature).
struct Browser {
    http: Client,
    cookies: std::sync::Mutex<Vec<(String, String)>>,
}

fn client() -> Browser {
    Browser {
        http: Client::builder().redirect(Policy::none()).build().unwrap(),
        cookies: std::sync::Mutex::new(Vec::new()),
    }
}

impl Browser {
    fn cookie_header(&self) -> String {
        let jar = self.cookies.lock().unwrap();
        jar.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn remember(&self, resp: &reqwest::Response) {
        let mut jar = self.cookies.lock().unwrap();
        for v in resp.headers().get_all("set-cookie") {
            let Ok(v) = v.to_str() else { continue };
            let Some((k, rest)) = v.split_once('=') else {
                continue;
            };
            let value = rest.split(';').next().unwrap_or("").to_string();
            jar.retain(|(n, _)| n != k);
            if !value.is_empty() && !v.contains("Max-Age=0") {
                jar.push((k.to_string(), value));
            }
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> reqwest::Response {
        let resp = req
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.remember(&resp);
        resp
    }

    async fn get(&self, url: impl reqwest::IntoUrl) -> reqwest::Response {
        self.send(self.http.get(url)).await
    }

    async fn post(&self, url: impl reqwest::IntoUrl, form: &[(&str, &str)]) -> reqwest::Response {
        self.send(self.http.post(url).form(form)).await
    }
}

fn capture(html: &str, pattern: &str) -> String {
    let re = regex::Regex::new(pattern).unwrap();
    re.captures(html)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| panic!("{pattern} not found in:\n{html}"))
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn login(c: &Browser, base: &str, user: &str) -> reqwest::Response {
    let page = c.get(format!("{base}/login")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let token = capture(&html, r#"name="csrf_token" value="([^"]+)""#);
    c.post(
        format!("{base}/login"),
        &[
            ("username", user),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ],
    )
    .await
}

#[tokio::test]
async fn full_journey_and_forced_logout() {
    let sim = start_quiet().await;
    let c = client();
    let base = &sim.ics;

    // Not logged in: the ordinary redirect.
    let r = c.get(format!("{base}/home")).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(location(&r), "/login");

    // Login page contract.
    let html = c.get(format!("{base}/login")).await.text().await.unwrap();
    assert!(html.contains("<title>ICS - Sign in</title>"));
    assert!(html.contains(r#"<form id="login" method="post" action="/login">"#));
    assert!(html.contains(r#"<input name="username">"#));
    assert!(html.contains(r#"<input type="password" name="password">"#));
    let token = capture(
        &html,
        r#"<input type="hidden" name="csrf_token" value="([^"]+)">"#,
    );

    // Bad token, then bad password.
    let r = c
        .post(
            format!("{base}/login"),
            &[
                ("username", "sw.demo"),
                ("password", PASSWORD),
                ("csrf_token", "nope"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Invalid form token"));
    let r = c
        .post(
            format!("{base}/login"),
            &[
                ("username", "sw.demo"),
                ("password", "wrong"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("set-cookie").is_none());
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"<p class="error">Invalid username or password</p>"#));

    // Success.
    let r = login(&c, base, "sw.demo").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/home");
    let set = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(set.starts_with("ICSSESSION="), "{set}");
    assert!(set.ends_with("; Path=/; HttpOnly"), "{set}");

    let html = c.get(format!("{base}/home")).await.text().await.unwrap();
    assert!(html.contains("<h1>Caseload</h1>"));
    assert!(html.contains(r#"Signed in as <span id="user">sw.demo</span>"#));
    let session_csrf = capture(&html, r#"<meta name="csrf-token" content="([^"]+)">"#);

    // Search (HTML and JSON).
    let r = c.get(format!("{base}/cases/search?q=")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = c
        .get(format!("{base}/cases/search?q=Amelia"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"<table id="results">"#));
    let case_id = capture(
        &html,
        r#"<tr class="case"><td><a class="case-link" href="/cases/(C-\d+)" data-case-id="C-\d+">Amelia "#,
    );
    let j: Value = c
        .get(format!("{base}/api/cases?q=amelia"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(j["query"], "amelia");
    assert_eq!(j["results"][0]["id"], case_id.as_str());
    assert_eq!(
        j["count"].as_u64(),
        Some(j["results"].as_array().unwrap().len() as u64)
    );

    // Record and note.
    assert_eq!(
        c.get(format!("{base}/cases/C-99999")).await.status(),
        StatusCode::NOT_FOUND
    );
    let html = c
        .get(format!("{base}/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"<h1 class="case-name">Amelia "#));
    assert!(html.contains(&format!(r#"<span id="case-id">{case_id}</span>"#)));
    assert!(html.contains(&format!(
        r#"<form id="note-form" method="post" action="/cases/{case_id}/notes">"#
    )));
    assert!(html.contains(r#"<textarea name="note">"#));
    let form_token = capture(
        &html,
        r#"<input type="hidden" name="csrf_token" value="([^"]+)">"#,
    );
    assert_eq!(form_token, session_csrf);
    let notes_url = format!("{base}/cases/{case_id}/notes");
    let r = c
        .post(&notes_url, &[("note", "x"), ("csrf_token", "bad")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .post(&notes_url, &[("note", "  "), ("csrf_token", &form_token)])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = c
        .post(
            &notes_url,
            &[("note", "Home visit <ok>"), ("csrf_token", &form_token)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(&r);
    let note_id = capture(&to, r"\?saved=(N-\d+)$");
    let html = c.get(format!("{base}{to}")).await.text().await.unwrap();
    assert!(html.contains(&format!(r#"<p class="saved">Note {note_id} saved</p>"#)));
    assert!(html.contains("Home visit &lt;ok&gt;"));

    // Report.
    let html = c
        .get(format!("{base}/reports/caseload-summary"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"<table id="report">"#));
    assert!(html.contains(r#"<p id="report-status">complete</p>"#));

    // Forced logout in the configured style.
    sim.control("logout_style", json!({"style": "status_440"}))
        .await;
    let hit = sim.control("logout", json!({"which": "all"})).await;
    assert_eq!(hit["count"], 1);
    assert_eq!(hit["sessions"][0]["user"], "sw.demo");
    let r = c.get(format!("{base}/home")).await;
    assert_eq!(r.status().as_u16(), 440);
    // The server forgot it: now it is an ordinary "not logged in".
    let r = c.get(format!("{base}/home")).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(location(&r), "/login");

    let truth = sim.truth().await;
    let fl = truth.iter().find(|e| e["kind"] == "forced_logout").unwrap();
    assert_eq!(fl["source"], "injected");
    assert_eq!(fl["style"], "status_440");
    assert!(fl["noticed_at"].as_f64().unwrap() >= fl["started_at"].as_f64().unwrap());
    assert_eq!(fl["sessions"][0]["user"], "sw.demo");

    // Logout proper.
    login(&c, base, "sw.north").await;
    let r = c.get(format!("{base}/logout")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login?logged_out=1");
    let set = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(set.contains("Max-Age=0"), "{set}");
    assert_eq!(
        c.get(format!("{base}/home")).await.status(),
        StatusCode::FOUND
    );
    sim.stop().await;
}

#[tokio::test]
async fn every_logout_style() {
    let sim = start_quiet().await;
    for (style, status) in [
        ("redirect", 302),
        ("status_401", 401),
        ("status_403", 403),
        ("status_440", 440),
        ("expired_page", 200),
        ("cookie_cleared", 200),
    ] {
        let c = client();
        login(&c, &sim.ics, "sw.south").await;
        sim.control(
            "logout",
            json!({"which": "oldest", "count": 1, "style": style}),
        )
        .await;
        let r = c.get(format!("{}/cases/C-10001", sim.ics)).await;
        assert_eq!(r.status().as_u16(), status, "{style}");
        let loc = location(&r);
        let cookie = r
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = r.text().await.unwrap();
        match style {
            "redirect" => assert_eq!(loc, "/login?expired=1"),
            "expired_page" => assert!(body.contains("Your session has expired")),
            "cookie_cleared" => {
                assert!(cookie.starts_with("ICSSESSION=;") && cookie.contains("Max-Age=0"));
                assert!(body.contains(r#"<form id="login""#));
            }
            _ => {}
        }
    }
    let html = client()
        .get(format!("{}/login?expired=1", sim.ics))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(r#"<p class="notice">Your session has expired. Please sign in again.</p>"#)
    );
    sim.stop().await;
}

#[tokio::test]
async fn injected_freeze_delays_ping() {
    let sim = start_quiet().await;
    let ping = format!("{}/ping", sim.ics);
    let t = Instant::now();
    assert_eq!(
        reqwest::get(&ping).await.unwrap().text().await.unwrap(),
        "ok"
    );
    assert!(t.elapsed() < Duration::from_millis(500));

    let v = sim.control("freeze", json!({"seconds": 1.0})).await;
    assert!(v["id"].as_u64().is_some());
    let t = Instant::now();
    assert_eq!(reqwest::get(&ping).await.unwrap().status(), StatusCode::OK);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(1800),
        "{took:?}"
    );
    // The CSS was not frozen.
    let t = Instant::now();
    reqwest::get(format!("{}/ping", sim.css)).await.unwrap();
    assert!(t.elapsed() < Duration::from_millis(500));

    let truth = sim.truth().await;
    let f = truth.iter().find(|e| e["kind"] == "freeze").unwrap();
    assert_eq!(f["system"], "ics");
    assert!((f["duration_seconds"].as_f64().unwrap() - 1.0).abs() < 1e-6);
    sim.stop().await;
}

#[tokio::test]
async fn shutdown_drops_frozen_requests() {
    let sim = start_quiet().await;
    sim.control("freeze", json!({"seconds": 60.0, "system": "ics"}))
        .await;
    let ping = format!("{}/ping", sim.ics);
    let pending = tokio::spawn(async move { reqwest::get(ping).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    sim.stop().await;
    assert!(t.elapsed() < Duration::from_secs(3));
    let _ = pending.await;
}

#[tokio::test]
async fn css_is_its_own_system() {
    let sim = start_quiet().await;
    let c = client();
    let r = login(&c, &sim.css, "sw.demo").await;
    let set = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(set.starts_with("CSSSESSION="), "{set}");
    let html = c
        .get(format!("{}/home", sim.css))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("<title>CSS - Caseload</title>"));
    // The CSS session means nothing to the ICS.
    let r = c.get(format!("{}/home", sim.ics)).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    // No control API on the CSS listener.
    let r = c.get(format!("{}/_control/truth", sim.css)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    sim.stop().await;
}

#[tokio::test]
async fn control_disabled_is_404() {
    let sim = start_with(SimProfile::quiet(), false).await;
    let r = Client::new()
        .post(format!("{}/_control/freeze", sim.ics))
        .json(&json!({"seconds": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    sim.stop().await;
}

#[tokio::test]
async fn control_rejects_bad_json() {
    let sim = start_quiet().await;
    let c = Client::new();
    for (path, body) in [
        ("freeze", "{not json"),
        ("freeze", r#"{"seconds": -1}"#),
        ("freeze", r#"{"seconds": 1, "sytem": "ics"}"#),
        ("logout", r#"{"which": "newest"}"#),
        ("errors", r#"{"status": 200}"#),
        ("capacity", r#"{"workers": 0}"#),
    ] {
        let r = c
            .post(format!("{}/_control/{path}", sim.ics))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path} {body}");
        let v: Value = r.json().await.unwrap();
        assert!(v["error"].as_str().is_some_and(|s| !s.is_empty()));
    }
    sim.stop().await;
}

#[tokio::test]
async fn injected_errors_restart_and_stats() {
    let sim = start_quiet().await;
    let ping = format!("{}/ping", sim.ics);
    sim.control("errors", json!({"status": 502, "count": 2}))
        .await;
    assert_eq!(reqwest::get(&ping).await.unwrap().status().as_u16(), 502);
    assert_eq!(reqwest::get(&ping).await.unwrap().status().as_u16(), 502);
    assert_eq!(reqwest::get(&ping).await.unwrap().status().as_u16(), 200);

    let c = client();
    login(&c, &sim.ics, "sw.demo").await;
    let v = sim.control("restart", json!({"seconds": 0.5})).await;
    assert_eq!(v["sessions"].as_array().map(Vec::len), Some(1));
    assert_eq!(reqwest::get(&ping).await.unwrap().status().as_u16(), 503);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(reqwest::get(&ping).await.unwrap().status().as_u16(), 200);
    let r = c.get(format!("{}/home", sim.ics)).await;
    assert_eq!(location(&r), "/login");

    sim.control("latency", json!({"extra_ms": 300})).await;
    let t = Instant::now();
    reqwest::get(&ping).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    sim.control("latency", json!({"extra_ms": 0})).await;
    sim.control("capacity", json!({"workers": 3, "system": "css"}))
        .await;
    sim.control("reports", json!({"on": "css"})).await;

    let stats: Value = reqwest::get(format!("{}/_control/stats", sim.ics))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["css"]["workers"], 3);
    assert_eq!(stats["reports_on"], "css");
    assert!(stats["ics"]["requests_served"].as_u64().unwrap() >= 7);

    let truth = sim.truth().await;
    let kinds: Vec<&str> = truth.iter().filter_map(|e| e["kind"].as_str()).collect();
    for k in ["errors", "restart", "latency", "capacity", "reports"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let errors = truth.iter().find(|e| e["kind"] == "errors").unwrap();
    assert!(errors["ended_at"].as_f64().is_some());
    let latency = truth.iter().find(|e| e["kind"] == "latency").unwrap();
    assert!(latency["duration_seconds"].as_f64().unwrap() >= 0.3);
    sim.stop().await;
}

#[tokio::test]
async fn hazard_and_idle_timeout_end_sessions() {
    // One simulated hour per real second, and a hazard so high that every
    // session ends within a few real milliseconds.
    let mut p = SimProfile::quiet();
    p.time_scale = 3600.0;
    p.forced_logout.hazard = vec![HazardStep {
        from: Duration::ZERO,
        per_hour: 3600.0,
    }];
    let sim = start_with(p, true).await;
    let c = client();
    login(&c, &sim.ics, "sw.demo").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = c.get(format!("{}/home", sim.ics)).await;
    assert_eq!(location(&r), "/login?expired=1");
    let truth = sim.truth().await;
    let fl = truth.iter().find(|e| e["kind"] == "forced_logout").unwrap();
    assert_eq!(fl["source"], "random");
    assert_eq!(fl["cause"], "hazard");
    let age = &fl["sessions"][0];
    let (sim_s, real_s) = (
        age["age_sim_seconds"].as_f64().unwrap(),
        age["age_real_seconds"].as_f64().unwrap(),
    );
    assert!((sim_s - real_s * 3600.0).abs() < 1e-6);
    assert!(
        real_s < 0.1,
        "ended at its sampled lifetime, not when noticed: {real_s}"
    );
    sim.stop().await;

    let mut p = SimProfile::quiet();
    p.time_scale = 60.0;
    p.idle_timeout = Some(Duration::from_secs(6)); // 0.1 s real
    let sim = start_with(p, true).await;
    let c = client();
    login(&c, &sim.ics, "sw.demo").await;
    assert_eq!(
        c.get(format!("{}/home", sim.ics)).await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The sweeper has already recorded it, before anyone noticed.
    let truth = sim.truth().await;
    let idle = truth.iter().find(|e| e["kind"] == "idle_timeout").unwrap();
    assert!(idle["noticed_at"].is_null());
    let r = c.get(format!("{}/home", sim.ics)).await;
    assert_eq!(location(&r), "/login?expired=1");
    sim.stop().await;
}

#[tokio::test]
async fn reports_on_ics_charge_the_ics() {
    let mut p = SimProfile::quiet();
    p.latency.report = LatencySpec {
        median: Duration::from_millis(300),
        p99: Duration::from_millis(300),
    };
    let sim = start_with(p, true).await;
    let c = client();
    login(&c, &sim.css, "sw.demo").await;
    // A report from the CSS waits out an ICS freeze while reports are on the ICS...
    sim.control("freeze", json!({"seconds": 0.5, "system": "ics"}))
        .await;
    let t = Instant::now();
    let html = c
        .get(format!("{}/reports/weekly", sim.css))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"<span id="report-source">ICS</span>"#));
    assert!(
        t.elapsed() >= Duration::from_millis(750),
        "{:?}",
        t.elapsed()
    );
    // ...but not once they are moved to the CSS.
    sim.control("reports", json!({"on": "css"})).await;
    sim.control("freeze", json!({"seconds": 2.0, "system": "ics"}))
        .await;
    let t = Instant::now();
    let html = c
        .get(format!("{}/reports/weekly", sim.css))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"<span id="report-source">CSS</span>"#));
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    sim.stop().await;
}

#[tokio::test]
async fn truth_since_filters() {
    let sim = start_quiet().await;
    let a = sim.control("freeze", json!({"seconds": 0.01})).await["id"]
        .as_u64()
        .unwrap();
    sim.control("freeze", json!({"seconds": 0.01, "system": "css"}))
        .await;
    let v: Value = reqwest::get(format!("{}/_control/truth?since={a}", sim.ics))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["system"], "css");
    let r = reqwest::get(format!("{}/_control/truth?since=x", sim.ics))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    sim.stop().await;
}
