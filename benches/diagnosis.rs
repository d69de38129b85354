//! Times whole runs of the release binary against the commands they replace, on setups built on
//! the local Docker Engine, and prints each target's ratio.
//!
//! Run it with `bash scripts/bench` (or `cargo bench --bench diagnosis`). Commands of one
//! comparison run alternately, so that a slow moment of the machine or the daemon falls on all of
//! them alike. Each figure is the median of `--runs` runs after one warm-up run. Peak memory is the
//! median of three more runs under GNU time, which reports the maximum resident set size.
//!
//! Options: `--runs N` (default 21), `--only NAME` to run one section (`healthy`, `scale`,
//! `dead`, `startup`), `--hold SECONDS` to keep the scale setup up after timing it, so that a
//! profiler can be run against it by hand.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use ci_doctor_testbed::state::Runner;
use ci_doctor_testbed::{Bed, DnsRecord, State};

/// The binary to time: `CI_DOCTOR_BENCH_BINARY` when set, else the one Cargo built for the
/// benchmark. `scripts/bench` sets it to a plain release build, because Cargo builds the
/// benchmark's copy with the features of the test dependencies too, which makes it larger.
static BINARY: LazyLock<String> = LazyLock::new(|| std::env::var("CI_DOCTOR_BENCH_BINARY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ci-doctor").to_string()));
const RUNNER_IMAGE: &str = "gitlab/gitlab-runner:v17.5.3";
const GITLAB_IMAGE: &str = "gitlab/gitlab-ce:17.5.2-ce.0";
const JOB_IMAGE: &str = "alpine:3.20";
const BUSYBOX: &str = "ci-doctor-test/busybox:latest";

/// The local daemon's socket, to which the container-list comparison sends its request.
const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// GNU time, which reports a command's peak resident memory. Reading it from this process's own
/// `wait4` would not do: Linux counts the parent's memory at fork into the child's peak.
const TIME: &str = "/usr/bin/time";

/// Runner containers and `[[runners]]` entries of the scale setup, and the containers its daemon
/// contains in all.
const SCALE_RUNNERS: usize = 50;
const SCALE_ENTRIES: usize = 200;
const SCALE_CONTAINERS: usize = 500;

/// Runner containers of the larger dead-GitLab setup.
const DEAD_RUNNERS: usize = 10;

/// The default probe time limit, in seconds, which the dead-GitLab runs keep.
const DEAD_TIMEOUT: u64 = 5;

fn main() -> anyhow::Result<()> {
    let options = Options::parse()?;
    ensure!(is_root(), "the benchmark needs root: probes enter container network namespaces, and the comparison must include them");
    ci_doctor_testbed::ensure_images()?;
    println!("ci-doctor benchmark: {} runs per command, binary {} ({:.1} MB)", options.runs, *BINARY, binary_megabytes()?);
    println!("machine: {}", machine()?);
    println!();

    let mut report = Report::default();
    if options.wants("healthy") || options.wants("scale") {
        healthy_and_scale(&options, &mut report)?;
    }
    if options.wants("dead") {
        dead_gitlab(&options, &mut report)?;
    }
    if options.wants("startup") {
        startup(&options, &mut report)?;
    }
    report.print();
    Ok(())
}

struct Options {
    runs: usize,
    only: Option<String>,
    /// Seconds to keep the scale setup up after timing it, for profiling by hand.
    hold: u64,
}

impl Options {
    fn parse() -> anyhow::Result<Options> {
        let mut options = Options { runs: 21, only: None, hold: 0 };
        // `cargo bench` passes `--bench`; it means nothing here.
        let mut args = std::env::args().skip(1).filter(|arg| arg != "--bench");
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--runs" => {
                    let value = args.next().context("--runs needs a number")?;
                    options.runs = value.parse().with_context(|| format!("--runs {value}: not a whole number"))?;
                    ensure!(options.runs > 0, "--runs must be at least 1");
                }
                "--only" => options.only = Some(args.next().context("--only needs healthy, scale, dead or startup")?),
                "--hold" => {
                    let value = args.next().context("--hold needs a number of seconds")?;
                    options.hold = value.parse().with_context(|| format!("--hold {value}: not a whole number of seconds"))?;
                }
                other => bail!("unknown argument `{other}`; use --runs N, --only healthy|scale|dead|startup or --hold SECONDS"),
            }
        }
        Ok(options)
    }

    fn wants(&self, section: &str) -> bool {
        self.only.as_deref().is_none_or(|only| only == section)
    }
}

