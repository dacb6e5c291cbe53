//! One browser tab and what the agent sees of it while steps run.
//!
//! A [`Tab`] subscribes to the page's DevTools events and keeps a [`Watch`]:
//! requests in flight and how long each waited for its answer, the main
//! frame's page loads (redirects, status, first byte, DOMContentLoaded,
//! load), the long tasks and largest contentful paint the page reports,
//! console errors, dialogs (dismissed at once: a dialog would hold the page)
//! and crashes. A probe asks the page's main thread a trivial question
//! every [`PROBE_EVERY`]; an answer that is late is a stretch the main
//! thread was blocked, seen from outside, even while the page is stuck.
//!
//! Requests to the target's origins are reported to the freeze-episode
//! detector like HTTP steps' requests, so a server that stops answering is
//! one freeze episode whichever kind of journey saw it. Nothing that the
//! page's main thread does is reported there.
//!
//! Events arrive on several streams, merged; each is applied as it comes,
//! keyed by request. A merge that lags can hand over a request's answer or
//! end before the request itself: those are held until the request comes,
//! so a request the page finished is never taken for one still waiting.
//! Every list is bounded: a page cannot grow the agent's memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chromiumoxide::cdp::browser_protocol::inspector::EventTargetCrashed;
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::browser_protocol::network::{
    EventLoadingFailed, EventLoadingFinished, EventRequestWillBeSent, EventResponseReceived,
    ResourceType,
};
use chromiumoxide::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, EventFrameNavigated, EventFrameStoppedLoading,
    EventJavascriptDialogOpening, EventLifecycleEvent, HandleJavaScriptDialogParams,
};
use chromiumoxide::cdp::js_protocol::runtime::{
    AddBindingParams, ConsoleApiCalledType, EvaluateParams, EventBindingCalled,
    EventConsoleApiCalled, EventExceptionThrown, RemoteObject,
};
use chromiumoxide::Page;
use futures::stream::{BoxStream, StreamExt};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use url::Url;

use super::script;
use crate::config::Target;
use crate::runner::{InflightGuard, Probes};

/// How often the page's main thread is asked whether it answers.
pub const PROBE_EVERY: Duration = Duration::from_millis(100);
/// A probe answer later than this is a stretch the main thread was blocked.
const PROBE_LATE: Duration = Duration::from_millis(50);
/// Console errors kept per tab (the last ones), and their length.
const CONSOLE_KEPT: usize = 20;
const CONSOLE_CHARS: usize = 500;
/// Bounds on what one page can make the agent keep.
const REQUESTS_KEPT: usize = 2_000;
const STRETCHES_KEPT: usize = 2_000;
const PAGE_LOADS_KEPT: usize = 50;
const REDIRECTS_KEPT: usize = 20;
/// Answers and ends held for requests not yet seen; a request that never
/// comes (one the watch does not count) ages out.
const EARLY_KEPT: usize = 200;
/// The longest binding payload read; the page could send anything.
const PAYLOAD_MAX: usize = 512;

/// A redirect hop of a page load: its status and where it pointed.
#[derive(Clone, Debug)]
pub struct Redirect {
    pub status: u16,
    pub location: Option<Url>,
}

/// One load of the main frame's document.
#[derive(Clone, Debug)]
pub struct PageLoad {
    request: String,
    loader: String,
    pub started: Instant,
    /// The URL first asked for (before redirects).
    pub url: Option<Url>,
    pub redirects: Vec<Redirect>,
    /// The final answer's status and when its headers arrived.
    pub status: Option<u16>,
    pub first_byte: Option<Instant>,
    pub dom_content_loaded: Option<Instant>,
    pub load: Option<Instant>,
    /// The frame stopped loading (a load ended, or a navigation that
    /// opened nothing, a 204 or a download, gave up).
    pub stopped: Option<Instant>,
    /// The network error that ended it (`net::ERR_CONNECTION_REFUSED`, ...).
    pub failed: Option<String>,
}

impl PageLoad {
    /// Whether the load has ended one way or another.
    pub fn is_done(&self) -> bool {
        self.load.is_some() || self.failed.is_some() || self.stopped.is_some()
    }
}

/// What arrived for a request before the request itself.
#[derive(Debug)]
struct EarlyAnswer {
    id: String,
    at: Instant,
    status: Option<u16>,
    /// Its loading finished or failed, with the failure.
    ended: Option<Option<String>>,
}

