//! Docker scenarios: networks, volumes, images and containers with the exact
//! names a scenario uses (`gitlab`, `gitlab-runner`, `ci-net`, ...), removed
//! again when the [`Bed`] is dropped, also when the test panics.
//!
//! Because the names are fixed and the Docker daemon is shared, only one bed
//! exists at a time: a process-wide mutex orders the threads of one process and
//! an `flock` on `<temp dir>/ci-doctor-testbed.lock` orders processes.
//!
//! Every object a bed creates carries the labels [`BED_LABEL`] (the bed id)
//! and [`OWNER_LABEL`] (the creating process). A bed never removes or changes
//! an object without those labels: when a name it needs is taken by anything
//! else, it fails and names the object.

mod container;
mod owner;

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use serde_json::Value;

pub use container::{Container, ContainerBuilder, ExecOutput};

use crate::docker::{docker, docker_output, inspect};
use crate::file_lock::FileLock;
use crate::images::{self, Base, IMAGE_LABEL};

/// Label with the id of the bed that created an object.
pub const BED_LABEL: &str = "ci-doctor-testbed";
/// Label with the identity of the process that created an object.
pub const OWNER_LABEL: &str = "ci-doctor-testbed.owner";
/// Label with the scenario name passed to [`Bed::new`].
pub const SCENARIO_LABEL: &str = "ci-doctor-testbed.scenario";

/// Thread of this process that currently owns the bed slot.
static SLOT_HOLDER: Mutex<Option<ThreadId>> = Mutex::new(None);
static SLOT_FREED: Condvar = Condvar::new();

fn lock_slot() -> MutexGuard<'static, Option<ThreadId>> {
    SLOT_HOLDER.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The one bed slot of this process. Unlike a `MutexGuard`, this guard is
/// `Send`, so a bed can move between threads.
#[derive(Debug)]
struct ProcessSlot;

impl ProcessSlot {
    fn acquire() -> anyhow::Result<ProcessSlot> {
        let me = std::thread::current().id();
        let mut holder = lock_slot();
        loop {
            match *holder {
                None => {
                    *holder = Some(me);
                    return Ok(ProcessSlot);
                }
                Some(thread) if thread == me => bail!(
                    "this thread already has a Bed; drop it before creating another, \
                     because beds share container names"
                ),
                Some(_) => {
                    holder = SLOT_FREED
                        .wait(holder)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }
}

impl Drop for ProcessSlot {
    fn drop(&mut self) {
        *lock_slot() = None;
        SLOT_FREED.notify_one();
    }
}

/// An object a bed created, in creation order.
#[derive(Debug, Clone)]
enum Created {
    Container(String),
    Network(String),
    Volume(String),
    /// A derived image built by [`ImageBuilder::build`].
    Image(String),
    /// A tag of a base image that the bed added.
    Tag(String),
}

/// One test scenario on the local Docker Engine.
///
/// ```no_run
/// use ci_doctor_testbed::{Bed, State};
///
/// let bed = Bed::new("runner-cannot-reach-gitlab")?;
/// bed.network("ci-net").create()?;
/// let gitlab = bed
///     .container("gitlab")
///     .image("gitlab/gitlab-ce:17.5.2-ce.0")
///     .network("ci-net")
///     .gitlab_standin(&State::default())
///     .start()?;
/// let address = gitlab.ip("ci-net")?;
/// # let _ = address;
/// # anyhow::Ok(())
/// ```
pub struct Bed {
    id: String,
    scenario: String,
    dir: tempfile::TempDir,
    created: Mutex<Vec<Created>>,
    // Dropped after `Drop::drop` removed everything: file lock, then slot.
    _file_lock: FileLock,
    _slot: ProcessSlot,
}

impl std::fmt::Debug for Bed {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Bed")
            .field("id", &self.id)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Bed {
    /// Waits until no other bed exists (in this process or another), removes
    /// leftovers of test processes that died, and returns an empty bed.
    /// `scenario` is recorded in a label, to tell what left an object behind.
    pub fn new(scenario: &str) -> anyhow::Result<Bed> {
        let slot = ProcessSlot::acquire()?;
        let file_lock = FileLock::acquire("ci-doctor-testbed.lock")?;
        docker(&["version", "--format", "{{.Server.Version}}"])
            .context("the Docker Engine is not reachable through the docker CLI")?;
        remove_leftovers()?;

        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let id = format!("{}-{}", std::process::id(), nanos);
        let dir = tempfile::Builder::new()
            .prefix("ci-doctor-bed-")
            .tempdir()
            .context("failed to create the bed directory")?;
        Ok(Bed {
            id,
            scenario: scenario.to_owned(),
            dir,
            created: Mutex::new(Vec::new()),
            _file_lock: file_lock,
            _slot: slot,
        })
    }

    /// Value of [`BED_LABEL`] on the objects of this bed.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Directory owned by the bed, removed on drop. Bind mounts must come
    /// from below it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Creates `relative` (and its parents) below [`Bed::dir`].
    pub fn create_dir(&self, relative: &str) -> anyhow::Result<PathBuf> {
        let path = self.bed_path(relative)?;
        std::fs::create_dir_all(&path)
            .with_context(|| format!("failed to create {}", path.display()))?;
        Ok(path)
    }

    /// Writes a file below [`Bed::dir`], creating its parent directories.
    pub fn write_file(
        &self,
        relative: &str,
        contents: impl AsRef<[u8]>,
    ) -> anyhow::Result<PathBuf> {
        let path = self.bed_path(relative)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("failed to create {}", parent.display()))?;
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("failed to write {}", path.display()))?;
        Ok(path)
    }

    fn bed_path(&self, relative: &str) -> anyhow::Result<PathBuf> {
        let relative = Path::new(relative);
        if relative.is_absolute()
            || relative
                .components()
                .any(|component| matches!(component, std::path::Component::ParentDir))
        {
            bail!(
                "{} is not a relative path inside the bed directory",
                relative.display()
            );
        }
        Ok(self.dir().join(relative))
    }

    /// Starts describing a network; see [`NetworkBuilder::create`].
    pub fn network(&self, name: &str) -> NetworkBuilder<'_> {
        NetworkBuilder {
            bed: self,
            name: name.to_owned(),
            internal: false,
            labels: Vec::new(),
        }
    }

    /// Creates a named volume.
    pub fn volume(&self, name: &str) -> anyhow::Result<()> {
        self.ensure_name_free("volume", name)?;
        let mut args = vec!["volume".to_owned(), "create".to_owned()];
        args.extend(self.label_args());
        args.push(name.to_owned());
        docker(&args)?;
        self.record(Created::Volume(name.to_owned()));
        Ok(())
    }

    /// Starts describing a container; see [`ContainerBuilder::start`].
    pub fn container(&self, name: &str) -> ContainerBuilder<'_> {
        ContainerBuilder::new(self, name)
    }

