//! The fleet report: one report over several sites' journals, for a board
//! that runs one agent per office.
//!
//! - **Sites.** Each journal names its site in its meta. Journals of the
//!   same site are merged when the times they measured do not overlap (an
//!   agent moved to a new file); overlapping ones are refused, since the
//!   same runs would count twice ([`group`]).
//! - **Per-site table.** Runs, availability, interactive p95, freeze
//!   episodes per day and forced logouts per session-hour, each with the
//!   clustered intervals of [`super::evidence`], on one grid of blocks of
//!   time shared by every site.
//! - **Pooled figures.** The same measures over the whole fleet. A block of
//!   time is one cluster across all sites: a freeze of the central system
//!   stalls every office at once, so offices in the same block are not
//!   independent.
//! - **Is one office worse?** Each site against the rest of the fleet
//!   pooled: availability difference, p95 difference, freeze and logout
//!   rate ratios. A site is called worse only under the minimum-evidence
//!   rule ([`evidence::judge`]: the interval excludes no difference and
//!   each side has [`evidence::MIN_BLOCKS`] blocks), with intervals widened
//!   for the number of comparisons made at once (Bonferroni over sites ×
//!   measures), so a fleet of healthy offices does not throw up a "worse"
//!   one by chance.
//!
//! Reading is streamed and aggregated per block: no step row is held, only
//! each site's interactive latencies as sorted `f32` (for exact quantiles),
//! and journals are read on as many threads as there are cores.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use super::compare::{self, Measure};
use super::evidence::{self, Direction};
use super::model::TimeWindow;
use super::stats::Estimate;
use crate::journal::read::{JournalReader, ReadError, Window};
use crate::outcome::unix_secs;
use crate::timefmt::rfc3339;

pub const SCHEMA_VERSION: u32 = 1;
/// Measures compared per site (availability, p95, freezes, forced logouts).
pub const MEASURES: usize = 4;
/// Interactive runs per journal the journeys' interval is taken from.
const INTERVAL_SAMPLE: usize = 20_000;

pub const ADJUSTED: &str =
    "as in the per-site table, at the level adjusted for the comparisons made at once (Bonferroni over sites x measures); the rest of the fleet shares the site's blocks of time, so the difference's interval is conservative";

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("journal {path} names no site (no `site` in its meta and no runs)")]
    NoSite { path: String },
    #[error("journals {first} and {second} both hold site {site} over overlapping times ({from} to {to}); give one of them, or merge them first")]
    Overlap {
        site: String,
        first: String,
        second: String,
        from: String,
        to: String,
    },
    #[error("folder {path} holds no journal (*.db)")]
    EmptyFolder { path: String },
    #[error("cannot list folder {path}")]
    Folder {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("cannot read journal {path}")]
    Journal {
        path: String,
        #[source]
        source: ReadError,
    },
}

/// The journals `--journal` names: files as given, and for a folder every
/// `*.db` file directly in it (not its subfolders), by name.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, FleetError> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let folder = |source| FleetError::Folder {
                path: path.display().to_string(),
                source,
            };
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(folder)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "db"))
                .collect();
            if found.is_empty() {
                return Err(FleetError::EmptyFolder {
                    path: path.display().to_string(),
                });
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// One journal as the grouping sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct JournalEntry {
    pub path: String,
    pub site: String,
    /// First and last moment measured.
    pub span: Option<(f64, f64)>,
}

/// Journals grouped by site, sites by name. Two journals of one site are
/// merged when their spans do not overlap; otherwise an error names both.
pub fn group(
    entries: Vec<JournalEntry>,
) -> Result<BTreeMap<String, Vec<JournalEntry>>, FleetError> {
    let mut sites: BTreeMap<String, Vec<JournalEntry>> = BTreeMap::new();
    for e in entries {
        sites.entry(e.site.clone()).or_default().push(e);
    }
    for (site, list) in &mut sites {
        list.sort_by(|a, b| {
            let start = |e: &JournalEntry| e.span.map_or(f64::MIN, |s| s.0);
            start(a).total_cmp(&start(b)).then(a.path.cmp(&b.path))
        });
        for pair in list.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.path == b.path {
                return Err(FleetError::Overlap {
                    site: site.clone(),
                    first: a.path.clone(),
                    second: b.path.clone(),
                    from: a.span.map_or("-".into(), |s| rfc3339(s.0)),
                    to: a.span.map_or("-".into(), |s| rfc3339(s.1)),
                });
            }
            if let (Some(sa), Some(sb)) = (a.span, b.span) {
                if sb.0 < sa.1 {
                    return Err(FleetError::Overlap {
                        site: site.clone(),
                        first: a.path.clone(),
                        second: b.path.clone(),
                        from: rfc3339(sb.0),
                        to: rfc3339(sa.1.min(sb.1)),
                    });
                }
            }
        }
    }
    Ok(sites)
}

#[derive(Clone, Debug)]
pub struct FleetOptions {
    pub from: Option<SystemTime>,
    pub to: Option<SystemTime>,
    pub now: SystemTime,
}

