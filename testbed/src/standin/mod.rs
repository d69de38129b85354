//! Stand-in GitLab HTTP service: serves the REST API endpoints ci-doctor
//! calls, on plain HTTP and optionally HTTPS, and logs every request.

mod api;
mod entities;
mod reply;
mod request_log;
mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use request_log::{
    CREDENTIAL_HEADERS, Credential, LoggedRequest, REQUEST_LOG_FILE_NAME, RequestLog,
    read_request_log,
};
pub use tls::{
    ServerCertOptions, TestCertificates, load_tls_config, test_ca_and_server_cert,
    test_ca_and_server_cert_with,
};

use crate::clock;
use crate::state::State;
use api::ApiRequest;
use reply::Reply;

/// Largest request body the stand-in reads; larger bodies get 413.
const MAX_BODY_BYTES: usize = 1 << 20;

/// A listener for HTTPS connections and the TLS configuration to use on it.
pub struct TlsListener {
    pub listener: TcpListener,
    pub config: Arc<rustls::ServerConfig>,
}

/// The stand-in service: shared state, request log and request counter.
#[derive(Clone)]
pub struct Standin {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    log: Option<RequestLog>,
    request_counter: AtomicU64,
}

impl Standin {
    /// Creates a service that serves `state` and logs nothing.
    pub fn new(state: State) -> Standin {
        Standin::build(state, None)
    }

    /// Creates a service that appends every request to the log at `path`.
    pub fn with_request_log(state: State, path: &Path) -> anyhow::Result<Standin> {
        Ok(Standin::build(state, Some(RequestLog::open(path)?)))
    }

    fn build(state: State, log: Option<RequestLog>) -> Standin {
        Standin {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                log,
                request_counter: AtomicU64::new(0),
            }),
        }
    }

    /// Returns a copy of the current state, including runners registered
    /// through the API.
    pub fn state(&self) -> State {
        self.lock_state().clone()
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Accepts connections on `http` (and on `tls` when given) until a
    /// listener fails. Each connection is served on its own task.
    pub async fn serve(self, http: TcpListener, tls: Option<TlsListener>) -> anyhow::Result<()> {
        let plain = self.clone().accept_plain(http);
        match tls {
            Some(tls) => {
                let secure = self.accept_tls(tls);
                tokio::try_join!(plain, secure)?;
            }
            None => plain.await?,
        }
        Ok(())
    }

    async fn accept_plain(self, listener: TcpListener) -> anyhow::Result<()> {
        loop {
            let (stream, peer) = listener.accept().await?;
            let service = self.clone();
            tokio::spawn(async move {
                service.serve_connection(stream, peer, "http").await;
            });
        }
    }

    async fn accept_tls(self, tls: TlsListener) -> anyhow::Result<()> {
        let acceptor = TlsAcceptor::from(tls.config);
        loop {
            let (stream, peer) = tls.listener.accept().await?;
            let service = self.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor.accept(stream).await {
                    Ok(stream) => service.serve_connection(stream, peer, "https").await,
                    Err(error) => tracing::info!(%peer, %error, "TLS handshake failed"),
                }
            });
        }
    }

    async fn serve_connection<S>(self, stream: S, peer: SocketAddr, scheme: &'static str)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service = service_fn(move |request| {
            let standin = self.clone();
            async move { Ok::<_, Infallible>(standin.handle(request, peer, scheme).await) }
        });
        if let Err(error) = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await
        {
            tracing::debug!(%peer, %error, "connection closed with an error");
        }
    }

    async fn handle(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
        scheme: &'static str,
    ) -> Response<Full<Bytes>> {
        let time = clock::now_rfc3339();
        let (parts, body) = request.into_parts();
        let body = Limited::new(body, MAX_BODY_BYTES).collect().await;
        let (reply, body) = match body {
            Ok(collected) => {
                let body = collected.to_bytes();
                let api_request = ApiRequest {
                    method: &parts.method,
                    path: parts.uri.path(),
                    query: parts.uri.query().unwrap_or_default(),
                    headers: &parts.headers,
                    body: &body,
                    scheme,
                };
                let reply = api::route(&mut self.lock_state(), &api_request);
                (reply, body)
            }
            Err(error) => {
                tracing::info!(%peer, %error, "failed to read request body");
                let reply = Reply::message(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "413 Request Entity Too Large",
                );
                (reply, Bytes::new())
            }
        };

        let request_number = self.inner.request_counter.fetch_add(1, Ordering::Relaxed) + 1;
        let entry = LoggedRequest {
            time,
            scheme: scheme.to_owned(),
            peer: peer.to_string(),
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            host: parts
                .headers
                .get(http::header::HOST)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
            credentials: parts
                .headers
                .iter()
                .filter(|(name, _)| CREDENTIAL_HEADERS.contains(&name.as_str()))
                .map(|(name, value)| Credential {
                    header: name.as_str().to_owned(),
                    value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
                })
                .collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
            status: reply.status.as_u16(),
        };
        tracing::info!(
            request = request_number,
            %peer,
            method = %entry.method,
            path = %entry.path,
            status = entry.status,
            "request"
        );
        if let Some(log) = &self.inner.log
            && let Err(error) = log.append(&entry)
        {
            tracing::error!(path = %log.path().display(), error = %error, "failed to write the request log");
        }
        into_response(reply, request_number)
    }
}

fn into_response(reply: Reply, request_number: u64) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    headers.insert("server", HeaderValue::from_static("nginx"));
    if let Some(content_type) = reply.content_type {
        headers.insert("content-type", HeaderValue::from_static(content_type));
    }
    let request_id = format!("standin-{request_number:08}");
    let meta = format!(r#"{{"correlation_id":"{request_id}","version":"1"}}"#);
    if let Ok(value) = HeaderValue::from_str(&meta) {
        headers.insert("x-gitlab-meta", value);
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", value);
    }
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

/// Serves `state` on `listener` (and on `tls` when given) without a request log.
pub async fn serve(
    state: State,
    listener: TcpListener,
    tls: Option<TlsListener>,
) -> anyhow::Result<()> {
    Standin::new(state).serve(listener, tls).await
}