struct Request {
    sent: Instant,
    answered: bool,
    /// Reports the request to the freeze detector while it waits.
    _guard: Option<InflightGuard>,
}

/// What the agent knows of a page; see the module docs.
pub struct Watch {
    target: Arc<Target>,
    probes: Option<Probes>,
    main_frame: String,
    /// The current step's `freeze_after`, for the requests it sends.
    freeze_after: Duration,
    requests: HashMap<String, Request>,
    early: VecDeque<EarlyAnswer>,
    /// Finished waits on a server: (sent, answered).
    waits: VecDeque<(Instant, Instant)>,
    loads: VecDeque<PageLoad>,
    long_tasks: VecDeque<(Instant, Instant)>,
    paints: VecDeque<Instant>,
    /// Late probe answers: (asked, answered).
    probe_gaps: VecDeque<(Instant, Instant)>,
    /// When the probe now unanswered was sent.
    probe_since: Option<Instant>,
    console: VecDeque<String>,
    crashed: bool,
    url: Option<String>,
    requests_sent: u64,
    /// Bytes received over the network for finished requests (as sent,
    /// compressed), since the tab opened.
    bytes_received: u64,
}

/// Pushes to a bounded list, forgetting the oldest.
fn push<T>(list: &mut VecDeque<T>, item: T, limit: usize) {
    if list.len() >= limit {
        list.pop_front();
    }
    list.push_back(item);
}

/// The monotonic instant of a wall-clock time in milliseconds (the page's
/// own clock), clamped to now.
fn instant_of(epoch_ms: f64, now: Instant, wall: SystemTime) -> Instant {
    let wall_ms = wall
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0);
    let ago = (wall_ms - epoch_ms).max(0.0) / 1000.0;
    Duration::try_from_secs_f64(ago)
        .ok()
        .and_then(|ago| now.checked_sub(ago))
        .unwrap_or(now)
}

fn truncate(text: &str) -> String {
    let mut out: String = text.chars().take(CONSOLE_CHARS).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out.replace(['\r', '\n'], " ")
}

fn describe(object: &RemoteObject) -> String {
    match &object.value {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => object.description.clone().unwrap_or_default(),
    }
}

/// What a step's window saw, from [`Watch::window`].
#[derive(Debug, Default)]
pub struct PageWindow {
    /// Stretches with a request waiting for its answer.
    pub server: Vec<(Instant, Instant)>,
    /// Stretches the main thread was blocked (long tasks, late probes).
    pub blocked: Vec<(Instant, Instant)>,
    /// Long tasks alone, for their count and total.
    pub long_tasks: Vec<(Instant, Instant)>,
    pub largest_contentful_paint: Option<Instant>,
    pub requests: u64,
    /// Bytes received by the tab since it opened (subtract to get a step's).
    pub bytes: u64,
}

impl Watch {
    fn new(target: Arc<Target>, probes: Option<Probes>, main_frame: String) -> Watch {
        Watch {
            target,
            probes,
            main_frame,
            freeze_after: Duration::from_secs(20),
            requests: HashMap::new(),
            early: VecDeque::new(),
            waits: VecDeque::new(),
            loads: VecDeque::new(),
            long_tasks: VecDeque::new(),
            paints: VecDeque::new(),
            probe_gaps: VecDeque::new(),
            probe_since: None,
            console: VecDeque::new(),
            crashed: false,
            url: None,
            requests_sent: 0,
            bytes_received: 0,
        }
    }

    /// A step begins: its requests are reported with its `freeze_after`.
    pub fn begin(&mut self, freeze_after: Duration) {
        self.freeze_after = freeze_after;
    }

    /// Whether the page is busy now (see [`crate::detect::page::busy`]).
    pub fn busy(&self, now: Instant) -> bool {
        let waiting = self.requests.values().any(|r| !r.answered);
        crate::detect::page::busy(waiting, self.probe_since, now)
    }

    /// The last page load of the main frame that began at or after `since`.
    pub fn load_since(&self, since: Instant) -> Option<&PageLoad> {
        self.loads.iter().rev().find(|l| l.started >= since)
    }

    pub fn crashed(&self) -> bool {
        self.crashed
    }

    /// The main frame's URL, as last navigated.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// The last console errors, oldest first.
    pub fn console(&self) -> Vec<String> {
        self.console.iter().cloned().collect()
    }