#[derive(Clone, Debug, Serialize)]
pub struct FleetReport {
    pub schema_version: u32,
    pub generated_at: String,
    pub journals: Vec<FleetJournal>,
    pub window: TimeWindow,
    pub block_seconds: f64,
    pub min_blocks: usize,
    /// The two-sided level of the per-site comparisons' intervals.
    pub comparison_level: f64,
    pub summary: Vec<String>,
    pub sites: Vec<SiteRow>,
    pub journeys: Vec<JourneyRow>,
    pub pooled: SiteRow,
    pub comparisons: Vec<SiteComparison>,
    /// Sites shown worse than the rest of the fleet on some measure.
    pub worse: Vec<String>,
    pub methods: BTreeMap<&'static str, String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FleetJournal {
    pub path: String,
    pub site: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SiteRow {
    /// `fleet` for the pooled row.
    pub site: String,
    pub journals: usize,
    pub runs: u64,
    pub successes: u64,
    /// Blocks of time in which a journey ran.
    pub blocks: usize,
    pub availability: Estimate,
    /// Interactive journeys' steps, completed, and given up on.
    pub steps: u64,
    pub given_up: u64,
    pub p95_ms: Estimate,
    pub freezes: u64,
    /// Freeze episodes (any system) per day of monitoring.
    pub freezes_per_day: Estimate,
    pub forced_logouts: u64,
    pub session_hours: f64,
    pub logouts_per_session_hour: Estimate,
}

#[derive(Clone, Debug, Serialize)]
pub struct JourneyRow {
    pub site: String,
    pub target: String,
    pub journey: String,
    pub kind: String,
    pub runs: u64,
    pub successes: u64,
    pub availability: Estimate,
}

#[derive(Clone, Debug, Serialize)]
pub struct SiteComparison {
    pub site: String,
    /// In each measure "before" is the rest of the fleet, "after" the site:
    /// availability site − rest (points), p95 site − rest (ms), rates site / rest.
    pub availability: Measure,
    pub p95_ms: Measure,
    pub freeze_rate: Measure,
    pub logout_rate: Measure,
    /// Measures on which the site is shown worse.
    pub worse_on: Vec<&'static str>,
    /// Measures on which the site is shown better.
    pub better_on: Vec<&'static str>,
    /// A sentence for people.
    pub verdict: String,
}

/// (target, journey, kind).
type JourneyKey = (String, String, String);

/// One site's tallies on the fleet's grid of blocks.
struct SiteTallies {
    journals: usize,
    runs: Vec<u32>,
    successes: Vec<u32>,
    freezes: Vec<f32>,
    drops: Vec<f32>,
    session_hours: Vec<f64>,
    /// Latencies (ms), sorted within each block: block b is
    /// `latencies[offsets[b]..offsets[b + 1]]`.
    latencies: Vec<f32>,
    offsets: Vec<usize>,
    /// The same latencies, sorted as one.
    sorted: Vec<f32>,
    given_up: u64,
    journeys: BTreeMap<JourneyKey, BTreeMap<usize, (u64, u64)>>,
}

/// The grid every site shares: blocks of `length` from `from`, the last
/// one possibly partial.
#[derive(Clone, Copy, Debug)]
struct Grid {
    from: f64,
    to: f64,
    length: f64,
    count: usize,
}

impl Grid {
    fn new(from: f64, to: f64, length: f64) -> Grid {
        let count = (((to - from) / length).ceil() as usize).max(1);
        Grid {
            from,
            to,
            length,
            count,
        }
    }

    fn index(&self, t: f64) -> Option<usize> {
        if !(t >= self.from && t <= self.to + 1e-3) {
            return None;
        }
        Some((((t - self.from) / self.length).floor() as usize).min(self.count - 1))
    }

    fn hours(&self, b: usize) -> f64 {
        let start = self.from + b as f64 * self.length;
        ((self.to + 1e-3).min(start + self.length) - start).max(0.0) / 3600.0
    }

