//! Shared simulator state: the two clocks, each system's sessions, tokens,
//! notes and fault switches, and the truth log. Everything request handlers
//! and fault tasks touch lives here behind short-held `std` mutexes (never held
//! across an `.await`); lock order is system state, then truth log.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::profile::{sample_lifetime, LogoutStyle, RequestClass, SimProfile, SystemId};
use super::truth::{SessionAge, Source, TruthEvent, TruthLog};

/// Per-system caps that keep memory bounded whatever clients do.
pub const MAX_SESSIONS: usize = 10_000;
pub const MAX_LOGIN_TOKENS: usize = 10_000;
pub const NOTES_PER_CASE: usize = 8;
/// How long a login form's token stays valid (real time).
pub const LOGIN_TOKEN_TTL: Duration = Duration::from_secs(30 * 60);
/// Ended sessions nobody came back to are forgotten after this (real time).
pub const ENDED_RETENTION: Duration = Duration::from_secs(30 * 60);

/// "Never", as a duration that can still be added to an `Instant`.
pub const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the whole sim down with poisoned locks.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn random_token() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

/// Real time (tokio's clock, so paused tests work) and sim time derived from it.
#[derive(Debug)]
pub struct SimClock {
    start: Instant,
    start_unix: f64,
    pub scale: f64,
}

impl SimClock {
    fn new(scale: f64) -> Self {
        let start_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        SimClock {
            start: Instant::now(),
            start_unix,
            scale,
        }
    }

    pub fn unix(&self, at: Instant) -> f64 {
        if at >= self.start {
            self.start_unix + (at - self.start).as_secs_f64()
        } else {
            self.start_unix - (self.start - at).as_secs_f64()
        }
    }

    pub fn now_unix(&self) -> f64 {
        self.unix(Instant::now())
    }

    /// Real time that `sim` of simulated time takes; saturates at a century so
    /// huge profile values cannot overflow an `Instant`.
    pub fn real_for_sim(&self, sim: Duration) -> Duration {
        let secs = sim.as_secs_f64() / self.scale;
        Duration::try_from_secs_f64(secs.min(CENTURY.as_secs_f64())).unwrap_or(CENTURY)
    }

    pub fn age(&self, from: Instant, to: Instant) -> SessionAge {
        self.age_named(String::new(), from, to)
    }

    pub fn age_named(&self, user: String, from: Instant, to: Instant) -> SessionAge {
        let real = to.saturating_duration_since(from).as_secs_f64();
        SessionAge {
            user,
            age_sim_seconds: real * self.scale,
            age_real_seconds: real,
        }
    }
}

#[derive(Debug)]
pub struct Ended {
    pub style: LogoutStyle,
    pub at: Instant,
    pub truth_id: u64,
    /// Already answered once (the `return_to` style answers twice: the
    /// logout's redirect home, then home's redirect to sign in).
    pub answered: bool,
}

#[derive(Debug)]
pub struct ServerSession {
    pub user: String,
    pub csrf: String,
    pub login_at: Instant,
    pub last_seen: Instant,
    /// When the hazard draw says the server ends this session; `None`: never.
    pub lifetime_end: Option<Instant>,
    pub ended: Option<Ended>,
}

/// A note saved on a case in the simulated app.
#[derive(Debug, Clone)]
pub struct CaseNote {
    pub id: String,
    pub text: String,
    pub user: String,
}

#[derive(Debug)]
pub struct InjectedErrors {
    pub status: u16,
    pub remaining: u64,
    pub truth_id: u64,
}

#[derive(Debug)]
pub struct SysState {
    pub sessions: HashMap<String, ServerSession>,
    pub login_tokens: HashMap<String, Instant>,
    pub notes: HashMap<String, VecDeque<CaseNote>>,
    pub next_note: u64,
    pub frozen_until: Option<Instant>,
    pub restarting_until: Option<Instant>,
    pub errors: Option<InjectedErrors>,
    pub extra_latency: Duration,
    pub latency_truth: Option<u64>,
    pub workers: u32,
    pub report_weight: u32,
    pub style: LogoutStyle,
    /// The next pages' script holds their main thread (a client-side
    /// freeze), armed through the control API.
    pub page_hang: Option<PageHang>,
}