    /// Everything seen between `from` and `to`, open stretches ending at `to`.
    pub fn window(&self, from: Instant, to: Instant) -> PageWindow {
        let mut server: Vec<(Instant, Instant)> = self
            .waits
            .iter()
            .copied()
            .filter(|(_, end)| *end > from)
            .collect();
        server.extend(
            self.requests
                .values()
                .filter(|r| !r.answered)
                .map(|r| (r.sent, to)),
        );
        let long_tasks: Vec<(Instant, Instant)> = self
            .long_tasks
            .iter()
            .copied()
            .filter(|(start, end)| *end > from && *start < to)
            .collect();
        // While the main frame waits for a new document's first byte, the
        // probes go unanswered whatever the page does (there is no document
        // to answer yet): that stretch is the server's, not the page's.
        let navigating: Vec<(Instant, Instant)> = self
            .loads
            .iter()
            .map(|l| (l.started, l.first_byte.or(l.stopped).unwrap_or(to)))
            .filter(|(start, end)| *end > from && *start < to)
            .collect();
        let gaps: Vec<(Instant, Instant)> = self
            .probe_gaps
            .iter()
            .copied()
            .filter(|(_, end)| *end > from)
            .chain(self.probe_since.map(|since| (since, to)))
            .collect();
        let mut blocked = long_tasks.clone();
        blocked.extend(crate::detect::page::without(&gaps, &navigating));
        PageWindow {
            server,
            blocked,
            long_tasks,
            largest_contentful_paint: self
                .paints
                .iter()
                .rev()
                .find(|p| **p >= from && **p <= to)
                .copied(),
            requests: self.requests_sent,
            bytes: self.bytes_received,
        }
    }

    fn counts(&self, url: &str) -> Option<Url> {
        let url = Url::parse(url).ok()?;
        matches!(url.scheme(), "http" | "https").then_some(url)
    }