// --- Measuring ---------------------------------------------------------------------------------

/// Medians of a command's runs.
#[derive(Debug, Clone, Copy)]
struct Stats {
    wall: Duration,
    min: Duration,
    max: Duration,
    max_rss_kib: i64,
}

impl Stats {
    fn of(mut walls: Vec<Duration>, mut memory: Vec<i64>) -> Stats {
        walls.sort();
        memory.sort();
        Stats { wall: walls[walls.len() / 2], min: walls[0], max: walls[walls.len() - 1], max_rss_kib: memory[memory.len() / 2] }
    }

    fn millis(&self) -> f64 {
        self.wall.as_secs_f64() * 1000.0
    }
}

/// A command to time, with a label for the table.
struct Timed {
    label: String,
    program: String,
    args: Vec<String>,
    dir: PathBuf,
    /// Exit codes that count as a normal run.
    accepted: Vec<i32>,
    /// After each run, wait (untimed) until Docker has removed ci-doctor's probe containers, so
    /// that their removal does not slow the next command down.
    settle: bool,
}

impl Timed {
    fn new(label: &str, program: &str, args: &[&str], dir: &Path) -> Timed {
        Timed { label: label.into(), program: program.into(), args: args.iter().map(|arg| arg.to_string()).collect(), dir: dir.into(), accepted: vec![0], settle: false }
    }

    /// Creates a run of ci-doctor, after which the benchmark waits for its probe containers to go.
    fn ci_doctor(label: &str, args: &[&str], dir: &Path) -> Timed {
        let mut timed = Timed::new(label, &BINARY, args, dir);
        timed.settle = true;
        timed
    }

    /// Builds the command with its output discarded and the environment of a plain run.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.current_dir(&self.dir).env("NO_COLOR", "1").env_remove("GITLAB_TOKEN").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        command
    }

    /// Runs the command once and returns its wall time.
    fn run(&self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let status = self.command(&self.program).args(&self.args).status().with_context(|| format!("failed to start {}", self.program))?;
        let wall = started.elapsed();
        self.check(status)?;
        Ok(wall)
    }

    /// Runs the command once under GNU time and returns its peak memory in KiB.
    fn peak_memory(&self) -> anyhow::Result<i64> {
        let memory_file = tempfile::NamedTempFile::new()?;
        let status = self
            .command(TIME)
            .args(["--quiet", "--format", "%M", "--output"])
            .arg(memory_file.path())
            .arg(&self.program)
            .args(&self.args)
            .status()
            .with_context(|| format!("failed to start {TIME} (Debian's `time` package)"))?;
        self.check(status)?;
        let memory = std::fs::read_to_string(memory_file.path())?;
        memory.trim().parse().with_context(|| format!("{TIME} reported no peak memory: {memory:?}"))
    }

    /// Fails on an unexpected exit code; after a ci-doctor run, waits (untimed) for its probe
    /// containers to go.
    fn check(&self, status: std::process::ExitStatus) -> anyhow::Result<()> {
        let code = status.code().unwrap_or(-1);
        ensure!(self.accepted.contains(&code), "`{}` exited with {code}; expected one of {:?}", self.command_line(), self.accepted);
        if self.settle {
            ensure!(ci_doctor_testbed::wait_for_probe_containers(Duration::from_secs(10)), "probe containers of ci-doctor were still there after 10 s");
        }
        Ok(())
    }

    fn command_line(&self) -> String {
        std::iter::once(self.program.as_str()).chain(self.args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ")
    }
}

/// Runs `commands` alternately, one warm-up round and then `runs` timed rounds, then each
/// command [`MEMORY_RUNS`] times under GNU time for its peak memory, and returns each command's
/// medians in the same order. Wall times are taken without GNU time in between.
fn compare(commands: &[Timed], runs: usize) -> anyhow::Result<Vec<Stats>> {
    for command in commands {
        command.run().with_context(|| format!("warm-up of {}", command.label))?;
    }
    let mut walls: Vec<Vec<Duration>> = vec![Vec::new(); commands.len()];
    for _ in 0..runs {
        for (command, walls) in commands.iter().zip(&mut walls) {
            walls.push(command.run()?);
        }
    }
    let mut stats = Vec::new();
    for (command, walls) in commands.iter().zip(walls) {
        let memory = (0..MEMORY_RUNS).map(|_| command.peak_memory()).collect::<anyhow::Result<Vec<i64>>>()?;
        let figures = Stats::of(walls, memory);
        println!(
            "  {:<52} median {:>8.1} ms  (min {:.1}, max {:.1})  peak memory {:>5.1} MiB",
            command.label,
            figures.millis(),
            figures.min.as_secs_f64() * 1000.0,
            figures.max.as_secs_f64() * 1000.0,
            kib_to_mib(figures.max_rss_kib)
        );
        stats.push(figures);
    }
    Ok(stats)
}

