//! HTTPS: a development CA and server certificate generated into the data dir, or real files.

use crate::keys::files::{create_private_dir, write_public, write_secret};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("writing {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("generating the development certificates failed")]
    Generate(#[from] rcgen::Error),
    /// A PEM file holds no usable certificate or key.
    #[error("{0}: no usable certificate or private key")]
    Pem(PathBuf),
    /// rustls refused the certificate and key.
    #[error("the TLS certificate and key do not fit together")]
    Rustls(#[from] rustls::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A private temporary directory for the development TLS files of a server without a data dir;
/// removed when dropped (at shutdown).
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    /// Creates one (mode 0700) in the system's temporary directory.
    pub fn new() -> Result<Self, TlsError> {
        let temp = std::env::temp_dir();
        tempfile::Builder::new()
            .prefix("callsign-tls-")
            .tempdir()
            .map(Self)
            .map_err(|source| TlsError::Io { path: temp, source })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// Certificate and key files to serve with.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain PEM.
    pub cert: PathBuf,
    /// Private key PEM.
    pub key: PathBuf,
    /// The development CA that clients must trust, when the files were generated.
    pub ca: Option<PathBuf>,
}

/// Creates (once) a development CA and a server certificate for `localhost`, `127.0.0.1` and `::1`
/// in `dir`, and returns their paths. Later calls reuse them.
pub fn dev_certificates(dir: &Path) -> Result<TlsFiles, TlsError> {
    let files = TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server.key.pem"),
        ca: Some(dir.join("ca.pem")),
    };
    if files.cert.exists() && files.key.exists() && dir.join("ca.pem").exists() {
        return Ok(files);
    }
    create_private_dir(dir).map_err(io(dir))?;

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "callsign development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
    params
        .distinguished_name
        .push(DnType::CommonName, "callsign development server");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    let server_cert = params.signed_by(&server_key, &ca)?;

    let ca_path = dir.join("ca.pem");
    write_secret(&dir.join("ca.key.pem"), ca.key().serialize_pem().as_bytes()).map_err(io(dir))?;
    write_public(&ca_path, ca_cert.pem().as_bytes()).map_err(io(&ca_path))?;
    write_secret(&files.key, server_key.serialize_pem().as_bytes()).map_err(io(&files.key))?;
    write_public(&files.cert, server_cert.pem().as_bytes()).map_err(io(&files.cert))?;
    Ok(files)
}

/// A rustls server configuration for the files (HTTP/1.1 and HTTP/2).
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|_| TlsError::Pem(files.cert.clone()))?
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::Pem(files.cert.clone()))?;
    if certs.is_empty() {
        return Err(TlsError::Pem(files.cert.clone()));
    }
    let key =
        PrivateKeyDer::from_pem_file(&files.key).map_err(|_| TlsError::Pem(files.key.clone()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_certificates_are_made_once_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let first = dev_certificates(dir.path()).unwrap();
        let cert = std::fs::read(&first.cert).unwrap();
        let again = dev_certificates(dir.path()).unwrap();
        assert_eq!(std::fs::read(&again.cert).unwrap(), cert);
        server_config(&first).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&first.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
