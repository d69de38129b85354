//! Request log of the stand-in: one JSON object per line and per request, so
//! tests can check what reached the server and with which credentials.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// File name of the request log, in the directory of the state file.
pub const REQUEST_LOG_FILE_NAME: &str = "requests.jsonl";

/// Request headers that carry credentials. Their values are logged in
/// [`LoggedRequest::credentials`].
pub const CREDENTIAL_HEADERS: &[&str] = &[
    "private-token",
    "authorization",
    "job-token",
    "deploy-token",
    "cookie",
];

/// One request as the stand-in received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// Receive time, UTC, ISO 8601.
    pub time: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Client address and port.
    pub peer: String,
    pub method: String,
    /// Path as sent, still percent-encoded.
    pub path: String,
    /// Query string without the `?`, empty when there was none.
    pub query: String,
    /// Value of the `Host` header, `null` when absent.
    pub host: Option<String>,
    /// Credential headers that were present, with their values, in the
    /// order they arrived.
    pub credentials: Vec<Credential>,
    /// Request body, decoded as UTF-8 with invalid bytes replaced.
    pub body: String,
    /// HTTP status of the response.
    pub status: u16,
}

/// A credential header of a logged request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// Header name in lower case, for example `private-token`.
    pub header: String,
    pub value: String,
}

impl LoggedRequest {
    /// Returns the value of a credential header (name in any case).
    pub fn credential(&self, header: &str) -> Option<&str> {
        self.credentials
            .iter()
            .find(|credential| credential.header.eq_ignore_ascii_case(header))
            .map(|credential| credential.value.as_str())
    }

    /// Returns `true` if `secret` appears in a credential header, the query
    /// or the body of this request.
    pub fn contains_secret(&self, secret: &str) -> bool {
        self.credentials
            .iter()
            .any(|credential| credential.value.contains(secret))
            || self.query.contains(secret)
            || self.body.contains(secret)
    }
}

/// Appends [`LoggedRequest`]s to a file, one line each.
pub struct RequestLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl RequestLog {
    /// Opens (or creates) the log for appending.
    pub fn open(path: &Path) -> anyhow::Result<RequestLog> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("failed to open request log {}", path.display()))?;
        Ok(RequestLog {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry. The line is written with a single `write` call on a
    /// file opened in append mode, so readers never see half an entry.
    pub fn append(&self, entry: &LoggedRequest) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        file.write_all(&line)
            .with_context(|| format!("failed to append to {}", self.path.display()))
    }
}

/// Reads every entry of a request log. A log that does not exist yet means no
/// request arrived, so it returns an empty list.
pub fn read_request_log(path: &Path) -> anyhow::Result<Vec<LoggedRequest>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(error).with_context(|| format!("failed to open {}", path.display()));
        }
    };
    let mut entries = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("failed to read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let entry = serde_json::from_str(&line).with_context(|| {
            format!("invalid entry on line {} of {}", index + 1, path.display())
        })?;
        entries.push(entry);
    }
    Ok(entries)
}
