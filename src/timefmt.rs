//! Times and durations as people read them, for every page, report and file
//! the agent writes: [`rfc3339`] for instants given as unix seconds, and
//! [`human_duration`] for lengths of time.
//!
//! Plain functions over `f64` seconds, with no I/O: any layer may use them.

use std::time::{Duration, SystemTime};

/// Unix seconds as RFC 3339 to the second (`2026-06-01T08:00:00Z`); `-` for
/// a time that is negative or not finite.
pub fn rfc3339(t: f64) -> String {
    if !t.is_finite() || t < 0.0 {
        return "-".into();
    }
    let secs = t.floor() as u64;
    humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .to_string()
}

/// "1h 30m", "45s", "2.5s": a duration for people.
pub fn human_duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "-".into();
    }
    if seconds < 10.0 {
        return format!("{seconds:.1} s");
    }
    let d = Duration::from_secs(seconds.round() as u64);
    humantime::format_duration(d).to_string()
}
