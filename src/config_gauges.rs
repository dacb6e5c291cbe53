//! What the config says, as Prometheus sees it: each journey's timetable,
//! and the practitioners the agent stands for. Computed when scraped, from
//! the config the agent runs now.
//!
//! The alerts need the timetable. A burn-rate window that cannot hold three
//! of a journey's runs says nothing, so a journey run every 10 minutes or
//! less often alerts on consecutive failures instead; and a journey that
//! has not run for 3 of its intervals is stale, but only while it was due to
//! run: not at night outside its active hours, nor in the minutes after the
//! agent took it on.
//!
//! The time-lost recording rules need the practitioners: headcount, the
//! working day, whether it is working time now (in the system's calendar),
//! transactions per hour of each interactive journey, and the configured
//! work redone after a forced logout. They are the report's assumptions,
//! so the dashboard and the report add up the same way.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use chrono::{Local, TimeZone};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, GaugeVec, Opts, Registry};

use crate::config::practitioners::Practitioners;
use crate::config::{Config, JourneyKind, Schedule};
use crate::outcome::unix_secs;

/// One journey's schedule and when the agent took it on.
struct Entry {
    target: String,
    journey: String,
    kind: JourneyKind,
    schedule: Schedule,
    since: SystemTime,
}

struct GaugeInputs {
    entries: Vec<Entry>,
    practitioners: Practitioners,
    calendar_scale: f64,
}

/// The gauges, registered on the agent's registry (which adds `site`).
#[derive(Clone)]
pub struct ConfigGauges {
    state: Arc<Mutex<GaugeInputs>>,
    interval: GaugeVec,
    active_since: GaugeVec,
    headcount: Gauge,
    working_day: Gauge,
    days_per_month: Gauge,
    working: Gauge,
    transactions: GaugeVec,
    redo: Gauge,
    central: crate::central_info::CentralInfo,
}

impl ConfigGauges {
    pub fn register(
        registry: &Registry,
        config: &Config,
    ) -> Result<ConfigGauges, prometheus::Error> {
        let journey_gauge =
            |name: &str, help: &str| GaugeVec::new(Opts::new(name, help), &["target", "journey"]);
        let gauges = ConfigGauges {
            central: crate::central_info::CentralInfo::register(registry, config)?,
            state: Arc::new(Mutex::new(GaugeInputs {
                entries: Vec::new(),
                practitioners: config.practitioners.clone(),
                calendar_scale: config.calendar_scale,
            })),
            interval: journey_gauge(
                "casewatch_journey_interval_seconds",
                "The journey's configured interval between runs.",
            )?,
            active_since: journey_gauge(
                "casewatch_journey_active_since_timestamp_seconds",
                "Unix time since which the journey has been due to run without a pause: when the agent took it on, or when today's active hours opened. Absent outside its active hours.",
            )?,
            headcount: Gauge::new(
                "casewatch_practitioners_headcount",
                "Practitioners at the site (the practitioners block, or its default).",
            )?,
            working_day: Gauge::new(
                "casewatch_practitioners_working_day_seconds",
                "Length of the practitioners' working day.",
            )?,
            days_per_month: Gauge::new(
                "casewatch_practitioners_workdays_per_month",
                "Working days in a month, for staff-hours lost per month.",
            )?,
            working: Gauge::new(
                "casewatch_practitioners_working",
                "1 while it is the practitioners' working time in the system's calendar, else 0.",
            )?,
            transactions: journey_gauge(
                "casewatch_practitioners_transactions_per_hour",
                "Times a practitioner does what an interactive journey does, per working hour.",
            )?,
            redo: Gauge::new(
                "casewatch_practitioners_logout_redo_seconds",
                "Work a practitioner redoes after a forced logout: redo_after_logout, or its default of 10 minutes.",
            )?,
        };
        gauges.update(config, SystemTime::now());
        registry.register(Box::new(gauges.clone()))?;
        Ok(gauges)
    }

