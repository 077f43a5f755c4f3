//! Trust on first use, as ssh does: the known-hosts file
//! (`$XDG_DATA_HOME/ftx/known_hosts`, lines `HOST:PORT SHA256:...`), the
//! per-host saved tokens (`$XDG_DATA_HOME/ftx/tokens`, mode 0600), and the
//! rustls certificate verifier that accepts exactly one pinned fingerprint
//! (and still checks the TLS 1.3 handshake signature with the ring
//! provider, so only the holder of the pinned key gets through). Asking
//! the user is the shell's business; nothing here prints.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use crate::fingerprint;

/// File name of the known hosts in ftx's data directory.
pub const KNOWN_HOSTS_FILE: &str = "known_hosts";
/// File name of the saved tokens in ftx's data directory.
pub const TOKENS_FILE: &str = "tokens";

/// ftx's data directory: `$XDG_DATA_HOME/ftx`, else `~/.local/share/ftx`.
pub fn data_dir() -> Option<PathBuf> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = nonempty("XDG_DATA_HOME") {
        return Some(PathBuf::from(d).join("ftx"));
    }
    nonempty("HOME").map(|h| PathBuf::from(h).join(".local/share/ftx"))
}

/// A file of `KEY VALUE` lines: the known hosts (`HOST:PORT SHA256:...`)
/// or the saved tokens (`HOST:PORT TOKEN`).
#[derive(Debug, Clone)]
pub struct HostFile {
    path: PathBuf,
}

impl HostFile {
    /// The file at `path` (it need not exist yet).
    pub fn at(path: PathBuf) -> HostFile {
        HostFile { path }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value stored for `host` (`HOST:PORT`), if any.
    pub fn lookup(&self, host: &str) -> io::Result<Option<String>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(text.lines().find_map(|line| {
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next()) {
                (Some(h), Some(v)) if h == host && !h.starts_with('#') => Some(v.to_owned()),
                _ => None,
            }
        }))
    }

    /// Stores `value` for `host`, replacing an older line for it; the file
    /// and its directory are private to the user.
    pub fn store(&self, host: &str, value: &str) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        // Under the file's lock: two ftx storing at once both keep theirs.
        crate::state_file::update::<io::Error>(&self.path, 0o600, |old| {
            let mut text: String = old
                .unwrap_or_default()
                .lines()
                .filter(|l| l.split_whitespace().next() != Some(host))
                .map(|l| format!("{l}\n"))
                .collect();
            text.push_str(&format!("{host} {value}\n"));
            Ok(text)
        })
    }
}

/// What the verifier saw, for the error the user gets.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Fingerprint of the certificate the server presented.
    pub fingerprint: Option<String>,
}

/// Accepts exactly one certificate, by fingerprint, or (with no pin, for
/// a first look at an unknown server) any certificate while recording its
/// fingerprint. Either way the handshake signature is verified with the
/// presented certificate's key.
#[derive(Debug)]
pub struct PinnedVerifier {
    expected: Option<String>,
    seen: Arc<Mutex<Seen>>,
    provider: Arc<CryptoProvider>,
}

impl PinnedVerifier {
    /// A verifier for `expected` (`None`: record only). Returns it and the
    /// shared record of what the server presented.
    pub fn new(expected: Option<String>) -> (Arc<PinnedVerifier>, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let v = PinnedVerifier {
            expected,
            seen: Arc::clone(&seen),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        };
        (Arc::new(v), seen)
    }

    /// The crypto provider the verifier checks signatures with.
    pub fn provider(&self) -> Arc<CryptoProvider> {
        Arc::clone(&self.provider)
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fp = fingerprint::of_cert(end_entity.as_ref());
        if let Ok(mut seen) = self.seen.lock() {
            seen.fingerprint = Some(fp.clone());
        }
        match &self.expected {
            None => Ok(ServerCertVerified::assertion()),
            Some(want) if *want == fp => Ok(ServerCertVerified::assertion()),
            Some(_) => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Only TLS 1.3 is offered, so this is never reached; refuse anyway.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A changed server identity, in words a user acts on.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "WARNING: the server's identity has changed: {host} presented certificate {presented} but {expected} was expected; \
     this is a possible attack (someone may be intercepting the connection), or the server got a new key; \
     not connecting"
)]
pub struct IdentityChanged {
    /// `HOST:PORT`.
    pub host: String,
    /// The pinned fingerprint.
    pub expected: String,
    /// What the server presented.
    pub presented: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_file_stores_replaces_and_looks_up() {
        let dir = tempfile::tempdir().unwrap();
        let f = HostFile::at(dir.path().join("sub/known_hosts"));
        assert_eq!(f.lookup("h:1").unwrap(), None);
        f.store("h:1", "SHA256:a").unwrap();
        f.store("h:2", "SHA256:b").unwrap();
        f.store("h:1", "SHA256:c").unwrap();
        assert_eq!(f.lookup("h:1").unwrap().as_deref(), Some("SHA256:c"));
        assert_eq!(f.lookup("h:2").unwrap().as_deref(), Some("SHA256:b"));
        assert_eq!(f.lookup("h:3").unwrap(), None);
        let text = fs::read_to_string(f.path()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(f.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn verifier_accepts_only_the_pin() {
        let cert = CertificateDer::from(b"not really a certificate".to_vec());
        let fp = fingerprint::of_cert(cert.as_ref());
        let name = ServerName::try_from("ftxd").unwrap();
        let check =
            |v: &PinnedVerifier| v.verify_server_cert(&cert, &[], &name, &[], UnixTime::now());
        let (v, seen) = PinnedVerifier::new(Some(fp.clone()));
        assert!(check(&v).is_ok());
        let (v, seen2) = PinnedVerifier::new(Some("SHA256:other".into()));
        assert!(check(&v).is_err());
        assert_eq!(
            seen2.lock().unwrap().fingerprint.as_deref(),
            Some(fp.as_str())
        );
        let (v, _) = PinnedVerifier::new(None);
        assert!(check(&v).is_ok());
        assert_eq!(
            seen.lock().unwrap().fingerprint.as_deref(),
            Some(fp.as_str())
        );
    }
}
