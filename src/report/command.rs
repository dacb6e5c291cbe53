//! `casewatch report` and `casewatch export`: argument handling at the edge.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;

use super::export::{self, ExportFormat};
use super::model::{self, ReportOptions};
use super::progress::Progress;
use super::Format;
use crate::journal::read::{JournalReader, Window};
use crate::outcome::unix_secs;

pub struct ReportCommand {
    /// Journal files or folders of them; one journal gives the site's
    /// report, several the fleet report.
    pub journals: Vec<PathBuf>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub out: Option<PathBuf>,
    pub format: Option<Format>,
    pub rule_age: Option<Duration>,
    pub period: model::Period,
}

/// A time as RFC 3339 (`2026-06-01T08:00:00Z`, or without the zone, as
/// UTC), `now`, or a time ago (`7d`, `90m`).
pub fn parse_time(text: &str, now: SystemTime) -> anyhow::Result<SystemTime> {
    let text = text.trim();
    if text == "now" {
        return Ok(now);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(t);
    }
    if let Ok(ago) = humantime::parse_duration(text) {
        return now
            .checked_sub(ago)
            .with_context(|| format!("{text} ago is before the epoch"));
    }
    anyhow::bail!("cannot read time {text:?}: expected RFC 3339 (2026-06-01T08:00:00Z) or a time ago (7d, 12h)")
}

fn write_out(out: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(bytes)
                .context("cannot write to standard output")?;
            stdout.flush().context("cannot write to standard output")
        }
    }
}

pub fn report(cmd: ReportCommand) -> anyhow::Result<()> {
    let now = SystemTime::now();
    let from = cmd
        .from
        .as_deref()
        .map(|t| parse_time(t, now))
        .transpose()?;
    let to = cmd.to.as_deref().map(|t| parse_time(t, now)).transpose()?;
    let format = cmd
        .format
        .or_else(|| cmd.out.as_deref().and_then(Format::from_path))
        .unwrap_or(if cmd.out.is_some() {
            Format::Html
        } else {
            Format::Md
        });
    if format == Format::Pdf && cmd.out.is_none() {
        anyhow::bail!("--format pdf needs --out FILE.pdf (a PDF is not written to a terminal)");
    }
    let journals = super::fleet::expand(&cmd.journals)?;
    let text = match journals.as_slice() {
        [journal] => single(journal, &cmd, from, to, now, format)?,
        _ => {
            if cmd.rule_age.is_some() {
                anyhow::bail!("--rule-age applies to one journal's report, not to a fleet report");
            }
            let report =
                super::fleet::build(&journals, &super::fleet::FleetOptions { from, to, now })?;
            super::fleet::render(&report, format)
        }
    };
    if format == Format::Pdf {
        let pdf = super::pdf::print_blocking(&text)?;
        write_out(cmd.out.as_deref(), &pdf)?;
    } else {
        write_out(cmd.out.as_deref(), text.as_bytes())?;
    }
    if let Some(out) = &cmd.out {
        eprintln!("report written to {}", out.display());
    }
    Ok(())
}

fn single(
    journal: &Path,
    cmd: &ReportCommand,
    from: Option<SystemTime>,
    to: Option<SystemTime>,
    now: SystemTime,
    format: Format,
) -> anyhow::Result<String> {
    let reader = JournalReader::open(journal)?;
    let mut progress = Progress::new(reader.rows_estimate()?, "rows");
    let report = super::build::build(
        &reader,
        &ReportOptions {
            journal: journal.display().to_string(),
            from,
            to,
            rule_age: cmd.rule_age,
            period: cmd.period,
            now,
        },
        |rows| progress.set(rows),
    )?;
    progress.finish();
    Ok(super::render(&report, format))
}

pub fn export(
    journal: &Path,
    format: ExportFormat,
    from: Option<String>,
    to: Option<String>,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let now = SystemTime::now();
    let window = Window {
        from: from
            .as_deref()
            .map(|t| parse_time(t, now))
            .transpose()?
            .map_or(f64::MIN, unix_secs),
        to: to
            .as_deref()
            .map(|t| parse_time(t, now))
            .transpose()?
            .map_or(f64::MAX, unix_secs),
    };
    let reader = JournalReader::open(journal)?;
    let bytes = match format {
        ExportFormat::Openmetrics => export::openmetrics(&reader, window)?.into_bytes(),
        ExportFormat::Hlog => export::hlog(&reader, window)?,
    };
    write_out(out.as_deref(), &bytes)
}

