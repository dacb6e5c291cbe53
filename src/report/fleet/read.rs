//! Reading a fleet's journals: found in folders, grouped by site (journals
//! of one site merged when their times do not overlap), and each site read
//! into one ledger that keeps only what the fleet report shows (runs,
//! interactive latency, freezes, sessions), on as many threads as there
//! are cores.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{FleetError, FleetOptions, FleetReport};
use crate::journal::read::{JournalReader, ReadError};
use crate::ledger::build::{self, JournalMeta, Keep, SlotWindow};
use crate::ledger::{Ledger, SlotClock};
use crate::outcome::unix_secs;
use crate::timefmt::rfc3339;

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

/// What the first pass learns of a journal: its site, span, calendar and
/// whether it holds compacted hours.
struct Surveyed {
    entry: JournalEntry,
    scale: f64,
    rollups: Option<(f64, f64)>,
}

fn survey(path: &Path) -> Result<Surveyed, FleetError> {
    let name = path.display().to_string();
    let wrap = |source| FleetError::Journal {
        path: name.clone(),
        source,
    };
    let reader = JournalReader::open(path).map_err(wrap)?;
    let meta = JournalMeta::read(&reader).map_err(wrap)?;
    let site = match meta.site {
        Some(s) => s,
        // No meta: the runs' own site column.
        None => reader
            .first_site()
            .map_err(wrap)?
            .ok_or(FleetError::NoSite { path: name.clone() })?,
    };
    let rollups = reader.rollup_span().map_err(wrap)?;
    Ok(Surveyed {
        entry: JournalEntry {
            path: name,
            site,
            span: meta.span,
        },
        scale: meta.calendar_scale,
        rollups,
    })
}

/// One site's ledger, from its journals.
pub struct Site {
    pub name: String,
    pub journals: usize,
    pub ledger: Ledger,
}

fn read_site(name: &str, entries: &[JournalEntry], window: SlotWindow) -> Result<Site, FleetError> {
    let mut ledger: Option<Ledger> = None;
    for e in entries {
        let wrap = |source| FleetError::Journal {
            path: e.path.clone(),
            source,
        };
        let reader = JournalReader::open(Path::new(&e.path)).map_err(wrap)?;
        let meta = JournalMeta::read(&reader).map_err(wrap)?;
        let part = build::ledger(&reader, &meta, window, Keep::InteractiveOnly, |_| {}).map_err(
            |source| FleetError::Build {
                path: e.path.clone(),
                source,
            },
        )?;
        // A site's second journal (an agent moved to a new file) is merged in.
        match ledger.as_mut() {
            None => ledger = Some(part),
            Some(whole) => whole.absorb(&part),
        }
    }
    let mut ledger = ledger.unwrap_or_else(|| {
        Ledger::new(
            window.clock,
            Some((window.first, window.last)),
            &Default::default(),
        )
    });
    ledger.sort_events();
    ledger.shrink();
    Ok(Site {
        name: name.to_string(),
        journals: entries.len(),
        ledger,
    })
}

/// Reads the journals and builds the fleet report.
pub fn build(paths: &[PathBuf], options: &FleetOptions) -> Result<FleetReport, FleetError> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, paths.len().max(1));
    let surveyed = parallel(paths, workers, |p| survey(p))?;
    let scale = surveyed.first().map_or(1.0, |s| s.scale);
    if let Some(other) = surveyed.iter().find(|s| (s.scale - scale).abs() > 1e-9) {
        return Err(FleetError::Calendars {
            first: surveyed[0].entry.path.clone(),
            second: other.entry.path.clone(),
            first_scale: scale,
            second_scale: other.scale,
        });
    }
    let rollups = surveyed
        .iter()
        .filter_map(|s| s.rollups)
        .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
    let sites = group(surveyed.into_iter().map(|s| s.entry).collect())?;
    let spans: Vec<(f64, f64)> = sites.values().flatten().filter_map(|e| e.span).collect();
    let now = unix_secs(options.now);
    let (data_from, data_to) = if spans.is_empty() {
        (now, now)
    } else {
        (
            spans.iter().map(|s| s.0).fold(f64::INFINITY, f64::min),
            spans.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max),
        )
    };
    let from = options
        .from
        .map(unix_secs)
        .map_or(data_from, |r| r.max(data_from));
    let to = options
        .to
        .map(unix_secs)
        .map_or(data_to, |r| r.min(data_to))
        .max(from);
    let hourly = rollups.is_some_and(|(f, t)| f < to && t >= from);
    let window = SlotWindow::new(SlotClock::for_window(to - from, scale, hourly), from, to);
    let groups: Vec<(String, Vec<JournalEntry>)> = sites.into_iter().collect();
    let read = parallel(&groups, workers, |(name, list)| {
        read_site(name, list, window)
    })?;
    let journals = groups
        .iter()
        .flat_map(|(site, list)| {
            list.iter().map(move |e| super::FleetJournal {
                path: e.path.clone(),
                site: site.clone(),
            })
        })
        .collect();
    Ok(super::stats::assemble(journals, &read, window, options))
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
}
