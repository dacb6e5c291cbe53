//! Reading the files the agent is pointed at: its config, secret files, CA
//! bundles, the web endpoints' certificate and key.
//!
//! Every such file is read by [`read_capped`]: opened without blocking (a
//! FIFO named by mistake, or by an attacker, cannot hang a run, a reload or
//! the agent's stop), accepted only if the opened file is a regular file
//! (`/dev/zero` or a directory is refused at once), and read to at most a
//! cap (a huge file cannot fill the agent's memory). The errors carry no
//! part of what was read.

use std::io::Read;
use std::path::Path;

/// The largest CA bundle, client certificate or key read: a system's whole
/// CA bundle is about 200 KB.
pub const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("not a regular file")]
    NotAFile,
    #[error("over the {limit}-byte limit")]
    TooLarge { limit: u64 },
}

/// Reads `path` whole: a regular file only (checked on the opened file, so
/// it cannot be swapped in between), opened without blocking, at most
/// `limit` bytes.
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Opening a FIFO for reading waits for a writer unless non-blocking;
        // a terminal device must not become the agent's controlling one.
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(FileError::NotAFile);
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge { limit });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_up_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "x".repeat(100)).unwrap();
        assert_eq!(read_capped(&path, 100).unwrap().len(), 100);
        assert_eq!(
            read_capped(&path, 99).unwrap_err().to_string(),
            "over the 99-byte limit"
        );
        let missing = read_capped(&dir.path().join("absent"), 10).unwrap_err();
        assert!(matches!(missing, FileError::Io(_)), "{missing}");
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
        let (tx, rx) = std::sync::mpsc::channel();
        for path in [fifo.clone(), "/dev/zero".into(), dir.path().to_path_buf()] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = tx.send(read_capped(&path, 1 << 30).map_err(|e| e.to_string()));
            });
        }
        for _ in 0..3 {
            let answer = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("a read blocked");
            assert_eq!(answer.unwrap_err(), "not a regular file");
        }
    }
}