/// A hang the page script carries for the next `remaining` pages loaded.
#[derive(Debug)]
pub struct PageHang {
    pub length: Duration,
    pub remaining: u64,
}

#[derive(Debug)]
pub struct System {
    pub state: Mutex<SysState>,
    /// Weighted requests in service now (reports count `report_weight`).
    pub load: AtomicU64,
    pub served: AtomicU64,
    pub in_flight: AtomicU64,
}

/// What a request's session cookie turned out to be.
pub enum Auth {
    Live {
        user: String,
        csrf: String,
    },
    Missing,
    /// The server had ended it; answer in this style.
    Ended(LogoutStyle),
}

#[derive(Debug)]
pub struct Sim {
    pub clock: SimClock,
    pub profile: SimProfile,
    pub password: String,
    pub control: bool,
    pub ics: System,
    pub css: System,
    pub reports_on: Mutex<SystemId>,
    pub truth: Mutex<TruthLog>,
    /// Draws session lifetimes; seeded from the profile when it says so.
    lifetimes: Mutex<rand::rngs::StdRng>,
    pub shutdown: CancellationToken,
}

impl Sim {
    pub fn new(
        profile: SimProfile,
        password: String,
        control: bool,
        shutdown: CancellationToken,
    ) -> Arc<Sim> {
        let system = |id: SystemId| {
            let cap = profile.capacity.get(id);
            System {
                state: Mutex::new(SysState {
                    sessions: HashMap::new(),
                    login_tokens: HashMap::new(),
                    notes: HashMap::new(),
                    next_note: 0,
                    frozen_until: None,
                    restarting_until: None,
                    errors: None,
                    extra_latency: Duration::ZERO,
                    latency_truth: None,
                    workers: cap.workers.max(1),
                    report_weight: cap.report_weight.max(1),
                    style: profile.forced_logout.style,
                    page_hang: None,
                }),
                load: AtomicU64::new(0),
                served: AtomicU64::new(0),
                in_flight: AtomicU64::new(0),
            }
        };
        Arc::new(Sim {
            clock: SimClock::new(profile.time_scale),
            ics: system(SystemId::Ics),
            css: system(SystemId::Css),
            reports_on: Mutex::new(profile.reports_on),
            truth: Mutex::new(TruthLog::default()),
            lifetimes: Mutex::new(match profile.seed {
                Some(seed) => rand::SeedableRng::seed_from_u64(seed),
                None => rand::SeedableRng::from_os_rng(),
            }),
            profile,
            password,
            control,
            shutdown,
        })
    }

    pub fn system(&self, id: SystemId) -> &System {
        match id {
            SystemId::Ics => &self.ics,
            SystemId::Css => &self.css,
        }
    }

    pub fn record(&self, event: TruthEvent) -> u64 {
        lock(&self.truth).push(event)
    }

    /// Sleeps unless shut down first; `false` means stop and answer nothing useful.
    pub async fn sleep(&self, d: Duration) -> bool {
        if d.is_zero() {
            return !self.shutdown.is_cancelled();
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.shutdown.cancelled() => false,
        }
    }

    /// Holds the caller while `id` is frozen (freezes may be extended meanwhile).
    pub async fn wait_unfrozen(&self, id: SystemId) -> bool {
        loop {
            let until = lock(&self.system(id).state).frozen_until;
            match until {
                Some(t) if t > Instant::now() => {
                    let sleep = tokio::time::sleep_until(t);
                    tokio::select! {
                        _ = sleep => {}
                        _ = self.shutdown.cancelled() => return false,
                    }
                }
                _ => return !self.shutdown.is_cancelled(),
            }
        }
    }

