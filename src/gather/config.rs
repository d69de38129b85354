//! Reads runner config files: from this host, through a container's mount, or copied out of a
//! container through the Docker API.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use bollard::query_parameters::DownloadFromContainerOptionsBuilder;
use futures_util::StreamExt;

use super::docker::DockerClient;
use crate::facts::config::{ConfigFile, ConfigOrigin, FileMeta, ParsedConfig, ReadFailure};
use crate::facts::docker::ContainerInfo;

/// Where the official runner image and a root install keep the config.
pub const DEFAULT_CONFIG: &str = "/etc/gitlab-runner/config.toml";

/// Real configs are a few kilobytes; anything past this is not a runner config, and reading it
/// whole could exhaust memory.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// The config path a runner process uses, from its arguments or `CONFIG_FILE`.
pub fn config_path_from_args(args: &[String], config_file_env: Option<&str>) -> Option<PathBuf> {
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if let Some(value) = word.strip_prefix("--config=").or_else(|| word.strip_prefix("-c=")) {
            return Some(PathBuf::from(value));
        }
        if word == "--config" || word == "-c" {
            return words.next().map(PathBuf::from);
        }
    }
    config_file_env.filter(|value| !value.is_empty()).map(PathBuf::from)
}

/// Reads a config file of a runner installed on this host.
pub fn read_host_config(path: &Path, origin: ConfigOrigin) -> ConfigFile {
    let (text, meta) = read_bounded(path);
    let system_id = read_system_id(path);
    finish(ConfigFile {
        path: path.to_path_buf(),
        origin,
        host_path: Some(path.to_path_buf()),
        meta,
        text,
        parsed: None,
        system_id,
    })
}

/// Reads the config of a runner container: through its mount on this host when the daemon is
/// local and the path is readable, otherwise copied out through the Docker API.
pub async fn read_container_config(client: &DockerClient, container: &ContainerInfo, daemon_is_local: bool) -> ConfigFile {
    let path = config_path_from_args(&container.command, container.env("CONFIG_FILE"))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let path_text = path.to_string_lossy().to_string();

    // A mount covering the config means it survives the container; map it to the host path.
    let mount = container.mount_covering(&path_text);
    let (origin_of_mount, host_path) = match mount {
        Some(mount) => {
            let below = path_text.strip_prefix(mount.destination.trim_end_matches('/')).unwrap_or("");
            let host_path = mount.source.as_ref().map(|source| PathBuf::from(format!("{}{}", source.trim_end_matches('/'), below)));
            let origin = match (mount.kind.as_str(), &mount.name) {
                ("volume", Some(volume)) => ConfigOrigin::Volume { container: container.name.clone(), volume: volume.clone() },
                _ => ConfigOrigin::BindMount {
                    container: container.name.clone(),
                    source: PathBuf::from(mount.source.clone().unwrap_or_default()),
                },
            };
            (Some(origin), host_path)
        }
        None => (None, None),
    };

    if daemon_is_local && let (Some(origin), Some(host_path)) = (&origin_of_mount, &host_path) {
        let (text, meta) = read_bounded(host_path);
        // A mount source missing altogether means that ci-doctor reads another filesystem than
        // the daemon's, as when it runs in a container itself. Only the Docker API reaches the
        // file then.
        let source_missing = mount.and_then(|mount| mount.source.as_ref()).is_some_and(|source| !Path::new(source).exists());
        let usable = match &text {
            Err(ReadFailure::PermissionDenied) => false,
            Err(ReadFailure::NotFound) => !source_missing,
            _ => true,
        };
        if usable {
            tracing::debug!(container = %container.name, path = %host_path.display(), "config read through its mount");
            return finish(ConfigFile {
                path,
                origin: origin.clone(),
                host_path: Some(host_path.clone()),
                meta,
                text,
                parsed: None,
                system_id: read_system_id(host_path),
            });
        }
        tracing::debug!(container = %container.name, "config mount not readable or not visible here; copying it through the Docker API");
    }

    let (text, meta, system_id) = copy_out(client, &container.id, &path).await;
    let origin = match origin_of_mount {
        Some(origin) => origin,
        None => ConfigOrigin::Copied { container: container.name.clone(), persisted: false },
    };
    finish(ConfigFile { path, origin, host_path: None, meta, text, parsed: None, system_id })
}

