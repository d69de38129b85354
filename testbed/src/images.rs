//! Local Docker images of the test bed, built without any registry.
//!
//! `ci-doctor-test/busybox:latest` is a root filesystem made of the host's
//! static `/bin/busybox` and one symlink per applet. `ci-doctor-test/standin:latest`
//! adds a statically linked `gitlab-standin`. Scenarios tag these images under
//! the names real setups use (`gitlab/gitlab-ce:17.5.2-ce.0`, ...).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context as _, bail};

use crate::docker::{docker, docker_with_input, inspect};
use crate::file_lock::FileLock;

/// Busybox image: `sh`, `wget`, `nslookup`, `sleep` and the other applets.
pub const BUSYBOX_IMAGE: &str = "ci-doctor-test/busybox:latest";
/// Busybox image plus `/bin/gitlab-standin`.
pub const STANDIN_IMAGE: &str = "ci-doctor-test/standin:latest";

/// Label that marks images the test bed built, with the value `busybox`,
/// `standin` or `derived`.
pub const IMAGE_LABEL: &str = "ci-doctor-testbed.image";
/// Label with a hash of the `gitlab-standin` binary inside the standin image,
/// so a changed binary leads to a new image.
const STANDIN_HASH_LABEL: &str = "ci-doctor-testbed.standin-fnv1a64";

const HOST_BUSYBOX: &str = "/bin/busybox";

/// Environment variable naming a prebuilt, statically linked `gitlab-standin`
/// to put into the standin image instead of building one.
pub const STANDIN_BIN_ENV: &str = "CI_DOCTOR_STANDIN_BIN";

/// A test bed image that scenario images are tagged from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// [`BUSYBOX_IMAGE`]: runs `sleep`, `sh -c ...` and the like.
    Busybox,
    /// [`STANDIN_IMAGE`]: can also run `gitlab-standin serve` and `gitlab-standin dns`.
    Standin,
}

impl Base {
    pub fn image_ref(self) -> &'static str {
        match self {
            Base::Busybox => BUSYBOX_IMAGE,
            Base::Standin => STANDIN_IMAGE,
        }
    }
}

/// Builds the busybox and standin images when they are missing, and the
/// standin image when it holds another `gitlab-standin` binary than this
/// process's. The binary is built once per process; the images are checked
/// on every call, because test processes of another checkout that share this
/// Docker Engine put their own binary into the same image name. A lock file
/// keeps concurrent test processes from building at the same time.
pub fn ensure_images() -> anyhow::Result<()> {
    static BINARY: OnceLock<Result<(PathBuf, String), String>> = OnceLock::new();
    let (binary, hash) = BINARY
        .get_or_init(|| standin_binary_and_hash().map_err(|error| format!("{error:#}")))
        .clone()
        .map_err(|message| anyhow::anyhow!("failed to prepare the test bed images: {message}"))?;
    let images = || -> anyhow::Result<()> {
        let _lock = FileLock::acquire("ci-doctor-testbed-images.lock")?;
        ensure_busybox_image()?;
        ensure_standin_image(&binary, &hash)
    };
    images().map_err(|error| anyhow::anyhow!("failed to prepare the test bed images: {error:#}"))
}

fn standin_binary_and_hash() -> anyhow::Result<(PathBuf, String)> {
    let binary = {
        let _lock = FileLock::acquire("ci-doctor-testbed-images.lock")?;
        standin_binary()?
    };
    let contents =
        std::fs::read(&binary).with_context(|| format!("failed to read {}", binary.display()))?;
    Ok((binary, format!("{:016x}", fnv1a64(&contents))))
}

fn ensure_busybox_image() -> anyhow::Result<()> {
    if inspect("image", BUSYBOX_IMAGE)?.is_some() {
        return Ok(());
    }
    let archive = busybox_root_fs(&[])?;
    docker_with_input(
        &[
            "import",
            "-c",
            "ENV PATH=/bin",
            "-c",
            r#"CMD ["sh"]"#,
            "-c",
            &format!("LABEL {IMAGE_LABEL}=busybox"),
            "-",
            BUSYBOX_IMAGE,
        ],
        &archive,
    )?;
    Ok(())
}

fn ensure_standin_image(binary: &Path, hash: &str) -> anyhow::Result<()> {
    let existing = inspect("image", STANDIN_IMAGE)?;
    if let Some(image) = &existing
        && image["Config"]["Labels"][STANDIN_HASH_LABEL] == hash
    {
        return Ok(());
    }
    let contents =
        std::fs::read(binary).with_context(|| format!("failed to read {}", binary.display()))?;
    let archive = busybox_root_fs(&[("bin/gitlab-standin", &contents)])?;
    docker_with_input(
        &[
            "import",
            "-c",
            "ENV PATH=/bin",
            "-c",
            r#"CMD ["gitlab-standin", "--help"]"#,
            "-c",
            "EXPOSE 80 443",
            "-c",
            &format!("LABEL {IMAGE_LABEL}=standin {STANDIN_HASH_LABEL}={hash}"),
            "-",
            STANDIN_IMAGE,
        ],
        &archive,
    )?;
    // The previous standin image is now untagged; remove it unless a
    // container or another tag still uses it.
    if let Some(old_id) = existing.as_ref().and_then(|image| image["Id"].as_str()) {
        let _ = crate::docker::docker_output(&["image", "rm", old_id]);
    }
    Ok(())
}