    /// Serves one unit of work of `class` on system `id`: charges its capacity
    /// for the duration and sleeps the sampled latency scaled by overload.
    pub async fn work(self: &Arc<Self>, id: SystemId, class: RequestClass) -> Option<LoadGuard> {
        let weight = if class == RequestClass::Report {
            u64::from(lock(&self.system(id).state).report_weight)
        } else {
            1
        };
        let guard = self.charge(id, weight);
        let d = self.service_time(id, class, guard.load_after);
        self.sleep(d).await.then_some(guard)
    }

    pub fn charge(self: &Arc<Self>, id: SystemId, weight: u64) -> LoadGuard {
        let load_after = self.system(id).load.fetch_add(weight, Ordering::SeqCst) + weight;
        LoadGuard {
            sim: Arc::clone(self),
            id,
            weight,
            load_after,
        }
    }

    /// Latency for `class` on `id` when `load` weighted requests are in service.
    pub fn service_time(&self, id: SystemId, class: RequestClass, load: u64) -> Duration {
        self.base_latency(class).mul_f64(self.overload(id, load))
    }

    pub fn base_latency(&self, class: RequestClass) -> Duration {
        self.profile.latency.get(class).sample(&mut rand::rng())
    }

    /// How much slower than unloaded `id` is with `load` in service (>= 1;
    /// capped so a runaway load cannot overflow a duration).
    pub fn overload(&self, id: SystemId, load: u64) -> f64 {
        let workers = lock(&self.system(id).state).workers.max(1);
        ((load as f64 + self.background()) / f64::from(workers)).clamp(1.0, 1000.0)
    }

    /// Other users' requests in service now, by the sim's calendar.
    pub fn background(&self) -> f64 {
        self.profile
            .load_cycle
            .as_ref()
            .map_or(0.0, |c| c.at(self.clock.now_unix() * self.clock.scale))
    }

    pub fn check_password(&self, user: &str, password: &str) -> bool {
        self.profile.users.iter().any(|u| u == user) && password == self.password
    }

    pub fn new_login_token(&self, id: SystemId) -> String {
        let now = Instant::now();
        let token = random_token();
        let mut st = lock(&self.system(id).state);
        if st.login_tokens.len() >= MAX_LOGIN_TOKENS {
            st.login_tokens.retain(|_, exp| *exp > now);
            if st.login_tokens.len() >= MAX_LOGIN_TOKENS {
                // Still full of live tokens: a client is hammering the form;
                // forget the ones closest to expiry.
                let mut all: Vec<_> = st
                    .login_tokens
                    .iter()
                    .map(|(k, v)| (*v, k.clone()))
                    .collect();
                all.sort();
                for (_, k) in all.into_iter().take(MAX_LOGIN_TOKENS / 10) {
                    st.login_tokens.remove(&k);
                }
            }
        }
        st.login_tokens.insert(token.clone(), now + LOGIN_TOKEN_TTL);
        token
    }

    pub fn login_token_valid(&self, id: SystemId, token: &str) -> bool {
        let st = lock(&self.system(id).state);
        st.login_tokens
            .get(token)
            .is_some_and(|exp| *exp > Instant::now())
    }

    /// Opens a session and returns its cookie value.
    pub fn login(&self, id: SystemId, user: &str) -> String {
        let now = Instant::now();
        let lifetime = sample_lifetime(
            &self.profile.forced_logout.hazard,
            &mut *lock(&self.lifetimes),
        );
        let sid = random_token();
        let session = ServerSession {
            user: user.to_string(),
            csrf: random_token(),
            login_at: now,
            last_seen: now,
            lifetime_end: lifetime.map(|l| now + self.clock.real_for_sim(l)),
            ended: None,
        };
        let mut st = lock(&self.system(id).state);
        if st.sessions.len() >= MAX_SESSIONS {
            self.evict_one(id, &mut st, now);
        }
        st.sessions.insert(sid.clone(), session);
        sid
    }

