//! The fault model in action: starting freezes and restarts, ending sessions
//! on demand, and the background tasks that draw random freezes and restarts
//! (arrivals in sim time) and sweep for sessions whose time has run out, so
//! the truth log learns of a forced logout when it happens, not only when a
//! client trips over it.

use std::sync::Arc;
use std::time::Duration;

use rand_distr::{Distribution, Exp1};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::profile::{LogoutStyle, SystemId};
use super::state::{lock, Sim, CENTURY, ENDED_RETENTION};
use super::truth::{SessionAge, Source, TruthEvent};

const SWEEP_EVERY: Duration = Duration::from_millis(200);

impl Sim {
    /// Freezes `id` for `length` of real time from now; overlapping freezes
    /// merge. Returns the truth-log id.
    pub fn start_freeze(&self, id: SystemId, length: Duration, source: Source) -> u64 {
        let now = Instant::now();
        let until = now + length;
        {
            let mut st = lock(&self.system(id).state);
            st.frozen_until = Some(st.frozen_until.map_or(until, |u| u.max(until)));
        }
        tracing::info!(
            system = id.as_str(),
            seconds = length.as_secs_f64(),
            "sim freeze"
        );
        self.record(
            TruthEvent::new("freeze", source, id, self.clock.unix(now))
                .ends(self.clock.unix(until))
                .with("seconds", length.as_secs_f64()),
        )
    }

    /// Takes one page's hang, if one is armed, and records it in the truth
    /// log as it is served: the page's main thread is held from about now
    /// for exactly that long.
    pub fn take_page_hang(&self, id: SystemId) -> Option<Duration> {
        let length = {
            let mut st = lock(&self.system(id).state);
            let hang = st.page_hang.as_mut()?;
            let length = hang.length;
            hang.remaining = hang.remaining.saturating_sub(1);
            if hang.remaining == 0 {
                st.page_hang = None;
            }
            length
        };
        let now = self.clock.now_unix();
        tracing::info!(
            system = id.as_str(),
            seconds = length.as_secs_f64(),
            "sim page hang served"
        );
        self.record(
            TruthEvent::new("page_hang", Source::Injected, id, now)
                .ends(now + length.as_secs_f64())
                .with("seconds", length.as_secs_f64()),
        );
        Some(length)
    }

    /// Drops every session and answers 503 for `downtime`.
    pub fn restart(
        &self,
        id: SystemId,
        downtime: Duration,
        source: Source,
    ) -> (u64, Vec<SessionAge>) {
        let now = Instant::now();
        let ages: Vec<SessionAge> = {
            let mut st = lock(&self.system(id).state);
            st.restarting_until = Some(now + downtime);
            st.sessions
                .drain()
                .filter(|(_, s)| s.ended.is_none())
                .map(|(_, s)| self.clock.age_named(s.user, s.login_at, now))
                .collect()
        };
        tracing::info!(system = id.as_str(), sessions = ages.len(), "sim restart");
        let id = self.record(
            TruthEvent::new("restart", source, id, self.clock.unix(now))
                .ends(self.clock.unix(now + downtime))
                .with("downtime_seconds", downtime.as_secs_f64())
                .sessions(ages.clone()),
        );
        (id, ages)
    }

    /// Ends live sessions now (all, or the `count` oldest); their next request
    /// gets the logout response.
    pub fn force_logout(
        &self,
        id: SystemId,
        oldest: Option<usize>,
        style: Option<LogoutStyle>,
    ) -> Vec<(u64, SessionAge)> {
        let now = Instant::now();
        let mut st = lock(&self.system(id).state);
        let style = style.unwrap_or(st.style);
        let mut live: Vec<_> = st
            .sessions
            .iter()
            .filter(|(_, s)| s.ended.is_none())
            .map(|(k, s)| (s.login_at, k.clone()))
            .collect();
        live.sort();
        if let Some(n) = oldest {
            live.truncate(n);
        }
        let mut hit = Vec::with_capacity(live.len());
        for (_, key) in live {
            if let Some(s) = st.sessions.get_mut(&key) {
                let age = self.end_session(
                    id,
                    s,
                    "forced_logout",
                    "injected",
                    Source::Injected,
                    style,
                    now,
                );
                let truth_id = s.ended.as_ref().map_or(0, |e| e.truth_id);
                hit.push((truth_id, age));
            }
        }
        hit
    }

    /// Ends sessions that are due, forgets long-ended ones and stale tokens,
    /// and closes an injected-errors episode whose count is spent.
    fn sweep(&self, id: SystemId) {
        let now = Instant::now();
        let mut st = lock(&self.system(id).state);
        let style = st.style;
        for s in st.sessions.values_mut() {
            self.end_if_due(id, s, style, now);
        }
        st.sessions.retain(|_, s| {
            s.ended
                .as_ref()
                .is_none_or(|e| now.saturating_duration_since(e.at) < ENDED_RETENTION)
        });
        st.login_tokens.retain(|_, exp| *exp > now);
        if st.restarting_until.is_some_and(|t| t <= now) {
            st.restarting_until = None;
        }
        if st.frozen_until.is_some_and(|t| t <= now) {
            st.frozen_until = None;
        }
    }
}

/// Starts the background fault tasks; each stops when the sim shuts down.
pub fn spawn_tasks(sim: &Arc<Sim>, tasks: &mut JoinSet<()>) {
    for id in [SystemId::Ics, SystemId::Css] {
        if let Some(spec) = sim.profile.freezes.get(id).cloned() {
            let sim = Arc::clone(sim);
            tasks.spawn(async move {
                loop {
                    let gap = exponential(&sim, spec.mean_interval);
                    if !sim.sleep(gap).await {
                        return;
                    }
                    let length = spec.duration.sample(&mut rand::rng());
                    sim.start_freeze(id, length, Source::Random);
                }
            });
        }
        if let Some(spec) = sim.profile.restarts.get(id).cloned() {
            let sim = Arc::clone(sim);
            tasks.spawn(async move {
                loop {
                    let gap = exponential(&sim, spec.mean_interval);
                    if !sim.sleep(gap).await {
                        return;
                    }
                    sim.restart(id, spec.downtime, Source::Random);
                }
            });
        }
    }
    let sim = Arc::clone(sim);
    tasks.spawn(async move {
        while sim.sleep(SWEEP_EVERY).await {
            sim.sweep(SystemId::Ics);
            sim.sweep(SystemId::Css);
        }
    });
}

/// A real-time gap drawn from an exponential with a sim-time mean.
fn exponential(sim: &Sim, mean_sim: Duration) -> Duration {
    let draw: f64 = Exp1.sample(&mut rand::rng());
    let gap = Duration::try_from_secs_f64(mean_sim.as_secs_f64() * draw).unwrap_or(CENTURY);
    sim.clock.real_for_sim(gap)
}
