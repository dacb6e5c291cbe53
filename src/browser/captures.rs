//! Captures of failed browser steps: a screenshot of what the browser
//! showed and the page's last console errors, saved beside the journal.
//! (Users meet them as "evidence": the `/evidence/` links, the
//! `evidence_*` settings and metric; in the code "evidence" is the
//! report's statistics, so here they are captures.)
//!
//! Credentials never reach these files. Before a screenshot every password
//! field is emptied, and so is every field a secret was typed into; the
//! page is then asked again, and the screenshot is taken only if no
//! password field still holds a value and no frame was out of reach. A page
//! that cannot answer (its main thread stuck) gets no screenshot at all.
//! Every secret value is blanked from the console text before it is
//! written.
//!
//! Each failed step leaves `NAME.json` (what failed, the console errors,
//! why a screenshot is missing) and, when it could be taken, `NAME.png`.
//! Retention: files older than `keep` are deleted, and beyond `max_files`
//! failed steps the oldest go first.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, CaptureScreenshotParams,
};

use super::page::Tab;
use super::script;
use crate::config::browser::BrowserSettings;
use crate::outcome::Outcome;

/// How long the page gets to clear its secret fields, and to paint.
const MASK_TIMEOUT: Duration = Duration::from_secs(3);
const SCREENSHOT_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether `name` is an evidence file name this store could have written
/// (letters, digits, `-`, `_`, `.`; ending `.png` or `.json`), so a web
/// request can never name another file.
pub fn is_capture_file(name: &str) -> bool {
    let ok_chars = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ok_chars && (name.ends_with(".png") || name.ends_with(".json"))
}

/// The failed step a capture is of, for its `.json` file.
#[derive(serde::Serialize)]
pub struct FailedStep<'a> {
    pub target: &'a str,
    pub journey: &'a str,
    pub step: &'a str,
    pub outcome: Outcome,
    pub detail: &'a str,
    pub run_id: u64,
}

#[derive(Clone, Debug)]
pub struct CaptureStore {
    dir: PathBuf,
    keep: Duration,
    max_files: usize,
}

impl CaptureStore {
    pub fn new(dir: PathBuf, settings: &BrowserSettings) -> CaptureStore {
        CaptureStore {
            dir,
            keep: settings.evidence_keep,
            max_files: settings.evidence_max_files,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Saves the evidence of a failed step from `tab`; returns its name
    /// (without extension), or `None` when nothing could be written.
    /// `secrets` are values never to write; `fields` the selectors of
    /// fields a secret was typed into.
    pub async fn save(
        &self,
        tab: &Tab,
        failure: FailedStep<'_>,
        secrets: &[String],
        fields: &[String],
    ) -> Option<String> {
        let name = file_name(&failure);
        let (screenshot, masked, skipped) = match screenshot(tab, fields).await {
            Ok((png, masked)) => (Some(png), Some(masked), None),
            Err(why) => (None, None, Some(why)),
        };
        let (url_path, console) = {
            let watch = tab.watch();
            let path = watch
                .url()
                .and_then(|u| url::Url::parse(u).ok())
                .map(|u| u.path().to_string());
            (path, watch.console())
        };
        let console: Vec<String> = console.iter().map(|l| redact(l, secrets)).collect();
        let record = serde_json::json!({
            "at": crate::timefmt::rfc3339(crate::outcome::unix_secs(SystemTime::now())),
            "target": failure.target,
            "journey": failure.journey,
            "step": failure.step,
            "run_id": failure.run_id,
            "outcome": failure.outcome,
            "detail": redact(failure.detail, secrets),
            "page_path": url_path,
            "console_errors": console,
            "screenshot": screenshot.as_ref().map(|_| format!("{name}.png")),
            "screenshot_skipped": skipped,
            // What the page held just before the screenshot: the fields
            // emptied, and password fields still filled (always 0 when a
            // screenshot exists).
            "fields_cleared": masked.as_ref().map(|m| m.cleared),
            "password_fields_left": masked.as_ref().map(|m| m.left),
        });
        let dir = self.dir.clone();
        let store = self.clone();
        let saved_name = name.clone();
        let written = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            if let Some(png) = screenshot {
                std::fs::write(dir.join(format!("{saved_name}.png")), png)?;
            }
            let text = serde_json::to_vec_pretty(&record).unwrap_or_default();
            std::fs::write(dir.join(format!("{saved_name}.json")), text)?;
            store.prune();
            Ok::<(), std::io::Error>(())
        })
        .await;
        match written {
            Ok(Ok(())) => Some(name),
            Ok(Err(e)) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot save browser evidence");
                None
            }
            Err(_) => None,
        }
    }

    /// Applies retention: files older than `keep`, then the oldest failed
    /// steps beyond `max_files`. Blocking.
    pub fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        let mut steps: std::collections::BTreeMap<String, Vec<PathBuf>> = Default::default();
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !is_capture_file(name) {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > self.keep);
            if old {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let stem = name.rsplit_once('.').map_or(name, |(s, _)| s).to_string();
            steps.entry(stem).or_default().push(path);
        }
        // Names start with the time, so they sort oldest first.
        let excess = steps.len().saturating_sub(self.max_files);
        for (_, files) in steps.into_iter().take(excess) {
            for file in files {
                let _ = std::fs::remove_file(file);
            }
        }
    }
}