/// Returns a tar archive of the busybox root filesystem plus `extra`
/// executables (path inside the image, contents).
fn busybox_root_fs(extra: &[(&str, &[u8])]) -> anyhow::Result<Vec<u8>> {
    let busybox = std::fs::read(HOST_BUSYBOX).with_context(|| {
        format!("failed to read {HOST_BUSYBOX}: install Debian's busybox-static package")
    })?;
    if has_interpreter(&busybox) {
        bail!("{HOST_BUSYBOX} is dynamically linked: install Debian's busybox-static package");
    }
    let list = Command::new(HOST_BUSYBOX)
        .arg("--list")
        .output()
        .with_context(|| format!("failed to run {HOST_BUSYBOX} --list"))?;
    if !list.status.success() {
        bail!("{HOST_BUSYBOX} --list failed ({})", list.status);
    }
    let applets = String::from_utf8_lossy(&list.stdout);

    let mut builder = tar::Builder::new(Vec::new());
    for (dir, mode) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("root", 0o700),
        ("tmp", 0o1777),
        ("standin", 0o755),
    ] {
        append_dir(&mut builder, dir, mode)?;
    }
    append_file(&mut builder, "bin/busybox", &busybox, 0o755)?;
    for applet in applets.lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" {
            continue;
        }
        append_symlink(&mut builder, &format!("bin/{applet}"), "busybox")?;
    }
    append_file(
        &mut builder,
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        0o644,
    )?;
    append_file(
        &mut builder,
        "etc/group",
        b"root:x:0:\nnogroup:x:65534:\n",
        0o644,
    )?;
    for (path, contents) in extra {
        append_file(&mut builder, path, contents, 0o755)?;
    }
    Ok(builder.into_inner()?)
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

fn append_dir(builder: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) -> anyhow::Result<()> {
    let mut header = header(tar::EntryType::Directory, mode, 0);
    builder.append_data(&mut header, path, std::io::empty())?;
    Ok(())
}

fn append_file(
    builder: &mut tar::Builder<Vec<u8>>,
    path: &str,
    contents: &[u8],
    mode: u32,
) -> anyhow::Result<()> {
    let mut header = header(tar::EntryType::Regular, mode, contents.len() as u64);
    builder.append_data(&mut header, path, contents)?;
    Ok(())
}

fn append_symlink(
    builder: &mut tar::Builder<Vec<u8>>,
    path: &str,
    target: &str,
) -> anyhow::Result<()> {
    let mut header = header(tar::EntryType::Symlink, 0o777, 0);
    builder.append_link(&mut header, path, target)?;
    Ok(())
}