/// `casewatch journal migrate` and `casewatch journal compact`.
pub fn journal(command: crate::cli::JournalCommand) -> anyhow::Result<()> {
    use crate::cli::JournalCommand;
    match command {
        JournalCommand::Migrate { journal } => {
            let name = journal.display().to_string();
            if !journal.is_file() {
                anyhow::bail!("{name} is not a file");
            }
            let mut conn = rusqlite::Connection::open_with_flags(
                &journal,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE,
            )
            .with_context(|| format!("cannot open journal {name}"))?;
            crate::journal::schema::configure(&conn)
                .with_context(|| format!("cannot open journal {name}"))?;
            let found = crate::journal::schema::migrate(&mut conn)
                .with_context(|| format!("cannot migrate journal {name}"))?;
            eprintln!(
                "journal {name}: schema version {found} -> {}",
                crate::journal::schema::VERSION
            );
            Ok(())
        }
        JournalCommand::Compact {
            journal,
            older_than,
        } => {
            let now = unix_secs(SystemTime::now());
            let before = now - older_than.as_secs_f64();
            let mut progress: Option<Progress> = None;
            let done =
                crate::ledger::rollup::compact(&journal, before, now, true, |done, total| {
                    progress
                        .get_or_insert_with(|| Progress::new(total, "hours"))
                        .set(done);
                })?;
            if let Some(p) = progress {
                p.finish();
            }
            let mib = |b: u64| b as f64 / 1_048_576.0;
            eprintln!(
                "journal {}: {} hours before {} folded into rollups ({} rows); {:.1} MiB -> {:.1} MiB",
                journal.display(),
                done.hours,
                crate::timefmt::rfc3339(before),
                done.rows,
                mib(done.bytes_before),
                mib(done.bytes_after)
            );
            Ok(())
        }
    }
}

/// `casewatch report --prometheus URL`: the same report from the central
/// store; one site gives the site's report, several the fleet report.
pub async fn report_central(
    cmd: ReportCommand,
    args: crate::cli::CentralArgs,
) -> anyhow::Result<()> {
    use super::central::client::{StoreAuth, StoreOptions};
    use crate::config::model::SecretSource;
    let now = SystemTime::now();
    let time = |t: &Option<String>| t.as_deref().map(|t| parse_time(t, now)).transpose();
    let (from, to) = (time(&cmd.from)?, time(&cmd.to)?);
    let format = cmd
        .format
        .or_else(|| cmd.out.as_deref().and_then(Format::from_path))
        .unwrap_or(if cmd.out.is_some() {
            Format::Html
        } else {
            Format::Md
        });
    let secret = |env: Option<String>, file: Option<PathBuf>| {
        env.map(SecretSource::Env).or(file.map(SecretSource::File))
    };
    let auth = match (
        &args.basic_auth_user,
        secret(args.bearer_token_env, args.bearer_token_file),
    ) {
        (Some(user), _) => Some(StoreAuth::Basic {
            username: user.clone(),
            password: secret(args.basic_auth_password_env, args.basic_auth_password_file).context(
                "--basic-auth-user needs --basic-auth-password-env or --basic-auth-password-file",
            )?,
        }),
        (None, Some(token)) => Some(StoreAuth::Bearer(token)),
        (None, None) => None,
    };
    let options = super::central::CentralOptions {
        store: StoreOptions {
            url: args.prometheus.context("--prometheus is required")?,
            auth,
            ca_file: args.ca_file,
            insecure_skip_verify: args.insecure_skip_verify,
            timeout: args.store_timeout,
        },
        interactive_only: args.site.len() != 1,
        sites: args.site,
        job: args.job,
        from,
        to,
        now,
    };
    let mut progress: Option<Progress> = None;
    let env = crate::config::secret::process_env();
    let central = super::central::read(&options, &env, |done, planned| {
        progress
            .get_or_insert_with(|| Progress::new(planned, "queries"))
            .set(done);
    })
    .await
    .with_context(|| {
        format!(
            "cannot read the central store {}",
            options.store.shown_url()
        )
    })?;
    if let Some(p) = progress {
        p.finish();
    }
    for gap in &central.gaps {
        eprintln!(
            "site {}: the store holds nothing from {} to {}: unmeasured",
            gap.site,
            crate::timefmt::rfc3339(gap.from),
            crate::timefmt::rfc3339(gap.to)
        );
    }
    let text = central_text(&central, &cmd, from, to, now, format)?;
    write_out(cmd.out.as_deref(), text.as_bytes())?;
    if let Some(out) = &cmd.out {
        eprintln!("report written to {}", out.display());
    }
    Ok(())
}

/// The report of what was read from the store, rendered.
pub fn central_text(
    central: &super::central::Central,
    cmd: &ReportCommand,
    from: Option<SystemTime>,
    to: Option<SystemTime>,
    now: SystemTime,
    format: Format,
) -> anyhow::Result<String> {
    let methods = super::central::methods(central);
    if let [(site, ledger, meta)] = central.sites.as_slice() {
        let mut report = super::build::from_ledger(
            ledger,
            &meta.journal_meta(site, ledger.measured),
            central.window,
            &ReportOptions {
                journal: format!("{} (site {site})", central.store),
                from,
                to,
                rule_age: cmd.rule_age,
                period: cmd.period,
                now,
            },
        );
        report.freezes.evidence_folder = String::new();
        report.methods.extend(methods);
        return Ok(super::render(&report, format));
    }
    if cmd.rule_age.is_some() {
        anyhow::bail!("--rule-age applies to one site's report, not to a fleet report");
    }
    let sites: Vec<super::fleet::read::Site> = central
        .sites
        .iter()
        .map(|(name, ledger, _)| super::fleet::read::Site {
            name: name.clone(),
            journals: 1,
            ledger: ledger.clone(),
        })
        .collect();
    let journals = sites
        .iter()
        .map(|s| super::fleet::FleetJournal {
            path: central.store.clone(),
            site: s.name.clone(),
        })
        .collect();
    let mut report = super::fleet::stats::assemble(
        journals,
        &sites,
        central.window,
        &super::fleet::FleetOptions { from, to, now },
    );
    report.methods.extend(methods);
    Ok(super::fleet::render(&report, format))
}