/// Runs under GNU time per command, for its peak memory.
const MEMORY_RUNS: usize = 3;

// --- Report ------------------------------------------------------------------------------------

/// The targets and how each came out.
#[derive(Default)]
struct Report {
    rows: Vec<Row>,
}

struct Row {
    target: String,
    measured: String,
    ratio: f64,
    limit: f64,
}

impl Report {
    /// Records `value / baseline` against `limit` (met when the ratio is at most the limit).
    fn ratio(&mut self, target: &str, value: f64, baseline: f64, unit: &str, limit: f64) {
        self.rows.push(Row { target: target.into(), measured: format!("{value:.1} {unit} / {baseline:.1} {unit}"), ratio: value / baseline, limit });
    }

    fn print(&self) {
        let width = self.rows.iter().map(|row| row.target.len()).max().unwrap_or(0);
        println!();
        println!("{:<width$}  {:>24} {:>6} {:>6}  met", "target", "measured", "ratio", "limit");
        for row in &self.rows {
            let met = if row.ratio <= row.limit { "yes" } else { "NO" };
            println!("{:<width$}  {:>24} {:>6.2} {:>6.2}  {met}", row.target, row.measured, row.ratio, row.limit);
        }
    }
}

// --- Setups ------------------------------------------------------------------------------------

/// Times the healthy setup, then the same setup grown to the scale setup. The healthy setup is
/// GitLab (the stand-in) and a runner container on one user-defined network, which the jobs join
/// too, with the runner's config in a bind-mounted directory, the Docker socket mounted, and a
/// pipeline in the working directory.
fn healthy_and_scale(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    println!("healthy setup: GitLab, a runner container and its jobs on one network; one [[runners]] entry");
    let bed = Bed::new("bench-healthy")?;
    bed.image(JOB_IMAGE).build()?;
    bed.network("ci-net").create()?;
    let dns = dns_server(&bed, "ci-net", &[])?;

    // GitLab has every token of the scale setup, so that each entry verifies.
    let tokens: Vec<String> = (0..SCALE_RUNNERS + SCALE_ENTRIES).map(|index| format!("glrt-FAKEbench{index:010}Ab")).collect();
    let state = State { runners: tokens.iter().enumerate().map(|(index, token)| Runner::new(index as u64 + 1, token)).collect(), ..State::default() };
    let gitlab = bed
        .container("gitlab")
        .image(GITLAB_IMAGE)
        .hostname("gitlab")
        .network_with_aliases("ci-net", &["gitlab"])
        .env("GITLAB_OMNIBUS_CONFIG", "external_url 'http://gitlab'")
        .gitlab_standin(&state)
        .start()?;
    let gitlab_ip = gitlab.ip("ci-net")?;
    runner(&bed, "gitlab-runner", &config(&tokens[..1], dns, "network_mode = \"ci-net\""), &[], dns, Some("ci-net"))?;
    let project = project_dir(&bed)?;
    expect_healthy(&project)?;

    let no_probe = Timed::ci_doctor("ci-doctor --no-probe", &["--no-probe"], &project);
    let docker_info = Timed::new("docker info", "docker", &["info"], &project);
    let stats = compare(&[no_probe, docker_info], options.runs)?;
    let (healthy_no_probe, info) = (stats[0], stats[1]);
    report.ratio("healthy, --no-probe: wall time vs docker info (<= 1.0)", healthy_no_probe.millis(), info.millis(), "ms", 1.0);
    report.ratio("healthy, --no-probe: peak memory vs docker info (<= 1.0)", kib_to_mib(healthy_no_probe.max_rss_kib), kib_to_mib(info.max_rss_kib), "MiB", 1.0);

    let manual = manual_script(&bed, &format!("--network ci-net --dns {dns}"), gitlab_ip, &tokens[0])?;
    let healthy_full = compare_with_probes(&project, &manual, options, report, "healthy, jobs on the runner's network")?;

    if options.wants("scale") {
        println!();
        println!("scale setup: {SCALE_RUNNERS} runner containers, one config with {SCALE_ENTRIES} entries, {SCALE_CONTAINERS} containers in all");
        grow_to_scale(&bed, &tokens, dns)?;
        expect_healthy(&project)?;
        let no_probe = Timed::ci_doctor("ci-doctor --no-probe", &["--no-probe"], &project);
        let full = Timed::ci_doctor("ci-doctor (probes: runner and job views)", &[], &project);
        // Where the time goes: one runner on the same daemon, and the daemon's container list.
        let one_runner = Timed::ci_doctor("ci-doctor --no-probe --runner-container gitlab-runner", &["--no-probe", "--runner-container", "gitlab-runner"], &project);
        let one_runner_full = Timed::ci_doctor("ci-doctor --runner-container gitlab-runner", &["--runner-container", "gitlab-runner"], &project);
        let list = Timed::new("curl of the daemon's container list", "curl", &["-sf", "-o", "/dev/null", "--unix-socket", DOCKER_SOCKET, "http://localhost/containers/json?all=1"], &project);
        let stats = compare(&[no_probe, full, one_runner, one_runner_full, list], options.runs)?;
        report.ratio("scale, --no-probe: wall time vs healthy (<= 2.0)", stats[0].millis(), healthy_no_probe.millis(), "ms", 2.0);
        report.ratio("scale, with probes: wall time vs healthy (<= 2.0)", stats[1].millis(), healthy_full.millis(), "ms", 2.0);
        report.ratio("scale, --no-probe: wall time vs one runner, same daemon (<= 2.0)", stats[0].millis(), stats[2].millis(), "ms", 2.0);
        report.ratio("scale, with probes: wall time vs one runner, same daemon (<= 2.0)", stats[1].millis(), stats[3].millis(), "ms", 2.0);
        hold(options, &project);
    }
    drop(bed);

    if options.wants("healthy") {
        linked_setup(options, report, &state, &tokens[0])?;
        probe_container_setup(options, report, &state, &tokens[0])?;
    }
    Ok(())
}

