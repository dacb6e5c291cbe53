//! Figures in words a board member reads without a statistician: counts
//! with the right plural, numbers without "-0.0" or "NaN", lengths in days.

use super::evidence::MIN_UNITS;
use super::stats::Estimate;

/// "1 forced logout", "3 forced logouts".
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A number to `digits` decimals, with thousands separated, never "-0.0";
/// "-" when it is not a number.
pub fn figure(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let text = format!("{:.digits$}", x.abs());
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w.to_string(), Some(f.to_string())),
        None => (text.clone(), None),
    };
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let zero = text.chars().all(|c| c == '0' || c == '.');
    let sign = if x < 0.0 && !zero { "-" } else { "" };
    match fraction {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// "4 days", "1 day", "3 periods of 2 days": units of evidence in words.
pub fn days(units: usize, unit_days: u32) -> String {
    if unit_days <= 1 {
        plural(units as u64, "day")
    } else {
        format!("{} of {unit_days} days", plural(units as u64, "period"))
    }
}

/// An estimate in words: "97.80% (between 97.21% and 98.30%)"; without an
/// interval because too few days stand behind it, "97.80% (no range yet:
/// 3 of 7 days)"; "no data" without a value.
pub fn show(e: &Estimate, digits: usize, unit: &str) -> String {
    match (e.value, e.low, e.high) {
        (Some(v), Some(l), Some(h)) => format!(
            "{}{unit} (between {}{unit} and {}{unit})",
            figure(v, digits),
            figure(l, digits),
            figure(h, digits)
        ),
        (Some(v), Some(l), None) => format!(
            "{}{unit} (at least {}{unit})",
            figure(v, digits),
            figure(l, digits)
        ),
        (Some(v), None, _) if e.units > 0 && (e.units as usize) < MIN_UNITS => format!(
            "{}{unit} (no range yet: {} of the {MIN_UNITS} independent days an interval needs)",
            figure(v, digits),
            e.units
        ),
        (Some(v), _, _) => format!("{}{unit}", figure(v, digits)),
        _ => "no data".into(),
    }
}

/// A share as a percentage with two decimals.
pub fn show_percent(e: &Estimate) -> String {
    show(&e.clone().scaled(100.0), 2, "%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_cleanly() {
        assert_eq!(figure(5529.14, 1), "5,529.1");
        assert_eq!(figure(-0.04, 1), "0.0");
        assert_eq!(figure(-12.5, 1), "-12.5");
        assert_eq!(figure(1_234_567.0, 0), "1,234,567");
        assert_eq!(figure(f64::NAN, 2), "-");
        assert_eq!(plural(1, "forced logout"), "1 forced logout");
        assert_eq!(plural(74, "forced logout"), "74 forced logouts");
        assert_eq!(days(3, 2), "3 periods of 2 days");
        assert_eq!(days(1, 1), "1 day");
    }
}
