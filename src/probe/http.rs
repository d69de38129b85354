//! HTTP from one point of view: a TCP connection, then a request to the GitLab API.
//!
//! Redirects are never followed, so a wrong `url` is reported instead of silently corrected,
//! and a token never travels to another host. The TLS trust store is the view's own CA bundle
//! plus the runner's extra CA file, which is what the runner verifies GitLab against.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::facts::probe::{Connection, HttpResult, TokenOutcome};
use crate::secret::{Secret, redact};

/// Largest response body read from GitLab; the answers ci-doctor reads are tiny.
const MAX_BODY: usize = 64 * 1024;

/// Opens a TCP connection to the first usable address, within the time left before `deadline`.
pub async fn connect(addresses: &[SocketAddr], deadline: Instant) -> Connection {
    let Some(address) = addresses.first() else {
        return Connection::Failed { address: String::new(), message: "no address to connect to".into() };
    };
    let shown = address.to_string();
    match tokio::time::timeout_at(deadline, TcpStream::connect(address)).await {
        Ok(Ok(_stream)) => Connection::Open { address: shown },
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => Connection::Refused { address: shown },
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::TimedOut => Connection::TimedOut { address: shown },
        Ok(Err(error)) => Connection::Failed { address: shown, message: error.to_string() },
        Err(_) => Connection::TimedOut { address: shown },
    }
}

/// An HTTP client pinned to the addresses a lookup produced.
pub struct Client {
    inner: reqwest::Client,
}

impl Client {
    /// Builds a client that sends requests for `host` to `addresses` and trusts `roots`.
    pub fn new(host: &str, addresses: &[SocketAddr], roots: &[CertificateDer<'static>], timeout: Duration) -> Result<Client, String> {
        let mut store = rustls::RootCertStore::empty();
        let (_added, _ignored) = store.add_parsable_certificates(roots.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_root_certificates(store)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];

        let inner = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .http1_only()
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("ci-doctor/", env!("CARGO_PKG_VERSION")))
            .resolve_to_addrs(host, addresses)
            .build()
            .map_err(|error| redact(&error_text(&error)))?;
        Ok(Client { inner })
    }

    /// `GET <base>/api/v4/version`: GitLab answers 401 with its JSON error shape without a
    /// token, which proves the GitLab API is there without sending any credential.
    pub async fn probe_api(&self, base: &str, deadline: Instant) -> HttpResult {
        let request = self.inner.get(format!("{base}/api/v4/version"));
        match send(request, deadline).await {
            Ok((status, location, body)) => {
                let gitlab = looks_like_gitlab(status, &body);
                HttpResult::Answered { status, gitlab, location }
            }
            Err(result) => result,
        }
    }

    /// `POST <base>/api/v4/runners/verify` with the runner's token (and system id, so GitLab
    /// refreshes the runner manager the runner itself uses instead of creating another one).
    pub async fn verify(&self, base: &str, token: &Secret, system_id: Option<&str>, deadline: Instant) -> TokenOutcome {
        let mut body = serde_json::json!({ "token": token.expose() });
        if let Some(system_id) = system_id {
            body["system_id"] = serde_json::Value::String(system_id.to_string());
        }
        let request = self.inner.post(format!("{base}/api/v4/runners/verify")).json(&body);
        match send(request, deadline).await {
            Ok((200, _, body)) => {
                let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
                let runner_id = json.as_ref().and_then(|json| json.get("id")).and_then(serde_json::Value::as_i64);
                let expires_at = json
                    .as_ref()
                    .and_then(|json| json.get("token_expires_at"))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string);
                TokenOutcome::Valid { runner_id, expires_at }
            }
            Ok((403, _, _)) => TokenOutcome::Forbidden,
            Ok((422, _, body)) if String::from_utf8_lossy(&body).contains("orphaned") => TokenOutcome::Orphaned,
            Ok((status, location, body)) => {
                let message = match location {
                    Some(location) => format!("redirect to {location}"),
                    None => message_of(&body),
                };
                TokenOutcome::Unexpected { status, message }
            }
            Err(HttpResult::TimedOut) => TokenOutcome::Failed { message: "no answer in time".into() },
            Err(HttpResult::Tls { message } | HttpResult::Failed { message }) => TokenOutcome::Failed { message },
            Err(HttpResult::Answered { .. }) => TokenOutcome::Failed { message: "unexpected answer".into() },
        }
    }
}

/// Sends `request` and reads at most [`MAX_BODY`] bytes of the answer before `deadline`.
async fn send(request: reqwest::RequestBuilder, deadline: Instant) -> Result<(u16, Option<String>, Vec<u8>), HttpResult> {
    let exchange = async {
        let mut response = request.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let location = response.headers().get("location").and_then(|value| value.to_str().ok()).map(crate::secret::redact_url);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            body.extend_from_slice(&chunk);
            if body.len() >= MAX_BODY {
                body.truncate(MAX_BODY);
                break;
            }
        }
        Ok((status, location, body))
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(result) => result,
        Err(_) => Err(HttpResult::TimedOut),
    }
}

fn classify(error: reqwest::Error) -> HttpResult {
    let text = redact(&error_text(&error));
    if error.is_timeout() {
        return HttpResult::TimedOut;
    }
    let lowered = text.to_ascii_lowercase();
    if lowered.contains("certificate") || lowered.contains("tls") || lowered.contains("handshake") {
        return HttpResult::Tls { message: text };
    }
    HttpResult::Failed { message: text }
}

/// The error and its causes on one line; reqwest's own message alone says only "error sending
/// request".
fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    crate::gather::docker::error_chain(error)
}

/// GitLab's API answers errors as JSON objects with a `message`, and `/version` with a
/// `version` field.
fn looks_like_gitlab(status: u16, body: &[u8]) -> bool {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else { return false };
    match status {
        200 => json.get("version").is_some(),
        401 | 403 => json.get("message").is_some(),
        _ => false,
    }
}

fn message_of(body: &[u8]) -> String {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(message) = json.get("message")
    {
        return redact(&message.to_string());
    }
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or("").trim();
    redact(&line.chars().take(120).collect::<String>())
}