    fn request_sent(&mut self, e: &EventRequestWillBeSent, now: Instant) {
        let id = e.request_id.as_ref().to_string();
        let is_main_document = e.r#type == Some(ResourceType::Document)
            && e.frame_id.as_ref().map(|f| f.as_ref()) == Some(self.main_frame.as_str());
        // A redirect: the previous hop was answered, a new one leaves now.
        if let Some(previous) = &e.redirect_response {
            self.answered(&id, now);
            if is_main_document {
                let base = self.counts(&previous.url);
                let location = previous
                    .headers
                    .inner()
                    .as_object()
                    .and_then(|h| {
                        h.iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case("location"))
                            .and_then(|(_, v)| v.as_str())
                    })
                    .and_then(|l| base.as_ref().and_then(|b| b.join(l).ok()));
                if let Some(load) = self.loads.iter_mut().rev().find(|l| l.request == id) {
                    if load.redirects.len() < REDIRECTS_KEPT {
                        load.redirects.push(Redirect {
                            status: u16::try_from(previous.status).unwrap_or(0),
                            location,
                        });
                    }
                }
            }
            self.requests.remove(&id);
        }
        let Some(url) = self.counts(&e.request.url) else {
            return;
        };
        self.requests_sent += 1;
        if is_main_document && e.redirect_response.is_none() {
            push(
                &mut self.loads,
                PageLoad {
                    request: id.clone(),
                    loader: e.loader_id.as_ref().to_string(),
                    started: now,
                    url: Some(url.clone()),
                    redirects: Vec::new(),
                    status: None,
                    first_byte: None,
                    dom_content_loaded: None,
                    load: None,
                    stopped: None,
                    failed: None,
                },
                PAGE_LOADS_KEPT,
            );
        }
        if let Some(early) = self.take_early(&id) {
            self.apply_early(id, early, now);
            return;
        }
        if self.requests.len() >= REQUESTS_KEPT {
            return;
        }
        let guard = match &self.probes {
            Some(probes) if self.target.allows_origin(&url) => {
                Some(probes.sent(&self.target.name, self.freeze_after))
            }
            _ => None,
        };
        self.requests.insert(
            id,
            Request {
                sent: now,
                answered: false,
                _guard: guard,
            },
        );
    }

    /// A request's answer (its headers) arrived.
    fn answered(&mut self, id: &str, now: Instant) {
        if let Some(request) = self.requests.get_mut(id) {
            if !request.answered {
                request.answered = true;
                push(&mut self.waits, (request.sent, now), STRETCHES_KEPT);
                if request._guard.is_some() {
                    if let Some(probes) = &self.probes {
                        probes.answered(&self.target.name);
                    }
                }
            }
        }
    }

    fn response(&mut self, e: &EventResponseReceived, now: Instant) {
        let id = e.request_id.as_ref();
        let status = u16::try_from(e.response.status).unwrap_or(0);
        if !self.knows(id) {
            self.early_answer(id, now).status = Some(status);
            return;
        }
        self.answered(id, now);
        self.load_answered(id, status, now);
    }

    fn load_answered(&mut self, id: &str, status: u16, now: Instant) {
        if let Some(load) = self.loads.iter_mut().rev().find(|l| l.request == id) {
            load.status = Some(status);
            load.first_byte.get_or_insert(now);
        }
    }

    fn finished(&mut self, id: &str, now: Instant, failure: Option<&str>) {
        if !self.knows(id) {
            self.early_answer(id, now).ended = Some(failure.map(truncate));
            return;
        }
        // A request that failed before any answer waited until now.
        self.answered(id, now);
        self.requests.remove(id);
        if let Some(error) = failure {
            self.load_failed(id, truncate(error));
        }
    }

    fn load_failed(&mut self, id: &str, error: String) {
        if let Some(load) = self.loads.iter_mut().rev().find(|l| l.request == id) {
            if load.status.is_none() {
                load.failed = Some(error);
            }
        }
    }

    /// Whether the request `id` has been seen: in flight, or a kept page load.
    fn knows(&self, id: &str) -> bool {
        self.requests.contains_key(id) || self.loads.iter().any(|l| l.request == id)
    }

    /// The held record of an early answer or end for `id`, made if new.
    fn early_answer(&mut self, id: &str, now: Instant) -> &mut EarlyAnswer {
        match self.early.iter().position(|e| e.id == id) {
            Some(i) => &mut self.early[i],
            None => {
                let answer = EarlyAnswer {
                    id: id.to_string(),
                    at: now,
                    status: None,
                    ended: None,
                };
                push(&mut self.early, answer, EARLY_KEPT);
                self.early.back_mut().expect("just pushed")
            }
        }
    }

    fn take_early(&mut self, id: &str) -> Option<EarlyAnswer> {
        let i = self.early.iter().position(|e| e.id == id)?;
        self.early.remove(i)
    }

    /// A request whose answer came first: answered when it came (how long
    /// it waited is unknown, and shorter than the merge's lag), ended too if
    /// its end came as well.
    fn apply_early(&mut self, id: String, early: EarlyAnswer, now: Instant) {
        if let Some(status) = early.status {
            self.load_answered(&id, status, early.at);
        }
        match early.ended {
            Some(failure) => {
                if let Some(error) = failure {
                    self.load_failed(&id, error);
                }
            }
            None => {
                self.requests.insert(
                    id,
                    Request {
                        sent: now,
                        answered: true,
                        _guard: None,
                    },
                );
            }
        }
    }

    fn lifecycle(&mut self, e: &EventLifecycleEvent, now: Instant) {
        if e.frame_id.as_ref() != self.main_frame {
            return;
        }
        let loader = e.loader_id.as_ref();
        let Some(load) = self.loads.iter_mut().rev().find(|l| l.loader == loader) else {
            return;
        };
        match e.name.as_str() {
            "DOMContentLoaded" => {
                load.dom_content_loaded.get_or_insert(now);
            }
            "load" => {
                load.load.get_or_insert(now);
            }
            _ => {}
        }
    }

    fn stopped(&mut self, frame: &str, now: Instant) {
        if frame != self.main_frame {
            return;
        }
        if let Some(load) = self.loads.back_mut() {
            load.stopped.get_or_insert(now);
        }
    }

    fn binding(&mut self, e: &EventBindingCalled, now: Instant) {
        if e.name != script::BINDING || e.payload.len() > PAYLOAD_MAX {
            return;
        }
        #[derive(serde::Deserialize)]
        struct BindingPayload {
            k: String,
            s: f64,
            d: f64,
        }
        let Ok(report) = serde_json::from_str::<BindingPayload>(&e.payload) else {
            return;
        };
        if !(report.s.is_finite() && report.d.is_finite() && report.d >= 0.0) {
            return;
        }
        let wall = SystemTime::now();
        let start = instant_of(report.s, now, wall);
        match report.k.as_str() {
            "longtask" => {
                let length = Duration::try_from_secs_f64(report.d / 1000.0).unwrap_or_default();
                let end = (start + length).min(now);
                push(&mut self.long_tasks, (start, end), STRETCHES_KEPT);
            }
            "lcp" => push(&mut self.paints, start, STRETCHES_KEPT),
            _ => {}
        }
    }

    fn console_line(&mut self, line: String) {
        push(&mut self.console, truncate(&line), CONSOLE_KEPT);
    }
}

