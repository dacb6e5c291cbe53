//! Session age: bands for exposure and drops, and the login groups of a
//! run (survival by age is [`super::survival`]).
//!
//! The forced-logout hazard in an age band is drops in the band divided by the
//! session time spent in it (exposure). Counting both per band is what lets
//! PromQL compute `rate(drops) / rate(exposure)` and so test the rule that
//! sessions are safe "as long as users log out every two hours".

use std::time::Duration;

use crate::outcome::{StepPhase, StepRecord};

/// Age bands given by their upper edges, e.g. 1h, 2h, 3h, 4h; the last band
/// is open-ended ("4h+").
#[derive(Clone, Debug, PartialEq)]
pub struct AgeBands {
    edges: Vec<Duration>,
    labels: Vec<String>,
}

impl AgeBands {
    /// `edges` must be strictly increasing and non-empty (config validation
    /// ensures it).
    pub fn new(edges: Vec<Duration>) -> AgeBands {
        let mut labels = Vec::with_capacity(edges.len() + 1);
        let mut lower = Duration::ZERO;
        for edge in &edges {
            labels.push(format!("{}-{}", short(lower), short(*edge)));
            lower = *edge;
        }
        labels.push(format!("{}+", short(lower)));
        AgeBands { edges, labels }
    }

    pub fn edges(&self) -> &[Duration] {
        &self.edges
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The label of the band holding `age`.
    pub fn label(&self, age: Duration) -> &str {
        let index = self.edges.iter().take_while(|edge| age >= **edge).count();
        &self.labels[index]
    }

    /// Splits the stretch of life from `from` to `to` across the bands it
    /// crosses: (label, time spent in that band).
    pub fn split(&self, from: Duration, to: Duration) -> Vec<(&str, Duration)> {
        let mut parts = Vec::new();
        let mut lower = Duration::ZERO;
        for (index, upper) in self
            .edges
            .iter()
            .chain(std::iter::once(&Duration::MAX))
            .enumerate()
        {
            let start = from.max(lower);
            let end = to.min(*upper);
            if end > start {
                parts.push((self.labels[index].as_str(), end - start));
            }
            lower = *upper;
        }
        parts
    }
}

impl Default for AgeBands {
    fn default() -> Self {
        AgeBands::new((1..=4).map(|h| Duration::from_secs(h * 3600)).collect())
    }
}

/// "2h", "90m", "45s": the shortest exact way to write a band edge.
fn short(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        "0".to_string()
    } else if secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else if secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// The login groups among a run's steps (consecutive login-phase steps), in
/// order: `Some(total time)` for a group whose every step succeeded, `None`
/// for a failed one. A whole successful group after a forced logout is a
/// re-login, whose time is what a user loses signing back in.
pub fn login_groups(steps: &[StepRecord]) -> Vec<Option<Duration>> {
    let mut groups = Vec::new();
    let mut current: Option<(Duration, bool)> = None;
    for step in steps {
        if step.phase == StepPhase::Login {
            let (took, ok) = current.get_or_insert((Duration::ZERO, true));
            *took += step.duration;
            *ok &= step.outcome.is_success();
        } else if let Some((took, ok)) = current.take() {
            groups.push(ok.then_some(took));
        }
    }
    if let Some((took, ok)) = current {
        groups.push(ok.then_some(took));
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(hours: f64) -> Duration {
        Duration::from_secs_f64(hours * 3600.0)
    }

    #[test]
    fn band_labels_and_lookup() {
        let bands = AgeBands::default();
        assert_eq!(bands.labels(), ["0-1h", "1h-2h", "2h-3h", "3h-4h", "4h+"]);
        assert_eq!(bands.label(h(0.5)), "0-1h");
        assert_eq!(bands.label(h(2.0)), "2h-3h");
        assert_eq!(bands.label(h(9.0)), "4h+");
        let scaled = AgeBands::new(vec![Duration::from_secs(60), Duration::from_secs(120)]);
        assert_eq!(scaled.labels(), ["0-1m", "1m-2m", "2m+"]);
    }

    #[test]
    fn exposure_splits_across_bands() {
        let bands = AgeBands::default();
        assert_eq!(
            bands.split(h(0.5), h(2.25)),
            vec![("0-1h", h(0.5)), ("1h-2h", h(1.0)), ("2h-3h", h(0.25))]
        );
        assert_eq!(bands.split(h(5.0), h(6.0)), vec![("4h+", h(1.0))]);
        assert_eq!(bands.split(h(1.0), h(1.0)), vec![]);
    }

    #[test]
    fn login_groups_are_consecutive_login_steps() {
        let interactive = crate::outcome::JourneyKind::Interactive;
        let step = |phase, outcome, ms| StepRecord {
            duration: Duration::from_millis(ms),
            outcome,
            ..StepRecord::new("ics", "j", "s", phase, interactive, Duration::from_secs(5))
        };
        use crate::outcome::Outcome::{AssertionFailed, LoggedOut, Ok as Fine};
        let steps = [
            step(StepPhase::Login, Fine, 100),
            step(StepPhase::Login, Fine, 200),
            step(StepPhase::Journey, LoggedOut, 50),
            step(StepPhase::Login, Fine, 300),
            step(StepPhase::Login, AssertionFailed, 10),
            step(StepPhase::Login, Fine, 40),
        ];
        assert_eq!(
            login_groups(&steps),
            [Some(Duration::from_millis(300)), None]
        );
        assert_eq!(
            login_groups(&steps[..2]),
            [Some(Duration::from_millis(300))]
        );
        assert!(login_groups(&steps[2..3]).is_empty());
    }
}
