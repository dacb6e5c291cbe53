//! HTML the sim serves, and its deterministic fake caseload. The markup is a
//! contract: the agent's journeys extract ids, tokens and links from exactly
//! these elements, so change it only together with the journeys that read it.

use std::fmt::Write as _;

use super::profile::SystemId;
use super::state::CaseNote;

/// Cases C-10000..C-10299 (so the ids used as examples in docs all exist).
pub const CASE_COUNT: usize = 300;
const FIRST_CASE: usize = 10_000;
const MAX_RESULTS: usize = 20;

const FIRST: [&str; 20] = [
    "Amelia", "Oliver", "Isla", "Harry", "Ava", "Jack", "Mia", "Noah", "Ella", "Leo", "Grace",
    "Oscar", "Lily", "Arthur", "Freya", "Theo", "Evie", "Alfie", "Ruby", "Jacob",
];
const LAST: [&str; 20] = [
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Wood", "Khan",
];
const WORKERS: [&str; 6] = [
    "sw.north",
    "sw.south",
    "sw.demo",
    "A. Okafor",
    "J. Murray",
    "P. Singh",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub id: String,
    pub name: String,
    pub worker: &'static str,
}

/// Case number `i` of the fixed caseload; names are unique (see the test).
pub fn case_by_index(i: usize) -> Case {
    let i = i % CASE_COUNT;
    let (a, b) = (i % FIRST.len(), i / FIRST.len());
    Case {
        id: format!("C-{}", FIRST_CASE + i),
        name: format!("{} {}", FIRST[a], LAST[(b + 7 * a) % LAST.len()]),
        worker: WORKERS[(i * 5 + 3) % WORKERS.len()],
    }
}

pub fn case_by_id(id: &str) -> Option<Case> {
    let n: usize = id.strip_prefix("C-")?.parse().ok()?;
    let i = n.checked_sub(FIRST_CASE)?;
    (i < CASE_COUNT && id == format!("C-{n}")).then(|| case_by_index(i))
}

/// Cases whose name contains `q` (case-insensitive); never empty, because a
/// probe must always have a record to open: an unmatched query falls back to
/// one case chosen deterministically from the query.
pub fn search(q: &str) -> Vec<Case> {
    let needle = q.trim().to_lowercase();
    let mut hits: Vec<Case> = (0..CASE_COUNT)
        .map(case_by_index)
        .filter(|c| c.name.to_lowercase().contains(&needle))
        .take(MAX_RESULTS)
        .collect();
    if hits.is_empty() {
        hits.push(case_by_index(fnv(&needle) as usize % CASE_COUNT));
    }
    hits
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Where every page loads its script from (see [`script`]).
pub const SCRIPT_PATH: &str = "/static/app.js";

fn page(sys: SystemId, title: &str, head: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{} - {}</title>\n<script src=\"{SCRIPT_PATH}\" defer></script>\n{head}</head>\n<body>\n{body}</body>\n</html>\n",
        sys.title(),
        escape(title)
    )
}

fn nav(user: &str) -> String {
    format!(
        "<nav><a href=\"/home\">Caseload</a> | Signed in as <span id=\"user\">{}</span> | <a href=\"/logout\">Sign out</a></nav>\n",
        escape(user)
    )
}

pub fn login(sys: SystemId, token: &str, notice: Option<&str>, error: Option<&str>) -> String {
    let mut body = String::from("<h1>Sign in</h1>\n");
    if let Some(n) = notice {
        let _ = writeln!(body, "<p class=\"notice\">{}</p>", escape(n));
    }
    if let Some(e) = error {
        let _ = writeln!(body, "<p class=\"error\">{}</p>", escape(e));
    }
    let _ = write!(
        body,
        "<form id=\"login\" method=\"post\" action=\"/login\">\n\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\n\
         <label>User name <input name=\"username\"></label>\n\
         <label>Password <input type=\"password\" name=\"password\"></label>\n\
         <button type=\"submit\">Sign in</button>\n\
         </form>\n",
        escape(token)
    );
    page(sys, "Sign in", "", &body)
}

/// The pages' own script, as a browser runs it: it marks the page ready.
/// With `hang`, it first holds the page's main thread that long (a busy
/// loop on the clock, so the length is exact), as a heavy client-side
/// script does, and then says so on the console.
pub fn script(hang: Option<std::time::Duration>) -> String {
    let mut js = String::from("// The simulated case system's page script.\n");
    if let Some(hang) = hang {
        let ms = hang.as_millis();
        let _ = write!(
            js,
            "(function () {{\n  var end = Date.now() + {ms};\n  while (Date.now() < end) {{}}\n  console.error(\"page script held the main thread for {ms} ms\");\n}})();\n"
        );
    }
    js.push_str("document.documentElement.setAttribute(\"data-app-ready\", \"1\");\n");
    js
}

pub const EXPIRED_NOTICE: &str = "Your session has expired. Please sign in again.";
pub const LOGGED_OUT_NOTICE: &str = "You have signed out.";

pub fn home(sys: SystemId, user: &str, csrf: &str) -> String {
    let head = format!("<meta name=\"csrf-token\" content=\"{}\">\n", escape(csrf));
    let body = format!(
        "{}<h1>Caseload</h1>\n\
         <form id=\"search\" method=\"get\" action=\"/cases/search\">\n\
         <input name=\"q\"> <button type=\"submit\">Find a child</button>\n\
         </form>\n\
         <ul id=\"reports\"><li><a href=\"/reports/caseload-summary\">Caseload summary</a></li></ul>\n",
        nav(user)
    );
    page(sys, "Caseload", &head, &body)
}