    /// Starts describing an image derived from a base image with extra
    /// Dockerfile instructions; see [`ImageBuilder::build`].
    pub fn image(&self, image_ref: &str) -> ImageBuilder<'_> {
        ImageBuilder {
            bed: self,
            image_ref: image_ref.to_owned(),
            base: Base::Busybox,
            instructions: Vec::new(),
        }
    }

    /// Returns the IP address of container `name` on `network`.
    pub fn container_ip(&self, name: &str, network: &str) -> anyhow::Result<std::net::IpAddr> {
        Container::existing(name).ip(network)
    }

    /// Runs a command in container `name`; see [`Container::exec`].
    pub fn exec(&self, name: &str, command: &[&str]) -> anyhow::Result<ExecOutput> {
        Container::existing(name).exec(command)
    }

    /// `--label` arguments for every object of this bed.
    fn label_args(&self) -> Vec<String> {
        vec![
            "--label".to_owned(),
            format!("{BED_LABEL}={}", self.id),
            "--label".to_owned(),
            format!("{OWNER_LABEL}={}", owner::current_owner()),
            "--label".to_owned(),
            format!("{SCENARIO_LABEL}={}", self.scenario),
        ]
    }

    fn record(&self, object: Created) {
        self.created
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(object);
    }

    fn created_by_bed(&self, wanted: impl Fn(&Created) -> bool) -> bool {
        self.created
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(wanted)
    }

    /// Fails unless no `kind` object is called `name`. The error names the
    /// object and the command that frees the name.
    fn ensure_name_free(&self, kind: &str, name: &str) -> anyhow::Result<()> {
        let Some(object) = inspect(kind, name)? else {
            return Ok(());
        };
        // `docker inspect` also matches id prefixes. Only the same name clashes.
        let found_name = object["Name"].as_str().unwrap_or_default();
        if found_name.trim_start_matches('/') != name {
            return Ok(());
        }
        let labels = object_labels(kind, &object);
        let bed = labels[BED_LABEL].as_str();
        let owner = labels[OWNER_LABEL].as_str();
        match (bed, owner) {
            (Some(bed), _) if bed == self.id => {
                bail!("{kind} {name} was already created in this bed")
            }
            (Some(_), Some(owner)) => bail!(
                "{kind} {name} belongs to another test bed, of the running process {owner}; \
                 wait for that test to finish or remove the {kind} ({})",
                removal_command(kind, name)
            ),
            _ => bail!(
                "{kind} {name} exists and was not created by the ci-doctor test bed; \
                 remove it ({}) or run the tests against another Docker host (DOCKER_HOST)",
                removal_command(kind, name)
            ),
        }
    }

    /// Removes one object if it still carries this bed's label.
    fn remove(&self, object: &Created) -> anyhow::Result<()> {
        match object {
            Created::Container(name) => {
                self.remove_labelled("container", name, &["rm", "--force", "--volumes"])
            }
            Created::Network(name) => self.remove_labelled("network", name, &["network", "rm"]),
            Created::Volume(name) => self.remove_labelled("volume", name, &["volume", "rm"]),
            Created::Image(image_ref) => self.remove_labelled("image", image_ref, &["image", "rm"]),
            Created::Tag(image_ref) => {
                // A tag has no labels of its own. It is removed only while it
                // still names a test bed image, so nothing else is untagged.
                let Some(image) = inspect("image", image_ref)? else {
                    return Ok(());
                };
                if images::is_testbed_image(&image)?
                    && image["Config"]["Labels"][IMAGE_LABEL] != "derived"
                {
                    docker(&["image", "rm", "--no-prune", image_ref.as_str()])?;
                }
                Ok(())
            }
        }
    }

    fn remove_labelled(&self, kind: &str, name: &str, remove_args: &[&str]) -> anyhow::Result<()> {
        let Some(object) = inspect(kind, name)? else {
            return Ok(());
        };
        if object_labels(kind, &object)[BED_LABEL].as_str() != Some(self.id.as_str()) {
            return Ok(());
        }
        let mut args: Vec<&str> = remove_args.to_vec();
        args.push(name);
        docker(&args)?;
        Ok(())
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let created =
            std::mem::take(&mut *self.created.lock().unwrap_or_else(PoisonError::into_inner));
        // Containers first, because networks, volumes and images in use
        // cannot be removed.
        let rank = |object: &Created| match object {
            Created::Container(_) => 0,
            Created::Network(_) => 1,
            Created::Volume(_) => 2,
            Created::Image(_) => 3,
            Created::Tag(_) => 4,
        };
        let mut ordered = created;
        ordered.reverse();
        ordered.sort_by_key(rank);
        // ci-doctor ends its probe containers without waiting for Docker to remove them, and a
        // network cannot be removed while one is still attached.
        wait_for_probe_containers(Duration::from_secs(10));
        for object in &ordered {
            if let Err(error) = self.remove(object) {
                eprintln!(
                    "ci-doctor-testbed: failed to remove {object:?} of bed {}: {error:#}",
                    self.id
                );
            }
        }
    }
}