/// `20260601T101530.123Z-case_note-save_note-r42`: the time first, so names
/// sort oldest first; config names only (they are label-safe).
fn file_name(failure: &FailedStep<'_>) -> String {
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect()
    };
    let journey = if failure.journey.is_empty() {
        "kept".to_string()
    } else {
        clean(failure.journey)
    };
    format!(
        "{now}-{journey}-{}-r{}",
        clean(failure.step),
        failure.run_id
    )
}

/// Blanks every secret in `text` (values shorter than 3 characters are not
/// secrets and would blank too much).
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 3) {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "[redacted]");
        }
    }
    out
}

#[derive(serde::Deserialize)]
struct Masked {
    cleared: u32,
    left: u32,
    opaque: u32,
}

/// Empties the secret fields, checks nothing is left, then captures the
/// viewport. Any doubt means no screenshot, with the reason.
async fn screenshot(tab: &Tab, fields: &[String]) -> Result<(Vec<u8>, Masked), String> {
    let mask = script::mask_secrets(fields);
    let masking = tab.eval::<Masked>(&mask);
    let masked = match tokio::time::timeout(MASK_TIMEOUT, masking).await {
        Ok(Ok(masked)) => masked,
        Ok(Err(_)) => return Err("the page could not clear its password fields".to_string()),
        Err(_) => {
            return Err(
                "the page did not answer (its main thread was blocked), so its password fields could not be cleared".to_string(),
            )
        }
    };
    if masked.left > 0 || masked.opaque > 0 {
        return Err(format!(
            "{} password field(s) still filled and {} frame(s) out of reach after clearing {}",
            masked.left, masked.opaque, masked.cleared
        ));
    }
    let capture = tab.page.execute(CaptureScreenshotParams {
        format: Some(CaptureScreenshotFormat::Png),
        ..Default::default()
    });
    match tokio::time::timeout(SCREENSHOT_TIMEOUT, capture).await {
        Ok(Ok(shot)) => base64::engine::general_purpose::STANDARD
            .decode(AsRef::<str>::as_ref(&shot.result.data))
            .map(|png| (png, masked))
            .map_err(|_| "the screenshot could not be decoded".to_string()),
        Ok(Err(_)) => Err("the browser could not take the screenshot".to_string()),
        Err(_) => Err("the page did not paint in time".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_this_store_writes_are_served() {
        assert!(is_capture_file("20260601T101530.123Z-j-s-r1.png"));
        assert!(is_capture_file("20260601T101530.123Z-j-s-r1.json"));
        for bad in [
            "../journal.db",
            ".hidden.png",
            "a/b.png",
            "x.db",
            "",
            "a%2F..png",
        ] {
            assert!(!is_capture_file(bad), "{bad}");
        }
    }

    #[test]
    fn secrets_are_blanked_and_short_values_left() {
        let secrets = vec!["hunter22".to_string(), "x".to_string()];
        assert_eq!(
            redact("login with hunter22 failed: x", &secrets),
            "login with [redacted] failed: x"
        );
    }

    #[test]
    fn retention_keeps_the_newest_failed_steps() {
        let dir = tempfile::tempdir().unwrap();
        let store = CaptureStore {
            dir: dir.path().to_path_buf(),
            keep: Duration::from_secs(3600),
            max_files: 2,
        };
        for stem in [
            "20260101T000000.000Z-j-a-r1",
            "20260102T000000.000Z-j-b-r2",
            "20260103T000000.000Z-j-c-r3",
        ] {
            std::fs::write(dir.path().join(format!("{stem}.json")), "{}").unwrap();
            std::fs::write(dir.path().join(format!("{stem}.png")), "png").unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "kept").unwrap();
        store.prune();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "20260102T000000.000Z-j-b-r2.json",
                "20260102T000000.000Z-j-b-r2.png",
                "20260103T000000.000Z-j-c-r3.json",
                "20260103T000000.000Z-j-c-r3.png",
                "notes.txt"
            ]
        );
    }
}
