//! TLS on the serving port: rustls (ring) with the certificate chain and key of
//! `--tls-cert/--tls-key` and, with `--tls-client-ca`, a client certificate from that CA required
//! on every connection (mutual TLS). The files are re-read when they change, like model and key
//! files, so a rotated certificate (cert-manager, an ACME client) is served without a restart: new
//! connections get it, open ones keep the one they started with. Files that fail to parse, or a
//! key that does not match its certificate (half-way through a rotation, say), keep the previous
//! ones serving; the reason is reported once, not on every poll.
use crate::error::{Error, Result};
use arc_swap::ArcSwap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ServerConfig, WebPkiClientVerifier};

/// The PEM files TLS is made from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// The leaf's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA bundle that client certificates must chain to; None: no client certificates.
    pub client_ca: Option<PathBuf>,
}

/// What a reload of the TLS files did.
#[derive(Debug, PartialEq)]
pub enum TlsReload {
    Unchanged,
    Loaded,
    /// The files could not be read or do not make a valid configuration; the previous one stays.
    Failed(String),
}

type Fingerprint = Vec<Option<(u64, Option<SystemTime>)>>;

/// The current server TLS configuration and the files it came from.
pub struct TlsReloader {
    files: TlsFiles,
    config: ArcSwap<ServerConfig>,
    /// The same certificate for the HTTP port, which also speaks HTTP/1.1.
    http_config: ArcSwap<ServerConfig>,
    /// The files' fingerprint as last read, and the failure it gave, if any.
    seen: Mutex<(Fingerprint, Option<String>)>,
}

impl TlsReloader {
    /// Reads and checks the files; any problem is an error at start-up, naming the flag and file.
    pub fn open(files: TlsFiles) -> Result<TlsReloader> {
        let config = build(&files).map_err(Error::Usage)?;
        Ok(TlsReloader {
            seen: Mutex::new((fingerprint(&files), None)),
            files,
            http_config: ArcSwap::from_pointee(for_http(&config)),
            config: ArcSwap::from_pointee(config),
        })
    }

    /// The configuration for a new gRPC connection.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.config.load_full()
    }

    /// The configuration for a new HTTP connection.
    pub fn current_http(&self) -> Arc<ServerConfig> {
        self.http_config.load_full()
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Re-reads the files if any of them changed size or modification time.
    pub fn reload(&self) -> TlsReload {
        let mut seen = self.seen.lock().unwrap();
        let now = fingerprint(&self.files);
        if seen.0 == now {
            return TlsReload::Unchanged;
        }
        seen.0 = now;
        match build(&self.files) {
            Ok(config) => {
                self.http_config.store(Arc::new(for_http(&config)));
                self.config.store(Arc::new(config));
                seen.1 = None;
                TlsReload::Loaded
            }
            // The same failure from a later change (a half-written file rewritten) is not news.
            Err(why) if seen.1.as_ref() == Some(&why) => TlsReload::Unchanged,
            Err(why) => {
                seen.1 = Some(why.clone());
                TlsReload::Failed(why)
            }
        }
    }
}

fn fingerprint(files: &TlsFiles) -> Fingerprint {
    [
        Some(&files.cert),
        Some(&files.key),
        files.client_ca.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|p| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.len(), m.modified().ok()))
    })
    .collect()
}

fn read(flag: &str, path: &Path) -> std::result::Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))
}

fn certificates(
    flag: &str,
    path: &Path,
) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(flag, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{flag} {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
            path.display()
        ));
    }
    Ok(certs)
}

/// A rustls server configuration from the files, speaking HTTP/2 (ALPN `h2`) as gRPC needs.
pub fn build(files: &TlsFiles) -> std::result::Result<ServerConfig, String> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let chain = certificates("--tls-cert", &files.cert)?;
    let key_pem = read("--tls-key", &files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        format!(
            "--tls-key {}: no usable PEM private key ({e})",
            files.key.display()
        )
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(certificates("--tls-client-ca", ca)?);
            if added == 0 {
                return Err(format!(
                    "--tls-client-ca {}: no certificate in the file can be used as a CA",
                    ca.display()
                ));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .map_err(|e| format!("--tls-client-ca {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        let why = match e {
            tokio_rustls::rustls::Error::InconsistentKeys(_) => {
                "the private key does not match the certificate".to_string()
            }
            other => other.to_string(),
        };
        format!(
            "--tls-cert {} / --tls-key {}: {why}",
            files.cert.display(),
            files.key.display()
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// `grpc`'s certificate for the HTTP port: HTTP/2 or HTTP/1.1, as the client offers.
fn for_http(grpc: &ServerConfig) -> ServerConfig {
    let mut c = grpc.clone();
    c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn bad_files_are_named_with_their_flag() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "a");
        let (_, other_key) = self_signed(dir.path(), "b");
        let files = |cert: &Path, key: &Path, ca: Option<&Path>| TlsFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            client_ca: ca.map(Path::to_path_buf),
        };
        build(&files(&cert, &key, None)).unwrap();
        build(&files(&cert, &key, Some(&cert))).unwrap();

        let missing = dir.path().join("missing.pem");
        let err = build(&files(&missing, &key, None)).unwrap_err();
        assert!(
            err.starts_with("--tls-cert ") && err.contains("missing.pem"),
            "{err}"
        );
        let err = build(&files(&key, &key, None)).unwrap_err();
        assert!(err.contains("no PEM certificate"), "{err}");
        let err = build(&files(&cert, &cert, None)).unwrap_err();
        assert!(
            err.starts_with("--tls-key ") && err.contains("private key"),
            "{err}"
        );
        let err = build(&files(&cert, &other_key, None)).unwrap_err();
        assert!(
            err.contains("--tls-cert") && err.contains("--tls-key"),
            "{err}"
        );
        let err = build(&files(&cert, &key, Some(&key))).unwrap_err();
        assert!(err.starts_with("--tls-client-ca "), "{err}");
    }

    #[test]
    fn a_changed_pair_is_loaded_and_a_mismatched_one_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "a");
        let (cert_b, key_b) = self_signed(dir.path(), "b");
        let tls = TlsReloader::open(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: None,
        })
        .unwrap();
        let first = tls.current();
        assert_eq!(tls.reload(), TlsReload::Unchanged);
        // Half-way through a rotation: the new certificate with the old key.
        std::fs::copy(&cert_b, &cert).unwrap();
        assert!(matches!(tls.reload(), TlsReload::Failed(_)));
        assert!(
            Arc::ptr_eq(&first, &tls.current()),
            "the old pair keeps serving"
        );
        // The same failure again (the file rewritten, a byte longer) is not reported twice.
        let pem = std::fs::read_to_string(&cert_b).unwrap();
        std::fs::write(&cert, format!("{pem}\n")).unwrap();
        assert_eq!(tls.reload(), TlsReload::Unchanged);
        // The key arrives: the new pair is served.
        std::fs::copy(&key_b, &key).unwrap();
        assert_eq!(tls.reload(), TlsReload::Loaded);
        assert!(!Arc::ptr_eq(&first, &tls.current()));
    }
}
