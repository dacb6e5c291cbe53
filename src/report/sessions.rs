//! The report's session sections: forced logouts (by cause, each one
//! listed with its bracket), survival by age (Kaplan–Meier), the hazard
//! per age band, the "log out every two hours" verdict, and kept sessions.

use std::collections::BTreeMap;
use std::time::Duration;

use super::design::{Design, Sheet};
use super::evidence;
use super::model::{
    BandHazard, ForcedLogoutRow, ForcedLogouts, KeptSessions, KeptTargetRow, LogoutCauseRow,
    Sessions, SurvivalRow,
};
use super::rule::{self, RuleVerdict};
use super::stats::{self, Estimate};
use super::words;
use crate::detect::AgeBands;
use crate::ledger::{class_value, Ledger};
use crate::timefmt::{human_duration, rfc3339};

/// Forced logouts and sessions over `slots` (those in which a journey ran).
pub fn sections(
    sheet: &Sheet<'_>,
    design: &Design,
    slots: &[i64],
    bands: &AgeBands,
    rule_age: Option<Duration>,
) -> (ForcedLogouts, Sessions) {
    let ledger = sheet.ledger;
    let drop_parts = sheet.drops(design, slots, None);
    let units = drop_parts
        .iter()
        .map(|p| p.unit)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let dispersion = evidence::dispersion(&[&drop_parts]);
    let forced = forced_logouts(sheet, design, &drop_parts, units);

    let (survival, sessions_count, dropped) = survival(ledger);
    let median = survival
        .iter()
        .find(|p| p.survival <= 0.5)
        .map(|p| p.age_seconds);

    let band_rows = band_rows(sheet, design, bands, dispersion, units);
    let verdict = rule_verdict(
        ledger, design, bands, rule_age, &band_rows, dispersion, units,
    );
    let sessions = Sessions {
        sessions: sessions_count,
        dropped,
        censored: sessions_count - dropped,
        survival,
        median_survival_seconds: median,
        bands: band_rows,
        rule: verdict,
        dispersion,
        units: units as u64,
    };
    (forced, sessions)
}

/// The forced logouts: their rate per session-hour, their share by target
/// and cause, and each one.
fn forced_logouts(
    sheet: &Sheet<'_>,
    design: &Design,
    drop_parts: &[evidence::Part<(f64, f64)>],
    units: usize,
) -> ForcedLogouts {
    let ledger = sheet.ledger;
    let session_hours: f64 = ledger
        .slots
        .keys()
        .map(|&i| sheet.session_hours(design, i, None, None))
        .sum();
    let mut causes: BTreeMap<(String, String), u64> = BTreeMap::new();
    for d in &ledger.forced_logouts {
        *causes
            .entry((d.target.clone(), d.cause.clone()))
            .or_default() += 1;
    }
    let total = ledger.forced_logouts.len() as u64;
    ForcedLogouts {
        total,
        session_hours,
        rate_per_session_hour: evidence::rate(drop_parts, 0.05),
        by_cause: causes
            .into_iter()
            .map(|((target, cause), count)| LogoutCauseRow {
                target,
                cause,
                count,
                share: evidence::ruled(stats::wilson(count, total), units),
            })
            .collect(),
        events: events(ledger),
    }
}

/// The "log out every two hours" rule, at `rule_age` or else at two hours
/// when the bands reach that far, else at the bands' second edge.
fn rule_verdict(
    ledger: &Ledger,
    design: &Design,
    bands: &AgeBands,
    rule_age: Option<Duration>,
    band_rows: &[BandHazard],
    dispersion: f64,
    units: usize,
) -> RuleVerdict {
    let scale = design.clock.scale;
    let edges = bands.edges();
    let two_hours = Duration::from_secs_f64(7200.0 / scale);
    let rule_at = rule_age.unwrap_or_else(|| {
        if edges.iter().any(|e| *e >= two_hours) {
            two_hours
        } else {
            edges.get(1).or(edges.first()).copied().unwrap_or(two_hours)
        }
    });
    let drops: Vec<rule::Drop> = ledger
        .forced_logouts
        .iter()
        .map(|d| rule::Drop {
            age: d.age(),
            unit: Some(design.unit(design.clock.slot(d.at()))),
        })
        .collect();
    let context = rule::Context {
        scale,
        unit_days: design.unit_days,
    };
    let mut verdict = rule::verdict(band_rows, edges, rule_at, &drops, dispersion, context);
    // The pooled rates, like every rate, get no range from too few days.
    verdict.younger = evidence::ruled(verdict.younger, units);
    verdict.older = evidence::ruled(verdict.older, units);
    verdict
}