    fn split(&self, t0: f64, t1: f64, mut each: impl FnMut(usize, f64)) {
        let (t0, t1) = (t0.max(self.from), t1.min(self.to + 1e-3));
        if t1 <= t0 {
            return;
        }
        let (Some(first), Some(last)) = (self.index(t0), self.index(t1)) else {
            return;
        };
        for b in first..=last {
            let start = self.from + b as f64 * self.length;
            let end = if b == self.count - 1 {
                f64::INFINITY
            } else {
                start + self.length
            };
            let part = t1.min(end) - t0.max(start);
            if part > 0.0 {
                each(b, part);
            }
        }
    }
}

/// What pass one learns of a journal: its site, span, longest freeze and
/// the journeys' typical interval.
fn survey(path: &Path, window: Window) -> Result<(JournalEntry, f64, f64), FleetError> {
    let name = path.display().to_string();
    let wrap = |source| FleetError::Journal {
        path: name.clone(),
        source,
    };
    let reader = JournalReader::open(path).map_err(wrap)?;
    let mut site = reader.meta("site").map_err(wrap)?;
    let mut longest: f64 = 0.0;
    for f in reader.freezes(window).map_err(wrap)? {
        longest = longest.max(f.length);
        if site.is_none() {
            site = Some(f.site);
        }
    }
    // The journeys' typical interval, from the window's first runs (a
    // timetable's interval does not drift).
    let mut starts: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for (target, journey, at) in reader
        .interactive_starts(window, INTERVAL_SAMPLE)
        .map_err(wrap)?
    {
        starts.entry((target, journey)).or_default().push(at);
    }
    let interval = starts
        .into_values()
        .filter_map(|v| {
            let mut gaps: Vec<f64> = v.windows(2).map(|w| w[1] - w[0]).collect();
            gaps.sort_by(f64::total_cmp);
            gaps.get(gaps.len() / 2).copied()
        })
        .fold(0.0, f64::max);
    let site = match site {
        Some(s) if !s.is_empty() => s,
        _ => {
            // No meta: the runs' own site column.
            let runs = reader
                .runs(Window {
                    from: f64::MIN,
                    to: f64::MAX,
                })
                .map_err(wrap)?;
            runs.first()
                .map(|r| r.site.clone())
                .ok_or(FleetError::NoSite { path: name.clone() })?
        }
    };
    let span = reader.span().map_err(wrap)?;
    Ok((
        JournalEntry {
            path: name,
            site,
            span,
        },
        longest,
        interval,
    ))
}

fn tally(entries: &[JournalEntry], grid: Grid) -> Result<SiteTallies, FleetError> {
    let n = grid.count;
    let mut t = SiteTallies {
        journals: entries.len(),
        runs: vec![0; n],
        successes: vec![0; n],
        freezes: vec![0.0; n],
        drops: vec![0.0; n],
        session_hours: vec![0.0; n],
        latencies: Vec::new(),
        offsets: Vec::new(),
        sorted: Vec::new(),
        given_up: 0,
        journeys: BTreeMap::new(),
    };
    let query = Window {
        from: grid.from,
        to: grid.to + 1e-3,
    };
    let mut samples: Vec<(u32, f32)> = Vec::new();
    for e in entries {
        let wrap = |source| FleetError::Journal {
            path: e.path.clone(),
            source,
        };
        let reader = JournalReader::open(Path::new(&e.path)).map_err(wrap)?;
        // Runs of one journey come in long stretches: look its cell up
        // only when the journey changes.
        let mut keys: Vec<JourneyKey> = t.journeys.keys().cloned().collect();
        let mut cells: Vec<BTreeMap<usize, (u64, u64)>> =
            std::mem::take(&mut t.journeys).into_values().collect();
        let mut last: Option<usize> = None;
        reader
            .each_run(query, |target, journey, kind, at, ok| {
                let Some(b) = grid.index(at) else { return };
                t.runs[b] += 1;
                t.successes[b] += u32::from(ok);
                let same =
                    |k: &(String, String, String)| k.0 == target && k.1 == journey && k.2 == kind;
                let i = match last {
                    Some(i) if same(&keys[i]) => i,
                    _ => match keys.iter().position(same) {
                        Some(i) => i,
                        None => {
                            keys.push((target.to_string(), journey.to_string(), kind.to_string()));
                            cells.push(BTreeMap::new());
                            keys.len() - 1
                        }
                    },
                };
                last = Some(i);
                let cell = cells[i].entry(b).or_default();
                cell.0 += u64::from(ok);
                cell.1 += 1;
            })
            .map_err(wrap)?;
        t.journeys = keys.into_iter().zip(cells).collect();
        for f in reader.freezes(query).map_err(wrap)? {
            if let Some(b) = grid.index(f.started) {
                t.freezes[b] += 1.0;
            }
        }
        reader
            .each_span(query, |login, from, to, bracket| {
                grid.split(login + from, login + to, |b, seconds| {
                    t.session_hours[b] += seconds / 3600.0;
                });
                if let Some((alive, seen)) = bracket {
                    if let Some(b) = grid.index(login + (alive + seen) / 2.0) {
                        t.drops[b] += 1.0;
                    }
                }
            })
            .map_err(wrap)?;
        reader
            .each_interactive_step(query, |at, seconds, censored| {
                let Some(b) = grid.index(at) else { return };
                if censored {
                    t.given_up += 1;
                } else {
                    samples.push((b as u32, (seconds * 1000.0) as f32));
                }
            })
            .map_err(wrap)?;
    }
    samples.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    t.offsets = Vec::with_capacity(n + 1);
    let mut i = 0;
    for b in 0..n {
        t.offsets.push(i);
        while i < samples.len() && samples[i].0 as usize == b {
            i += 1;
        }
    }
    t.offsets.push(samples.len());
    t.latencies = samples.iter().map(|s| s.1).collect();
    drop(samples);
    t.sorted = t.latencies.clone();
    t.sorted.sort_unstable_by(f32::total_cmp);
    Ok(t)
}

impl SiteTallies {
    fn block(&self, b: usize) -> &[f32] {
        &self.latencies[self.offsets[b]..self.offsets[b + 1]]
    }
}

/// Reads the journals and builds the fleet report.
pub fn build(paths: &[PathBuf], options: &FleetOptions) -> Result<FleetReport, FleetError> {
    let requested = Window {
        from: options.from.map_or(f64::MIN, unix_secs),
        to: options.to.map_or(f64::MAX, unix_secs),
    };
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, paths.len().max(1));
    let surveyed = parallel(paths, workers, |p| survey(p, requested))?;
    let mut longest: f64 = 0.0;
    let mut interval: f64 = 0.0;
    let mut entries = Vec::new();
    for (entry, l, i) in surveyed {
        longest = longest.max(l);
        interval = interval.max(i);
        entries.push(entry);
    }
    let sites = group(entries)?;
    let spans: Vec<(f64, f64)> = sites.values().flatten().filter_map(|e| e.span).collect();
    let now = unix_secs(options.now);
    let data_from = spans.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let data_to = spans.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
    let (data_from, data_to) = if spans.is_empty() {
        (now, now)
    } else {
        (data_from, data_to)
    };
    let from = requested.from.max(data_from);
    let to = requested.to.min(data_to).max(from);
    // As the single-site report's [`compare::block_length`] gives for a
    // window cut at its own start.
    let length = evidence::block_length(longest, interval);
    let grid = Grid::new(from, to, length);
    let groups: Vec<(String, Vec<JournalEntry>)> = sites.into_iter().collect();
    let tallies = parallel(&groups, workers, |(_, list)| tally(list, grid))?;
    let names: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
    Ok(assemble(&names, &groups, &tallies, grid, options))
}