/// Returns `true` if an ELF file names a program interpreter (`PT_INTERP`),
/// as dynamically linked executables do. The busybox image has none.
fn has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let read_u16 = |offset: usize| {
        elf.get(offset..offset + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let read_u32 = |offset: usize| {
        elf.get(offset..offset + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let read_u64 = |offset: usize| {
        elf.get(offset..offset + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("slice of 8 bytes")))
    };
    // Only 64-bit little-endian ELF files are checked. Anything else counts as
    // static and fails later, when the container starts.
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        return false;
    }
    let (Some(table), Some(entry_size), Some(count)) =
        (read_u64(0x20), read_u16(0x36), read_u16(0x38))
    else {
        return false;
    };
    (0..usize::from(count)).any(|index| {
        let offset = table as usize + index * usize::from(entry_size);
        read_u32(offset) == Some(PT_INTERP)
    })
}

/// 64-bit FNV-1a, enough to notice that the binary changed.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Finds or builds a statically linked `gitlab-standin`.
///
/// The binary is linked statically against glibc (`+crt-static`, with
/// Debian's `libc6-dev` providing `libc.a`) because the busybox image has no
/// dynamic loader or shared libraries. Copying the host's `ld-linux` and
/// `libc.so.6` (found with `ldd`) would also work but ties the image to the
/// host's library layout. The build goes to its own target directory
/// (`target/standin-static`), so it neither invalidates the workspace's normal
/// build nor waits for the lock of a `cargo test` that is running this code.
fn standin_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(STANDIN_BIN_ENV) {
        let path = PathBuf::from(path);
        let contents = std::fs::read(&path)
            .with_context(|| format!("{STANDIN_BIN_ENV}={} cannot be read", path.display()))?;
        if has_interpreter(&contents) {
            bail!(
                "{STANDIN_BIN_ENV}={} is dynamically linked; the standin image needs a static binary",
                path.display()
            );
        }
        return Ok(path);
    }

    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace_target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => manifest_dir
            .parent()
            .context("the testbed crate has no parent directory")?
            .join("target"),
    };
    let target_dir = workspace_target.join("standin-static");
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());

    eprintln!(
        "ci-doctor-testbed: building the static gitlab-standin in {} (a first build takes about a minute on two cores)",
        target_dir.display()
    );
    let output = Command::new(&cargo)
        .arg("build")
        .arg("--manifest-path")
        .arg(manifest_dir.join("Cargo.toml"))
        .args([
            "-p",
            "ci-doctor-testbed",
            "--bin",
            "gitlab-standin",
            "--target",
            &triple,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        // With an explicit --target, RUSTFLAGS applies to the target only and
        // not to build scripts and proc macros, which cannot be static.
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .output()
        .with_context(|| format!("failed to run {}", cargo.to_string_lossy()))?;
    if !output.status.success() {
        bail!(
            "building the static gitlab-standin failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let binary = target_dir
        .join(&triple)
        .join("debug")
        .join("gitlab-standin");
    if !binary.is_file() {
        bail!(
            "cargo reported success but {} does not exist",
            binary.display()
        );
    }
    Ok(binary)
}

/// Returns the image id of a base image, building the images first.
pub(crate) fn base_image_id(base: Base) -> anyhow::Result<String> {
    ensure_images()?;
    docker(&["image", "inspect", "--format", "{{.Id}}", base.image_ref()])
}

/// Returns `true` if an image (as `docker image inspect` JSON) was built by
/// the test bed.
pub(crate) fn is_testbed_image(image: &serde_json::Value) -> anyhow::Result<bool> {
    if image["Config"]["Labels"][IMAGE_LABEL].is_string() {
        return Ok(true);
    }
    // A busybox image imported by hand, with the same `docker import` but
    // without the LABEL change, has no label.
    Ok(image["Id"].as_str() == Some(base_image_id(Base::Busybox)?.as_str()))
}

/// Tags `base` as `image_ref` (for example `gitlab/gitlab-runner:v17.5.3`),
/// building the base images first. Returns `true` if the tag is new.
///
/// When `image_ref` already names a test bed image, it returns `false`: a
/// derived image (from `Bed::image`) stays as it is, and any other test bed
/// image is re-tagged to `base`.
///
/// Fails without touching anything when `image_ref` names an image that the
/// test bed did not build, such as a real GitLab image pulled earlier.
///
/// NOTE: a tag added by this function stays until removed by hand, whereas a
/// bed removes the tags that it added itself when it is dropped.
pub fn tag(image_ref: &str, base: Base) -> anyhow::Result<bool> {
    let base_id = base_image_id(base)?;
    let Some(existing) = inspect("image", image_ref)? else {
        docker(&["tag", base.image_ref(), image_ref])?;
        return Ok(true);
    };
    if existing["Id"].as_str() == Some(base_id.as_str()) {
        return Ok(false);
    }
    if !is_testbed_image(&existing)? {
        bail!(
            "image {image_ref} exists and was not built by the ci-doctor test bed; \
             remove it (docker image rm {image_ref}) or run the tests against another Docker host"
        );
    }
    if existing["Config"]["Labels"][IMAGE_LABEL] == "derived" {
        return Ok(false);
    }
    docker(&["tag", base.image_ref(), image_ref])?;
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_busybox_is_static() {
        let busybox = std::fs::read(HOST_BUSYBOX).unwrap();
        assert!(!has_interpreter(&busybox));
    }

    #[test]
    fn dynamic_executable_has_interpreter() {
        // Test binaries are linked dynamically unless built with +crt-static.
        let test_binary = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(has_interpreter(&test_binary));
    }

    #[test]
    fn fnv1a64_matches_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn root_fs_links_applets_but_not_busybox() {
        let archive = busybox_root_fs(&[]).unwrap();
        let mut reader = tar::Archive::new(archive.as_slice());
        let mut paths = Vec::new();
        for entry in reader.entries().unwrap() {
            let entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            if entry.header().entry_type() == tar::EntryType::Symlink {
                assert_eq!(
                    entry.link_name().unwrap().unwrap().to_str(),
                    Some("busybox"),
                    "{path}"
                );
            }
            paths.push(path);
        }
        assert!(paths.contains(&"bin/busybox".to_owned()));
        assert!(paths.contains(&"bin/wget".to_owned()));
        assert!(paths.contains(&"bin/sh".to_owned()));
        assert_eq!(
            paths
                .iter()
                .filter(|path| path.as_str() == "bin/busybox")
                .count(),
            1
        );
    }
}