/// A tab of a browser context and its [`Watch`].
pub struct Tab {
    pub page: Page,
    watch: Arc<Mutex<Watch>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Tab {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The tab's CDP events, merged into one stream for the watcher.
enum TabEvent {
    Sent(Arc<EventRequestWillBeSent>),
    Response(Arc<EventResponseReceived>),
    Finished(Arc<EventLoadingFinished>),
    Failed(Arc<EventLoadingFailed>),
    Lifecycle(Arc<EventLifecycleEvent>),
    Stopped(Arc<EventFrameStoppedLoading>),
    Navigated(Arc<EventFrameNavigated>),
    Binding(Arc<EventBindingCalled>),
    Console(Arc<EventConsoleApiCalled>),
    Exception(Arc<EventExceptionThrown>),
    Log(Arc<EventEntryAdded>),
    Dialog(Arc<EventJavascriptDialogOpening>),
    Crashed,
}

/// Why a tab could not be set up.
pub type SetupError = chromiumoxide::error::CdpError;

impl Tab {
    /// Starts watching `page`: subscribes to its events, installs the
    /// long-task observers for every document it loads, starts the probe.
    pub async fn open(
        page: Page,
        target: Arc<Target>,
        probes: Option<Probes>,
    ) -> Result<Tab, SetupError> {
        let main_frame = page.target_id().as_ref().to_string();
        let watch = Arc::new(Mutex::new(Watch::new(target, probes, main_frame)));
        let streams: Vec<BoxStream<'static, TabEvent>> = vec![
            page.event_listener::<EventRequestWillBeSent>()
                .await?
                .map(TabEvent::Sent)
                .boxed(),
            page.event_listener::<EventResponseReceived>()
                .await?
                .map(TabEvent::Response)
                .boxed(),
            page.event_listener::<EventLoadingFinished>()
                .await?
                .map(TabEvent::Finished)
                .boxed(),
            page.event_listener::<EventLoadingFailed>()
                .await?
                .map(TabEvent::Failed)
                .boxed(),
            page.event_listener::<EventLifecycleEvent>()
                .await?
                .map(TabEvent::Lifecycle)
                .boxed(),
            page.event_listener::<EventFrameStoppedLoading>()
                .await?
                .map(TabEvent::Stopped)
                .boxed(),
            page.event_listener::<EventFrameNavigated>()
                .await?
                .map(TabEvent::Navigated)
                .boxed(),
            page.event_listener::<EventBindingCalled>()
                .await?
                .map(TabEvent::Binding)
                .boxed(),
            page.event_listener::<EventConsoleApiCalled>()
                .await?
                .map(TabEvent::Console)
                .boxed(),
            page.event_listener::<EventExceptionThrown>()
                .await?
                .map(TabEvent::Exception)
                .boxed(),
            page.event_listener::<EventEntryAdded>()
                .await?
                .map(TabEvent::Log)
                .boxed(),
            page.event_listener::<EventJavascriptDialogOpening>()
                .await?
                .map(TabEvent::Dialog)
                .boxed(),
            page.event_listener::<EventTargetCrashed>()
                .await?
                .map(|_| TabEvent::Crashed)
                .boxed(),
        ];
        page.execute(AddBindingParams::new(script::BINDING)).await?;
        page.execute(AddScriptToEvaluateOnNewDocumentParams::new(
            script::OBSERVERS,
        ))
        .await?;
        page.execute(chromiumoxide::cdp::browser_protocol::log::EnableParams::default())
            .await?;
        let events = tokio::spawn(consume(
            page.clone(),
            watch.clone(),
            futures::stream::select_all(streams),
        ));
        let probe = tokio::spawn(probe(page.clone(), watch.clone()));
        Ok(Tab {
            page,
            watch,
            tasks: vec![events, probe],
        })
    }

    /// The watch, locked for a moment (never across an await).
    pub fn watch(&self) -> MutexGuard<'_, Watch> {
        match self.watch.lock() {
            Ok(watch) => watch,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Evaluates `expression` in the page and reads its value as `T`.
    pub async fn eval<T: serde::de::DeserializeOwned>(
        &self,
        expression: &str,
    ) -> Result<T, EvalError> {
        eval(&self.page, expression).await
    }
}

/// Why an evaluation in the page gave no value.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The browser or page did not take the command (gone, crashed).
    #[error("the browser did not answer: {0}")]
    Browser(#[from] chromiumoxide::error::CdpError),
    /// The script threw, or its value had another shape.
    #[error("the page could not answer")]
    Page,
}

pub async fn eval<T: serde::de::DeserializeOwned>(
    page: &Page,
    expression: &str,
) -> Result<T, EvalError> {
    let params = EvaluateParams::builder()
        .expression(expression)
        .return_by_value(true)
        .await_promise(false)
        .build()
        .map_err(|_| EvalError::Page)?;
    let returned = match page.execute(params).await {
        Ok(answer) => answer.result,
        // The page's own refusals (no context yet, a navigation under way)
        // are the page's; anything else means the browser is not there.
        Err(
            chromiumoxide::error::CdpError::Chrome(_)
            | chromiumoxide::error::CdpError::ChromeMessage(_)
            | chromiumoxide::error::CdpError::JavascriptException(_)
            | chromiumoxide::error::CdpError::Serde(_)
            | chromiumoxide::error::CdpError::NotFound,
        ) => return Err(EvalError::Page),
        Err(e) => return Err(EvalError::Browser(e)),
    };
    if returned.exception_details.is_some() {
        return Err(EvalError::Page);
    }
    let value = returned.result.value.unwrap_or(serde_json::Value::Null);
    serde_json::from_value(value).map_err(|_| EvalError::Page)
}

fn lock(watch: &Mutex<Watch>) -> MutexGuard<'_, Watch> {
    match watch.lock() {
        Ok(w) => w,
        Err(poisoned) => poisoned.into_inner(),
    }
}

async fn consume(
    page: Page,
    watch: Arc<Mutex<Watch>>,
    mut events: futures::stream::SelectAll<BoxStream<'static, TabEvent>>,
) {
    while let Some(event) = events.next().await {
        let now = Instant::now();
        if let TabEvent::Dialog(dialog) = &event {
            lock(&watch).console_line(format!(
                "dialog ({:?}) dismissed: {}",
                dialog.r#type, dialog.message
            ));
            // A dialog holds the page's main thread until answered.
            let _ = page.execute(HandleJavaScriptDialogParams::new(false)).await;
            continue;
        }
        let mut w = lock(&watch);
        match event {
            TabEvent::Sent(e) => w.request_sent(&e, now),
            TabEvent::Response(e) => w.response(&e, now),
            TabEvent::Finished(e) => {
                if e.encoded_data_length.is_finite() && e.encoded_data_length > 0.0 {
                    w.bytes_received = w
                        .bytes_received
                        .saturating_add(e.encoded_data_length as u64);
                }
                w.finished(e.request_id.as_ref(), now, None)
            }
            TabEvent::Failed(e) => {
                let failure = (!e.canceled.unwrap_or(false)).then_some(e.error_text.as_str());
                w.finished(e.request_id.as_ref(), now, failure.or(Some("canceled")));
            }
            TabEvent::Lifecycle(e) => w.lifecycle(&e, now),
            TabEvent::Stopped(e) => w.stopped(e.frame_id.as_ref(), now),
            TabEvent::Navigated(e) => {
                if e.frame.parent_id.is_none() {
                    w.url = Some(e.frame.url.clone());
                }
            }
            TabEvent::Binding(e) => w.binding(&e, now),
            TabEvent::Console(e) => {
                if matches!(
                    e.r#type,
                    ConsoleApiCalledType::Error | ConsoleApiCalledType::Assert
                ) {
                    let text: Vec<String> = e.args.iter().map(describe).collect();
                    w.console_line(format!("console.error: {}", text.join(" ")));
                }
            }
            TabEvent::Exception(e) => {
                let details = &e.exception_details;
                let what = details
                    .exception
                    .as_ref()
                    .and_then(|x| x.description.as_deref())
                    .and_then(|d| d.lines().next())
                    .unwrap_or(details.text.as_str())
                    .to_string();
                w.console_line(format!("uncaught: {what}"));
            }
            TabEvent::Log(e) => {
                if e.entry.level == LogEntryLevel::Error {
                    w.console_line(
                        format!("{:?}: {}", e.entry.source, e.entry.text).to_lowercase(),
                    );
                }
            }
            TabEvent::Crashed => {
                w.crashed = true;
                w.console_line("the page crashed".to_string());
            }
            TabEvent::Dialog(_) => {}
        }
    }
}

/// Asks the page's main thread a trivial question over and over; a late
/// answer is a stretch it was blocked. While a question is unanswered, its
/// send time is the page's "blocked since".
async fn probe(page: Page, watch: Arc<Mutex<Watch>>) {
    loop {
        let asked = Instant::now();
        lock(&watch).probe_since = Some(asked);
        let answer = eval::<serde_json::Value>(&page, "0").await;
        let answered = Instant::now();
        {
            let mut w = lock(&watch);
            w.probe_since = None;
            if answered - asked > PROBE_LATE {
                push(&mut w.probe_gaps, (asked, answered), STRETCHES_KEPT);
            }
        }
        // A browser that is gone answers at once with an error: slow down.
        let pause = match answer {
            Err(EvalError::Browser(_)) => Duration::from_secs(1),
            _ => PROBE_EVERY,
        };
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: &str = "main-frame";

    fn watch() -> Watch {
        let yaml = "site: s\ntargets:\n  - name: pages\n    base_url: http://127.0.0.1:9/\njourneys:\n  - { name: j, target: pages, login: false, schedule: { interval: 1h }, browser: { steps: [{ name: open, goto: / }] } }\n";
        let config = crate::config::from_yaml_str(yaml, "t.yaml")
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
        Watch::new(config.targets[0].clone(), None, FRAME.to_string())
    }

    fn sent(id: &str, document: bool) -> EventRequestWillBeSent {
        serde_json::from_value(serde_json::json!({
            "requestId": id,
            "loaderId": format!("loader-{id}"),
            "documentURL": "http://127.0.0.1:9/",
            "request": {
                "url": "http://127.0.0.1:9/loop",
                "method": "GET",
                "headers": {},
                "initialPriority": "VeryHigh",
                "referrerPolicy": "no-referrer",
            },
            "timestamp": 1.0,
            "wallTime": 1.0,
            "initiator": { "type": "other" },
            "redirectHasExtraInfo": false,
            "type": if document { "Document" } else { "Script" },
            "frameId": FRAME,
        }))
        .expect("a requestWillBeSent event")
    }

    /// Seen in a reload loop on a loaded machine: the merged streams gave a
    /// request's end before the request, which then waited "for ever" and
    /// made the page's own loop look like a server-side freeze.
    #[test]
    fn an_end_that_comes_before_its_request_leaves_nothing_waiting() {
        let mut w = watch();
        let t0 = Instant::now();
        w.finished("r1", t0, None);
        w.request_sent(&sent("r1", false), t0 + Duration::from_millis(5));
        let later = t0 + Duration::from_secs(8);
        assert!(!w.busy(later));
        assert!(w.window(t0, later).server.is_empty());
        // Held ends are taken once: the same id sent again waits as usual.
        w.request_sent(&sent("r1", false), later);
        assert!(w.busy(later + Duration::from_secs(1)));
    }

    #[test]
    fn an_answer_that_comes_before_its_page_load_gives_the_load_its_status() {
        let mut w = watch();
        let t0 = Instant::now();
        w.early_answer("doc", t0).status = Some(200);
        w.request_sent(&sent("doc", true), t0 + Duration::from_millis(5));
        let load = w.load_since(t0).expect("the page load");
        assert_eq!((load.status, load.first_byte), (Some(200), Some(t0)));
        // Answered, not yet finished: nothing waits on the server.
        assert!(w.window(t0, t0 + Duration::from_secs(8)).server.is_empty());
        w.finished(
            "doc",
            t0 + Duration::from_millis(9),
            Some("net::ERR_ABORTED"),
        );
        assert!(w.requests.is_empty());
        assert!(!w.busy(t0 + Duration::from_secs(8)));
    }

    #[test]
    fn ends_of_requests_never_seen_are_held_in_bounds() {
        let mut w = watch();
        let t0 = Instant::now();
        for i in 0..EARLY_KEPT * 3 {
            w.finished(&format!("data-{i}"), t0, None);
        }
        assert_eq!(w.early.len(), EARLY_KEPT);
    }
}
