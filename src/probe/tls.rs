//! GitLab's certificate chain from a runner's point of view: one TLS handshake that records the
//! chain the server presents, then offline verification of that chain against the trust each
//! runner entry uses and against every other CA file on the runner's side.
//!
//! The recording handshake accepts any certificate, so it sends nothing after the handshake and
//! never carries a credential; requests with tokens go through the verifying client in
//! [`super::http`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::facts::probe::{CertificateInfo, TlsVerdict};

/// Accepts every certificate and keeps the chain the server presented. Handshake signatures are
/// still checked, with the provider's algorithms.
#[derive(Debug)]
struct Recorder {
    chain: Mutex<Vec<CertificateDer<'static>>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = vec![end_entity.clone().into_owned()];
        chain.extend(intermediates.iter().map(|certificate| certificate.clone().into_owned()));
        *self.chain.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = chain;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Connects to `address`, completes a TLS handshake for `host`, and returns the presented chain
/// (leaf first), before `deadline`.
pub async fn fetch_chain(address: SocketAddr, host: &str, deadline: Instant) -> Result<Vec<CertificateDer<'static>>, String> {
    let provider = provider();
    let recorder = Arc::new(Recorder { chain: Mutex::new(Vec::new()), algorithms: provider.signature_verification_algorithms });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string()).map_err(|error| format!("`{host}` is not a valid server name: {error}"))?;

    let handshake = async {
        let stream = TcpStream::connect(address).await.map_err(|error| format!("failed to connect to {address}: {error}"))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        connector.connect(name, stream).await.map_err(|error| format!("TLS handshake with {address} failed: {error}"))?;
        Ok::<_, String>(())
    };
    match tokio::time::timeout_at(deadline, handshake).await {
        Ok(Ok(())) => {}
        Ok(Err(message)) => return Err(message),
        Err(_) => return Err(format!("no TLS handshake with {address} in time")),
    }
    let chain = recorder.chain.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    if chain.is_empty() { Err("the server presented no certificate".into()) } else { Ok(chain) }
}

/// Verifies `chain` for `host` against `roots`, as the runner's Go TLS stack would, at `now`.
pub fn verify(chain: &[CertificateDer<'static>], roots: &[CertificateDer<'static>], host: &str, now: UnixTime) -> TlsVerdict {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return TlsVerdict::Other { message: "no certificate".into() };
    };
    let mut store = rustls::RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(roots.iter().cloned());
    if added == 0 {
        return TlsVerdict::UnknownIssuer;
    }
    let verifier = match rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider()).build() {
        Ok(verifier) => verifier,
        Err(error) => return TlsVerdict::Other { message: error.to_string() },
    };
    let Ok(name) = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string()) else {
        return TlsVerdict::Other { message: format!("`{host}` is not a valid server name") };
    };
    match verifier.verify_server_cert(leaf, intermediates, &name, &[], now) {
        Ok(_) => TlsVerdict::Trusted,
        Err(rustls::Error::InvalidCertificate(error)) => match error {
            // A CA of the same name with another key fails on the signature; Go reports that
            // as an unknown authority too.
            CertificateError::UnknownIssuer | CertificateError::BadSignature => TlsVerdict::UnknownIssuer,
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => TlsVerdict::Expired,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => TlsVerdict::NotYetValid,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => TlsVerdict::NameMismatch,
            other => TlsVerdict::Other { message: format!("{other:?}") },
        },
        Err(other) => TlsVerdict::Other { message: other.to_string() },
    }
}

/// Subject, issuer, validity and names of each certificate, for messages.
pub fn describe(chain: &[CertificateDer<'static>]) -> Vec<CertificateInfo> {
    chain.iter().filter_map(describe_one).collect()
}

fn describe_one(der: &CertificateDer<'static>) -> Option<CertificateInfo> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let mut names = Vec::new();
    if let Ok(Some(extension)) = certificate.subject_alternative_name() {
        for name in &extension.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => names.push(dns.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                    let address = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(|octets| std::net::IpAddr::from(octets).to_string()),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(|octets| std::net::IpAddr::from(octets).to_string()),
                        _ => None,
                    };
                    names.extend(address);
                }
                _ => {}
            }
        }
    }
    let validity = certificate.validity();
    Some(CertificateInfo {
        subject: certificate.subject().to_string(),
        issuer: certificate.issuer().to_string(),
        not_before: crate::time::format_unix(validity.not_before.timestamp()),
        not_after: crate::time::format_unix(validity.not_after.timestamp()),
        names,
        is_ca: certificate.is_ca(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    fn load(path: &std::path::Path) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_file_iter(path).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn verdicts_name_the_failure() {
        let dir = tempfile::tempdir().unwrap();
        let good = ci_doctor_testbed::test_ca_and_server_cert(&dir.path().join("good"), &["gitlab.example.test"]).unwrap();
        let options = ci_doctor_testbed::standin::ServerCertOptions { expired: true };
        let old = ci_doctor_testbed::standin::test_ca_and_server_cert_with(&dir.path().join("old"), &["gitlab.example.test"], options).unwrap();
        let chain = load(&good.server_cert);
        let ca = load(&good.ca_cert);
        let now = UnixTime::now();

        assert_eq!(verify(&chain, &ca, "gitlab.example.test", now), TlsVerdict::Trusted);
        assert_eq!(verify(&chain, &[], "gitlab.example.test", now), TlsVerdict::UnknownIssuer);
        assert_eq!(verify(&chain, &load(&old.ca_cert), "gitlab.example.test", now), TlsVerdict::UnknownIssuer);
        assert_eq!(verify(&chain, &ca, "other.example.test", now), TlsVerdict::NameMismatch);
        assert_eq!(verify(&load(&old.server_cert), &load(&old.ca_cert), "gitlab.example.test", now), TlsVerdict::Expired);

        let info = describe(&chain);
        assert_eq!(info[0].subject, "CN=gitlab.example.test");
        assert_eq!(info[0].issuer, "CN=ci-doctor test CA");
        assert_eq!(info[0].names, ["gitlab.example.test"]);
        assert!(!info[0].is_ca);
        let old_info = describe(&load(&old.server_cert));
        assert_eq!(old_info[0].not_after, "2021-01-01T00:00:00Z");
    }
}
