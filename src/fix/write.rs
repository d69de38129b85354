//! Writes a fixed config safely.
//!
//! On this host: re-read the file and refuse if it changed since ci-doctor read it, keep a
//! backup beside it with the same mode and owner, then replace it atomically (a temporary file
//! in the same directory, synced, renamed over the old one), so a crash at any point leaves
//! either the old file or the new one, whole. A symlink is followed: its target is replaced and
//! the link stays. Inside a container, the file goes back through the Docker API.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use atomic_write_file::AtomicWriteFile;
use atomic_write_file::unix::OpenOptionsExt;

/// Why a write was refused or failed. Every variant leaves the file as it was.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("`{0}` changed since ci-doctor read it (another program or the runner rewrote it); run ci-doctor again")]
    Changed(PathBuf),
    #[error("`{path}` is read-only (mode {mode:04o}); make it writable (`chmod u+w {path}`) or edit it by hand")]
    ReadOnly { path: PathBuf, mode: u32 },
    #[error("failed to read `{path}`: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("failed to write the backup `{path}`: {source}; the file is unchanged")]
    Backup { path: PathBuf, source: std::io::Error },
    #[error("failed to write `{path}`: {source}; the file is unchanged")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("failed to set the mode of `{path}`: {source}")]
    Mode { path: PathBuf, source: std::io::Error },
    #[error("failed to copy `{path}` into container `{container}`: {message}; the file is unchanged")]
    Container { container: String, path: PathBuf, message: String },
}

/// What a successful write did.
#[derive(Debug, Clone)]
pub struct Written {
    /// The file that was replaced (the symlink's target, for a symlink).
    pub target: PathBuf,
    /// The backup of the old content; none when only the mode changed.
    pub backup: Option<PathBuf>,
}

/// Replaces the file at `path` (following symlinks) with `new`, after checking that it still
/// holds `expected`. With `mode`, also sets the permission bits. With `new == expected` only
/// the mode changes and no backup is written.
pub fn write_host(path: &Path, expected: &str, new: &str, mode: Option<u32>) -> Result<Written, WriteError> {
    let target = std::fs::canonicalize(path).map_err(|source| WriteError::Read { path: path.to_path_buf(), source })?;
    let current = std::fs::read(&target).map_err(|source| WriteError::Read { path: target.clone(), source })?;
    if current != expected.as_bytes() {
        return Err(WriteError::Changed(path.to_path_buf()));
    }
    let meta = std::fs::metadata(&target).map_err(|source| WriteError::Read { path: target.clone(), source })?;
    let old_mode = meta.mode() & 0o7777;

    if new == expected {
        if let Some(mode) = mode {
            set_mode(&target, mode)?;
        }
        return Ok(Written { target, backup: None });
    }
    // Root may write any file, but a file without its write bit was made read-only on purpose.
    if old_mode & 0o200 == 0 {
        return Err(WriteError::ReadOnly { path: path.to_path_buf(), mode: old_mode });
    }

    let backup = backup_path(&target);
    pause_for_test("pause-before-backup");
    replace(&backup, expected.as_bytes(), Some((old_mode, meta.uid(), meta.gid())))
        .map_err(|source| WriteError::Backup { path: backup.clone(), source })?;

    pause_for_test("pause-before-replace");
    // Check once more right before the replace, to keep the window for a concurrent writer
    // (the runner rewrites the file when it rotates its token) as small as possible.
    let current = std::fs::read(&target).map_err(|source| WriteError::Read { path: target.clone(), source })?;
    if current != expected.as_bytes() {
        let _ = std::fs::remove_file(&backup);
        return Err(WriteError::Changed(path.to_path_buf()));
    }
    replace(&target, new.as_bytes(), None).map_err(|source| WriteError::Write { path: target.clone(), source })?;

    if let Some(mode) = mode {
        set_mode(&target, mode)?;
    }
    Ok(Written { target, backup: Some(backup) })
}

/// Stops here when a test asks, so that it can kill ci-doctor or change the file at this point:
/// for a minute, or until the file named by `CI_DOCTOR_TEST_RESUME` exists.
fn pause_for_test(point: &str) {
    if !crate::probe::cleanup::test_fault(point) {
        return;
    }
    let resume = std::env::var_os("CI_DOCTOR_TEST_RESUME").map(PathBuf::from);
    for _ in 0..1200 {
        if resume.as_ref().is_some_and(|path| path.exists()) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), WriteError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| WriteError::Mode { path: path.to_path_buf(), source })
}

/// Writes `bytes` to `path` atomically. Without `owner`, an existing file's mode and owner are
/// kept; with it, the new file gets that mode, uid and gid.
fn replace(path: &Path, bytes: &[u8], owner: Option<(u32, u32, u32)>) -> std::io::Result<()> {
    let mut options = AtomicWriteFile::options();
    options.preserve_mode(true).try_preserve_owner(true);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    if owner.is_none() {
        pause_for_test("pause-before-commit");
    }
    if let Some((mode, uid, gid)) = owner {
        file.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
        // Changing the owner needs root; without it the backup belongs to the user running
        // ci-doctor, who could read the original anyway.
        let _ = std::os::unix::fs::fchown(file.as_file(), Some(uid), Some(gid));
    }
    file.commit()
}

