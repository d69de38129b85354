//! Exclusive locks on files in the system temp directory, held across
//! processes (`flock(2)` through `File::lock`) until dropped.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;

use anyhow::Context as _;

/// An exclusive lock, released when dropped (closing the file releases it).
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    /// Blocks until this process holds the lock on `<temp dir>/<name>`.
    pub(crate) fn acquire(name: &str) -> anyhow::Result<FileLock> {
        let path: PathBuf = std::env::temp_dir().join(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("failed to open lock file {}", path.display()))?;
        file.lock()
            .with_context(|| format!("failed to lock {}", path.display()))?;
        Ok(FileLock { _file: file })
    }
}
