//! The fleet's figures: one row per site, the pool, and each site against
//! the rest of the fleet.

use std::collections::{BTreeMap, BTreeSet};

use super::read::Site;
use super::{
    FleetJournal, FleetOptions, FleetReport, JourneyRow, SiteComparison, SiteRow, ADJUSTED,
    MEASURES, SCHEMA_VERSION,
};
use crate::ledger::build::SlotWindow;
use crate::ledger::{Ledger, SlotClock, StepKey};
use crate::outcome::unix_secs;
use crate::report::build::time_window;
use crate::report::compare::{Measure, SHARE_DIFFERENCE};
use crate::report::design::{self, Design, Sheet};
use crate::report::evidence::{self, Direction, Distribution, Part, Sides};
use crate::report::stats::Estimate;
use crate::timefmt::{human_duration, rfc3339};

/// One site's parts, drawn once.
struct Parts<'a> {
    runs: Vec<Part<(u64, u64)>>,
    latencies: Vec<Part<&'a [u32]>>,
    distribution: Distribution,
    freezes: Vec<Part<(f64, f64)>>,
    drops: Vec<Part<(f64, f64)>>,
    given_up: u64,
    session_hours: f64,
}

fn parts<'a>(sheet: &Sheet<'a>, design: &Design) -> Parts<'a> {
    let ledger = sheet.ledger;
    let slots = sheet.slots(None);
    let all: Vec<i64> = ledger.slots.keys().copied().collect();
    let latencies = sheet.latencies(design, &all, StepKey::is_interactive);
    Parts {
        runs: sheet.runs(design, &slots, |_| true),
        distribution: Distribution::of(&latencies),
        latencies,
        freezes: sheet.freezes(design, &slots, None),
        drops: sheet.drops(design, &slots, None),
        given_up: ledger
            .slots
            .values()
            .flat_map(|s| s.steps.iter())
            .map(|(_, t)| u64::from(t.given_up))
            .sum(),
        session_hours: all
            .iter()
            .map(|&i| sheet.session_hours(design, i, None, None))
            .sum(),
    }
}

fn units<T>(parts: &[Part<T>]) -> usize {
    parts.iter().map(|p| p.unit).collect::<BTreeSet<_>>().len()
}

/// Several sites' parts as one pool (a day is one unit across sites).
struct Pool<'a> {
    runs: Vec<Part<(u64, u64)>>,
    latencies: Vec<Part<&'a [u32]>>,
    distribution: Distribution,
    freezes: Vec<Part<(f64, f64)>>,
    drops: Vec<Part<(f64, f64)>>,
}

fn pool<'a>(members: &[&Parts<'a>]) -> Pool<'a> {
    Pool {
        runs: members
            .iter()
            .flat_map(|p| p.runs.iter().copied())
            .collect(),
        latencies: members
            .iter()
            .flat_map(|p| p.latencies.iter().copied())
            .collect(),
        distribution: Distribution::merge(
            &members.iter().map(|p| &p.distribution).collect::<Vec<_>>(),
        ),
        freezes: members
            .iter()
            .flat_map(|p| p.freezes.iter().copied())
            .collect(),
        drops: members
            .iter()
            .flat_map(|p| p.drops.iter().copied())
            .collect(),
    }
}

fn row(
    site: &str,
    journals: usize,
    p: &Pool<'_>,
    given_up: u64,
    freezes: u64,
    drops: u64,
    session_hours: f64,
) -> SiteRow {
    SiteRow {
        site: site.to_string(),
        journals,
        runs: p.runs.iter().map(|x| x.value.1).sum(),
        successes: p.runs.iter().map(|x| x.value.0).sum(),
        units: units(&p.runs),
        availability: evidence::share(&p.runs, 0.05),
        steps: p.distribution.len(),
        given_up,
        p95_ms: evidence::quantile_of(&p.distribution, &p.latencies, 0.95, 0.05),
        freezes,
        freezes_per_day: evidence::rate(&p.freezes, 0.05).scaled(24.0),
        forced_logouts: drops,
        session_hours,
        logouts_per_session_hour: evidence::rate(&p.drops, 0.05),
    }
}

fn ratio(rest: &[Part<(f64, f64)>], site: &[Part<(f64, f64)>], alpha: f64) -> Estimate {
    let mut e = evidence::rate_ratio(rest, site, alpha);
    e.method = ADJUSTED;
    e
}

