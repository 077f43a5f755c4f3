//! Who may come in: the [`Security`] every connection shares, made from
//! the access policy ([`AccessConfig`]): the TLS configuration (`None` for
//! `--plain`) and the token [`Gate`] (open for `--open`). The loop is one
//! thread, so the gate needs no lock.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use super::config::AccessConfig;
use super::state::{self, Identity};
use super::tokens::{Access, Gate, TokenError, TokenStore, FIRST_TOKEN_NAME};

/// What every connection of one server shares: the TLS configuration and
/// the door. The loop is one thread, so the gate needs no lock.
pub struct Security {
    /// `None`: `--plain`.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// Token checks and the slow-down of failing addresses.
    pub(crate) gate: RefCell<Gate>,
}

/// What [`Security::prepare`] found or made in the state directory, for
/// the binary to tell the operator (this module never prints).
#[derive(Debug, Default)]
pub struct Prepared {
    /// The certificate's fingerprint (`SHA256:...`), with TLS.
    pub fingerprint: Option<String>,
    /// A new key and certificate were made (first start with TLS).
    pub created_identity: bool,
    /// The first access token, made because the token file had none; shown
    /// to the operator once and never again.
    pub first_token: Option<String>,
}

impl Security {
    /// Loads what `access` asks for from the state directory, once, making
    /// what a first start lacks: the key and certificate (with TLS) and a
    /// read-write token named [`FIRST_TOKEN_NAME`] when the token file has
    /// none. Then checks that the directory and its secrets are private.
    /// Errors are the operator's one-line messages.
    pub fn prepare(access: &AccessConfig) -> Result<(Security, Prepared), String> {
        let mut prepared = Prepared::default();
        let state_err = |e: &dyn std::fmt::Display| format!("state directory: {e}");
        let mut identity = None;
        let mut tokens = None;
        if let Some(dir) = access.state_dir.as_deref() {
            if access.tls {
                let (made, created) = Identity::load_or_create(dir).map_err(|e| state_err(&e))?;
                prepared.created_identity = created;
                prepared.fingerprint = Some(made.fingerprint());
                identity = Some(made);
            }
            if access.require_token {
                let mut store = TokenStore::open(dir).map_err(|e| state_err(&e))?;
                if store.list().is_empty() {
                    match store.add(FIRST_TOKEN_NAME, Access::ReadWrite) {
                        Ok(token) => prepared.first_token = Some(token),
                        // Another server sharing this state directory
                        // made it a moment ago: it shows the token.
                        Err(TokenError::Exists(_)) => {}
                        Err(e) => return Err(state_err(&e)),
                    }
                }
                tokens = Some(store);
            }
        }
        let security = Security::from_parts(access, identity, tokens)?;
        Ok((security, prepared))
    }

    /// Checks the state directory, then builds the security from the
    /// identity and token store given, loading those not given.
    fn from_parts(
        access: &AccessConfig,
        identity: Option<Identity>,
        tokens: Option<TokenStore>,
    ) -> Result<Security, String> {
        let dir = access.state_dir.as_deref();
        let need_dir = |what: &str| -> Result<&Path, String> {
            dir.ok_or_else(|| format!("{what} needs a state directory (--state-dir)"))
        };
        if let Some(dir) = dir {
            state::check_private(dir).map_err(|e| e.to_string())?;
        }
        let tls = if access.tls {
            let identity = match identity {
                Some(identity) => identity,
                None => Identity::load(need_dir("TLS")?).map_err(|e| e.to_string())?,
            };
            Some(identity.server_config().map_err(|e| e.to_string())?)
        } else {
            None
        };
        let gate = if access.require_token {
            let tokens = match tokens {
                Some(tokens) => tokens,
                None => TokenStore::open(need_dir("access tokens")?).map_err(|e| e.to_string())?,
            };
            Gate::with_tokens(tokens)
        } else {
            Gate::open()
        };
        Ok(Security {
            tls,
            gate: RefCell::new(gate),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first start makes the key, the certificate and one token, and
    /// says so; the next start finds them and makes nothing.
    #[test]
    fn prepare_makes_what_a_first_start_lacks_once() {
        let t = tempfile::tempdir().unwrap();
        let access = AccessConfig {
            state_dir: Some(t.path().join("state")),
            tls: true,
            require_token: true,
        };
        let (security, first) = Security::prepare(&access).unwrap();
        assert!(first.created_identity);
        assert!(first.first_token.is_some());
        assert!(security.tls.is_some() && security.gate.borrow().requires_token());
        let (_, again) = Security::prepare(&access).unwrap();
        assert!(!again.created_identity && again.first_token.is_none());
        assert_eq!(again.fingerprint, first.fingerprint);
    }

    #[test]
    fn tls_without_a_state_directory_is_refused() {
        let access = AccessConfig {
            state_dir: None,
            tls: true,
            require_token: false,
        };
        let e = Security::prepare(&access).err().unwrap();
        assert_eq!(e, "TLS needs a state directory (--state-dir)");
    }
}
