//! The timetable as Prometheus sees it: each journey's interval, and since
//! when it has been due to run without a pause.
//!
//! The alerts need both. A burn-rate window that cannot hold three of a
//! journey's runs says nothing, so a journey run every 10 minutes or less
//! often alerts on consecutive failures instead; and a journey that has not
//! run for 3 of its intervals is stale, but only while it was due to run:
//! not at night outside its active hours, nor in the minutes after the
//! agent took it on. Both gauges are computed when scraped, from the config
//! the agent runs now.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use chrono::{Local, TimeZone};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, Opts, Registry};

use crate::config::{Config, Schedule};
use crate::outcome::unix_secs;

/// One journey's schedule and when the agent took it on.
struct Entry {
    target: String,
    journey: String,
    schedule: Schedule,
    since: SystemTime,
}

/// `casewatch_journey_interval_seconds` and
/// `casewatch_journey_active_since_timestamp_seconds`, registered on the
/// agent's registry (which adds `site`).
#[derive(Clone)]
pub struct ScheduleMetrics {
    entries: Arc<Mutex<Vec<Entry>>>,
    interval: GaugeVec,
    active_since: GaugeVec,
}

impl ScheduleMetrics {
    pub fn register(
        registry: &Registry,
        config: &Config,
    ) -> Result<ScheduleMetrics, prometheus::Error> {
        let interval = GaugeVec::new(
            Opts::new(
                "casewatch_journey_interval_seconds",
                "The journey's configured interval between runs.",
            ),
            &["target", "journey"],
        )?;
        let active_since = GaugeVec::new(
            Opts::new(
                "casewatch_journey_active_since_timestamp_seconds",
                "Unix time since which the journey has been due to run without a pause: when the agent took it on, or when today's active hours opened. Absent outside its active hours.",
            ),
            &["target", "journey"],
        )?;
        let metrics = ScheduleMetrics {
            entries: Arc::new(Mutex::new(Vec::new())),
            interval,
            active_since,
        };
        metrics.update(config, SystemTime::now());
        registry.register(Box::new(metrics.clone()))?;
        Ok(metrics)
    }

    /// Takes on the journeys of `config` (at start and on reload). A journey
    /// whose target and schedule did not change keeps its `since`.
    pub fn update(&self, config: &Config, now: SystemTime) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let next = config
            .journeys
            .iter()
            .map(|journey| {
                let kept = entries.iter().find(|e| {
                    e.journey == journey.name
                        && e.target == journey.target.name
                        && e.schedule.interval == journey.schedule.interval
                        && e.schedule.active_hours == journey.schedule.active_hours
                });
                Entry {
                    target: journey.target.name.clone(),
                    journey: journey.name.clone(),
                    schedule: journey.schedule.clone(),
                    since: kept.map_or(now, |e| e.since),
                }
            })
            .collect();
        *entries = next;
    }

    /// Both families as they stand at `now`; journeys no longer configured,
    /// and journeys outside their active hours, have none. The entries' lock
    /// is held from the reset to the read, so two scrapes at once (Prometheus
    /// and the remote-write collector) never see each other's empty gauges.
    fn families_at(&self, now: chrono::DateTime<Local>) -> Vec<MetricFamily> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        self.interval.reset();
        self.active_since.reset();
        for entry in entries.iter() {
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
        }
        let mut families = self.interval.collect();
        families.extend(self.active_since.collect());
        families
    }
}

impl Collector for ScheduleMetrics {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.interval.desc();
        descs.extend(self.active_since.desc());
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
        ScheduleMetrics::register(&registry, &loaded.config).unwrap();
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