/// Times the classic layout: GitLab and a runner container on the default bridge, the runner linked to
/// GitLab, and jobs linked the same way, so the runner's probes stand for the jobs'.
fn linked_setup(options: &Options, report: &mut Report, state: &State, token: &str) -> anyhow::Result<()> {
    println!();
    println!("healthy setup: GitLab and a runner container linked on the default bridge, jobs linked too; one [[runners]] entry");
    let bed = Bed::new("bench-healthy-linked")?;
    bed.image(JOB_IMAGE).build()?;
    let dns = dns_server(&bed, "bridge", &[])?;
    let gitlab = bed
        .container("gitlab")
        .image(GITLAB_IMAGE)
        .hostname("gitlab")
        .env("GITLAB_OMNIBUS_CONFIG", "external_url 'http://gitlab'")
        .gitlab_standin(state)
        .start()?;
    let gitlab_ip = gitlab.ip("bridge")?;
    runner(&bed, "gitlab-runner", &config(&[token.to_string()], dns, "links = [\"gitlab:gitlab\"]"), &["gitlab:gitlab"], dns, None)?;
    let project = project_dir(&bed)?;
    expect_healthy(&project)?;
    let manual = manual_script(&bed, &format!("--link gitlab:gitlab --dns {dns}"), gitlab_ip, token)?;
    compare_with_probes(&project, &manual, options, report, "healthy, jobs linked like the runner")?;
    Ok(())
}