/// Reads a small text file of a container: through its mount on this host when possible,
/// otherwise copied out through the Docker API. `None` when it does not exist or is unreadable.
pub async fn read_container_file(client: &DockerClient, container: &ContainerInfo, path: &str, daemon_is_local: bool) -> Option<String> {
    if daemon_is_local
        && let Some(mount) = container.mount_covering(path)
        && let Some(source) = &mount.source
    {
        let below = path.strip_prefix(mount.destination.trim_end_matches('/')).unwrap_or("");
        let host_path = PathBuf::from(format!("{}{below}", source.trim_end_matches('/')));
        if let (Ok(text), _) = read_bounded(&host_path) {
            return Some(text);
        }
    }
    let name = Path::new(path).file_name()?.to_string_lossy().to_string();
    let archive = download(client, &container.id, path).await.ok()?;
    let (bytes, _) = first_file(&archive, &name)?;
    String::from_utf8(bytes).ok()
}

fn finish(mut file: ConfigFile) -> ConfigFile {
    if let Ok(text) = &file.text {
        file.parsed = Some(ParsedConfig::parse(text));
    }
    file
}

/// Reads at most [`MAX_CONFIG_BYTES`] of `path`.
fn read_bounded(path: &Path) -> (Result<String, ReadFailure>, Option<FileMeta>) {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) => return (Err(open_failure(path, &error)), None),
    };
    let meta = file.metadata().ok().map(|meta| FileMeta { mode: meta.mode() & 0o7777, uid: meta.uid(), gid: meta.gid(), len: meta.len() });
    if meta.as_ref().is_some_and(|meta| meta.len > MAX_CONFIG_BYTES) {
        let message = format!("the file is larger than {} MiB, far larger than any runner config", MAX_CONFIG_BYTES / 1024 / 1024);
        return (Err(ReadFailure::Other { message }), meta);
    }
    if std::fs::metadata(path).is_ok_and(|meta| meta.is_dir()) {
        return (Err(ReadFailure::Other { message: "the path is a directory, not a file".into() }), meta);
    }

    let mut bytes = Vec::new();
    if let Err(error) = file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes) {
        return (Err(read_failure(&error)), meta);
    }
    (decode(bytes), meta)
}

/// Decodes config bytes as UTF-8, the only encoding TOML allows.
pub fn decode(bytes: Vec<u8>) -> Result<String, ReadFailure> {
    String::from_utf8(bytes).map_err(|error| ReadFailure::Other {
        message: format!("the file is not valid UTF-8 (first invalid byte at offset {})", error.utf8_error().valid_up_to()),
    })
}

/// Explains a failed open, naming a dangling symlink or a loop of them rather than reporting a
/// bare "not found".
fn open_failure(path: &Path, error: &std::io::Error) -> ReadFailure {
    let is_symlink = std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink());
    if is_symlink && error.kind() == std::io::ErrorKind::NotFound {
        let target = std::fs::read_link(path).map(|target| target.display().to_string()).unwrap_or_default();
        return ReadFailure::Other { message: format!("the path is a symbolic link to `{target}`, which does not exist") };
    }
    if error.raw_os_error() == Some(nix::libc::ELOOP) {
        return ReadFailure::Other { message: "the path is a loop of symbolic links".into() };
    }
    read_failure(error)
}

fn read_failure(error: &std::io::Error) -> ReadFailure {
    match error.kind() {
        std::io::ErrorKind::NotFound => ReadFailure::NotFound,
        std::io::ErrorKind::PermissionDenied => ReadFailure::PermissionDenied,
        _ => ReadFailure::Other { message: error.to_string() },
    }
}

/// Reads `.runner_system_id` next to the config, which the runner sends with every request.
fn read_system_id(config: &Path) -> Option<String> {
    let path = config.parent()?.join(".runner_system_id");
    let text = std::fs::read_to_string(path).ok()?;
    let id = text.trim();
    (!id.is_empty() && id.len() < 64).then(|| id.to_string())
}