/// Runs `f` over `items` on `workers` threads, keeping their order.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> Result<R, FleetError> + Sync,
) -> Result<Vec<R>, FleetError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<R, FleetError>>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(item) = items.get(i) else { return };
                let r = f(item);
                if let Ok(mut slot) = results[i].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner().ok().flatten().unwrap_or_else(|| {
                Err(FleetError::Read(ReadError::Query(
                    rusqlite::Error::InvalidQuery,
                )))
            })
        })
        .collect()
}

/// Per-block aggregates over a set of sites.
struct Pool {
    runs: Vec<(u64, u64)>,
    freezes: Vec<(f64, f64)>,
    drops: Vec<(f64, f64)>,
    blocks: usize,
    runs_total: u64,
    successes: u64,
    freezes_total: u64,
    drops_total: u64,
    session_hours: f64,
    steps: u64,
    given_up: u64,
}

fn pool(tallies: &[&SiteTallies], grid: Grid) -> Pool {
    let mut p = Pool {
        runs: Vec::new(),
        freezes: Vec::new(),
        drops: Vec::new(),
        blocks: 0,
        runs_total: 0,
        successes: 0,
        freezes_total: 0,
        drops_total: 0,
        session_hours: 0.0,
        steps: tallies.iter().map(|t| t.sorted.len() as u64).sum(),
        given_up: tallies.iter().map(|t| t.given_up).sum(),
    };
    for b in 0..grid.count {
        let (mut s, mut n, mut f, mut h, mut d, mut sh) = (0u64, 0u64, 0.0, 0.0, 0.0, 0.0);
        for t in tallies {
            // Freezes and forced logouts count everywhere; a block's
            // exposure only where a journey ran in it.
            p.freezes_total += t.freezes[b] as u64;
            p.drops_total += t.drops[b] as u64;
            p.session_hours += t.session_hours[b];
            if t.runs[b] == 0 {
                continue;
            }
            s += u64::from(t.successes[b]);
            n += u64::from(t.runs[b]);
            f += f64::from(t.freezes[b]);
            h += grid.hours(b);
            d += f64::from(t.drops[b]);
            sh += t.session_hours[b];
        }
        p.runs_total += n;
        p.successes += s;
        if n > 0 {
            p.blocks += 1;
            p.runs.push((s, n));
            p.freezes.push((f, h));
            p.drops.push((d, sh));
        }
    }
    p
}

fn latency(tallies: &[&SiteTallies], grid: Grid, alpha: f64) -> Estimate {
    let wholes: Vec<&[f32]> = tallies.iter().map(|t| t.sorted.as_slice()).collect();
    let clusters: Vec<Vec<&[f32]>> = (0..grid.count)
        .map(|b| tallies.iter().map(|t| t.block(b)).collect())
        .collect();
    evidence::sorted_quantile(&wholes, &clusters, 0.95, alpha)
}

fn row(site: &str, journals: usize, p: &Pool, p95: Estimate) -> SiteRow {
    SiteRow {
        site: site.to_string(),
        journals,
        runs: p.runs_total,
        successes: p.successes,
        blocks: p.blocks,
        availability: evidence::proportion(&p.runs),
        steps: p.steps,
        given_up: p.given_up,
        p95_ms: p95,
        freezes: p.freezes_total,
        freezes_per_day: evidence::rate(&p.freezes).scaled(24.0),
        forced_logouts: p.drops_total,
        session_hours: p.session_hours,
        logouts_per_session_hour: evidence::rate(&p.drops),
    }
}

fn ratio(rest: &[(f64, f64)], site: &[(f64, f64)], alpha: f64) -> Estimate {
    let sum = |s: &[(f64, f64)]| {
        (
            s.iter().map(|b| b.0).sum::<f64>(),
            s.iter().map(|b| b.1).sum::<f64>(),
        )
    };
    let phi = evidence::dispersion(&[rest, site]);
    let mut e = evidence::ratio_of_counts(sum(rest), sum(site), phi, alpha);
    e.method = ADJUSTED;
    e
}