/// Times GitLab and a runner container on one network, with jobs that map GitLab's name with
/// `extra_hosts`. No runner container has the job's view then, so it takes a probe container.
fn probe_container_setup(options: &Options, report: &mut Report, state: &State, token: &str) -> anyhow::Result<()> {
    println!();
    println!("healthy setup: GitLab and a runner container on one network, jobs map GitLab with extra_hosts (a probe container); one [[runners]] entry");
    let bed = Bed::new("bench-healthy-probe-container")?;
    bed.image(JOB_IMAGE).build()?;
    bed.network("ci-net").create()?;
    let dns = dns_server(&bed, "ci-net", &[])?;
    let gitlab = bed
        .container("gitlab")
        .image(GITLAB_IMAGE)
        .hostname("gitlab")
        .network_with_aliases("ci-net", &["gitlab"])
        .env("GITLAB_OMNIBUS_CONFIG", "external_url 'http://gitlab'")
        .gitlab_standin(state)
        .start()?;
    let gitlab_ip = gitlab.ip("ci-net")?;
    let job_network = format!("network_mode = \"ci-net\"\n    extra_hosts = [\"gitlab:{gitlab_ip}\"]");
    runner(&bed, "gitlab-runner", &config(&[token.to_string()], dns, &job_network), &[], dns, Some("ci-net"))?;
    let project = project_dir(&bed)?;
    expect_healthy(&project)?;
    let manual = manual_script(&bed, &format!("--network ci-net --add-host gitlab:{gitlab_ip} --dns {dns}"), gitlab_ip, token)?;
    compare_with_probes(&project, &manual, options, report, "healthy, jobs need a probe container")?;
    Ok(())
}

/// Times a whole diagnosis with probes against one `docker run --rm` and against `manual`, and
/// returns the diagnosis's figures.
fn compare_with_probes(project: &Path, manual: &Path, options: &Options, report: &mut Report, setup: &str) -> anyhow::Result<Stats> {
    let full = Timed::ci_doctor("ci-doctor (probes: runner and job view)", &[], project);
    let docker_run = Timed::new("docker run --rm (exits at once)", "docker", &["run", "--rm", BUSYBOX, "true"], project);
    let script = Timed::new("manual check script", "bash", &[manual.to_str().context("bed path is UTF-8")?], project);
    let stats = compare(&[full, docker_run, script], options.runs)?;
    report.ratio(&format!("{setup}: wall time vs docker run --rm (<= 1.0)"), stats[0].millis(), stats[1].millis(), "ms", 1.0);
    report.ratio(&format!("{setup}: wall time vs manual script (<= 0.33)"), stats[0].millis(), stats[2].millis(), "ms", 1.0 / 3.0);
    Ok(stats[0])
}

/// Writes the sequence a person would run to check the same things, as a script: the daemon, the two
/// containers, the runner's view, a job's view (`job_args` gives the job's network settings) and
/// the runner's token.
fn manual_script(bed: &Bed, job_args: &str, gitlab_ip: IpAddr, token: &str) -> anyhow::Result<PathBuf> {
    bed.write_file(
        "manual-check.sh",
        format!(
            "set -e\n\
             docker info >/dev/null\n\
             docker inspect gitlab-runner gitlab >/dev/null\n\
             docker exec gitlab-runner wget -q -O /dev/null http://gitlab/users/sign_in\n\
             docker run --rm {job_args} {JOB_IMAGE} wget -q -O /dev/null http://gitlab/users/sign_in\n\
             curl -sf -o /dev/null -X POST -d token={token} http://{gitlab_ip}/api/v4/runners/verify\n"
        ),
    )
}

/// Creates a project directory with a pipeline, where ci-doctor runs.
fn project_dir(bed: &Bed) -> anyhow::Result<PathBuf> {
    bed.create_dir("project/.git")?;
    let pipeline = bed.write_file("project/.gitlab-ci.yml", PIPELINE)?;
    Ok(pipeline.parent().context("project directory")?.to_path_buf())
}

