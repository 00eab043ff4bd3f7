//! TLS for the server: rustls (TLS 1.2 and 1.3), a certificate re-read when
//! its files change (cert-manager rotates them in place), and optional
//! client-certificate verification.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use anyhow::{Context, anyhow};
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use serde_json::json;

use super::log::{self, Level};

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("{}: cannot read the certificate", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: not a PEM certificate chain", cert.display()))?;
    if chain.is_empty() {
        return Err(anyhow!("{}: no certificate in the file", cert.display()));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("{}: not a PEM private key", key.display()))?;
    let signing = ring::sign::any_supported_type(&key_der)
        .map_err(|e| anyhow!("{}: unusable private key: {e}", key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| anyhow!("{} and {} do not belong together: {e}", cert.display(), key.display()))?;
    Ok(Arc::new(certified))
}

struct Current {
    key: Arc<CertifiedKey>,
    stamps: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

/// Serves the certificate in `cert`/`key`, looking for a new one at most once a second.
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<Current>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert").field("cert", &self.cert).field("key", &self.key).finish()
    }
}

impl ReloadingCert {
    pub fn new(cert: &Path, key: &Path) -> anyhow::Result<ReloadingCert> {
        let current =
            Current { key: load(cert, key)?, stamps: (modified(cert), modified(key)), checked: Instant::now() };
        Ok(ReloadingCert { cert: cert.to_path_buf(), key: key.to_path_buf(), current: Mutex::new(current) })
    }

    fn get(&self) -> Option<Arc<CertifiedKey>> {
        let mut current = self.current.lock().ok()?;
        if current.checked.elapsed().as_millis() >= 1000 {
            current.checked = Instant::now();
            let stamps = (modified(&self.cert), modified(&self.key));
            if stamps != current.stamps {
                match load(&self.cert, &self.key) {
                    Ok(key) => {
                        current.key = key;
                        current.stamps = stamps;
                        log::stderr(
                            Level::Info,
                            "reloaded the TLS certificate",
                            json!({"cert": self.cert.display().to_string()}),
                        );
                    }
                    // Half-written files during a rotation: keep serving the old pair, try again.
                    Err(e) => log::stderr(
                        Level::Warn,
                        "keeping the previous TLS certificate",
                        json!({"error": format!("{e:#}")}),
                    ),
                }
            }
        }
        Some(current.key.clone())
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.get()
    }
}

/// The server's TLS configuration.
pub fn server_config(cert: &Path, key: &Path, client_ca: Option<&Path>) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| anyhow!("TLS setup: {e}"))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("{}: cannot read the client CA", ca.display()))?
            {
                let c = c.with_context(|| format!("{}: not a PEM certificate", ca.display()))?;
                roots.add(c).with_context(|| format!("{}: unusable CA certificate", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| anyhow!("{}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(ReloadingCert::new(cert, key)?));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