/// Each site against `rest` (indices into `all`).
fn compare(
    name: &str,
    own: &Pool<'_>,
    rest: &Pool<'_>,
    alpha: f64,
    design: &Design,
    side_seconds: f64,
) -> SiteComparison {
    let judging = SiteJudging {
        sides: Sides {
            units: (units(&rest.runs), units(&own.runs)),
            unit_seconds: design.unit_seconds(),
            side_seconds,
        },
        alpha,
    };
    let availability = judging.availability(rest, own);
    let p95_ms = judging.p95(rest, own);
    let freeze_rate = judging.rates(&rest.freezes, &own.freezes, 24.0);
    let logout_rate = judging.rates(&rest.drops, &own.drops, 1.0);
    let (worse_on, better_on) =
        worse_and_better(&availability, &p95_ms, &freeze_rate, &logout_rate);
    let enough = availability.judgement.enough_units;
    let verdict = verdict(name, &worse_on, &better_on, enough);
    SiteComparison {
        site: name.to_string(),
        availability,
        p95_ms,
        freeze_rate,
        logout_rate,
        worse_on,
        better_on,
        verdict,
    }
}

/// What every measure of a site against the rest weighs besides its own
/// interval: the units on each side, their length, the side's length, and
/// the alpha adjusted for the comparisons made.
struct SiteJudging {
    sides: Sides,
    alpha: f64,
}

impl SiteJudging {
    /// The share of runs that succeeded, the rest's before the site's.
    fn availability(&self, rest: &Pool<'_>, own: &Pool<'_>) -> Measure {
        let mut share_change = evidence::difference(
            &evidence::share(&rest.runs, self.alpha),
            &evidence::share(&own.runs, self.alpha),
            SHARE_DIFFERENCE,
        );
        share_change.method = ADJUSTED;
        Measure {
            before: evidence::share(&rest.runs, 0.05),
            after: evidence::share(&own.runs, 0.05),
            judgement: self.sides.judge(&share_change, 0.0, false, None),
            change: share_change,
        }
    }

    /// Interactive p95, the rest's before the site's.
    fn p95(&self, rest: &Pool<'_>, own: &Pool<'_>) -> Measure {
        let p95_change = evidence::difference(
            &evidence::quantile_of(&rest.distribution, &rest.latencies, 0.95, self.alpha),
            &evidence::quantile_of(&own.distribution, &own.latencies, 0.95, self.alpha),
            ADJUSTED,
        );
        Measure {
            before: evidence::quantile_of(&rest.distribution, &rest.latencies, 0.95, 0.05),
            after: evidence::quantile_of(&own.distribution, &own.latencies, 0.95, 0.05),
            judgement: self.sides.judge(&p95_change, 0.0, false, None),
            change: p95_change,
        }
    }

    /// A rate `per` hour or day, the rest's before the site's; the
    /// judgement also weighs how many events there were.
    fn rates(&self, rest: &[Part<(f64, f64)>], site: &[Part<(f64, f64)>], per: f64) -> Measure {
        let change = ratio(rest, site, self.alpha);
        let ((kr, ur), (ks, us)) = (evidence::events(rest), evidence::events(site));
        Measure {
            before: evidence::rate(rest, 0.05).scaled(per),
            after: evidence::rate(site, 0.05).scaled(per),
            judgement: self
                .sides
                .judge(&change, 1.0, true, Some((kr + ks, ur + us))),
            change,
        }
    }
}

/// The measures the site is judged worse on, and better on.
fn worse_and_better(
    availability: &Measure,
    p95_ms: &Measure,
    freeze_rate: &Measure,
    logout_rate: &Measure,
) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut worse_on = Vec::new();
    let mut better_on = Vec::new();
    for (label, m, worse_is) in [
        ("availability", availability, Direction::Lower),
        ("p95 latency", p95_ms, Direction::Higher),
        ("freezes", freeze_rate, Direction::Higher),
        ("forced logouts", logout_rate, Direction::Higher),
    ] {
        match m.judgement.direction {
            Some(d) if d == worse_is => worse_on.push(label),
            Some(_) => better_on.push(label),
            None => {}
        }
    }
    (worse_on, better_on)
}

