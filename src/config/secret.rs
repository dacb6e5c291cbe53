//! Reading the secrets a config points at: target passwords (and user
//! names) for the runner, bearer tokens and basic-auth passwords for
//! remote_write. A secret is a value given in the file (user names only),
//! an environment variable, or a file.
//!
//! Secrets are read when they are used, not when the config is loaded, so a
//! rotated secret file is picked up by the next run or push. A secret file
//! is read only if it is a regular file of at most [`MAX_SECRET_FILE_BYTES`],
//! and it is opened without blocking: `/dev/zero` or a FIFO named by mistake
//! gives an error naming the file, never an agent that hangs or fills its
//! memory. No error carries any part of a secret's value.

use std::path::Path;
use std::sync::Arc;

use super::file::{self, FileError};
use super::SecretSource;

/// The largest secret file read: far above any password, token or key.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Reads environment variables; replaceable so the demo can hand the agent a
/// generated password without touching the process environment.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process's own environment.
pub fn process_env() -> EnvLookup {
    Arc::new(|name| std::env::var(name).ok())
}

/// Why a secret could not be read. The message names where the secret was
/// looked for and says what went wrong in full (there is no separate
/// source), so a caller can embed it in its own one-line message.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {name} is not set")]
    NotSet { name: String },
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("cannot read {path}: not a regular file")]
    NotAFile { path: String },
    #[error("cannot read {path}: over the {MAX_SECRET_FILE_BYTES}-byte limit for a secret file")]
    TooLarge { path: String },
}

/// Reads a secret from where the config says, now. A file's trailing line
/// ends are removed.
pub fn read(source: &SecretSource, env: &EnvLookup) -> Result<String, SecretError> {
    match source {
        SecretSource::Value(v) => Ok(v.clone()),
        SecretSource::Env(name) => {
            env(name).ok_or_else(|| SecretError::NotSet { name: name.clone() })
        }
        SecretSource::File(path) => {
            read_file(path).map(|s| s.trim_end_matches(['\n', '\r']).to_string())
        }
    }
}

/// Reads a secret file through [`super::file::read_capped`]: a regular
/// file only, opened without blocking, at most [`MAX_SECRET_FILE_BYTES`],
/// UTF-8.
fn read_file(path: &Path) -> Result<String, SecretError> {
    let shown = || path.display().to_string();
    let bytes = file::read_capped(path, MAX_SECRET_FILE_BYTES).map_err(|e| match e {
        FileError::Io(error) => SecretError::Read {
            path: shown(),
            error,
        },
        FileError::NotAFile => SecretError::NotAFile { path: shown() },
        FileError::TooLarge { .. } => SecretError::TooLarge { path: shown() },
    })?;
    String::from_utf8(bytes).map_err(|_| SecretError::Read {
        path: shown(),
        error: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> EnvLookup {
        Arc::new(|_| None)
    }

    fn file(path: &Path) -> SecretSource {
        SecretSource::File(path.to_path_buf())
    }

    #[test]
    fn values_env_and_files_are_read_with_line_ends_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "s3cret\r\n").unwrap();
        assert_eq!(read(&file(&path), &no_env()).unwrap(), "s3cret");
        let env: EnvLookup = Arc::new(|name| (name == "PW").then(|| "from-env".to_string()));
        assert_eq!(
            read(&SecretSource::Env("PW".into()), &env).unwrap(),
            "from-env"
        );
        assert_eq!(
            read(&SecretSource::Value("bob".into()), &no_env()).unwrap(),
            "bob"
        );
    }

    #[test]
    fn missing_sources_are_named() {
        let error = read(&SecretSource::Env("CW_NOT_SET".into()), &no_env()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "environment variable CW_NOT_SET is not set"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent");
        let error = read(&file(&path), &no_env()).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("cannot read {}: ", path.display())),
            "{error}"
        );
    }

    #[test]
    fn a_file_over_the_cap_is_refused_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let canary = "CANARY-secret-".repeat(5000);
        std::fs::write(&path, &canary).unwrap();
        let error = read(&file(&path), &no_env()).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "cannot read {}: over the 65536-byte limit for a secret file",
                path.display()
            )
        );
        // At the cap exactly, it is read.
        std::fs::write(&path, "x".repeat(MAX_SECRET_FILE_BYTES as usize)).unwrap();
        assert_eq!(read(&file(&path), &no_env()).unwrap().len(), 65536);
    }

    #[test]
    fn a_file_that_is_not_text_is_refused_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, b"CANARY\xff\xfe").unwrap();
        let error = read(&file(&path), &no_env()).unwrap_err().to_string();
        assert!(!error.contains("CANARY"), "{error}");
        assert!(error.contains("valid UTF-8"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn devices_directories_and_fifos_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // A FIFO with no writer would block a plain open for ever: the
        // read is done on another thread so a regression fails, not hangs.
        let (tx, rx) = std::sync::mpsc::channel();
        let source = file(&fifo);
        std::thread::spawn(move || {
            let _ = tx.send(read(&source, &no_env()).map_err(|e| e.to_string()));
        });
        let answer = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("reading a FIFO blocked");
        assert_eq!(
            answer.unwrap_err(),
            format!("cannot read {}: not a regular file", fifo.display())
        );
        for path in [Path::new("/dev/zero"), dir.path()] {
            assert_eq!(
                read(&file(path), &no_env()).unwrap_err().to_string(),
                format!("cannot read {}: not a regular file", path.display())
            );
        }
    }
}
