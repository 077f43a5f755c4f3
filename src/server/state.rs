//! `ftxd`'s state directory and what lives in it: where it is by default,
//! the checks that it and its secrets are private, atomic writes of its
//! files, and the server's identity (the private key and the self-signed
//! certificate created there on first start with rcgen, the rustls
//! `ServerConfig` made from them, TLS 1.3 only, ring provider, and the
//! certificate's fingerprint). The token file beside them is `tokens`'s.
//! Touches only the state directory; never prints (the binary tells the
//! operator what was created).

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::fingerprint;

/// Name of the private key file in the state directory (mode 0600).
pub const KEY_FILE: &str = "key.pem";
/// Name of the certificate file in the state directory.
pub const CERT_FILE: &str = "cert.pem";
/// Subject name written into the self-signed certificate. Clients pin the
/// fingerprint, so the name is informative only.
const CERT_NAME: &str = "ftxd";

/// Why the state directory or a file in it (the key, the certificate, the
/// token file) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file or directory could not be read or written.
    #[error("'{}': {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The key or certificate could not be made or parsed.
    #[error("'{}': {reason}", path.display())]
    Bad {
        /// The path involved.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The per-user default state directory: `$XDG_STATE_HOME/ftxd`, else
/// `~/.local/state/ftxd`; `None` when neither variable is set.
pub fn default_state_dir() -> Option<PathBuf> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(state) = nonempty("XDG_STATE_HOME") {
        return Some(PathBuf::from(state).join("ftxd"));
    }
    nonempty("HOME").map(|h| PathBuf::from(h).join(".local/state/ftxd"))
}

/// Checks, as sshd's StrictModes does, that the state directory and the
/// secrets in it are this user's and private: the directory writable by
/// no one else (or someone could swap the files), the key and the token
/// file readable by no one else. Files that do not exist yet pass.
pub fn check_private(dir: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    let check = |path: &Path, forbidden: u32, what: &str| -> Result<(), StateError> {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(path)(e)),
        };
        let bad = |reason: String| StateError::Bad {
            path: path.to_path_buf(),
            reason,
        };
        if meta.file_type().is_symlink() {
            return Err(bad(format!(
                "{what} is a symbolic link; ftxd uses only its own files"
            )));
        }
        if meta.uid() != me {
            return Err(bad(format!(
                "{what} belongs to uid {}, not to ftxd's user",
                meta.uid()
            )));
        }
        let mode = meta.mode() & 0o7777;
        if mode & forbidden != 0 {
            return Err(bad(format!(
                "{what} has mode {mode:o}, open to others; make it private (chmod go-rwx)"
            )));
        }
        Ok(())
    };
    check(dir, 0o022, "the state directory")?;
    check(&dir.join(KEY_FILE), 0o077, "the private key")?;
    check(
        &dir.join(super::tokens::TOKENS_FILE),
        0o077,
        "the token file",
    )
}

/// Creates the state directory (and its parents) if needed, mode 0700.
pub fn create_state_dir(dir: &Path) -> Result<(), StateError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))
}

/// Writes `bytes` to `path` atomically ([`crate::state_file::write_atomic`]),
/// so a crash never leaves half a key or half a token list.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    crate::state_file::write_atomic(path, bytes, mode).map_err(io_err(path))
}

/// A new Ed25519 key and a self-signed certificate for it. Ed25519, not
/// rcgen's default P-256: to load a P-256 key, ring computes its public
/// key with a 150 KiB table, which then stays mapped in every idle ftxd.
/// Keys made before (P-256) still load.
fn make_identity() -> Result<(rcgen::KeyPair, rcgen::Certificate), rcgen::Error> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let cert = rcgen::CertificateParams::new(vec![CERT_NAME.to_owned()])?.self_signed(&key)?;
    Ok((key, cert))
}

/// The server's key and certificate.
pub struct Identity {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        write!(f, "Identity({})", self.fingerprint())
    }
}

impl Identity {
    /// Loads the key and certificate from `dir`, creating both first if
    /// neither exists. Returns the identity and whether it was just made.
    pub fn load_or_create(dir: &Path) -> Result<(Identity, bool), StateError> {
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        let created = if key_path.exists() && cert_path.exists() {
            false
        } else {
            create_state_dir(dir)?;
            // Under the key's lock, looking again: several servers sharing
            // one state directory (on a shared file system) may start at
            // once, and must all end with the one identity on disk, not
            // each with the one it made, nor take another's half-written
            // one for a broken identity.
            let _lock = crate::state_file::lock(&key_path).map_err(io_err(&key_path))?;
            match (key_path.exists(), cert_path.exists()) {
                (true, true) => false,
                (false, false) => {
                    let (key, cert) = make_identity().map_err(|e| StateError::Bad {
                        path: cert_path.clone(),
                        reason: format!("cannot make a certificate: {e}"),
                    })?;
                    // The key first: a certificate without its key is useless.
                    write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
                    write_atomic(&cert_path, cert.pem().as_bytes(), 0o644)?;
                    true
                }
                (true, false) | (false, true) => {
                    return Err(StateError::Bad {
                        path: dir.to_path_buf(),
                        reason: format!(
                            "holds only one of {KEY_FILE} and {CERT_FILE}; remove the other to make a new identity"
                        ),
                    })
                }
            }
        };
        Ok((Identity::load(dir)?, created))
    }