pub fn results(sys: SystemId, user: &str, q: &str, cases: &[Case]) -> String {
    let mut body = nav(user);
    let _ = write!(
        body,
        "<h1>Search results</h1>\n<p>Results for <q id=\"query\">{}</q>: <span id=\"count\">{}</span></p>\n<table id=\"results\">\n<tr><th>Child</th><th>Case</th><th>Worker</th></tr>\n",
        escape(q),
        cases.len()
    );
    for c in cases {
        let _ = writeln!(
            body,
            "<tr class=\"case\"><td><a class=\"case-link\" href=\"/cases/{id}\" data-case-id=\"{id}\">{name}</a></td><td>{id}</td><td class=\"worker\">{worker}</td></tr>",
            id = c.id,
            name = escape(&c.name),
            worker = escape(c.worker)
        );
    }
    body.push_str("</table>\n");
    page(sys, "Search results", "", &body)
}

pub fn record(
    sys: SystemId,
    user: &str,
    case: &Case,
    notes: &[CaseNote],
    saved: Option<&str>,
    csrf: &str,
) -> String {
    let mut body = nav(user);
    let _ = write!(
        body,
        "<h1 class=\"case-name\">{}</h1>\n<p>Case <span id=\"case-id\">{}</span>, worker <span id=\"worker\">{}</span></p>\n",
        escape(&case.name),
        case.id,
        escape(case.worker)
    );
    if let Some(id) = saved {
        let _ = writeln!(body, "<p class=\"saved\">Note {} saved</p>", escape(id));
    }
    body.push_str("<h2>Notes</h2>\n<ul id=\"notes\">\n");
    for n in notes {
        let _ = writeln!(
            body,
            "<li class=\"note\" data-note-id=\"{}\"><span class=\"author\">{}</span>: {}</li>",
            escape(&n.id),
            escape(&n.user),
            escape(&n.text)
        );
    }
    let _ = write!(
        body,
        "</ul>\n<form id=\"note-form\" method=\"post\" action=\"/cases/{}/notes\">\n\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\n\
         <textarea name=\"note\"></textarea>\n\
         <button type=\"submit\">Save note</button>\n\
         </form>\n",
        case.id,
        escape(csrf)
    );
    page(sys, &case.name, "", &body)
}

/// A management report; `source` says where its data came from.
pub fn report(sys: SystemId, user: &str, name: &str, source: SystemId) -> String {
    let mut body = nav(user);
    let _ = write!(
        body,
        "<h1>Report: {}</h1>\n<p>Data from <span id=\"report-source\">{}</span></p>\n<p id=\"report-status\">complete</p>\n<table id=\"report\">\n<tr><th>Worker</th><th>Open cases</th></tr>\n",
        escape(name),
        source.title()
    );
    for w in WORKERS {
        let open = (0..CASE_COUNT)
            .filter(|&i| case_by_index(i).worker == w)
            .count();
        let _ = writeln!(body, "<tr><td>{}</td><td>{open}</td></tr>", escape(w));
    }
    body.push_str("</table>\n");
    page(sys, &format!("Report: {name}"), "", &body)
}

pub fn expired(sys: SystemId) -> String {
    page(
        sys,
        "Session expired",
        "",
        &format!(
            "<h1>Session expired</h1>\n<p class=\"notice\">{EXPIRED_NOTICE}</p>\n<p><a href=\"/login\">Sign in</a></p>\n"
        ),
    )
}

/// A short page for an error status: `heading` is what a person would read.
pub fn message(sys: SystemId, heading: &str, text: &str) -> String {
    page(
        sys,
        heading,
        "",
        &format!("<h1>{}</h1>\n<p>{}</p>\n", escape(heading), escape(text)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caseload_is_deterministic_and_unique() {
        let names: std::collections::HashSet<_> =
            (0..CASE_COUNT).map(|i| case_by_index(i).name).collect();
        assert_eq!(names.len(), CASE_COUNT);
        assert_eq!(case_by_id("C-10234"), Some(case_by_index(234)));
        assert_eq!(case_by_id("C-10300"), None);
        assert_eq!(case_by_id("C-10042"), Some(case_by_index(42)));
        assert_eq!(case_by_id("C-010042"), None);
        assert_eq!(case_by_id("X"), None);
    }

    #[test]
    fn search_never_empty() {
        assert!(!search("zzzz").is_empty());
        assert_eq!(search("zzzz"), search("ZZZZ"));
        let hits = search("amelia");
        assert!(hits.iter().all(|c| c.name.starts_with("Amelia")));
        assert!(search("a").len() <= MAX_RESULTS);
    }

    #[test]
    fn markup_escapes() {
        let c = case_by_index(0);
        let n = CaseNote {
            id: "N-1".into(),
            text: "<script>".into(),
            user: "u".into(),
        };
        let html = record(SystemId::Css, "u", &c, &[n], Some("N-1"), "tok");
        assert!(html.contains("<title>CSS - "));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("<p class=\"saved\">Note N-1 saved</p>"));
    }
}