fn assemble(
    names: &[String],
    groups: &[(String, Vec<JournalEntry>)],
    tallies: &[SiteTallies],
    grid: Grid,
    options: &FleetOptions,
) -> FleetReport {
    let all: Vec<&SiteTallies> = tallies.iter().collect();
    let comparisons_made = (names.len() * MEASURES).max(1);
    let alpha = 0.05 / comparisons_made as f64;
    let side_seconds = grid.to - grid.from;
    let mut sites = Vec::new();
    let mut journeys = Vec::new();
    let mut comparisons = Vec::new();
    let pooled_all = pool(&all, grid);
    for (i, name) in names.iter().enumerate() {
        let own = [&tallies[i]];
        let p = pool(&own, grid);
        sites.push(row(
            name,
            tallies[i].journals,
            &p,
            latency(&own, grid, 0.05),
        ));
        for ((target, journey, kind), blocks) in &tallies[i].journeys {
            let cells: Vec<(u64, u64)> = blocks.values().copied().collect();
            journeys.push(JourneyRow {
                site: name.clone(),
                target: target.clone(),
                journey: journey.clone(),
                kind: kind.clone(),
                runs: cells.iter().map(|c| c.1).sum(),
                successes: cells.iter().map(|c| c.0).sum(),
                availability: evidence::proportion(&cells),
            });
        }
        if names.len() < 2 {
            continue;
        }
        let rest: Vec<&SiteTallies> = all
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, t)| *t)
            .collect();
        let r = pool(&rest, grid);
        let blocks = (r.blocks, p.blocks);
        let share = |blocks: &[(u64, u64)]| evidence::proportion_at(blocks, alpha);
        let mut share_change = compare::share_difference(&share(&r.runs), &share(&p.runs));
        share_change.method = ADJUSTED;
        let availability = Measure {
            before: evidence::proportion(&r.runs),
            after: evidence::proportion(&p.runs),
            judgement: evidence::judge(
                &share_change,
                0.0,
                blocks,
                grid.length,
                side_seconds,
                false,
            ),
            change: share_change,
        };
        let p95_change = evidence::mover_difference(
            &latency(&rest, grid, alpha),
            &latency(&own, grid, alpha),
            ADJUSTED,
        );
        let p95_ms = Measure {
            before: latency(&rest, grid, 0.05),
            after: latency(&own, grid, 0.05),
            judgement: evidence::judge(&p95_change, 0.0, blocks, grid.length, side_seconds, false),
            change: p95_change,
        };
        let rates = |rest_blocks: &[(f64, f64)], site_blocks: &[(f64, f64)], per: f64| {
            let change = ratio(rest_blocks, site_blocks, alpha);
            Measure {
                before: evidence::rate(rest_blocks).scaled(per),
                after: evidence::rate(site_blocks).scaled(per),
                judgement: evidence::judge(&change, 1.0, blocks, grid.length, side_seconds, true),
                change,
            }
        };
        let freeze_rate = rates(&r.freezes, &p.freezes, 24.0);
        let logout_rate = rates(&r.drops, &p.drops, 1.0);
        let mut worse_on = Vec::new();
        let mut better_on = Vec::new();
        for (label, m, worse_is) in [
            ("availability", &availability, Direction::Lower),
            ("p95 latency", &p95_ms, Direction::Higher),
            ("freezes", &freeze_rate, Direction::Higher),
            ("forced logouts", &logout_rate, Direction::Higher),
        ] {
            match m.judgement.direction {
                Some(d) if d == worse_is => worse_on.push(label),
                Some(_) => better_on.push(label),
                None => {}
            }
        }
        let enough = availability.judgement.enough_blocks;
        let verdict = if !worse_on.is_empty() {
            format!(
                "{name} is worse than the rest of the fleet on {}.",
                worse_on.join(", ")
            )
        } else if !enough {
            format!(
                "Not enough evidence yet to say whether {name} is worse: fewer than {} blocks of time measured on a side.",
                evidence::MIN_BLOCKS
            )
        } else if !better_on.is_empty() {
            format!(
                "{name} is not shown worse than the rest of the fleet; it is better on {}.",
                better_on.join(", ")
            )
        } else {
            format!("{name} is not shown to differ from the rest of the fleet on any measure.")
        };
        comparisons.push(SiteComparison {
            site: name.clone(),
            availability,
            p95_ms,
            freeze_rate,
            logout_rate,
            worse_on,
            better_on,
            verdict,
        });
    }
    let pooled = row(
        "fleet",
        groups.iter().map(|g| g.1.len()).sum(),
        &pooled_all,
        latency(&all, grid, 0.05),
    );
    let worse: Vec<String> = comparisons
        .iter()
        .filter(|c| !c.worse_on.is_empty())
        .map(|c| c.site.clone())
        .collect();
    let mut methods = BTreeMap::new();
    methods.insert(
        "blocks of time",
        format!(
            "one grid of {} blocks shared by every site; in pooled figures a block is one cluster across all sites (a central freeze stalls every office at once)",
            crate::timefmt::human_duration(grid.length)
        ),
    );
    methods.insert("availability", evidence::CLUSTERED_WILSON.into());
    methods.insert(
        "interactive p95",
        format!(
            "exact, from every completed step of the interactive journeys (steps given up on counted apart); interval: {}",
            evidence::CLUSTERED_QUANTILE
        ),
    );
    methods.insert(
        "freeze and logout rates",
        evidence::OVERDISPERSED_RATE.into(),
    );
    methods.insert(
        "site against the rest of the fleet",
        format!(
            "availability: {}; p95: {}; rates: {}; {}; a site is called worse only when the interval excludes no difference and each side has at least {} blocks",
            compare::SHARE_DIFFERENCE,
            evidence::CLUSTERED_QUANTILE_DIFFERENCE,
            evidence::RATE_RATIO,
            ADJUSTED,
            evidence::MIN_BLOCKS
        ),
    );
    let has_data = pooled.runs > 0;
    let mut report = FleetReport {
        schema_version: SCHEMA_VERSION,
        generated_at: rfc3339(unix_secs(options.now)),
        journals: groups
            .iter()
            .flat_map(|(site, list)| {
                list.iter().map(move |e| FleetJournal {
                    path: e.path.clone(),
                    site: site.clone(),
                })
            })
            .collect(),
        window: TimeWindow {
            from: grid.from,
            to: grid.to,
            from_text: rfc3339(grid.from),
            to_text: rfc3339(grid.to),
            hours: (grid.to - grid.from) / 3600.0,
            has_data,
        },
        block_seconds: grid.length,
        min_blocks: evidence::MIN_BLOCKS,
        comparison_level: 1.0 - alpha,
        summary: Vec::new(),
        sites,
        journeys,
        pooled,
        comparisons,
        worse,
        methods,
    };
    report.summary = summary(&report);
    report
}

