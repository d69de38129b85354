//! The report's destination: stdout, or the file named with `--output`.
//!
//! The destination is chosen once per run. A file is created (or truncated) on the first
//! write, so a run that fails before it has a report leaves no empty file behind.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::Context as _;

enum Destination {
    Stdout,
    File { path: PathBuf, file: Option<File> },
}

fn destination() -> MutexGuard<'static, Destination> {
    static DESTINATION: Mutex<Destination> = Mutex::new(Destination::Stdout);
    DESTINATION.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends the report to `path` instead of stdout.
pub fn to_file(path: &Path) {
    *destination() = Destination::File { path: path.to_path_buf(), file: None };
}

/// Returns true when the report goes to a file.
pub fn is_file() -> bool {
    matches!(*destination(), Destination::File { .. })
}

/// Writes report text. On stdout a closed pipe (`ci-doctor | head`) is not an error.
pub fn write_report(text: &str) -> anyhow::Result<()> {
    let mut destination = destination();
    match &mut *destination {
        Destination::Stdout => crate::app::write_stdout(text),
        Destination::File { path, file } => {
            if file.is_none() {
                *file = Some(File::create(&*path).with_context(|| format!("failed to create report file `{}`", path.display()))?);
            }
            let open = file.as_mut().expect("opened above");
            open.write_all(text.as_bytes()).and_then(|()| open.flush()).with_context(|| format!("failed to write report file `{}`", path.display()))
        }
    }
}
