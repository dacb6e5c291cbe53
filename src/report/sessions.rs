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
use super::rule;
use super::stats;
use crate::detect::AgeBands;
use crate::ledger::{class_value, Ledger};
use crate::timefmt::rfc3339;

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
    let scale = design.clock.scale;
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
    let forced = ForcedLogouts {
        total,
        session_hours,
        rate_per_session_hour: evidence::rate(&drop_parts, 0.05),
        by_cause: causes
            .into_iter()
            .map(|((target, cause), count)| LogoutCauseRow {
                target,
                cause,
                count,
                share: stats::wilson(count, total),
            })
            .collect(),
        events: events(ledger),
    };

    let (survival, sessions_count, dropped) = survival(ledger);
    let median = survival
        .iter()
        .find(|p| p.survival <= 0.5)
        .map(|p| p.age_seconds);

    // Hazard per age band, per calendar session-hour.
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
    let band_rows: Vec<BandHazard> = labels
        .iter()
        .enumerate()
        .map(|(b, label)| BandHazard {
            band: label.clone(),
            exposure_hours: band_hours[b],
            drops: band_drops[b],
            hazard_per_hour: evidence::ruled(
                rule::band_rate(band_drops[b], band_hours[b], dispersion),
                units,
            ),
        })
        .collect();

    // The "log out every two hours" rule.
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
    let verdict = rule::verdict(&band_rows, edges, rule_at, &drops, dispersion);
    let sessions = Sessions {
        sessions: sessions_count,
        dropped,
        censored: sessions_count - dropped,
        survival,
        median_survival_seconds: median,
        bands: band_rows,
        rule: verdict,
        dispersion,
    };
    (forced, sessions)
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
            let seen_at = d.login_at + d.seen_age;
            ForcedLogoutRow {
                seen_at,
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
