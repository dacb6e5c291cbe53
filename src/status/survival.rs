//! Session survival on the status page, counted as the report counts it:
//! one life per session (its spans merged by target, holder and login), a
//! forced logout at the middle of its bracket, a session still logged in
//! censored at the last age it was known alive, ages kept to three
//! significant figures of a millisecond, and the same product-limit curve
//! ([`crate::detect::survival`]). Beyond the oldest age any session reached
//! nothing is known, and the page says so.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use maud::{html, Markup};

use crate::detect::survival::{product_limit, survival_at};
use crate::detect::AgeBands;
use crate::outcome::{bracket_midpoint, SessionSpan};
use crate::recorder::{class_of, class_value};

/// Sessions followed while they live; beyond this the oldest login is
/// forgotten (a session whose end never came, as when a target is removed
/// by a reload).
const OPEN_KEPT: usize = 4096;

/// Whose session: (target, holder, login time).
type LifeKey = (String, String, SystemTime);

/// The lives the agent has seen, bounded by the number of distinct age
/// classes (a few thousand at most), however long it runs.
#[derive(Debug, Default)]
pub struct Lives {
    /// Ended lives by age class (milliseconds): (censored, dropped).
    ended: BTreeMap<u32, (u64, u64)>,
    /// Sessions still logged in, with the latest age each was known alive.
    open: BTreeMap<LifeKey, Duration>,
}

/// The age class of a life, as the ledger keeps it.
fn class(age: Duration) -> u32 {
    class_of((age.as_secs_f64() * 1000.0).round().max(1.0) as u64)
}

fn class_seconds(class: u32) -> f64 {
    class_value(class) as f64 / 1000.0
}

impl Lives {
    /// A stretch of one session's life; its end, if it carries one.
    pub fn observe(&mut self, span: &SessionSpan) {
        let key = (span.target.clone(), span.origin.to_string(), span.login_at);
        let age = span.bracket().map_or(span.age_to, bracket_midpoint);
        let known = self.open.remove(&key).unwrap_or_default().max(age);
        match span.end {
            Some(end) => {
                let entry = self.ended.entry(class(known)).or_default();
                if end.is_drop() {
                    entry.1 += 1;
                } else {
                    entry.0 += 1;
                }
            }
            None => {
                if self.open.len() >= OPEN_KEPT {
                    let oldest = self.open.keys().min_by_key(|k| k.2).cloned();
                    if let Some(oldest) = oldest {
                        self.open.remove(&oldest);
                    }
                }
                self.open.insert(key, known);
            }
        }
    }

    /// (sessions, dropped, still logged in).
    pub fn counts(&self) -> (u64, u64, u64) {
        let ended: u64 = self.ended.values().map(|(c, d)| c + d).sum();
        let dropped: u64 = self.ended.values().map(|(_, d)| d).sum();
        let open = self.open.len() as u64;
        (ended + open, dropped, open)
    }

    /// The life table: ended lives, and those still logged in censored at
    /// the age they were last known alive.
    fn table(&self) -> Vec<(f64, u64, u64)> {
        let mut table = self.ended.clone();
        for age in self.open.values() {
            table.entry(class(*age)).or_default().0 += 1;
        }
        table
            .into_iter()
            .map(|(c, (censored, drops))| (class_seconds(c), censored, drops))
            .collect()
    }

    /// Kaplan–Meier survival at each band edge; ages beyond the oldest
    /// session are not yet observed.
    pub fn render(&self, bands: &AgeBands) -> Markup {
        let (sessions, drops, open) = self.counts();
        let table = self.table();
        let oldest = table.last().map(|(age, _, _)| *age);
        let curve = product_limit(table);
        html! {
            h2 { "Session survival" }
            p { (sessions) " sessions seen: " (drops) " forced out, " (open) " still logged in (counted up to the age each was last known alive), the rest ended by the agent. "
                "The share still logged in at each age is the Kaplan–Meier estimate the evidence report gives, with its 95% interval." }
            @if let Some(oldest) = oldest {
                table {
                    thead { tr { th { "Still logged in at age" } th { "Share (Kaplan–Meier)" } th { "95% interval" } } }
                    tbody {
                        @for edge in bands.edges() {
                            @let age = edge.as_secs_f64();
                            tr {
                                td { (super::format_age(*edge)) }
                                @if age > oldest {
                                    td colspan="2" class="nodata" { "not yet observed: no session has lived this long (the oldest reached " (super::format_age(Duration::from_secs_f64(oldest))) ")" }
                                } @else {
                                    @match survival_at(&curve, age) {
                                        Some(p) => {
                                            td { (format!("{:.1} %", p.survival * 100.0)) }
                                            td { (format!("{:.1} % to {:.1} %", p.low * 100.0, p.high * 100.0)) }
                                        }
                                        None => {
                                            td { "100.0 %" }
                                            td { "no forced logout by this age" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{LogoutCause, SessionEnd, SessionOrigin};

    fn span(slot: usize, to: u64, end: Option<SessionEnd>, login: SystemTime) -> SessionSpan {
        SessionSpan {
            target: "ics".into(),
            origin: SessionOrigin::Kept { slot },
            login_at: login,
            age_from: Duration::ZERO,
            age_to: Duration::from_secs(to),
            end,
            seen_age: end
                .filter(|e| e.is_drop())
                .map(|_| Duration::from_secs(to + 2)),
            seen_at: None,
            detail: String::new(),
        }
    }

    /// Three kept sessions: one forced out at 50-52 s, two still logged
    /// in at 90 s. The page used to count only the ended life, so the one
    /// drop took survival to 0 % at 1 minute, and kept it at 0 % at ages
    /// no session had reached.
    #[test]
    fn sessions_still_logged_in_are_at_risk_and_unseen_ages_are_not_yet_observed() {
        let login = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut lives = Lives::default();
        for slot in 0..3 {
            lives.observe(&span(slot, 30, None, login));
        }
        lives.observe(&span(
            0,
            50,
            Some(SessionEnd::Forced(LogoutCause::Redirect)),
            login,
        ));
        for slot in 1..3 {
            lives.observe(&span(slot, 90, None, login));
        }
        assert_eq!(lives.counts(), (3, 1, 2));
        let bands = AgeBands::new(vec![
            Duration::from_secs(60),
            Duration::from_secs(120),
            Duration::from_secs(3600),
        ]);
        let page = lives.render(&bands).into_string();
        let row = |age: &str| {
            page.split("<tr>")
                .find(|r| r.starts_with(&format!("<td>{age}</td>")))
                .unwrap_or_else(|| panic!("no row for {age}: {page}"))
                .to_string()
        };
        assert!(row("1m 00s").contains("66.7 %"), "{page}");
        assert!(row("2m 00s").contains("not yet observed"), "{page}");
        assert!(row("1h 00m").contains("not yet observed"), "{page}");
        assert!(!page.contains(">0.0 %"), "{page}");
    }
}
