//! Who may use the pool: the HMAC-SHA256 that signs every chunk and every result part (Python's
//! `authkey`), and the check that refuses a Redis off loopback without a key.

use super::error::ClusterError;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks entries with the pool's key. Without a key (only on loopback) the tag is an
/// HMAC under the empty key: it still catches a corrupted entry, not a forged one.
#[derive(Clone)]
pub(crate) struct Signer {
    key: Vec<u8>,
}

impl Signer {
    pub(crate) fn new(key: Option<Vec<u8>>) -> Signer {
        Signer {
            key: key.unwrap_or_default(),
        }
    }

    fn mac(&self, parts: &[&[u8]]) -> HmacSha256 {
        // HMAC takes a key of any length, so this never fails.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        for part in parts {
            // The length first, so that moving bytes from one part to the next changes the tag.
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac
    }

    /// The tag of `parts`.
    pub(crate) fn sign(&self, parts: &[&[u8]]) -> Vec<u8> {
        self.mac(parts).finalize().into_bytes().to_vec()
    }

    /// Whether `tag` is the tag of `parts` (compared in constant time).
    pub(crate) fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        self.mac(parts).verify_slice(tag).is_ok()
    }
}

/// Refuses a Redis that is not on loopback (nor a Unix socket) when there is no key.
pub(crate) fn check_reachable_safely(
    info: &redis::ConnectionInfo,
    has_key: bool,
) -> Result<(), ClusterError> {
    let host = match info.addr() {
        redis::ConnectionAddr::Tcp(host, _) => host.clone(),
        redis::ConnectionAddr::TcpTls { host, .. } => host.clone(),
        _ => return Ok(()),
    };
    let loopback = host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if has_key || loopback {
        Ok(())
    } else {
        Err(ClusterError::NoKey { host })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_checks_only_under_its_key_and_its_parts() {
        let signer = Signer::new(Some(b"secret".to_vec()));
        let tag = signer.sign(&[b"head", b"args"]);
        assert!(signer.verify(&[b"head", b"args"], &tag));
        assert!(
            !signer.verify(&[b"hea", b"dargs"], &tag),
            "parts are framed"
        );
        assert!(!Signer::new(Some(b"other".to_vec())).verify(&[b"head", b"args"], &tag));
        assert!(!Signer::new(None).verify(&[b"head", b"args"], &tag));
    }

    #[test]
    fn off_loopback_a_key_is_needed() {
        let info = |url: &str| {
            redis::Client::open(url)
                .unwrap()
                .get_connection_info()
                .clone()
        };
        assert!(check_reachable_safely(&info("redis://127.0.0.1:6379"), false).is_ok());
        assert!(check_reachable_safely(&info("redis://localhost:6379"), false).is_ok());
        let far = check_reachable_safely(&info("redis://10.1.2.3:6379"), false);
        assert!(matches!(far, Err(ClusterError::NoKey { host }) if host == "10.1.2.3"));
        assert!(check_reachable_safely(&info("redis://10.1.2.3:6379"), true).is_ok());
    }
}
