//! The certificate fingerprint both sides show and compare:
//! `SHA256:` and the unpadded base64 of the SHA-256 of the certificate's
//! DER bytes, as `ssh-keygen -l` prints key fingerprints. Pure computation:
//! no files, no sockets.

use ring::digest::{digest, SHA256};

/// Prefix of every fingerprint (the hash it names).
pub const PREFIX: &str = "SHA256:";

/// The fingerprint of a DER-encoded certificate.
pub fn of_cert(der: &[u8]) -> String {
    let hash = digest(&SHA256, der);
    format!("{PREFIX}{}", base64_nopad(hash.as_ref()))
}

/// Checks that `text` looks like a fingerprint (`SHA256:` and 43 base64
/// characters) and returns it trimmed; used for `--fingerprint` and the
/// known-hosts file.
pub fn parse(text: &str) -> Option<&str> {
    let t = text.trim();
    let body = t.strip_prefix(PREFIX)?;
    let ok = body.len() == 43
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    ok.then_some(t)
}

/// Standard base64 (RFC 4648 alphabet) without `=` padding.
fn base64_nopad(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64_nopad(b""), "");
        assert_eq!(base64_nopad(b"f"), "Zg");
        assert_eq!(base64_nopad(b"fo"), "Zm8");
        assert_eq!(base64_nopad(b"foo"), "Zm9v");
        assert_eq!(base64_nopad(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn fingerprints_look_like_ssh_ones() {
        let fp = of_cert(b"certificate bytes");
        assert!(fp.starts_with("SHA256:"));
        assert_eq!(fp.len(), 7 + 43);
        assert_eq!(parse(&format!(" {fp}\n")), Some(fp.as_str()));
        assert_ne!(of_cert(b"other"), fp);
        assert_eq!(parse("SHA256:short"), None);
        assert_eq!(parse("MD5:aa"), None);
    }
}
