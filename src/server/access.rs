//! Who may come in: the [`Security`] every connection shares, made from
//! the access policy ([`AccessConfig`]): the TLS configuration (`None` for
//! `--plain`) and the token [`Gate`] (open for `--open`). The loop is one
//! thread, so the gate needs no lock.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use super::config::AccessConfig;
use super::state::{self, Identity};
use super::tokens::{Gate, TokenStore};

/// What every connection of one server shares: the TLS configuration and
/// the door. The loop is one thread, so the gate needs no lock.
pub(crate) struct Security {
    /// `None`: `--plain`.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// Token checks and the slow-down of failing addresses.
    pub(crate) gate: RefCell<Gate>,
}

impl Security {
    /// Loads what `access` asks for from the state directory (which the
    /// binary prepared: key, certificate, token file).
    pub(crate) fn load(access: &AccessConfig) -> Result<Security, String> {
        let dir = access.state_dir.as_deref();
        let need_dir = |what: &str| -> Result<&Path, String> {
            dir.ok_or_else(|| format!("{what} needs a state directory (--state-dir)"))
        };
        if let Some(dir) = dir {
            state::check_private(dir).map_err(|e| e.to_string())?;
        }
        let tls = if access.tls {
            let dir = need_dir("TLS")?;
            let identity = Identity::load(dir).map_err(|e| e.to_string())?;
            Some(identity.server_config().map_err(|e| e.to_string())?)
        } else {
            None
        };
        let gate = if access.require_token {
            let dir = need_dir("access tokens")?;
            Gate::with_tokens(TokenStore::open(dir).map_err(|e| e.to_string())?)
        } else {
            Gate::open()
        };
        Ok(Security {
            tls,
            gate: RefCell::new(gate),
        })
    }
}