/// The site's verdict: worse wins over too little evidence, which wins over
/// better.
fn verdict(name: &str, worse_on: &[&str], better_on: &[&str], enough: bool) -> String {
    if !worse_on.is_empty() {
        format!(
            "{name} is worse than the rest of the fleet on {}.",
            worse_on.join(", ")
        )
    } else if !enough {
        format!(
            "Not enough evidence yet to say whether {name} is worse: fewer than {} independent days measured on a side.",
            evidence::MIN_UNITS
        )
    } else if !better_on.is_empty() {
        format!(
            "{name} is not shown worse than the rest of the fleet; it is better on {}.",
            better_on.join(", ")
        )
    } else {
        format!("{name} is not shown to differ from the rest of the fleet on any measure.")
    }
}

pub fn assemble(
    journals: Vec<FleetJournal>,
    sites: &[Site],
    window: SlotWindow,
    options: &FleetOptions,
) -> FleetReport {
    let sheets: Vec<Sheet<'_>> = sites.iter().map(|s| Sheet::new(&s.ledger)).collect();
    let unit_days = shared_unit_days(&sheets, window.clock);
    let design = Design::new(window.clock, unit_days);
    let own: Vec<Parts<'_>> = sheets.iter().map(|s| parts(s, &design)).collect();
    let comparisons_made = (sites.len() * MEASURES).max(1);
    let alpha = 0.05 / comparisons_made as f64;
    let mut rows = Vec::new();
    let mut journeys = Vec::new();
    for ((site, sheet), parts) in sites.iter().zip(&sheets).zip(&own) {
        rows.push(site_row(site, parts));
        journeys.extend(journey_rows(site, sheet, &design));
    }
    let fleet = Fleet {
        sites,
        own: &own,
        alpha,
        design: &design,
        side_seconds: window.to() - window.from(),
    };
    let comparisons = fleet.comparisons();
    let pooled = fleet.pooled_row(journals.len());
    let worse: Vec<String> = comparisons
        .iter()
        .filter(|c| !c.worse_on.is_empty())
        .map(|c| c.site.clone())
        .collect();
    let has_data = pooled.runs > 0;
    let mut report = FleetReport {
        schema_version: SCHEMA_VERSION,
        generated_at: rfc3339(unix_secs(options.now)),
        journals,
        window: time_window(window, has_data),
        unit_days,
        unit_seconds: design.unit_seconds(),
        min_units: evidence::MIN_UNITS,
        comparison_level: 1.0 - alpha,
        summary: Vec::new(),
        sites: rows,
        journeys,
        pooled,
        comparisons,
        worse,
        methods: methods(&design),
    };
    report.summary = super::render::summary(&report);
    report
}

/// The unit of days every site is measured in: the longest any one of
/// them needs.
fn shared_unit_days(sheets: &[Sheet<'_>], clock: SlotClock) -> u32 {
    sheets
        .iter()
        .map(|sheet| {
            let longest = sheet
                .ledger
                .freezes
                .iter()
                .map(|f| f.length)
                .fold(0.0, f64::max);
            design::unit_days(sheet, clock, longest, &[])
        })
        .max()
        .unwrap_or(1)
}

/// One site's row.
fn site_row(site: &Site, parts: &Parts<'_>) -> SiteRow {
    let l = &site.ledger;
    row(
        &site.name,
        site.journals,
        &pool(&[parts]),
        parts.given_up,
        l.freezes.len() as u64,
        l.forced_logouts.len() as u64,
        parts.session_hours,
    )
}

/// One row per journey of a site, in target, journey and kind order.
fn journey_rows(site: &Site, sheet: &Sheet<'_>, design: &Design) -> Vec<JourneyRow> {
    let slots = sheet.slots(None);
    runs_by_journey(&site.ledger)
        .into_iter()
        .map(|((target, journey, kind), (runs, successes))| {
            let parts = sheet.runs(design, &slots, |k| {
                k.target == target && k.journey == journey && k.kind == kind
            });
            JourneyRow {
                site: site.name.clone(),
                availability: evidence::share(&parts, 0.05),
                target,
                journey,
                kind,
                runs,
                successes,
            }
        })
        .collect()
}

/// Runs and successes of each (target, journey, kind) in the ledger.
fn runs_by_journey(l: &Ledger) -> BTreeMap<(String, String, String), (u64, u64)> {
    let mut by_journey: BTreeMap<(String, String, String), (u64, u64)> = BTreeMap::new();
    for slot in l.slots.values() {
        for (j, r) in &slot.runs {
            let k = &l.journeys[*j as usize];
            let e = by_journey
                .entry((k.target.clone(), k.journey.clone(), k.kind.clone()))
                .or_default();
            e.0 += u64::from(r.runs);
            e.1 += u64::from(r.successes);
        }
    }
    by_journey
}

/// Every site's parts and what comparing them takes.
struct Fleet<'s, 'a> {
    sites: &'s [Site],
    own: &'s [Parts<'a>],
    alpha: f64,
    design: &'s Design,
    side_seconds: f64,
}

