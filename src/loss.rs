//! Time lost per practitioner: the model the status page and the evidence
//! report share. Given tallies of what the agent measured during working
//! hours and the site's `practitioners:` assumptions, it gives minutes per
//! practitioner per working day, by cause:
//!
//! - **freezes**: the share of working time a system was frozen (its freeze
//!   episodes), weighted by the share of practitioners' transactions on
//!   that system, times the working day;
//! - **forced logouts**: forced logouts per session-hour known alive, times
//!   the working hours (a practitioner is logged in all day), times the
//!   cost of each: the re-login time plus the work redone;
//! - **slowness**: for each interactive journey, the time its completed
//!   steps (`ok` or `slow`) took beyond `acceptable` per run, times the
//!   journey's transactions per hour, times the working hours. A frozen
//!   step's wait is already in the freezes' share, so it is not counted
//!   twice.
//!
//! The status page feeds it one tally of everything since the agent
//! started; the report ([`crate::report::time_lost`]) feeds it one tally per
//! block of time, resamples the blocks for intervals and compares before and
//! after each change. This module reads nothing and imports only the config's
//! [`Practitioners`] and [`crate::timefmt`].

use std::collections::BTreeMap;

use crate::config::practitioners::Practitioners;
use crate::timefmt::human_duration;

/// One block's tallies, during working hours.
#[derive(Clone, Debug, Default)]
pub struct LossTally {
    pub start: f64,
    pub working_seconds: f64,
    /// Frozen seconds, weighted by each system's share of transactions.
    pub frozen_seconds: f64,
    pub drops: f64,
    pub session_hours: f64,
    /// Journey: (seconds over `acceptable`, runs).
    pub excess: BTreeMap<String, (f64, f64)>,
}

/// The inputs that do not vary by block.
pub struct Model<'a> {
    pub practitioners: &'a Practitioners,
    pub cost_seconds: f64,
}

impl Model<'_> {
    /// (freezes, forced logouts, slowness) in minutes per practitioner per
    /// working day, from the blocks `tallies` (repeats allowed).
    pub fn minutes(&self, tallies: &[&LossTally]) -> Option<(f64, f64, f64)> {
        let working: f64 = tallies.iter().map(|t| t.working_seconds).sum();
        if working <= 0.0 {
            return None;
        }
        let day = self.practitioners.hours_per_day();
        let frozen = day * 60.0 * tallies.iter().map(|t| t.frozen_seconds).sum::<f64>() / working;
        let hours: f64 = tallies.iter().map(|t| t.session_hours).sum();
        let drops: f64 = tallies.iter().map(|t| t.drops).sum();
        let logouts = if hours > 0.0 {
            day * drops / hours * self.cost_seconds / 60.0
        } else {
            0.0
        };
        let mut excess: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for t in tallies {
            for (journey, (secs, runs)) in &t.excess {
                let e = excess.entry(journey).or_default();
                e.0 += secs;
                e.1 += runs;
            }
        }
        let slow = excess
            .iter()
            .filter(|(_, (_, runs))| *runs > 0.0)
            .map(|(journey, (secs, runs))| self.practitioners.rate(journey) * secs / runs)
            .sum::<f64>()
            * day
            / 60.0;
        Some((frozen, logouts, slow))
    }
}

/// The assumptions in words, marking defaults.
pub fn assumptions(p: &Practitioners) -> String {
    let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
    let mut rates: Vec<String> = p
        .transactions_per_hour
        .iter()
        .map(|(j, r)| format!("{j} {r}"))
        .collect();
    rates.push(format!(
        "other journeys {}",
        p.default_transactions_per_hour
    ));
    let redo = match p.redo_after_logout_seconds {
        Some(s) => format!("{} of work redone after a forced logout", human_duration(s)),
        None => "the work redone after a forced logout as measured".to_string(),
    };
    let mut text = format!(
        "{} practitioners working {}-{} on {}, {} days a month; steps acceptable up to {}; transactions an hour per practitioner: {}; {}",
        p.headcount,
        hm(p.working_from_minute),
        hm(p.working_to_minute),
        if p.weekends { "every day" } else { "weekdays" },
        p.working_days_per_month,
        human_duration(p.acceptable_seconds),
        rates.join(", "),
        redo
    );
    if !p.defaulted.is_empty() {
        text.push_str(&format!(" (defaults: {})", p.defaulted.join(", ")));
    }
    text
}