/// `config.toml.ci-doctor-20261204T171500.bak` beside the file; a counter avoids clobbering an
/// earlier backup written in the same second.
pub fn backup_path(target: &Path) -> PathBuf {
    let stamp = timestamp();
    let name = target.file_name().map(|name| name.to_string_lossy().to_string()).unwrap_or_else(|| "config.toml".into());
    let mut candidate = target.with_file_name(format!("{name}.ci-doctor-{stamp}.bak"));
    let mut counter = 1;
    while candidate.exists() {
        counter += 1;
        candidate = target.with_file_name(format!("{name}.ci-doctor-{stamp}-{counter}.bak"));
    }
    candidate
}

/// UTC time as `YYYYMMDDTHHMMSS`, computed from the Unix time without a date library.
fn timestamp() -> String {
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or(0);
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Converts days since 1970-01-01 to a Gregorian date (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Replaces `path` inside container `container` through the Docker API, after checking that it
/// still holds `expected`, and writes the backup beside it. The daemon extracts the archive in
/// place, so unlike a host write this is not atomic against a crash of the daemon itself.
pub async fn write_container(
    client: &crate::gather::docker::DockerClient,
    container: &str,
    path: &Path,
    expected: &str,
    new: &str,
    meta: crate::facts::config::FileMeta,
) -> Result<Written, WriteError> {
    use crate::gather::config::{download, first_file};

    let name = path.file_name().map(|name| name.to_string_lossy().to_string()).unwrap_or_default();
    let failed = |message: String| WriteError::Container { container: container.to_string(), path: path.to_path_buf(), message };
    let current = download(client, container, &path.to_string_lossy()).await.map_err(|failure| failed(format!("{failure:?}")))?;
    let current = first_file(&current, &name).map(|(bytes, _)| bytes).unwrap_or_default();
    if current != expected.as_bytes() {
        return Err(WriteError::Changed(path.to_path_buf()));
    }

    let backup = backup_path(Path::new(&name));
    let backup_name = backup.to_string_lossy().to_string();
    let mut archive = tar::Builder::new(Vec::new());
    for (entry_name, bytes) in [(backup_name.as_str(), expected.as_bytes()), (name.as_str(), new.as_bytes())] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(meta.mode);
        header.set_uid(u64::from(meta.uid));
        header.set_gid(u64::from(meta.gid));
        header.set_mtime(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or(0));
        header.set_cksum();
        archive.append_data(&mut header, entry_name, bytes).map_err(|error| failed(error.to_string()))?;
    }
    let archive = archive.into_inner().map_err(|error| failed(error.to_string()))?;

    let directory = path.parent().map(|dir| dir.to_string_lossy().to_string()).unwrap_or_else(|| "/".into());
    let options = bollard::query_parameters::UploadToContainerOptionsBuilder::default().path(&directory).build();
    let upload = client.docker.upload_to_container(container, Some(options), bollard::body_full(archive.into()));
    crate::gather::docker::call(client.timeout, upload)
        .await
        .map_err(|error| failed(crate::secret::redact(&crate::gather::docker::error_chain(&error))))?;

    // Read it back: the container must see the new file.
    let written = download(client, container, &path.to_string_lossy()).await.map_err(|failure| failed(format!("{failure:?}")))?;
    if first_file(&written, &name).map(|(bytes, _)| bytes).as_deref() != Some(new.as_bytes()) {
        return Err(failed("the container does not show the new content after the upload".into()));
    }
    Ok(Written { target: path.to_path_buf(), backup: Some(Path::new(&directory).join(backup)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_791), (2026, 12, 4));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn write_keeps_mode_and_writes_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "concurrent = 1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();

        let written = write_host(&path, "concurrent = 1\n", "concurrent = 4\n", None).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "concurrent = 4\n");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        let backup = written.backup.unwrap();
        assert_eq!(std::fs::read_to_string(&backup).unwrap(), "concurrent = 1\n");
        assert_eq!(std::fs::metadata(&backup).unwrap().mode() & 0o777, 0o640);
    }

    #[test]
    fn changed_file_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "concurrent = 2\n").unwrap();
        let error = write_host(&path, "concurrent = 1\n", "concurrent = 4\n", None).unwrap_err();
        assert!(matches!(error, WriteError::Changed(_)), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "concurrent = 2\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no backup or temporary file left");
    }

    #[test]
    fn read_only_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "concurrent = 1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        let error = write_host(&path, "concurrent = 1\n", "concurrent = 4\n", None).unwrap_err();
        assert!(matches!(error, WriteError::ReadOnly { mode: 0o444, .. }), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "concurrent = 1\n");
    }

    #[test]
    fn symlink_target_is_replaced_and_link_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.toml");
        let link = dir.path().join("config.toml");
        std::fs::write(&target, "concurrent = 1\n").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();

        write_host(&link, "concurrent = 1\n", "concurrent = 4\n", None).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "concurrent = 4\n");
    }
}
