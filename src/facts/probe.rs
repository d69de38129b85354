//! Results of connections made from a runner's point of view.

use serde::Serialize;

/// Every probe result of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Probes {
    /// How each runner's point of view was reached.
    pub views: Vec<ViewFact>,
    pub urls: Vec<UrlProbe>,
    pub tokens: Vec<TokenProbe>,
    pub sockets: Vec<SocketProbe>,
    pub tls: Vec<TlsProbe>,
}

impl Probes {
    /// How runner `runner`'s point of view was reached.
    pub fn view(&self, runner: usize) -> Option<&ViewAccess> {
        self.views.iter().find(|view| view.runner == runner).map(|view| &view.access)
    }

    /// The probe of `url` from runner `runner`'s view.
    pub fn url(&self, runner: usize, url: &str) -> Option<&UrlProbe> {
        self.urls.iter().find(|probe| probe.runner == runner && probe.url == url)
    }

    /// The token verification of entry `entry` of runner `runner`.
    pub fn token(&self, runner: usize, entry: usize) -> Option<&TokenProbe> {
        self.tokens.iter().find(|probe| probe.runner == runner && probe.entry == entry)
    }

    /// GitLab's certificate as entry `entry` of runner `runner` judges it.
    pub fn tls(&self, runner: usize, entry: usize) -> Option<&TlsProbe> {
        self.tls.iter().find(|probe| probe.runner == runner && probe.entry == entry)
    }

    /// The probe of the Docker socket path `path` from runner `runner`'s view.
    pub fn socket(&self, runner: usize, path: &str) -> Option<&SocketProbe> {
        self.sockets.iter().find(|probe| probe.runner == runner && probe.path == path)
    }
}

/// How one runner's point of view was reached.
#[derive(Debug, Clone, Serialize)]
pub struct ViewFact {
    pub runner: usize,
    pub access: ViewAccess,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ViewAccess {
    /// Probes ran inside the container's network namespace, with its resolver and CA bundle.
    Namespace { pid: u32 },
    /// The runner shares this host's network (installed on the host, or `--network host`).
    HostNetwork,
    /// No probe was possible; checks fall back to reasoning.
    Unavailable { reason: String },
    /// `--no-probe` was given.
    Disabled,
}

impl ViewAccess {
    /// Returns true when probes ran.
    pub fn probed(&self) -> bool {
        matches!(self, ViewAccess::Namespace { .. } | ViewAccess::HostNetwork)
    }
}

/// One URL tried from one runner's view: name lookup, TCP connection, HTTP request.
#[derive(Debug, Clone, Serialize)]
pub struct UrlProbe {
    pub runner: usize,
    /// The URL as configured (credentials removed).
    pub url: String,
    pub host: String,
    pub port: u16,
    pub resolution: Resolution,
    pub connection: Option<Connection>,
    pub http: Option<HttpResult>,
}

impl UrlProbe {
    /// Returns true when the URL answered like the GitLab API.
    pub fn reached_gitlab(&self) -> bool {
        matches!(self.http, Some(HttpResult::Answered { gitlab: true, .. }))
    }
}

/// How a host name turned into addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Resolution {
    /// The URL holds an IP address.
    Literal { addresses: Vec<String> },
    /// Found in the view's `/etc/hosts` (links and `--add-host` entries live there).
    HostsFile { addresses: Vec<String> },
    /// Answered by a DNS server.
    Dns { addresses: Vec<String>, servers: Vec<String> },
    /// The DNS servers answered that the name does not exist.
    NotFound { servers: Vec<String> },
    /// The lookup failed: no answer in time, or an unusable resolver configuration.
    Failed { message: String, servers: Vec<String> },
}

impl Resolution {
    pub fn addresses(&self) -> &[String] {
        match self {
            Resolution::Literal { addresses } | Resolution::HostsFile { addresses } | Resolution::Dns { addresses, .. } => addresses,
            _ => &[],
        }
    }
}