    /// Loads an existing key and certificate from `dir`.
    pub fn load(dir: &Path) -> Result<Identity, StateError> {
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        let pem_err = |path: &Path| {
            let path = path.to_path_buf();
            move |e: rustls::pki_types::pem::Error| match e {
                rustls::pki_types::pem::Error::Io(source) => StateError::Io { path, source },
                other => StateError::Bad {
                    path,
                    reason: other.to_string(),
                },
            }
        };
        let cert = CertificateDer::from_pem_file(&cert_path).map_err(pem_err(&cert_path))?;
        let key = PrivateKeyDer::from_pem_file(&key_path).map_err(pem_err(&key_path))?;
        Ok(Identity { cert, key })
    }

    /// The certificate's fingerprint (`SHA256:...`), what clients pin.
    pub fn fingerprint(&self) -> String {
        fingerprint::of_cert(self.cert.as_ref())
    }

    /// The rustls configuration: TLS 1.3 only, the ring provider, no
    /// client certificates, no session resumption.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, StateError> {
        let bad = |e: rustls::Error| StateError::Bad {
            path: PathBuf::from(KEY_FILE),
            reason: e.to_string(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(bad)?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())
            .map_err(bad)?;
        // ftx makes a fresh client configuration for every connection, so
        // it never resumes: tickets (rustls sends two by default, each
        // also stored in a 256-entry cache) would only cost every
        // handshake work and bytes, and the loop memory.
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(Arc::new(config))
    }
}

/// Writes a P-256 key and certificate into `dir`, as ftxd made them before
/// it made Ed25519 ones.
#[cfg(test)]
pub(crate) fn write_p256_identity(dir: &Path) {
    let made = rcgen::generate_simple_self_signed(vec![CERT_NAME.to_owned()]).unwrap();
    fs::write(dir.join(KEY_FILE), made.signing_key.serialize_pem()).unwrap();
    fs::write(dir.join(CERT_FILE), made.cert.pem()).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The state directory and its secrets must be private and ftxd's own,
    /// as sshd's StrictModes asks: an open directory, a readable key or
    /// token file, or a symlink in their place is refused, with the fix.
    #[test]
    fn state_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("state");
        Identity::load_or_create(&dir).unwrap();
        fs::write(dir.join(super::super::tokens::TOKENS_FILE), b"").unwrap();
        fs::set_permissions(dir.join("tokens"), fs::Permissions::from_mode(0o600)).unwrap();
        check_private(&dir).unwrap();
        let set = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
        set(&dir, 0o777);
        let e = check_private(&dir).unwrap_err().to_string();
        assert!(e.contains("state directory has mode 777"), "{e}");
        set(&dir, 0o700);
        set(&dir.join(KEY_FILE), 0o644);
        let e = check_private(&dir).unwrap_err().to_string();
        assert!(
            e.contains("private key has mode 644") && e.contains("chmod go-rwx"),
            "{e}"
        );
        set(&dir.join(KEY_FILE), 0o600);
        fs::remove_file(dir.join("tokens")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("tokens")).unwrap();
        let e = check_private(&dir).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
    }
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn identity_is_made_once_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let (a, created) = Identity::load_or_create(&state).unwrap();
        assert!(created);
        let (b, created) = Identity::load_or_create(&state).unwrap();
        assert!(!created);
        assert_eq!(a.fingerprint(), b.fingerprint());
        let mode = fs::metadata(state.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(dmode & 0o777, 0o700);
        // No resumption: ftx never uses tickets, so none are made.
        assert_eq!(a.server_config().unwrap().send_tls13_tickets, 0);
    }

    /// Servers sharing one state directory that start at once end with
    /// one identity, the one on disk.
    #[test]
    fn servers_starting_at_once_share_one_identity() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (state, barrier) = (state.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    Identity::load_or_create(&state).unwrap()
                })
            })
            .collect();
        let made: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let on_disk = Identity::load(&state).unwrap().fingerprint();
        assert!(made.iter().all(|(id, _)| id.fingerprint() == on_disk));
        assert!(made.iter().filter(|(_, created)| *created).count() <= 1);
    }

    #[test]
    fn a_new_identity_is_ed25519() {
        let dir = tempfile::tempdir().unwrap();
        let (identity, _) = Identity::load_or_create(dir.path()).unwrap();
        let PrivateKeyDer::Pkcs8(der) = &identity.key else {
            panic!("not PKCS#8: {:?}", identity.key);
        };
        ring::signature::Ed25519KeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
    }

    /// Identities made before Ed25519 (rcgen's default, P-256) still serve.
    #[test]
    fn a_p256_identity_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        write_p256_identity(dir.path());
        let (identity, created) = Identity::load_or_create(dir.path()).unwrap();
        assert!(!created);
        identity.server_config().unwrap();
    }

    #[test]
    fn two_state_dirs_have_different_fingerprints() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = Identity::load_or_create(&dir.path().join("a")).unwrap();
        let (b, _) = Identity::load_or_create(&dir.path().join("b")).unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn half_an_identity_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        Identity::load_or_create(dir.path()).unwrap();
        fs::remove_file(dir.path().join(CERT_FILE)).unwrap();
        let e = Identity::load_or_create(dir.path()).unwrap_err();
        assert!(e.to_string().contains("only one of"), "{e}");
    }
}