/// Copies the config (and the system id beside it) out of a container as a tar archive.
async fn copy_out(client: &DockerClient, container: &str, path: &Path) -> (Result<String, ReadFailure>, Option<FileMeta>, Option<String>) {
    let directory = path.parent().unwrap_or(Path::new("/"));
    let file_name = path.file_name().map(|name| name.to_string_lossy().to_string()).unwrap_or_default();

    let archive = match download(client, container, &path.to_string_lossy()).await {
        Ok(archive) => archive,
        Err(failure) => return (Err(failure), None, None),
    };
    let (text, meta) = match first_file(&archive, &file_name) {
        Some((bytes, meta)) => (decode(bytes), Some(meta)),
        None => (Err(ReadFailure::Other { message: "the Docker API returned an archive without the file".into() }), None),
    };

    let system_id_path = directory.join(".runner_system_id");
    let system_id = match download(client, container, &system_id_path.to_string_lossy()).await {
        Ok(archive) => first_file(&archive, ".runner_system_id")
            .and_then(|(bytes, _)| String::from_utf8(bytes).ok())
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty() && id.len() < 64),
        Err(_) => None,
    };
    (text, meta, system_id)
}

/// Downloads `path` from a container as a tar archive, at most [`MAX_CONFIG_BYTES`] plus room
/// for tar headers.
pub async fn download(client: &DockerClient, container: &str, path: &str) -> Result<Vec<u8>, ReadFailure> {
    let options = DownloadFromContainerOptionsBuilder::default().path(path).build();
    let mut stream = client.docker.download_from_container(container, Some(options));
    let mut archive = Vec::new();
    let limit = MAX_CONFIG_BYTES as usize + 64 * 1024;

    let read = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| match &error {
                bollard::errors::Error::DockerResponseServerError { status_code: 404, .. } => ReadFailure::NotFound,
                _ => ReadFailure::Other { message: crate::secret::redact(&super::docker::error_chain(&error)) },
            })?;
            archive.extend_from_slice(&chunk);
            if archive.len() > limit {
                return Err(ReadFailure::Other { message: "the file is far larger than any runner config".into() });
            }
        }
        Ok(())
    };
    match tokio::time::timeout(client.timeout, read).await {
        Ok(Ok(())) => Ok(archive),
        Ok(Err(failure)) => Err(failure),
        Err(_) => Err(ReadFailure::Other { message: "the Docker API did not send the file in time".into() }),
    }
}

/// The contents and mode of the regular file named `name` in a tar archive, read into memory
/// (never unpacked to disk, since the archive comes from a container).
pub fn first_file(archive: &[u8], name: &str) -> Option<(Vec<u8>, FileMeta)> {
    let mut reader = tar::Archive::new(archive);
    for entry in reader.entries().ok()? {
        let mut entry = entry.ok()?;
        let is_match = entry.path().ok().is_some_and(|path| path.file_name().is_some_and(|file| file.to_string_lossy() == name));
        if !is_match || !entry.header().entry_type().is_file() {
            continue;
        }
        let header = entry.header();
        let meta = FileMeta {
            mode: header.mode().unwrap_or(0) & 0o7777,
            uid: header.uid().unwrap_or(0) as u32,
            gid: header.gid().unwrap_or(0) as u32,
            len: header.size().unwrap_or(0),
        };
        let mut bytes = Vec::new();
        entry.by_ref().take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes).ok()?;
        return Some((bytes, meta));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn config_flag_forms_are_understood() {
        assert_eq!(config_path_from_args(&words("gitlab-runner run --config /x/c.toml"), None), Some(PathBuf::from("/x/c.toml")));
        assert_eq!(config_path_from_args(&words("run -c /y.toml"), None), Some(PathBuf::from("/y.toml")));
        assert_eq!(config_path_from_args(&words("run --config=/z.toml"), None), Some(PathBuf::from("/z.toml")));
        assert_eq!(config_path_from_args(&words("run --user=gitlab-runner"), Some("/env.toml")), Some(PathBuf::from("/env.toml")));
        assert_eq!(config_path_from_args(&words("run"), None), None);
    }

    #[test]
    fn invalid_utf8_names_the_offset() {
        let failure = decode(vec![b'a', b'b', 0xff]).unwrap_err();
        assert_eq!(failure, ReadFailure::Other { message: "the file is not valid UTF-8 (first invalid byte at offset 2)".into() });
    }

    #[test]
    fn oversized_file_is_not_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_CONFIG_BYTES + 10).unwrap();
        let config = read_host_config(&path, ConfigOrigin::Given);
        assert!(matches!(config.text, Err(ReadFailure::Other { .. })), "{:?}", config.text);
    }
}