    fn evict_one(&self, id: SystemId, st: &mut SysState, now: Instant) {
        // Prefer forgetting sessions that were already ended; otherwise the
        // least recently used one, which the server genuinely drops.
        let victim = st
            .sessions
            .iter()
            .min_by_key(|(_, s)| (s.ended.is_none(), s.last_seen))
            .map(|(k, _)| k.clone());
        if let Some(k) = victim {
            if let Some(s) = st.sessions.remove(&k) {
                if s.ended.is_none() {
                    let ev =
                        TruthEvent::new("forced_logout", Source::Random, id, self.clock.unix(now))
                            .instant()
                            .with("cause", "evicted")
                            .sessions(vec![self.clock.age_named(s.user, s.login_at, now)]);
                    self.record(ev);
                }
            }
        }
    }

    /// Resolves the request's session cookie, ending the session first if its
    /// time has come.
    pub fn authenticate(&self, id: SystemId, headers: &HeaderMap) -> Auth {
        let Some(sid) = cookie(headers, id.cookie_name()) else {
            return Auth::Missing;
        };
        let now = Instant::now();
        let mut st = lock(&self.system(id).state);
        let style = st.style;
        let Some(session) = st.sessions.get_mut(&sid) else {
            return Auth::Missing;
        };
        self.end_if_due(id, session, style, now);
        if let Some(ended) = &mut session.ended {
            let (style, truth_id, first) = (ended.style, ended.truth_id, !ended.answered);
            if style == LogoutStyle::ReturnTo && first {
                ended.answered = true;
            } else {
                st.sessions.remove(&sid);
            }
            drop(st);
            if first {
                let noticed = self.clock.unix(now);
                if let Some(ev) = lock(&self.truth).get_mut(truth_id) {
                    ev.extra.insert("noticed_at".into(), noticed.into());
                }
            }
            return Auth::Ended(style);
        }
        session.last_seen = now;
        Auth::Live {
            user: session.user.clone(),
            csrf: session.csrf.clone(),
        }
    }

    /// Ends the session if its hazard lifetime or idle timeout has passed,
    /// backdating the truth entry to the moment it actually ran out.
    pub fn end_if_due(
        &self,
        id: SystemId,
        s: &mut ServerSession,
        style: LogoutStyle,
        now: Instant,
    ) {
        if s.ended.is_some() {
            return;
        }
        let idle_end = self
            .profile
            .idle_timeout
            .map(|t| s.last_seen + self.clock.real_for_sim(t));
        let (at, kind, cause) = match (s.lifetime_end, idle_end) {
            (Some(l), Some(i)) if i < l => (i, "idle_timeout", "idle_timeout"),
            (Some(l), _) => (l, "forced_logout", "hazard"),
            (None, Some(i)) => (i, "idle_timeout", "idle_timeout"),
            (None, None) => return,
        };
        if at > now {
            return;
        }
        self.end_session(id, s, kind, cause, Source::Random, style, at);
    }

    #[allow(clippy::too_many_arguments)]
    pub fn end_session(
        &self,
        id: SystemId,
        s: &mut ServerSession,
        kind: &'static str,
        cause: &str,
        source: Source,
        style: LogoutStyle,
        at: Instant,
    ) -> SessionAge {
        let age = self.clock.age_named(s.user.clone(), s.login_at, at);
        let ev = TruthEvent::new(kind, source, id, self.clock.unix(at))
            .instant()
            .with("cause", cause)
            .with("style", style.as_str())
            .with("noticed_at", serde_json::Value::Null)
            .sessions(vec![age.clone()]);
        let truth_id = self.record(ev);
        s.ended = Some(Ended {
            style,
            at,
            truth_id,
            answered: false,
        });
        age
    }

    pub fn logout(&self, id: SystemId, sid: &str) {
        lock(&self.system(id).state).sessions.remove(sid);
    }
}

/// Releases the capacity a request took when it finishes or is dropped.
#[derive(Debug)]
pub struct LoadGuard {
    sim: Arc<Sim>,
    id: SystemId,
    weight: u64,
    pub load_after: u64,
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.sim
            .system(self.id)
            .load
            .fetch_sub(self.weight, Ordering::SeqCst);
    }
}

/// The value of cookie `name` in the request, if any.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}