fn removal_command(kind: &str, name: &str) -> String {
    match kind {
        "container" => format!("docker rm -f {name}"),
        other => format!("docker {other} rm {name}"),
    }
}

/// Labels of an object as `docker inspect` shows them, which differs by kind.
fn object_labels<'v>(kind: &str, object: &'v Value) -> &'v Value {
    match kind {
        "container" | "image" => &object["Config"]["Labels"],
        _ => &object["Labels"],
    }
}

/// Removes objects labelled by processes that no longer run, and by this
/// process (whose earlier beds are all dropped, since only one bed exists at
/// a time).
///
/// NOTE: liveness is read from this machine's `/proc`, so a bed of a process
/// in another PID namespace that shares the Docker Engine looks dead here.
fn remove_leftovers() -> anyhow::Result<()> {
    let filter = format!("label={OWNER_LABEL}");
    let owner_format = format!("{{{{.Label \"{OWNER_LABEL}\"}}}}");
    let is_leftover =
        |owner: &str| owner == owner::current_owner() || !owner::owner_is_alive(owner);

    let container_format = format!("{{{{.ID}}}}\t{owner_format}");
    let network_format = container_format.clone();
    let volume_format = format!("{{{{.Name}}}}\t{owner_format}");
    let listings: [(Vec<&str>, &[&str]); 3] = [
        (
            vec![
                "ps",
                "--all",
                "--no-trunc",
                "--filter",
                &filter,
                "--format",
                &container_format,
            ],
            &["rm", "--force", "--volumes"],
        ),
        (
            vec![
                "network",
                "ls",
                "--no-trunc",
                "--filter",
                &filter,
                "--format",
                &network_format,
            ],
            &["network", "rm"],
        ),
        (
            vec![
                "volume",
                "ls",
                "--filter",
                &filter,
                "--format",
                &volume_format,
            ],
            &["volume", "rm", "--force"],
        ),
    ];
    for (list_args, remove_args) in listings {
        for line in docker(&list_args)?.lines() {
            let Some((id, owner)) = line.split_once('\t') else {
                continue;
            };
            if is_leftover(owner) {
                let mut args: Vec<&str> = remove_args.to_vec();
                args.push(id);
                docker(&args)
                    .with_context(|| format!("failed to remove {id}, left over by a test bed"))?;
            }
        }
    }

    // `docker image ls` cannot print labels, so each derived image is inspected.
    let images = docker(&["image", "ls", "--quiet", "--no-trunc", "--filter", &filter])?;
    for id in images.lines().collect::<std::collections::BTreeSet<_>>() {
        let Some(image) = inspect("image", id)? else {
            continue;
        };
        if let Some(owner) = image["Config"]["Labels"][OWNER_LABEL].as_str()
            && is_leftover(owner)
        {
            let output = docker_output(&["image", "rm", "--force", id])?;
            if !output.status.success() {
                eprintln!(
                    "ci-doctor-testbed: failed to remove leftover image {id}: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
        }
    }
    Ok(())
}

/// Describes a network; [`NetworkBuilder::create`] creates it. Docker
/// chooses the subnet.
#[must_use = "call create() to create the network"]
pub struct NetworkBuilder<'b> {
    bed: &'b Bed,
    name: String,
    internal: bool,
    labels: Vec<(String, String)>,
}

impl NetworkBuilder<'_> {
    /// Creates the network with `--internal`: no route to outside the host.
    pub fn internal(mut self) -> Self {
        self.internal = true;
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Creates the network (bridge driver).
    pub fn create(self) -> anyhow::Result<()> {
        self.bed.ensure_name_free("network", &self.name)?;
        let mut args = vec!["network".to_owned(), "create".to_owned()];
        args.extend(self.bed.label_args());
        for (key, value) in &self.labels {
            args.push("--label".to_owned());
            args.push(format!("{key}={value}"));
        }
        if self.internal {
            args.push("--internal".to_owned());
        }
        args.push(self.name.clone());
        docker(&args)?;
        self.bed.record(Created::Network(self.name));
        Ok(())
    }
}

/// Describes an image built from a base image with extra Dockerfile
/// instructions, such as a `docker:dind` look-alike with
/// `ENV DOCKER_TLS_CERTDIR=/certs` and `EXPOSE 2375 2376`. The image is
/// removed when the bed is dropped.
#[must_use = "call build() to build the image"]
pub struct ImageBuilder<'b> {
    bed: &'b Bed,
    image_ref: String,
    base: Base,
    instructions: Vec<String>,
}