fn summary(r: &FleetReport) -> Vec<String> {
    use super::model::{show, show_percent};
    use crate::timefmt::human_duration;
    let mut out = Vec::new();
    let names: BTreeSet<&str> = r.sites.iter().map(|s| s.site.as_str()).collect();
    if !r.window.has_data {
        out.push(
            "The journals hold no runs in this period: there is nothing to report yet.".into(),
        );
        return out;
    }
    out.push(format!(
        "This report covers {} sites ({}) over {} of monitoring, from {} to {}.",
        names.len(),
        names.iter().copied().collect::<Vec<_>>().join(", "),
        human_duration(r.window.hours * 3600.0),
        r.window.from_text,
        r.window.to_text
    ));
    let p = &r.pooled;
    out.push(format!(
        "Across the fleet the synthetic social worker's tasks succeeded in {} of {} runs: availability {}.",
        p.successes,
        p.runs,
        show_percent(&p.availability)
    ));
    out.push(format!(
        "Interactive steps' p95 across the fleet: {}; freeze episodes per site-day: {}; forced logouts per session-hour: {}.",
        show(&p.p95_ms, 0, " ms"),
        show(&p.freezes_per_day, 2, ""),
        show(&p.logouts_per_session_hour, 4, "")
    ));
    if r.comparisons.is_empty() {
        return out;
    }
    for c in r.comparisons.iter().filter(|c| !c.worse_on.is_empty()) {
        out.push(c.verdict.clone());
    }
    let short: Vec<&str> = r
        .comparisons
        .iter()
        .filter(|c| c.worse_on.is_empty() && !c.availability.judgement.enough_blocks)
        .map(|c| c.site.as_str())
        .collect();
    if r.worse.is_empty() && short.is_empty() {
        out.push("No office is shown to be worse than the rest of the fleet on availability, p95 latency, freezes or forced logouts.".into());
    } else if r.worse.is_empty() {
        out.push(format!(
            "No office is shown to be worse than the rest of the fleet; for {} there is not enough evidence yet.",
            short.join(", ")
        ));
    }
    out
}

/// Renders the fleet report.
pub fn render(r: &FleetReport, format: super::Format) -> String {
    match format {
        super::Format::Md => markdown(r),
        super::Format::Html => html(r),
        super::Format::Json => {
            let mut text = serde_json::to_string_pretty(r)
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
            text.push('\n');
            text
        }
    }
}

fn ratio_text(e: &Estimate) -> String {
    match (e.value, e.low, e.high) {
        (Some(v), Some(l), Some(h)) => format!("x{v:.2} ({l:.2} to {h:.2})"),
        (Some(v), Some(l), None) => format!("x{v:.2} ({l:.2} and up)"),
        (None, Some(l), None) => format!("at least x{l:.2} (none in the rest)"),
        _ => "no data".into(),
    }
}

/// "v (l to h)" without a level: the comparisons' intervals are at the
/// adjusted level the section states.
fn plain(e: &Estimate, digits: usize, unit: &str) -> String {
    match (e.value, e.low, e.high) {
        (Some(v), Some(l), Some(h)) => format!("{v:.digits$}{unit} ({l:.digits$} to {h:.digits$})"),
        (Some(v), _, _) => format!("{v:.digits$}{unit}"),
        _ => "no data".into(),
    }
}

