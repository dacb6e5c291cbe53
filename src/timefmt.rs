//! Times and durations as people read them, for every page, report and file
//! the agent writes: [`rfc3339`] for instants given as unix seconds in files
//! and machine output, [`human_time`] and [`human_moment`] for instants in
//! prose and tables people read, and [`human_duration`] for lengths of time.
//!
//! Plain functions over `f64` seconds, with no I/O: any layer may use them.

use std::time::{Duration, SystemTime};

/// The last second RFC 3339 can write (9999-12-31T23:59:59Z).
const LAST_SECOND: f64 = 253_402_300_799.0;

/// Unix seconds as RFC 3339 to the second (`2026-06-01T08:00:00Z`); `-` for
/// a time that is negative, not finite, or after the year 9999 (a journal
/// row in milliseconds read as seconds, say).
pub fn rfc3339(t: f64) -> String {
    if !(0.0..=LAST_SECOND).contains(&t) {
        return "-".into();
    }
    let secs = t.floor() as u64;
    humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .to_string()
}

/// Unix seconds as people read a date and time, to the minute: "6 Dec 2026
/// 01:38 UTC"; `-` where [`rfc3339`] gives `-`.
pub fn human_time(t: f64) -> String {
    calendar(t, "%-d %b %Y %H:%M UTC")
}

/// As [`human_time`], to the second, for events listed one by one: "6 Dec
/// 2026 01:38:48 UTC".
pub fn human_moment(t: f64) -> String {
    calendar(t, "%-d %b %Y %H:%M:%S UTC")
}

/// A period between two instants: "from 6 Dec 2026 01:38 UTC to 8 Dec
/// 2026 09:00 UTC"; to the second when it is shorter than an hour, and the
/// date said once when both ends share it: "from 6 Dec 2026 01:38:48 to
/// 01:40:52 UTC".
pub fn human_period(from: f64, to: f64) -> String {
    let (date, time) = if to - from < 3600.0 {
        ("%-d %b %Y", "%H:%M:%S")
    } else {
        ("%-d %b %Y", "%H:%M")
    };
    let same_day = calendar(from, date) == calendar(to, date);
    if same_day {
        format!(
            "from {} {} to {} UTC",
            calendar(from, date),
            calendar(from, time),
            calendar(to, time)
        )
    } else {
        format!(
            "from {} {} UTC to {} {} UTC",
            calendar(from, date),
            calendar(from, time),
            calendar(to, date),
            calendar(to, time)
        )
    }
}

fn calendar(t: f64, format: &str) -> String {
    use chrono::{TimeZone, Utc};
    if !(0.0..=LAST_SECOND).contains(&t) {
        return "-".into();
    }
    match Utc.timestamp_opt(t.floor() as i64, 0).single() {
        Some(at) => at.format(format).to_string(),
        None => "-".into(),
    }
}

/// "2.5 s", "45 s", "12 min 30 s", "1 h 30 min", "3 days 4 h", "2 years
/// 10 days": a duration for people, in its two largest units.
pub fn human_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "-".into();
    }
    // Never "-0.0 s".
    let seconds = if seconds == 0.0 { 0.0 } else { seconds };
    if seconds < 10.0 {
        return format!("{seconds:.1} s");
    }
    let s = seconds.round() as u64;
    let units: [(u64, &str, &str); 5] = [
        (365 * 86_400, "year", "years"),
        (86_400, "day", "days"),
        (3_600, "h", "h"),
        (60, "min", "min"),
        (1, "s", "s"),
    ];
    let mut parts = Vec::new();
    let mut rest = s;
    for (size, one, many) in units {
        let n = rest / size;
        if n > 0 || !parts.is_empty() {
            if n > 0 {
                parts.push(format!("{n} {}", if n == 1 { one } else { many }));
            }
            rest -= n * size;
            if parts.len() == 2 || (!parts.is_empty() && n == 0) {
                break;
            }
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_words() {
        assert_eq!(human_duration(2.54), "2.5 s");
        assert_eq!(human_duration(45.0), "45 s");
        assert_eq!(human_duration(750.0), "12 min 30 s");
        assert_eq!(human_duration(5400.0), "1 h 30 min");
        assert_eq!(human_duration(3.0 * 86_400.0 + 74.0), "3 days");
        assert_eq!(human_duration(7.0 * 86_400.0), "7 days");
        assert_eq!(human_duration(86_400.0 + 3600.0), "1 day 1 h");
        assert_eq!(
            human_duration(2.0 * 365.0 * 86_400.0 + 10.0 * 86_400.0),
            "2 years 10 days"
        );
        assert_eq!(human_duration(-0.0), "0.0 s");
        assert_eq!(human_duration(f64::NAN), "-");
    }

    #[test]
    fn times_read_as_dates() {
        assert_eq!(human_time(1_780_306_200.0), "1 Jun 2026 09:30 UTC");
        assert_eq!(human_moment(1_780_306_212.7), "1 Jun 2026 09:30:12 UTC");
        assert_eq!(human_time(f64::NAN), "-");
        assert_eq!(human_moment(1.7e12), "-");
        let t = 1_780_306_200.0;
        assert_eq!(
            human_period(t, t + 124.0),
            "from 1 Jun 2026 09:30:00 to 09:32:04 UTC"
        );
        assert_eq!(
            human_period(t, t + 2.0 * 86_400.0),
            "from 1 Jun 2026 09:30 UTC to 3 Jun 2026 09:30 UTC"
        );
    }

    #[test]
    fn times_beyond_the_calendar_are_a_dash() {
        assert_eq!(rfc3339(1_780_272_000.0), "2026-06-01T00:00:00Z");
        assert_eq!(rfc3339(1.7e12), "-");
        assert_eq!(rfc3339(9.3e18), "-");
        assert_eq!(rfc3339(-1.0), "-");
    }
}
