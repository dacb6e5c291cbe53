//! The `practitioners:` block: who the agent stands for at its site, so
//! that the report can turn freezes, forced logouts and slowness into staff
//! time. Every figure has a documented default, and the report shows the
//! assumptions it used beside the figure, marking which were defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use marked_yaml::Spanned;
use serde::{Deserialize, Serialize};

use super::raw::S;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPractitioners {
    pub headcount: Option<Spanned<u32>>,
    /// `09:00-17:00`, in the system's calendar.
    pub working_hours: Option<S>,
    /// `weekdays` or `all`.
    pub working_days: Option<S>,
    pub working_days_per_month: Option<Spanned<f64>>,
    /// A step that takes longer than this wastes the difference.
    pub acceptable: Option<S>,
    /// Work a practitioner redoes after a forced logout; by default
    /// [`DEFAULT_REDO_AFTER_LOGOUT`].
    pub redo_after_logout: Option<S>,
    /// Journey name to transactions per practitioner per working hour.
    #[serde(default)]
    pub transactions_per_hour: BTreeMap<String, Spanned<f64>>,
}

pub const DEFAULT_HEADCOUNT: u32 = 25;
pub const DEFAULT_WORKING_HOURS: (u32, u32) = (9 * 60, 17 * 60);
pub const DEFAULT_DAYS_PER_MONTH: f64 = 21.0;
pub const DEFAULT_ACCEPTABLE: Duration = Duration::from_secs(2);
pub const DEFAULT_TRANSACTIONS_PER_HOUR: f64 = 4.0;
/// What a forced logout costs a practitioner in work done again, unless
/// `redo_after_logout` says otherwise: 10 minutes. A practitioner thrown
/// out mid-task logs in again, finds the case again and retypes what was
/// not saved: a case note or an assessment section is typed over many
/// minutes, and a logout at a random moment loses on average half of what
/// was typed since the last save. Ten minutes is a round, modest figure
/// for that; set `redo_after_logout` from what the site's own staff say.
/// The synthetic worker's own re-login and run (under a second) is not a
/// practitioner's cost: it would make forced logouts look free.
pub const DEFAULT_REDO_AFTER_LOGOUT: Duration = Duration::from_secs(10 * 60);

/// The validated block; also what the journal keeps (as JSON) and the
/// report reads back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Practitioners {
    pub headcount: u32,
    /// Working hours as minutes of the day, `[from, to)`.
    pub working_from_minute: u32,
    pub working_to_minute: u32,
    /// Weekends count as working days too.
    pub weekends: bool,
    pub working_days_per_month: f64,
    pub acceptable_seconds: f64,
    /// `None`: [`DEFAULT_REDO_AFTER_LOGOUT`] (see
    /// [`Practitioners::redo_after_logout`]).
    pub redo_after_logout_seconds: Option<f64>,
    /// Journey name to transactions per practitioner per working hour; a
    /// journey not named here takes the default.
    pub transactions_per_hour: BTreeMap<String, f64>,
    pub default_transactions_per_hour: f64,
    /// The inputs that took their defaults, by name, for the report.
    pub defaulted: Vec<String>,
}

impl Default for Practitioners {
    fn default() -> Self {
        Practitioners {
            headcount: DEFAULT_HEADCOUNT,
            working_from_minute: DEFAULT_WORKING_HOURS.0,
            working_to_minute: DEFAULT_WORKING_HOURS.1,
            weekends: false,
            working_days_per_month: DEFAULT_DAYS_PER_MONTH,
            acceptable_seconds: DEFAULT_ACCEPTABLE.as_secs_f64(),
            redo_after_logout_seconds: None,
            transactions_per_hour: BTreeMap::new(),
            default_transactions_per_hour: DEFAULT_TRANSACTIONS_PER_HOUR,
            defaulted: [
                "headcount",
                "working_hours",
                "working_days",
                "working_days_per_month",
                "acceptable",
                "redo_after_logout",
                "transactions_per_hour",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        }
    }
}

impl Practitioners {
    /// Working hours in a working day.
    pub fn hours_per_day(&self) -> f64 {
        f64::from(
            self.working_to_minute
                .saturating_sub(self.working_from_minute),
        ) / 60.0
    }

    /// Work redone after a forced logout (seconds): as configured, or
    /// [`DEFAULT_REDO_AFTER_LOGOUT`].
    pub fn redo_after_logout(&self) -> f64 {
        self.redo_after_logout_seconds
            .unwrap_or(DEFAULT_REDO_AFTER_LOGOUT.as_secs_f64())
    }

    /// Whether the redone work after a forced logout is the default.
    pub fn redo_is_default(&self) -> bool {
        self.redo_after_logout_seconds.is_none()
    }

    /// Whether every hour of every day is a working hour.
    pub fn always_working(&self) -> bool {
        self.weekends && self.working_from_minute == 0 && self.working_to_minute >= 24 * 60
    }

    /// The working hours as written: `09:00-17:00`.
    pub fn hours_text(&self) -> String {
        let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        format!(
            "{}-{}",
            hm(self.working_from_minute),
            hm(self.working_to_minute)
        )
    }

    /// Transactions per working hour of journey `name`.
    pub fn rate(&self, journey: &str) -> f64 {
        self.transactions_per_hour
            .get(journey)
            .copied()
            .unwrap_or(self.default_transactions_per_hour)
    }

    /// Whether `minute_of_day` on a day that is (or is not) a weekend falls
    /// in working hours.
    pub fn is_working(&self, weekend: bool, minute_of_day: u32) -> bool {
        (self.weekends || !weekend)
            && minute_of_day >= self.working_from_minute
            && minute_of_day < self.working_to_minute
    }

    /// Whether unix time `t` falls in working hours of the system's
    /// calendar: UTC, running `scale` times faster than the wall clock.
    pub fn is_working_at(&self, t: f64, scale: f64) -> bool {
        let cal = t * scale;
        let day = (cal / 86_400.0).floor();
        // 1970-01-01 was a Thursday: with Monday as 0, day 0 is 3.
        let weekend = (day as i64 + 3).rem_euclid(7) >= 5;
        let minute = ((cal - day * 86_400.0) / 60.0).floor() as u32;
        self.is_working(weekend, minute)
    }
}