fn points(e: &Estimate) -> String {
    plain(&e.clone().scaled(100.0), 2, " pts")
}

fn judgement_text(m: &Measure) -> &'static str {
    let j = &m.judgement;
    match j.direction {
        Some(Direction::Higher) => "higher",
        Some(Direction::Lower) => "lower",
        None if !j.enough_blocks => "not enough evidence",
        None => "no difference shown",
    }
}

fn markdown(r: &FleetReport) -> String {
    use super::model::{show, show_percent};
    use std::fmt::Write as _;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# casewatch fleet evidence report\n");
    let _ = writeln!(
        w,
        "{} journals, {} sites, {} to {}, generated {}.\n",
        r.journals.len(),
        r.sites.len(),
        r.window.from_text,
        r.window.to_text,
        r.generated_at
    );
    let _ = writeln!(w, "## Summary\n");
    for line in &r.summary {
        let _ = writeln!(w, "- {line}");
    }
    let _ = writeln!(w, "\n## Sites\n");
    let _ = writeln!(
        w,
        "| site | journals | runs | availability (95% CI) | interactive p95 (95% CI) | given up | freezes | freezes per day (95% CI) | forced logouts | per session-hour (95% CI) |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for s in r.sites.iter().chain(std::iter::once(&r.pooled)) {
        let name = if s.site == "fleet" && std::ptr::eq(s, &r.pooled) {
            "**fleet (pooled)**".to_string()
        } else {
            s.site.clone()
        };
        let _ = writeln!(
            w,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.journals,
            s.runs,
            show_percent(&s.availability),
            show(&s.p95_ms, 0, " ms"),
            s.given_up,
            s.freezes,
            show(&s.freezes_per_day, 2, ""),
            s.forced_logouts,
            show(&s.logouts_per_session_hour, 4, "")
        );
    }
    let _ = writeln!(w, "\n## Journeys by site\n");
    let _ = writeln!(
        w,
        "| site | target | journey | kind | runs | availability (95% CI) |\n|---|---|---|---|---|---|"
    );
    for j in &r.journeys {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} |",
            j.site,
            j.target,
            j.journey,
            j.kind,
            j.runs,
            show_percent(&j.availability)
        );
    }
    if !r.comparisons.is_empty() {
        let _ = writeln!(w, "\n## Is one office worse?\n");
        let _ = writeln!(
            w,
            "Each site against the rest of the fleet pooled. Intervals of the differences and ratios are at the {:.3}% level (95% adjusted for {} comparisons at once); a site is called worse only when the interval excludes no difference and each side has at least {} blocks of {}.\n",
            r.comparison_level * 100.0,
            r.sites.len() * MEASURES,
            r.min_blocks,
            crate::timefmt::human_duration(r.block_seconds)
        );
        let _ = writeln!(
            w,
            "| site | availability, site − rest | p95, site − rest | freezes, site / rest | forced logouts, site / rest | verdict |\n|---|---|---|---|---|---|"
        );
        for c in &r.comparisons {
            let _ = writeln!(
                w,
                "| {} | {} ({}) | {} ({}) | {} ({}) | {} ({}) | {} |",
                c.site,
                points(&c.availability.change),
                judgement_text(&c.availability),
                plain(&c.p95_ms.change, 0, " ms"),
                judgement_text(&c.p95_ms),
                ratio_text(&c.freeze_rate.change),
                judgement_text(&c.freeze_rate),
                ratio_text(&c.logout_rate.change),
                judgement_text(&c.logout_rate),
                c.verdict
            );
        }
    }
    let _ = writeln!(w, "\n## Journals\n");
    for j in &r.journals {
        let _ = writeln!(w, "- `{}`: {}", j.path, j.site);
    }
    let _ = writeln!(w, "\n## Methods\n");
    for (k, v) in &r.methods {
        let _ = writeln!(w, "- **{k}**: {v}");
    }
    out
}