/// The hazard per age band, per calendar session-hour, each band's rate
/// ruled by the `units` of days behind it.
fn band_rows(
    sheet: &Sheet<'_>,
    design: &Design,
    bands: &AgeBands,
    dispersion: f64,
    units: usize,
) -> Vec<BandHazard> {
    let ledger = sheet.ledger;
    let labels = bands.labels();
    let mut band_hours = vec![0.0; labels.len()];
    for &i in ledger.slots.keys() {
        for (b, hours) in band_hours.iter_mut().enumerate() {
            *hours += sheet.session_hours(design, i, None, Some(b));
        }
    }
    let mut band_drops = vec![0u64; labels.len()];
    for d in &ledger.forced_logouts {
        let label = bands.label(age(d.age()));
        if let Some(b) = labels.iter().position(|l| l == label) {
            band_drops[b] += 1;
        }
    }
    labels
        .iter()
        .enumerate()
        .map(|(b, label)| BandHazard {
            band: label.clone(),
            age_text: band_words(bands.edges(), b),
            exposure_hours: band_hours[b],
            drops: band_drops[b],
            hazard_per_hour: evidence::ruled(
                rule::band_rate(band_drops[b], band_hours[b], dispersion),
                units,
            ),
        })
        .collect()
}

/// Age band `b` of `edges` in words: "under 1 min", "1 min to 2 min",
/// "4 min and older".
fn band_words(edges: &[Duration], b: usize) -> String {
    let text = |d: &Duration| human_duration(d.as_secs_f64());
    match (b.checked_sub(1).and_then(|i| edges.get(i)), edges.get(b)) {
        (None, Some(upper)) => format!("under {}", text(upper)),
        (Some(lower), Some(upper)) => format!("{} to {}", text(lower), text(upper)),
        (Some(lower), None) => format!("{} and older", text(lower)),
        (None, None) => "any age".into(),
    }
}

/// Older sessions' hazard over younger ones' for a table: "not enough
/// evidence yet" where the verdict says so, never a range from 0 to 132.
pub fn hazard_ratio_text(rule: &RuleVerdict) -> String {
    if rule.verdict == "not_enough_data" {
        "not enough evidence yet".into()
    } else {
        words::ratio_cell(&rule.hazard_ratio, 2)
    }
}

/// The share still logged in at an age, with its band only from enough
/// independent days (`units`).
pub fn survival_text(p: &SurvivalRow, units: u64) -> String {
    let mut e = Estimate::new(p.survival, p.low, p.high, p.at_risk, "");
    e.units = units;
    words::cell_percent(&evidence::ruled(e, units as usize))
}

fn age(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::MAX)
}

/// Every forced logout, in the order the losses were seen.
fn events(ledger: &Ledger) -> Vec<ForcedLogoutRow> {
    let mut rows: Vec<ForcedLogoutRow> = ledger
        .forced_logouts
        .iter()
        .map(|d| {
            let seen_at = d.seen_at;
            ForcedLogoutRow {
                seen_at,
                alive_at: d.login_at + d.alive_age,
                seen_text: rfc3339(seen_at),
                site: d.site.clone(),
                target: d.target.clone(),
                cause: d.cause.clone(),
                holder_kind: d.holder_kind.clone(),
                holder: d.holder.clone(),
                alive_age_seconds: d.alive_age,
                seen_age_seconds: d.seen_age,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.seen_at.total_cmp(&b.seen_at));
    rows
}

/// The Kaplan–Meier product-limit curve from the ledger's lifetimes (each
/// forced logout at the middle of its bracket, to three significant
/// figures), with Greenwood's log-log 95% band, as the status page gives
/// it ([`crate::detect::survival`]); and the sessions and drops behind it.
fn survival(ledger: &Ledger) -> (Vec<SurvivalRow>, u64, u64) {
    let sessions: u64 = ledger.lifetimes.values().map(|(c, d)| c + d).sum();
    let dropped: u64 = ledger.lifetimes.values().map(|(_, d)| d).sum();
    let table = ledger
        .lifetimes
        .iter()
        .map(|(&class, &(censored, drops))| (class_value(class) as f64 / 1000.0, censored, drops));
    let rows = crate::detect::survival::product_limit(table)
        .into_iter()
        .map(|p| SurvivalRow {
            age_seconds: p.age_seconds,
            survival: p.survival,
            low: p.low,
            high: p.high,
            at_risk: p.at_risk,
            drops: p.drops,
        })
        .collect();
    (rows, sessions, dropped)
}

/// Kept sessions: checks and lives per (site, target).
pub fn kept(ledger: &Ledger) -> KeptSessions {
    KeptSessions {
        targets: ledger
            .kept
            .iter()
            .map(|((site, target), k)| KeptTargetRow {
                site: site.clone(),
                target: target.clone(),
                checks: k.checks,
                check_outcomes: k.check_outcomes.clone(),
                unknown_checks: k.unknown_checks,
                logins: k.logins,
                failed_logins: k.failed_logins,
                lives_ended: k.lives_ended.clone(),
            })
            .collect(),
    }
}