    /// Takes on the journeys and practitioners of `config` (at start and on
    /// reload). A journey whose target and schedule did not change keeps
    /// its `since`.
    pub fn update(&self, config: &Config, now: SystemTime) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let next = config
            .journeys
            .iter()
            .map(|journey| {
                let kept = state.entries.iter().find(|e| {
                    e.journey == journey.name
                        && e.target == journey.target.name
                        && e.schedule.interval == journey.schedule.interval
                        && e.schedule.active_hours == journey.schedule.active_hours
                });
                Entry {
                    target: journey.target.name.clone(),
                    journey: journey.name.clone(),
                    kind: journey.kind,
                    schedule: journey.schedule.clone(),
                    since: kept.map_or(now, |e| e.since),
                }
            })
            .collect();
        state.entries = next;
        state.practitioners = config.practitioners.clone();
        state.calendar_scale = config.calendar_scale;
        self.central.update(config);
    }

    /// Every family as it stands at `now`; journeys no longer configured,
    /// and journeys outside their active hours, have no interval or since.
    /// The state's lock is held from the reset to the read, so two scrapes
    /// at once (Prometheus and the remote-write collector) never see each
    /// other's empty gauges.
    fn families_at(&self, now: chrono::DateTime<Local>) -> Vec<MetricFamily> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.interval.reset();
        self.active_since.reset();
        self.transactions.reset();
        let p = &state.practitioners;
        for entry in &state.entries {
            let labels = [entry.target.as_str(), entry.journey.as_str()];
            self.interval
                .with_label_values(&labels)
                .set(entry.schedule.interval.as_secs_f64());
            if let Some(opened) = active_since(&entry.schedule, now) {
                let since = opened.max(entry.since);
                self.active_since
                    .with_label_values(&labels)
                    .set(unix_secs(since));
            }
            if entry.kind == JourneyKind::Interactive {
                self.transactions
                    .with_label_values(&labels)
                    .set(p.rate(&entry.journey));
            }
        }
        self.headcount.set(f64::from(p.headcount));
        self.working_day.set(p.hours_per_day() * 3600.0);
        self.days_per_month.set(p.working_days_per_month);
        let working = p.is_working_at(unix_secs(now.into()), state.calendar_scale);
        self.working.set(if working { 1.0 } else { 0.0 });
        let mut families = self.interval.collect();
        families.extend(self.active_since.collect());
        families.extend(self.transactions.collect());
        families.extend(self.headcount.collect());
        families.extend(self.working_day.collect());
        families.extend(self.days_per_month.collect());
        families.extend(self.working.collect());
        self.redo.set(p.redo_after_logout());
        families.extend(self.redo.collect());
        families
    }
}

impl Collector for ConfigGauges {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.interval.desc();
        descs.extend(self.active_since.desc());
        descs.extend(self.transactions.desc());
        descs.extend(self.headcount.desc());
        descs.extend(self.working_day.desc());
        descs.extend(self.days_per_month.desc());
        descs.extend(self.working.desc());
        descs.extend(self.redo.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.families_at(Local::now())
    }
}

/// When the active-hours window that holds `now` opened, or `None` outside
/// it. A schedule without active hours is always due: the epoch stands for
/// "always", and the agent's own `since` then decides.
fn active_since(schedule: &Schedule, now: chrono::DateTime<Local>) -> Option<SystemTime> {
    let Some((from, to)) = schedule.active_hours else {
        return Some(SystemTime::UNIX_EPOCH);
    };
    let time = now.time();
    if !schedule.is_active_at(time) {
        return None;
    }
    let today = now.date_naive();
    // A window crossing midnight ("22:00-06:00") seen after midnight opened
    // yesterday.
    let day = if from > to && time < to {
        today.pred_opt()?
    } else {
        today
    };
    Some(local_time(day.and_time(from)).unwrap_or_else(|| now.into()))
}

fn local_time(naive: chrono::NaiveDateTime) -> Option<SystemTime> {
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(SystemTime::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;
    use std::time::Duration;

    fn schedule(hours: Option<(&str, &str)>) -> Schedule {
        let parse = |s: &str| NaiveTime::parse_from_str(s, "%H:%M").unwrap();
        Schedule {
            interval: Duration::from_secs(300),
            jitter: Duration::ZERO,
            active_hours: hours.map(|(a, b)| (parse(a), parse(b))),
        }
    }

    fn at(text: &str) -> chrono::DateTime<Local> {
        let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
        Local.from_local_datetime(&naive).earliest().unwrap()
    }

    #[test]
    fn a_window_is_due_from_its_opening_and_not_outside_it() {
        let day = schedule(Some(("07:00", "19:00")));
        assert_eq!(
            active_since(&day, at("2026-06-02 10:30")),
            Some(at("2026-06-02 07:00").into())
        );
        assert_eq!(active_since(&day, at("2026-06-02 19:00")), None);
        assert_eq!(active_since(&day, at("2026-06-02 06:59")), None);
    }

    #[test]
    fn a_window_across_midnight_opened_the_evening_before() {
        let night = schedule(Some(("22:00", "06:00")));
        assert_eq!(
            active_since(&night, at("2026-06-02 03:00")),
            Some(at("2026-06-01 22:00").into())
        );
        assert_eq!(
            active_since(&night, at("2026-06-02 23:00")),
            Some(at("2026-06-02 22:00").into())
        );
        assert_eq!(active_since(&night, at("2026-06-02 12:00")), None);
    }

    #[test]
    fn no_window_is_always_due() {
        assert_eq!(
            active_since(&schedule(None), at("2026-06-02 03:00")),
            Some(SystemTime::UNIX_EPOCH)
        );
    }

    #[test]
    fn two_scrapes_at_once_both_see_every_journey() {
        let loaded = crate::config::from_yaml_str(crate::config::DEMO_YAML, "demo.yaml").unwrap();
        let journeys = loaded.config.journeys.len();
        let registry = Registry::new();
        ConfigGauges::register(&registry, &loaded.config).unwrap();
        let count = |registry: &Registry| {
            registry
                .gather()
                .iter()
                .find(|f| f.name() == "casewatch_journey_interval_seconds")
                .map_or(0, |f| f.get_metric().len())
        };
        std::thread::scope(|scope| {
            let scrapers: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| (0..5_000).filter(|_| count(&registry) != journeys).count())
                })
                .collect();
            for scraper in scrapers {
                assert_eq!(scraper.join().unwrap(), 0, "a scrape missed journeys");
            }
        });
    }
}