fn html(r: &FleetReport) -> String {
    use super::html::{est, pct, STYLE};
    use maud::{html, PreEscaped, DOCTYPE};
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "casewatch fleet evidence report" }
                style { (PreEscaped(STYLE)) }
            }
            body { main {
                h1 { "casewatch fleet evidence report" }
                p.meta { (format!("{} journals, {} sites, {} to {}, generated {}.", r.journals.len(), r.sites.len(), r.window.from_text, r.window.to_text, r.generated_at)) }
                ul.summary { @for line in &r.summary { li { (line) } } }
                h2 { "Sites" }
                table {
                    tr { th { "site" } th { "journals" } th { "runs" } th { "availability" } th { "interactive p95" } th { "given up" } th { "freezes" } th { "freezes per day" } th { "forced logouts" } th { "per session-hour" } }
                    @for (s, pooled) in r.sites.iter().map(|s| (s, false)).chain(std::iter::once((&r.pooled, true))) {
                        tr {
                            td { @if pooled { strong { "fleet (pooled)" } } @else { (s.site) } }
                            td.num { (s.journals) }
                            td.num { (s.runs) }
                            td.num { (pct(&s.availability)) }
                            td.num { (est(&s.p95_ms, 0, " ms")) }
                            td.num { (s.given_up) }
                            td.num { (s.freezes) }
                            td.num { (est(&s.freezes_per_day, 2, "")) }
                            td.num { (s.forced_logouts) }
                            td.num { (est(&s.logouts_per_session_hour, 4, "")) }
                        }
                    }
                }
                p.note { "Figures with their 95% intervals. In pooled figures a block of time is one cluster across all sites." }
                h2 { "Journeys by site" }
                table {
                    tr { th { "site" } th { "target" } th { "journey" } th { "kind" } th { "runs" } th { "availability" } }
                    @for j in &r.journeys {
                        tr { td { (j.site) } td { (j.target) } td { (j.journey) } td { (j.kind) } td.num { (j.runs) } td.num { (pct(&j.availability)) } }
                    }
                }
                @if !r.comparisons.is_empty() {
                    h2 { "Is one office worse?" }
                    p { (format!("Each site against the rest of the fleet pooled. Intervals of the differences and ratios are at the {:.3}% level (95% adjusted for {} comparisons at once); a site is called worse only when the interval excludes no difference and each side has at least {} blocks.", r.comparison_level * 100.0, r.sites.len() * MEASURES, r.min_blocks)) }
                    table {
                        tr { th { "site" } th { "availability, site − rest" } th { "p95, site − rest" } th { "freezes, site / rest" } th { "forced logouts, site / rest" } th { "verdict" } }
                        @for c in &r.comparisons {
                            tr {
                                td { (c.site) }
                                td { (points(&c.availability.change)) br; span.ci { (judgement_text(&c.availability)) } }
                                td { (plain(&c.p95_ms.change, 0, " ms")) br; span.ci { (judgement_text(&c.p95_ms)) } }
                                td { (ratio_text(&c.freeze_rate.change)) br; span.ci { (judgement_text(&c.freeze_rate)) } }
                                td { (ratio_text(&c.logout_rate.change)) br; span.ci { (judgement_text(&c.logout_rate)) } }
                                td { @if c.worse_on.is_empty() { (c.verdict) } @else { strong { (c.verdict) } } }
                            }
                        }
                    }
                }
                h2 { "Journals" }
                ul { @for j in &r.journals { li { code { (j.path) } ": " (j.site) } } }
                h2 { "Methods" }
                ul { @for (k, v) in &r.methods { li { strong { (k) } ": " (v) } } }
            } }
        }
    };
    markup.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, site: &str, span: Option<(f64, f64)>) -> JournalEntry {
        JournalEntry {
            path: path.into(),
            site: site.into(),
            span,
        }
    }

    #[test]
    fn journals_of_one_site_merge_when_their_times_do_not_overlap() {
        let sites = group(vec![
            entry("b2.db", "b", Some((200.0, 300.0))),
            entry("a.db", "a", Some((0.0, 100.0))),
            entry("b1.db", "b", Some((0.0, 200.0))),
            entry("empty.db", "c", None),
        ])
        .unwrap();
        assert_eq!(sites.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        let b: Vec<&str> = sites["b"].iter().map(|e| e.path.as_str()).collect();
        assert_eq!(b, ["b1.db", "b2.db"]);
    }

    #[test]
    fn overlapping_journals_of_one_site_are_refused_with_both_names() {
        let err = group(vec![
            entry("x/one.db", "north", Some((0.0, 7200.0))),
            entry("y/two.db", "north", Some((3600.0, 9000.0))),
            entry("z.db", "south", Some((0.0, 9000.0))),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "journals x/one.db and y/two.db both hold site north over overlapping times (1970-01-01T01:00:00Z to 1970-01-01T02:00:00Z); give one of them, or merge them first"
        );
        let twice = group(vec![
            entry("same.db", "north", None),
            entry("same.db", "north", None),
        ])
        .unwrap_err();
        assert!(twice
            .to_string()
            .starts_with("journals same.db and same.db both hold site north"));
    }

    #[test]
    fn a_folder_gives_its_db_files_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.db", "a.db", "a.db-wal", "notes.txt"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.db")).unwrap();
        let found = expand(&[dir.path().to_path_buf()]).unwrap();
        let names: Vec<String> = found
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.db", "b.db"]);
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            expand(&[empty.path().to_path_buf()]),
            Err(FleetError::EmptyFolder { .. })
        ));
    }

    #[test]
    fn the_grid_puts_the_last_moment_in_the_last_block_and_splits_exposure() {
        let g = Grid::new(0.0, 1500.0, 600.0);
        assert_eq!(g.count, 3);
        assert_eq!(g.index(0.0), Some(0));
        assert_eq!(g.index(1500.0), Some(2));
        assert_eq!(g.index(-1.0), None);
        assert!((g.hours(2) - 300.0 / 3600.0).abs() < 1e-6);
        let mut parts = Vec::new();
        g.split(500.0, 1300.0, |b, s| parts.push((b, s)));
        assert_eq!(parts, [(0, 100.0), (1, 600.0), (2, 100.0)]);
    }
}