impl Fleet<'_, '_> {
    /// Each site against the rest without itself; then again against a rest
    /// without the sites that first pass showed worse.
    fn comparisons(&self) -> Vec<SiteComparison> {
        let first = self.against(&BTreeSet::new());
        let worse_first: BTreeSet<usize> = first
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.worse_on.is_empty())
            .map(|(i, _)| i)
            .collect();
        if worse_first.is_empty() {
            first
        } else {
            self.against(&worse_first)
        }
    }

    /// Each site against the others but `excluded` (all the others when
    /// that leaves none).
    fn against(&self, excluded: &BTreeSet<usize>) -> Vec<SiteComparison> {
        let (sites, own) = (self.sites, self.own);
        if sites.len() < 2 {
            return Vec::new();
        }
        (0..sites.len())
            .map(|i| {
                let rest: Vec<&Parts<'_>> = (0..sites.len())
                    .filter(|j| *j != i && !excluded.contains(j))
                    .map(|j| &own[j])
                    .collect();
                let rest = if rest.is_empty() {
                    (0..sites.len())
                        .filter(|j| *j != i)
                        .map(|j| &own[j])
                        .collect()
                } else {
                    rest
                };
                compare(
                    &sites[i].name,
                    &pool(&[&own[i]]),
                    &pool(&rest),
                    self.alpha,
                    self.design,
                    self.side_seconds,
                )
            })
            .collect()
    }

    /// The whole fleet as one row.
    fn pooled_row(&self, journals: usize) -> SiteRow {
        let (sites, own) = (self.sites, self.own);
        let everyone: Vec<&Parts<'_>> = own.iter().collect();
        row(
            "fleet",
            journals,
            &pool(&everyone),
            own.iter().map(|p| p.given_up).sum(),
            sites.iter().map(|s| s.ledger.freezes.len() as u64).sum(),
            sites
                .iter()
                .map(|s| s.ledger.forced_logouts.len() as u64)
                .sum(),
            own.iter().map(|p| p.session_hours).sum(),
        )
    }
}

fn methods(design: &Design) -> BTreeMap<&'static str, String> {
    let mut methods = BTreeMap::new();
    methods.insert(
        "units of days",
        format!(
            "independent units of {} shared by every site; in pooled figures a unit is one cluster across all sites (a central freeze stalls every office at once); what was measured is tallied per calendar hour",
            human_duration(design.unit_seconds() * design.clock.scale)
        ),
    );
    methods.insert("availability", evidence::CLUSTERED_WILSON.into());
    methods.insert(
        "interactive p95",
        format!(
            "HdrHistogram's percentile (exact to three significant figures) of every completed step of the interactive journeys (steps given up on counted apart); interval: {}",
            evidence::CLUSTERED_QUANTILE
        ),
    );
    methods.insert(
        "freeze and logout rates",
        evidence::OVERDISPERSED_RATE.into(),
    );
    methods.insert(
        "site against the rest of the fleet",
        format!(
            "availability: {}; p95: {}; rates: {}; {}; the rest leaves out the site itself and every site a first pass showed worse, so a healthy site is never better only because another is worse; a site is called worse only when the interval excludes no difference, each side has at least {} independent days and a rate rests on at least {} events in as many days",
            SHARE_DIFFERENCE,
            evidence::CLUSTERED_QUANTILE_DIFFERENCE,
            evidence::RATE_RATIO,
            ADJUSTED,
            evidence::MIN_UNITS,
            evidence::MIN_EVENTS
        ),
    );
    methods
}
