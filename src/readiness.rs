//! Whether this machine can run a config: what `check-config` checks after
//! the file itself, so that a config it passes does not fail at `run`.
//!
//! Validation records each [`Requirement`] where the file makes it (a
//! secret's environment variable or file, a CA file, the journal's and
//! queues' folders, Chromium for browser journeys); [`check`] looks at each
//! on this machine and returns every problem at once, with the line and
//! context of the config that asked for it. Secrets are read as the agent
//! reads them ([`crate::config::secret`]), and their values are dropped at
//! once: no message carries any part of one.

use std::path::Path;

use crate::config::secret::{self, EnvLookup};
use crate::config::{Config, Need, Problem, Requirement};

/// Every problem this machine has with `config`, in the order of the file.
pub fn check(config: &Config, env: &EnvLookup) -> Vec<Problem> {
    let mut problems: Vec<Problem> = config
        .requirements
        .iter()
        .filter_map(|requirement| {
            problem(config, requirement, env).map(|message| Problem {
                file: config.origin.clone(),
                line: requirement.line,
                context: requirement.context.clone(),
                message,
            })
        })
        .collect();
    problems.sort_by_key(|p| p.line);
    problems
}

fn problem(config: &Config, requirement: &Requirement, env: &EnvLookup) -> Option<String> {
    match &requirement.need {
        Need::Secret { key, source } => match secret::read(source, env) {
            Ok(value) if value.is_empty() => Some(format!("{key}: {} is empty", where_(source))),
            Ok(_) => None,
            Err(e) => Some(format!("{key}: {e}")),
        },
        Need::File { key, path } => readable(path).err().map(|why| format!("{key}: {why}")),
        Need::Writable { key, path } => writable(path).err().map(|why| format!("{key}: {why}")),
        Need::Browser => crate::browser::pool::executable(&config.browser)
            .err()
            .map(|e| e.to_string()),
    }
}

/// Where a secret is read from, in words.
fn where_(source: &crate::config::SecretSource) -> String {
    match source {
        crate::config::SecretSource::Env(name) => format!("environment variable {name}"),
        crate::config::SecretSource::File(path) => format!("file {}", path.display()),
        crate::config::SecretSource::Value(_) => "the value".to_string(),
    }
}

/// A file the agent reads at start: there, a regular file, readable.
fn readable(path: &Path) -> Result<(), String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let metadata = file
        .metadata()
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if !metadata.is_file() {
        return Err(format!("cannot read {shown}: not a regular file"));
    }
    Ok(())
}

/// A file the agent creates and writes: its folder is there and takes a new
/// file (tried for real, then removed: permissions, a read-only file system
/// and a full quota all show), and the file, if there, is a regular file it
/// can open for writing.
fn writable(path: &Path) -> Result<(), String> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let shown = folder.display();
    match std::fs::metadata(folder) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("{shown} is not a folder")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("folder {shown} does not exist"))
        }
        Err(e) => return Err(format!("cannot use folder {shown}: {e}")),
    }
    let probe = folder.join(format!(".casewatch-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| format!("cannot create files in {shown}: {e}"))?;
    let _ = std::fs::remove_file(&probe);
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(format!("{} is a folder, not a file", path.display())),
        Ok(_) => std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map(|_| ())
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_that_takes_files_is_writable_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(writable(&dir.path().join("journal.db")), Ok(()));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        std::fs::write(dir.path().join("journal.db"), b"").unwrap();
        assert_eq!(writable(&dir.path().join("journal.db")), Ok(()));
        let missing = dir.path().join("nope");
        assert_eq!(
            writable(&missing.join("journal.db")),
            Err(format!("folder {} does not exist", missing.display()))
        );
        assert_eq!(
            writable(dir.path()),
            Err(format!("{} is a folder, not a file", dir.path().display()))
        );
    }

    #[test]
    fn a_bare_file_name_is_in_the_working_folder() {
        assert_eq!(writable(Path::new("casewatch-check-never-made.db")), Ok(()));
    }
}