/// The TCP connection to the first address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Connection {
    Open { address: String },
    Refused { address: String },
    TimedOut { address: String },
    Failed { address: String, message: String },
}

/// The HTTP exchange after the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum HttpResult {
    /// An HTTP answer. `gitlab` is true when it looks like the GitLab API (its JSON error
    /// shape on `/api/v4/version`).
    Answered { status: u16, gitlab: bool, location: Option<String> },
    /// The TLS handshake or certificate verification failed.
    Tls { message: String },
    /// Connected, but no answer in time.
    TimedOut,
    Failed { message: String },
}

/// `POST /api/v4/runners/verify` for one entry's token.
#[derive(Debug, Clone, Serialize)]
pub struct TokenProbe {
    pub runner: usize,
    pub entry: usize,
    pub outcome: TokenOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TokenOutcome {
    /// 200: GitLab knows the token.
    Valid { runner_id: Option<i64>, expires_at: Option<String> },
    /// 403: unknown or revoked.
    Forbidden,
    /// 422 "Runner is orphaned": the runner's project or group no longer exists.
    Orphaned,
    /// Any other status.
    Unexpected { status: u16, message: String },
    /// The token was not sent; the reason says why.
    NotSent { reason: String },
    Failed { message: String },
}

/// The Docker socket as a runner container sees it.
#[derive(Debug, Clone, Serialize)]
pub struct SocketProbe {
    pub runner: usize,
    pub path: String,
    pub state: SocketState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SocketState {
    /// Nothing at the path inside the container.
    Missing,
    /// Something other than a socket at the path.
    NotASocket,
    /// A socket, and the daemon answered a ping through it.
    Answers,
    /// A socket, but connecting failed.
    Failed { message: String },
}

/// GitLab's certificate as one `[[runners]]` entry's runner would judge it.
#[derive(Debug, Clone, Serialize)]
pub struct TlsProbe {
    pub runner: usize,
    pub entry: usize,
    /// The entry's `url`.
    pub url: String,
    pub host: String,
    pub outcome: TlsOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TlsOutcome {
    /// No certificate was presented: the connection or the handshake failed first.
    NoHandshake { message: String },
    /// The server presented `chain` (leaf first), judged with the runner's trust.
    Presented {
        chain: Vec<CertificateInfo>,
        /// The verdict with the view's CA bundle plus the entry's CA file.
        verdict: TlsVerdict,
        /// The CA bundle of the view, such as `/etc/ssl/certs/ca-certificates.crt`.
        roots_source: Option<String>,
        /// The CA file the runner adds for this entry.
        ca_file: CaFile,
        /// Other CA files on the runner's side, and whether each verifies the chain.
        candidates: Vec<CandidateCa>,
    },
}

/// The extra CA file of an entry: `tls-ca-file`, or `certs/<host>.crt` beside the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaFile {
    /// The path as the runner sees it.
    pub path: String,
    /// True for `tls-ca-file`, false for the `certs/<host>.crt` the runner loads by itself.
    pub configured: bool,
    pub state: CaFileState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CaFileState {
    Missing,
    /// The file exists but holds no PEM certificate.
    NoCertificates,
    Loaded { certificates: usize },
}

/// A CA file found on the runner's side and its verdict on the presented chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CandidateCa {
    /// The path as the runner sees it.
    pub path: String,
    pub verdict: TlsVerdict,
}

/// What certificate verification concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TlsVerdict {
    Trusted,
    /// The chain ends at a CA the trust store does not hold.
    UnknownIssuer,
    Expired,
    NotYetValid,
    /// The certificate is for other names.
    NameMismatch,
    Other { message: String },
}

/// The parts of one certificate that explain a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateInfo {
    pub subject: String,
    pub issuer: String,
    /// Validity as `YYYY-MM-DDTHH:MM:SSZ`.
    pub not_before: String,
    pub not_after: String,
    /// DNS names and IP addresses of the subject alternative name.
    pub names: Vec<String>,
    pub is_ca: bool,
}
