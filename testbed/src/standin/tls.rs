//! TLS for the stand-in: loading a certificate and key from PEM files, and
//! generating a throwaway test CA with a server certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Builds a rustls server configuration (ring provider, HTTP/1.1 over ALPN)
/// from a PEM certificate chain and a PEM private key.
pub fn load_tls_config(
    cert_pem: &Path,
    key_pem: &Path,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certificates = CertificateDer::pem_file_iter(cert_pem)
        .with_context(|| format!("failed to read certificate file {}", cert_pem.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("invalid PEM in certificate file {}", cert_pem.display()))?;
    if certificates.is_empty() {
        anyhow::bail!("no certificate found in {}", cert_pem.display());
    }
    let key = PrivateKeyDer::from_pem_file(key_pem)
        .with_context(|| format!("failed to read a private key from {}", key_pem.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .context("the certificate and the private key do not form a valid pair")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Paths and contents of a test CA and a server certificate it signed.
#[derive(Debug, Clone)]
pub struct TestCertificates {
    /// CA certificate (`ca.pem`), to add to a client's trusted roots.
    pub ca_cert: PathBuf,
    /// Server certificate (`server.pem`).
    pub server_cert: PathBuf,
    /// Server private key in PKCS#8 (`server-key.pem`).
    pub server_key: PathBuf,
    /// PEM text of the CA certificate.
    pub ca_pem: String,
}

/// Variations of the server certificate, for tests of certificate checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerCertOptions {
    /// Valid only during 2020 (UTC), so it has expired.
    pub expired: bool,
}

/// Generates a test CA and a server certificate for `names` (DNS names or IP
/// addresses, the first also used as common name) and writes `ca.pem`,
/// `server.pem` and `server-key.pem` into `dir`.
pub fn test_ca_and_server_cert(dir: &Path, names: &[&str]) -> anyhow::Result<TestCertificates> {
    test_ca_and_server_cert_with(dir, names, ServerCertOptions::default())
}

/// Like [`test_ca_and_server_cert`], with a server certificate shaped by `options`.
pub fn test_ca_and_server_cert_with(
    dir: &Path,
    names: &[&str],
    options: ServerCertOptions,
) -> anyhow::Result<TestCertificates> {
    let Some(first_name) = names.first() else {
        anyhow::bail!("a server certificate needs at least one name");
    };

    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ci-doctor test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let mut server_params =
        CertificateParams::new(names).context("invalid name for a server certificate")?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, *first_name);
    server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    if options.expired {
        server_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        server_params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let server_key = KeyPair::generate()?;
    let server_cert = server_params.signed_by(&server_key, &issuer)?;

    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let certificates = TestCertificates {
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server-key.pem"),
        ca_pem: ca_pem.clone(),
    };
    let files = [
        (&certificates.ca_cert, ca_pem),
        (&certificates.server_cert, server_cert.pem()),
        (&certificates.server_key, server_key.serialize_pem()),
    ];
    for (path, contents) in files {
        std::fs::write(path, contents)
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    Ok(certificates)
}
