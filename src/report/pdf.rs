//! `casewatch report --format pdf`: the monthly board pack. The HTML report,
//! with a cover page and a print stylesheet, is printed by the same headless
//! Chromium the agent drives for browser journeys ([`BrowserPool`]: it finds
//! Debian's `chromium` on `PATH`, runs it with a throwaway profile and kills
//! it whole when done). Chromium numbers the pages in its footer.
//!
//! The whole print, from starting Chromium to the last byte of the PDF, is
//! bounded by [`TIMEOUT`]; no Chromium on `PATH` is a clear error that says
//! what to install.

use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::page::PrintToPdfParams;
use maud::{html, Markup};

use super::model::Report;
use crate::browser::{BrowserError, BrowserMetrics, BrowserPool};
use crate::config::browser::BrowserSettings;
use crate::timefmt::human_duration;

/// How long printing may take in all.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// Rules for paper: each section starts a page, tables, figures and
/// verdicts are never split across pages, a heading stays with what
/// follows it, and the cover fills the first page. The page size and margins are the print call's (A4, room
/// for the page numbers at the foot).
pub const PRINT_STYLE: &str = r#"
.cover { display: none; }
@media print {
  body { background: #fff; font-size: 10.5pt; }
  main { max-width: none; padding: 0; margin: 0; }
  table, figure, .verdict, .summary li, tr { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  /* Each numbered section starts a page: a heading is never left at the
     foot of one with its table on the next. */
  main > h2 { break-before: page; margin-top: 0; }
  figure svg { border: none; }
  a { color: inherit; text-decoration: none; }
  .cover { display: flex; flex-direction: column; justify-content: center; min-height: 240mm; break-after: page; }
  .cover h1 { font-size: 2.2rem; margin: 0 0 1.2rem; }
  .cover .period { font-size: 1.3rem; margin: 0.2rem 0; }
  .cover .headline { font-size: 1.2rem; border-left: 6px solid #1f77b4; padding: 10px 18px; margin: 2rem 0; background: #eef5fb; }
  .cover .meta { margin-top: 3rem; }
}
"#;

/// The footer Chromium prints on every page: "page N of M".
const FOOTER: &str = r#"<div style="font-size:8pt;color:#5b6773;width:100%;text-align:center;font-family:sans-serif">casewatch evidence report · page <span class="pageNumber"></span> of <span class="totalPages"></span></div>"#;

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("cannot print the report as PDF: {0}")]
    Browser(#[from] BrowserError),
    #[error("cannot print the report as PDF: Chromium failed: {0}")]
    Page(String),
    #[error("cannot print the report as PDF: Chromium did not finish within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("cannot print the report as PDF: {0}")]
    Setup(String),
}

/// The cover page: the period, the site(s) and the headline (the
/// summary's first sentence).
pub fn cover(r: &Report) -> Markup {
    let sites = if r.sites.len() == 1 { "Site" } else { "Sites" };
    html! {
        section.cover {
            h1 { "Case system reliability: evidence report" }
            p.period { b { "Period: " } (r.window.from_text) " to " (r.window.to_text)
                       " (" (human_duration(r.window.hours * 3600.0)) ")" }
            p.period { b { (sites) ": " } (r.sites.join(", ")) }
            @if let Some(headline) = r.summary.first() { p.headline { (headline) } }
            p.meta { "Generated " (r.generated_at) " from journal " code { (r.journal) } "." }
        }
    }
}

/// The PDF of `html`, printed by headless Chromium on a runtime of its
/// own (the caller may be on a runtime's thread or not).
pub fn print_blocking(html: &str) -> Result<Vec<u8>, PdfError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| PdfError::Setup(format!("no runtime: {e}")))?;
                runtime.block_on(print(html))
            })
            .join()
            .unwrap_or_else(|_| Err(PdfError::Setup("the print thread panicked".into())))
    })
}

/// The PDF of `html`, within [`TIMEOUT`].
pub async fn print(html: &str) -> Result<Vec<u8>, PdfError> {
    let metrics = BrowserMetrics::new().map_err(|e| PdfError::Setup(e.to_string()))?;
    let pool = BrowserPool::new(
        BrowserSettings::default(),
        metrics,
        tokio::runtime::Handle::current(),
    );
    let printed = tokio::time::timeout(TIMEOUT, print_with(&pool, html)).await;
    pool.close().await;
    printed.unwrap_or(Err(PdfError::Timeout(TIMEOUT)))
}

async fn print_with(pool: &BrowserPool, html: &str) -> Result<Vec<u8>, PdfError> {
    // The page is loaded from a file so that it is a document of its own,
    // as a person opening the HTML report sees it; `goto` returns once it
    // has loaded (the report fetches nothing and runs no script).
    let dir = tempfile::Builder::new()
        .prefix("casewatch-pdf-")
        .tempdir()
        .map_err(|e| PdfError::Setup(format!("no temporary folder: {e}")))?;
    let path = dir.path().join("report.html");
    std::fs::write(&path, html)
        .map_err(|e| PdfError::Setup(format!("cannot write {}: {e}", path.display())))?;
    let lease = pool.lease().await?;
    let url = format!("file://{}", path.display());
    lease
        .page
        .goto(url)
        .await
        .map_err(|e| PdfError::Page(e.to_string()))?;
    lease
        .page
        .pdf(params())
        .await
        .map_err(|e| PdfError::Page(e.to_string()))
}

/// A4 portrait, backgrounds printed, page numbers in the footer.
fn params() -> PrintToPdfParams {
    PrintToPdfParams {
        paper_width: Some(8.27),
        paper_height: Some(11.69),
        margin_top: Some(0.55),
        margin_bottom: Some(0.7),
        margin_left: Some(0.55),
        margin_right: Some(0.55),
        print_background: Some(true),
        display_header_footer: Some(true),
        header_template: Some("<span></span>".into()),
        footer_template: Some(FOOTER.into()),
        prefer_css_page_size: Some(false),
        ..PrintToPdfParams::default()
    }
}
