//! The book in `docs/`: mdBook builds it without a warning or an error (a
//! missing `{{#include}}` is an error it logs and goes on past), every link
//! in it leads to a page and an anchor that exist, every chapter is in
//! SUMMARY.md, the README's links into it hold, and the alert runbook is
//! rendered from its one copy, `config/alerts/RUNBOOK.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::harness::require_tool;

/// The book built into a temporary folder, or None (a loud SKIP) where
/// mdbook is not installed outside CI.
fn build() -> Option<(tempfile::TempDir, PathBuf)> {
    let mdbook = require_tool("mdbook")?;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("book");
    let run = Command::new(mdbook)
        .args(["build", "docs", "--dest-dir"])
        .arg(&out)
        .env_remove("RUST_LOG")
        .env_remove("MDBOOK_LOG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "mdbook build docs failed:\n{log}");
    let complaints: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    assert!(
        complaints.is_empty(),
        "mdbook build docs warned:\n{}",
        complaints.join("\n")
    );
    Some((dir, out))
}

/// Every `.html` file under `root`.
fn pages(root: &Path) -> Vec<PathBuf> {
    crate::harness::files_under(root, "html")
}

/// `base` joined with a relative `link`, `..` resolved without touching
/// the disk; None when it climbs out of the root.
fn resolve(base: &Path, link: &str) -> Option<PathBuf> {
    let mut out = base.to_path_buf();
    for part in Path::new(link).components() {
        match part {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The ids a page defines, for its `#fragment` links.
fn ids(page: &Path) -> BTreeSet<String> {
    let html = scraper::Html::parse_document(&std::fs::read_to_string(page).unwrap());
    let any = scraper::Selector::parse("[id], a[name]").unwrap();
    html.select(&any)
        .flat_map(|e| {
            [e.value().attr("id"), e.value().attr("name")]
                .into_iter()
                .flatten()
                .map(str::to_string)
        })
        .collect()
}

/// Whether a link leaves the book: a URL with a scheme, or a page-less
/// scheme such as mailto.
fn external(link: &str) -> bool {
    link.contains("://")
        || ["mailto:", "tel:", "javascript:", "data:"]
            .iter()
            .any(|s| link.starts_with(s))
}

/// Every link inside the built book leads to a file of the book and, with a
/// fragment, to an element of that page.
fn broken_links(root: &Path) -> Vec<String> {
    let mut anchors: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    let mut broken = Vec::new();
    let links = scraper::Selector::parse("a[href], link[href], img[src], script[src]").unwrap();
    for page in pages(root) {
        // The 404 page's links are written for the site's root, wherever it
        // is served from.
        if page.file_name().is_some_and(|n| n == "404.html") {
            continue;
        }
        let html = scraper::Html::parse_document(&std::fs::read_to_string(&page).unwrap());
        let shown = page.strip_prefix(root).unwrap().display().to_string();
        for element in html.select(&links) {
            let value = element.value();
            let link = value.attr("href").or(value.attr("src")).unwrap();
            if link.is_empty() || external(link) {
                continue;
            }
            let (path, fragment) = link.split_once('#').unwrap_or((link, ""));
            let path = path.split_once('?').map_or(path, |(p, _)| p);
            let target = if path.is_empty() {
                Some(page.clone())
            } else {
                resolve(page.parent().unwrap(), &percent_decode(path))
            };
            let Some(mut target) = target.filter(|t| t.starts_with(root)) else {
                broken.push(format!("{shown}: {link} leaves the book"));
                continue;
            };
            if target.is_dir() {
                target.push("index.html");
            }
            if !target.is_file() {
                broken.push(format!("{shown}: {link}: no such file in the book"));
                continue;
            }
            if fragment.is_empty() || target.extension().is_none_or(|e| e != "html") {
                continue;
            }
            let known = anchors
                .entry(target.clone())
                .or_insert_with(|| ids(&target));
            if !known.contains(&percent_decode(fragment)) {
                broken.push(format!("{shown}: {link}: no #{fragment} on that page"));
            }
        }
    }
    broken
}

/// The runbook's alert anchors, in the order they come.
fn runbook_anchors(text: &str) -> Vec<String> {
    text.match_indices("<a id=\"alert-")
        .map(|(at, _)| {
            let rest = &text[at + "<a id=\"".len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

/// The chapters' sources, by file name.
fn chapters() -> BTreeMap<String, String> {
    std::fs::read_dir("docs/src")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_book_builds_without_warnings_and_its_links_hold() {
    let Some((_dir, out)) = build() else { return };
    let broken = broken_links(&out);
    assert!(
        broken.is_empty(),
        "broken links in the book:\n{}",
        broken.join("\n")
    );

    // Every chapter is in SUMMARY.md and rendered, with no include left raw.
    for name in chapters().keys().filter(|n| *n != "SUMMARY.md") {
        let page = out.join(name.replace(".md", ".html"));
        assert!(page.is_file(), "docs/src/{name} is not in SUMMARY.md");
        let html = std::fs::read_to_string(&page).unwrap();
        assert!(
            !html.contains("{{#"),
            "{name}: an include was left unexpanded"
        );
    }

    // The runbook page is config/alerts/RUNBOOK.md: each alert's anchor once.
    let runbook = std::fs::read_to_string("config/alerts/RUNBOOK.md").unwrap();
    let anchors = runbook_anchors(&runbook);
    assert!(
        anchors.len() >= 15,
        "only {} runbook sections",
        anchors.len()
    );
    let page = std::fs::read_to_string(out.join("runbook.html")).unwrap();
    for anchor in &anchors {
        assert_eq!(
            page.matches(&format!("id=\"{anchor}\"")).count(),
            1,
            "runbook.html must carry #{anchor} once"
        );
    }

    // The README's links into the book lead to chapters and headings that
    // exist.
    let readme = std::fs::read_to_string("README.md").unwrap();
    let mut into_book = 0;
    for (at, _) in readme.match_indices("](docs/src/") {
        let rest = &readme[at + "](docs/src/".len()..];
        let link = &rest[..rest.find(')').unwrap()];
        let (file, fragment) = link.split_once('#').unwrap_or((link, ""));
        assert!(
            Path::new("docs/src").join(file).is_file(),
            "README.md links to docs/src/{file}, which does not exist"
        );
        if file.ends_with(".md") && !fragment.is_empty() {
            let page = out.join(file.replace(".md", ".html"));
            assert!(
                ids(&page).contains(fragment),
                "README.md links to docs/src/{link}: no such heading"
            );
        }
        into_book += 1;
    }
    assert!(
        into_book >= 10,
        "the README links into the book {into_book} times"
    );
    // Its other links to files of the repository lead to files that exist.
    for (at, _) in readme.match_indices("](") {
        let rest = &readme[at + 2..];
        let link = &rest[..rest.find(')').unwrap()];
        let path = link.split_once('#').map_or(link, |(p, _)| p);
        if path.is_empty() || external(link) {
            continue;
        }
        assert!(
            Path::new(path).exists(),
            "README.md links to {link}, which does not exist"
        );
    }
}

/// An include with an anchor that its file lacks renders as nothing, and
/// mdBook says nothing of it: each named anchor must be in its file.
#[test]
fn every_anchored_include_names_an_anchor_of_its_file() {
    let mut seen = 0;
    for (name, text) in chapters() {
        for (at, _) in text.match_indices("{{#include ") {
            let rest = &text[at + "{{#include ".len()..];
            let spec = rest[..rest.find("}}").unwrap()].trim();
            let (file, anchor) = spec.split_once(':').unwrap_or((spec, ""));
            let path = Path::new("docs/src").join(file);
            let included = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{name}: {{{{#include {spec}}}}}: {e}"));
            if !anchor.is_empty() && anchor.parse::<usize>().is_err() && !anchor.contains(':') {
                for mark in [format!("ANCHOR: {anchor}"), format!("ANCHOR_END: {anchor}")] {
                    assert_eq!(
                        included.matches(&mark).count(),
                        1,
                        "{name}: {file} must hold `{mark}` once"
                    );
                }
            }
            seen += 1;
        }
    }
    assert!(seen >= 4, "only {seen} includes");
}
