//! `casewatch report --format pdf`: the board pack printed by headless
//! Chromium is a PDF of several numbered pages whose first page is the
//! cover (period, site, headline). Needs Chromium and poppler-utils
//! (`pdfinfo`, `pdftotext`); scripts/test.sh installs them.

use std::path::Path;
use std::process::Command;

use crate::harness::require_tool;
use crate::journal::record_journal;

/// What `tool args` prints, after checking it succeeded.
fn output_of(tool: &Path, args: &[&str], pdf: &Path) -> String {
    let out = Command::new(tool).args(args).arg(pdf).arg("-").output();
    let out = out.unwrap_or_else(|e| panic!("{} runs: {e}", tool.display()));
    assert!(out.status.success(), "{}: {out:?}", tool.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pdf_board_pack_has_a_cover_and_numbered_pages() {
    let (Some(_chromium), Some(pdftotext)) = (require_tool("chromium"), require_tool("pdftotext"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    record_journal(&journal, 12).await;
    let pdf = dir.path().join("board-pack.pdf");
    let out = Command::new(env!("CARGO_BIN_EXE_casewatch"))
        .args(["report", "--journal"])
        .arg(&journal)
        .arg("--out")
        .arg(&pdf)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let bytes = std::fs::read(&pdf).expect("the PDF is written");
    assert!(bytes.starts_with(b"%PDF-"), "not a PDF");
    let text = output_of(&pdftotext, &["-layout"], &pdf);
    // pdftotext ends each page with a form feed.
    let pages = text.matches('\u{c}').count();
    assert!(pages > 1, "{pages} page(s)");
    let cover = text.split('\u{c}').next().unwrap();
    // Words as read, whatever the lines they were wrapped into.
    let cover_words = cover.split_whitespace().collect::<Vec<_>>().join(" ");
    for words in [
        "Case system reliability: evidence report",
        "Period:",
        "Site: test-site",
        &format!("page 1 of {pages}"),
    ] {
        assert!(
            cover_words.contains(words),
            "{words:?} not on the cover: {cover_words:?}"
        );
    }
    // The headline is the summary's first sentence, on the cover.
    let json = Command::new(env!("CARGO_BIN_EXE_casewatch"))
        .args(["report", "--format", "json", "--journal"])
        .arg(&journal)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let headline = report["summary"][0].as_str().unwrap();
    let first_words: String = headline
        .split_whitespace()
        .take(6)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        cover_words.contains(&first_words),
        "{first_words:?} not on the cover: {cover_words:?}"
    );
    // Every section starts a page of its own; the last page is numbered too.
    assert!(text.contains("1. Availability"));
    assert!(text.contains(&format!("page {pages} of {pages}")));
}

#[test]
fn a_pdf_needs_a_file_to_go_to() {
    let out = Command::new(env!("CARGO_BIN_EXE_casewatch"))
        .args([
            "report",
            "--journal",
            "/nonexistent/journal.db",
            "--format",
            "pdf",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--format pdf needs --out"), "{stderr}");
}
