//! A progress bar for long reads: rows read and an estimate of the time
//! left, on standard error, only on a terminal and only once a read has
//! taken more than about a second. Nothing on a pipe or in CI.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a read runs before its bar appears.
const SHOW_AFTER: Duration = Duration::from_secs(1);

pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    enabled: bool,
    shown: bool,
}

impl Progress {
    /// A bar counting up to about `total` `what` (rows, hours...).
    pub fn new(total: u64, what: &str) -> Progress {
        let enabled = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let bar = ProgressBar::with_draw_target(Some(total.max(1)), ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template(&format!(
            "{{spinner}} reading {{bar:30}} {{human_pos}} of about {{human_len}} {what}, {{eta}} left"
        )) {
            bar.set_style(style);
        }
        Progress {
            bar,
            started: Instant::now(),
            enabled,
            shown: false,
        }
    }

    /// `done` so far.
    pub fn set(&mut self, done: u64) {
        if self.enabled && !self.shown && self.started.elapsed() >= SHOW_AFTER {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
        if let Some(len) = self.bar.length() {
            if done > len {
                self.bar.set_length(done);
            }
        }
        self.bar.set_position(done);
    }

    /// Clears the bar.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