impl ImageBuilder<'_> {
    /// Base image to start from (default [`Base::Busybox`]).
    pub fn from(mut self, base: Base) -> Self {
        self.base = base;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.instructions
            .push(format!("ENV {key}={}", dockerfile_string(value)));
        self
    }

    /// Adds `EXPOSE`, for example `expose("2376")` or `expose("53/udp")`.
    pub fn expose(mut self, port: &str) -> Self {
        self.instructions.push(format!("EXPOSE {port}"));
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.instructions.push(format!(
            "LABEL {}={}",
            dockerfile_string(key),
            dockerfile_string(value)
        ));
        self
    }

    pub fn entrypoint(mut self, entrypoint: &[&str]) -> Self {
        self.instructions.push(format!(
            "ENTRYPOINT {}",
            serde_json::to_string(entrypoint).expect("strings serialize")
        ));
        self
    }

    pub fn cmd(mut self, command: &[&str]) -> Self {
        self.instructions.push(format!(
            "CMD {}",
            serde_json::to_string(command).expect("strings serialize")
        ));
        self
    }

    /// Adds any other Dockerfile instruction that needs no build context or
    /// network, such as `WORKDIR /builds` or `USER nobody`.
    pub fn instruction(mut self, instruction: &str) -> Self {
        self.instructions.push(instruction.to_owned());
        self
    }

    /// Builds the image with `docker build` from the local base image.
    pub fn build(self) -> anyhow::Result<()> {
        images::ensure_images()?;
        if let Some(existing) = inspect("image", &self.image_ref)?
            && !images::is_testbed_image(&existing)?
        {
            bail!(
                "image {} exists and was not built by the ci-doctor test bed; \
                 remove it (docker image rm {}) or run the tests against another Docker host",
                self.image_ref,
                self.image_ref
            );
        }
        let mut dockerfile = format!(
            "FROM {}\nLABEL {IMAGE_LABEL}=derived\n",
            self.base.image_ref()
        );
        for instruction in &self.instructions {
            dockerfile.push_str(instruction);
            dockerfile.push('\n');
        }
        let context = tempfile::Builder::new()
            .prefix("image-")
            .tempdir_in(self.bed.dir())
            .context("failed to create a build context directory")?;
        std::fs::write(context.path().join("Dockerfile"), dockerfile)?;

        let mut args = vec!["build".to_owned(), "--quiet".to_owned()];
        args.extend(self.bed.label_args());
        args.extend(["--tag".to_owned(), self.image_ref.clone()]);
        args.push(context.path().to_string_lossy().into_owned());
        // The classic builder reads FROM images from the local image store
        // and works without the buildx plugin, which a Docker CLI may lack.
        let output = std::process::Command::new("docker")
            .args(&args)
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .context("failed to start docker build")?;
        if !output.status.success() {
            bail!(
                "`docker {}` failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        self.bed.record(Created::Image(self.image_ref));
        Ok(())
    }
}

impl Bed {
    /// Builds `image_ref` from the `Dockerfile` in `context`, a directory
    /// inside the bed directory, with `--build-arg`s. The Dockerfile may use
    /// only local images (`FROM scratch` or a test bed base); nothing is
    /// pulled. The image is removed when the bed is dropped.
    pub fn build_image(
        &self,
        image_ref: &str,
        context: &Path,
        build_args: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let bed_dir = self
            .dir()
            .canonicalize()
            .context("failed to resolve the bed directory")?;
        let context = context
            .canonicalize()
            .with_context(|| format!("build context {} does not exist", context.display()))?;
        if !context.starts_with(&bed_dir) {
            bail!(
                "build context {} is outside the bed directory {}; create it with Bed::create_dir",
                context.display(),
                bed_dir.display()
            );
        }
        if let Some(existing) = inspect("image", image_ref)?
            && !images::is_testbed_image(&existing)?
        {
            bail!(
                "image {image_ref} exists and was not built by the ci-doctor test bed; \
                 remove it (docker image rm {image_ref}) or run the tests against another Docker host"
            );
        }

        let mut args = vec!["build".to_owned(), "--quiet".to_owned()];
        args.extend(self.label_args());
        args.extend(["--label".to_owned(), format!("{IMAGE_LABEL}=derived")]);
        for (name, value) in build_args {
            args.extend(["--build-arg".to_owned(), format!("{name}={value}")]);
        }
        args.extend(["--tag".to_owned(), image_ref.to_owned()]);
        args.push(context.to_string_lossy().into_owned());
        let output = std::process::Command::new("docker")
            .args(&args)
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .context("failed to start docker build")?;
        if !output.status.success() {
            bail!(
                "`docker {}` failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        self.record(Created::Image(image_ref.to_owned()));
        Ok(())
    }
}

/// Quotes a value for `ENV` and `LABEL` in a Dockerfile, which accept
/// double-quoted strings with backslash escapes.
fn dockerfile_string(value: &str) -> String {
    serde_json::to_string(value).expect("strings serialize")
}

/// Label that ci-doctor puts on the probe containers it starts.
pub const PROBE_LABEL: &str = "ci-doctor.probe";

/// Waits until no container carries [`PROBE_LABEL`], or `limit` passes. Returns whether none is
/// left.
pub fn wait_for_probe_containers(limit: Duration) -> bool {
    let filter = format!("label={PROBE_LABEL}");
    let started = std::time::Instant::now();
    loop {
        let left = docker(&["ps", "--all", "--quiet", "--filter", &filter]).map(|out| out.trim().is_empty()).unwrap_or(true);
        if left || started.elapsed() >= limit {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