/// Adds runner containers until there are [`SCALE_RUNNERS`], gives the last one a config with
/// [`SCALE_ENTRIES`] entries, and fills the daemon with created containers up to
/// [`SCALE_CONTAINERS`].
fn grow_to_scale(bed: &Bed, tokens: &[String], dns: IpAddr) -> anyhow::Result<()> {
    let started = Instant::now();
    let big = &tokens[SCALE_RUNNERS..];
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..4)
            .map(|worker| {
                scope.spawn(move || -> anyhow::Result<()> {
                    for index in (1..SCALE_RUNNERS).filter(|index| index % 4 == worker) {
                        let entries = if index == SCALE_RUNNERS - 1 { big } else { &tokens[index..=index] };
                        runner(bed, &format!("gitlab-runner-{index}"), &config(entries, dns, "network_mode = \"ci-net\""), &[], dns, Some("ci-net"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("worker thread")?;
        }
        Ok(())
    })?;

    let existing = docker_output(&["ps", "-aq"])?.lines().count();
    let fillers = SCALE_CONTAINERS.saturating_sub(existing);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..4)
            .map(|worker| {
                scope.spawn(move || -> anyhow::Result<()> {
                    for index in (0..fillers).filter(|index| index % 4 == worker) {
                        bed.container(&format!("filler-{index}")).created_only().start()?;
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("worker thread")?;
        }
        Ok(())
    })?;
    let total = docker_output(&["ps", "-aq"])?.lines().count();
    println!("  built in {:.0} s: {total} containers on the daemon", started.elapsed().as_secs_f64());
    Ok(())
}

/// Keeps the setup up for `--hold` seconds, naming the directory to run ci-doctor in.
fn hold(options: &Options, project: &Path) {
    if options.hold == 0 {
        return;
    }
    println!("  holding the setup for {} s; run ci-doctor in {}", options.hold, project.display());
    std::thread::sleep(Duration::from_secs(options.hold));
}

/// Times runs against a GitLab that accepts connections and never responds, which every runner
/// container points at. The run
/// must end within the probe time limit plus 10 percent, with one runner and with many, and when
/// the job view takes a probe container.
fn dead_gitlab(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let setups = [(1, false), (DEAD_RUNNERS, false), (1, true)];
    for (runners, probe_container) in setups {
        let layout = if probe_container { "jobs map GitLab with extra_hosts and need a probe container" } else { "GitLab, runners and jobs on one network" };
        println!();
        println!("dead GitLab (accepts connections, never answers); {runners} runner container(s), {layout}; default --timeout of {DEAD_TIMEOUT} s");
        let bed = Bed::new("bench-dead-gitlab")?;
        let network = "dead-net";
        bed.network(network).create()?;
        let dns = dns_server(&bed, network, &[])?;
        // busybox `nc -ll -e` accepts every connection and hands it to `sleep`, which never writes.
        let gitlab = bed
            .container("gitlab")
            .image(GITLAB_IMAGE)
            .hostname("gitlab")
            .entrypoint("nc")
            .command(&["-ll", "-p", "80", "-e", "sleep", "3600"])
            .network_with_aliases(network, &["gitlab"])
            .start()?;
        let job_network = match probe_container {
            true => format!("network_mode = \"{network}\"\n    extra_hosts = [\"gitlab:{}\"]", gitlab.ip(network)?),
            false => format!("network_mode = \"{network}\""),
        };
        for index in 0..runners {
            let token = format!("glrt-FAKEdead{index:010}Ab");
            runner(&bed, &format!("gitlab-runner-{index}"), &config(&[token], dns, &job_network), &[], dns, Some(network))?;
        }
        let dir = bed.create_dir("empty")?;
        println!("  diagnosis: {}", first_problem(&dir)?);
        // Exit code 1: errors found, because GitLab did not respond.
        let mut run = Timed::ci_doctor("ci-doctor", &[], &dir);
        run.accepted = vec![1];
        let stats = compare(&[run], options.runs.min(7))?;
        let limit_ms = DEAD_TIMEOUT as f64 * 1000.0;
        let setup = if probe_container { "probe container".to_string() } else { format!("{runners} runner(s)") };
        report.ratio(&format!("dead GitLab, {setup}: wall time vs --timeout (<= 1.1)"), stats[0].millis(), limit_ms, "ms", 1.1);
    }
    Ok(())
}

/// Start-up time of `--version` and the size of the release binary.
fn startup(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    println!("start-up");
    let dir = std::env::temp_dir();
    let version = Timed::new("ci-doctor --version", &BINARY, &["--version"], &dir);
    let stats = compare(&[version], options.runs.max(51))?;
    report.ratio("start-up: ci-doctor --version vs 5 ms (<= 1.0)", stats[0].millis(), 5.0, "ms", 1.0);
    report.ratio("release binary size vs 15 MB (<= 1.0)", binary_megabytes()?, 15.0, "MB", 1.0);
    Ok(())
}

// --- Pieces of the setups ----------------------------------------------------------------------

/// A pipeline with a build image and a service, so that image checks have work to do.
const PIPELINE: &str = "default:\n  image: alpine:3.20\n\nbuild:\n  script:\n    - echo build\n\ntest:\n  services:\n    - name: alpine:3.20\n      alias: helper\n  script:\n    - echo test\n";

/// Returns a runner config with one docker-executor entry per token, whose jobs resolve through `dns` and
/// get the network settings of `job_network`, a `[runners.docker]` line.
fn config(tokens: &[String], dns: IpAddr, job_network: &str) -> String {
    let mut out = format!("concurrent = {}\ncheck_interval = 0\n", tokens.len().max(4));
    for (index, token) in tokens.iter().enumerate() {
        out.push_str(&format!(
            "\n[[runners]]\n  name = \"bench-{index}\"\n  url = \"http://gitlab/\"\n  token = \"{token}\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"{JOB_IMAGE}\"\n    dns = [\"{dns}\"]\n    pull_policy = [\"if-not-present\"]\n    privileged = false\n    volumes = [\"/cache\"]\n    {job_network}\n"
        ));
    }
    out
}

/// Starts runner container `name` with `config` in a bind-mounted directory of its own, on
/// `network` (else the default bridge) with `links`.
fn runner(bed: &Bed, name: &str, config: &str, links: &[&str], dns: IpAddr, network: Option<&str>) -> anyhow::Result<()> {
    let path = bed.write_file(&format!("{name}/config.toml"), config)?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let directory = path.parent().context("config directory")?;
    let mut builder = bed.container(name).image(RUNNER_IMAGE).dns(dns).bind(directory, "/etc/gitlab-runner").docker_socket();
    if let Some(network) = network {
        builder = builder.network(network);
    }
    for link in links {
        builder = builder.link(link);
    }
    builder.start()?;
    Ok(())
}

/// Starts the test DNS server on `network`, so that no lookup of an invented name leaves the
/// machine, and returns its address.
fn dns_server(bed: &Bed, network: &str, records: &[DnsRecord]) -> anyhow::Result<IpAddr> {
    let server = bed.container("dns").network(network).dns_server(records).start()?;
    server.ip(network)
}

/// Fails unless ci-doctor finds no error in `dir`'s setup: timing a broken setup would measure
/// the wrong work.
fn expect_healthy(dir: &Path) -> anyhow::Result<()> {
    let output = Command::new(&*BINARY).args(["--format", "json"]).current_dir(dir).env_remove("GITLAB_TOKEN").output()?;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).context("ci-doctor's JSON report")?;
    let errors: Vec<String> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|finding| finding["severity"] == "error" || finding["severity"] == "warning")
        .map(|finding| format!("{}: {}", finding["check"].as_str().unwrap_or(""), finding["message"].as_str().unwrap_or("")))
        .collect();
    ensure!(errors.is_empty(), "the setup is not healthy, so its timing would mislead:\n{}", errors.join("\n"));
    let job_view = report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|verdict| verdict["check"] == "network.clone-url")
        .find_map(|verdict| verdict["basis"]["detail"].as_str())
        .unwrap_or("none");
    println!("  job view: {job_view}");
    Ok(())
}

/// Returns the first warning or error ci-doctor reports in `dir`'s setup.
fn first_problem(dir: &Path) -> anyhow::Result<String> {
    let output = Command::new(&*BINARY).args(["--format", "json"]).current_dir(dir).env_remove("GITLAB_TOKEN").output()?;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).context("ci-doctor's JSON report")?;
    let first = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|finding| finding["severity"] == "error" || finding["severity"] == "warning")
        .map(|finding| format!("{} {}: {}", finding["severity"].as_str().unwrap_or(""), finding["check"].as_str().unwrap_or(""), finding["message"].as_str().unwrap_or("")));
    first.context("ci-doctor found no problem with a GitLab that never responds")
}

fn docker_output(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("docker").args(args).output()?;
    ensure!(output.status.success(), "docker {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn binary_megabytes() -> anyhow::Result<f64> {
    Ok(std::fs::metadata(&*BINARY)?.len() as f64 / 1_000_000.0)
}

fn kib_to_mib(kib: i64) -> f64 {
    kib as f64 / 1024.0
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// CPU model, cores and Docker Engine version, for the record.
fn machine() -> anyhow::Result<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find_map(|line| line.strip_prefix("model name")).map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string()).unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|cores| cores.get()).unwrap_or(1);
    let engine = docker_output(&["version", "--format", "{{.Server.Version}}"])?;
    Ok(format!("{model}, {cores} cores; Docker Engine {}", engine.trim()))
}
