//! The mutual challenge a TCP connection to a manager passes before its first request (Python's
//! `deliver_challenge` and `answer_challenge`, run in both directions).
//!
//! Three frames of the crate's wire format, none longer than [`MAX_HANDSHAKE_FRAME`] (checked
//! before anything is allocated): the server sends a random nonce; the client answers with
//! HMAC-SHA256(authkey, "client" label, that nonce) and a nonce of its own; the server checks the
//! digest and either refuses or welcomes the client with HMAC-SHA256(authkey, "server" label,
//! the client's nonce), its pid and its token. Each side proves it knows the key without sending
//! it, and the labels keep a digest of one direction from being replayed in the other. Python's
//! byte layout is not kept: a Python manager and a Rust one cannot talk anyway.

use super::ManagerError;
use crate::wire::{self, HEADER_LEN};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::time::Duration;

/// The longest authkey taken: Python's default authkey is 32 random bytes.
pub(crate) const MAX_AUTHKEY: usize = 32;

/// The longest handshake frame, payload and header: anything longer is refused unread.
pub(crate) const MAX_HANDSHAKE_FRAME: u64 = 256;

/// How long either side waits for the other's next handshake frame.
pub(crate) const HANDSHAKE_PATIENCE: Duration = Duration::from_secs(10);

const CLIENT_LABEL: &[u8] = b"multiproc-manager-client";
const SERVER_LABEL: &[u8] = b"multiproc-manager-server";

type Nonce = [u8; 32];
type Digest = [u8; 32];

/// A manager's authkey, at most [`MAX_AUTHKEY`] bytes, kept inline so that a proxy stays
/// `Copy`. Its `Debug` does not show it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct AuthKey {
    bytes: [u8; MAX_AUTHKEY],
    len: u8,
}

impl AuthKey {
    /// `key`, if it is not empty and not longer than [`MAX_AUTHKEY`].
    pub(crate) fn new(key: &[u8]) -> Result<AuthKey, ManagerError> {
        if key.is_empty() || key.len() > MAX_AUTHKEY {
            return Err(ManagerError::Authentication {
                reason: format!("an authkey has 1 to {MAX_AUTHKEY} bytes, not {}", key.len()),
            });
        }
        let mut bytes = [0; MAX_AUTHKEY];
        bytes[..key.len()].copy_from_slice(key);
        Ok(AuthKey {
            bytes,
            len: key.len() as u8,
        })
    }

    /// A new random key of [`MAX_AUTHKEY`] bytes (Python's `os.urandom(32)`).
    pub(crate) fn random() -> io::Result<AuthKey> {
        let mut bytes = [0; MAX_AUTHKEY];
        fill_random(&mut bytes)?;
        Ok(AuthKey {
            bytes,
            len: MAX_AUTHKEY as u8,
        })
    }

    /// The key's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len).min(MAX_AUTHKEY)]
    }

    /// HMAC-SHA256 of `label` then `nonce` under this key.
    fn digest(&self, label: &[u8], nonce: &Nonce) -> Digest {
        self.mac(label, nonce).finalize().into_bytes().into()
    }

    /// Whether `digest` is the digest of `label` then `nonce`, compared in constant time.
    fn verify(&self, label: &[u8], nonce: &Nonce, digest: &Digest) -> bool {
        self.mac(label, nonce).verify_slice(digest).is_ok()
    }

    fn mac(&self, label: &[u8], nonce: &Nonce) -> Hmac<Sha256> {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(label);
        mac.update(nonce);
        mac
    }
}

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthKey(..)")
    }
}

/// Fills `buf` from the kernel's random source.
fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is a valid, writable buffer of `rest.len()` bytes for the call.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match n {
            n if n > 0 => filled += n as usize,
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

fn random_nonce() -> io::Result<Nonce> {
    let mut nonce = [0; 32];
    fill_random(&mut nonce)?;
    Ok(nonce)
}

/// The server's first frame.
#[derive(Serialize, Deserialize)]
struct Challenge {
    nonce: Nonce,
}

/// The client's answer, and its own challenge.
#[derive(Serialize, Deserialize)]
struct Answer {
    digest: Digest,
    nonce: Nonce,
}

/// The server's last frame.
#[derive(Serialize, Deserialize)]
enum Verdict {
    /// The client knows the key; so does the server, as `digest` proves; it is the manager
    /// `pid` started with `token`.
    Welcome {
        digest: Digest,
        pid: i32,
        token: [u64; 2],
    },
    /// The client does not know the key; the server hangs up.
    Failure,
}

/// Who the server is, as the welcome tells a client that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerId {
    pub(crate) pid: i32,
    pub(crate) token: [u64; 2],
}

/// The server's side of one connection's handshake, waiting for the client's answer.
pub(crate) struct ServerHandshake {
    key: AuthKey,
    nonce: Nonce,
    id: ServerId,
}

/// What the server does with the bytes a client sent so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The answer is not whole yet.
    Incomplete,
    /// The client passed: send `verdict` and serve what follows the first `consumed` bytes.
    Accepted { consumed: usize, verdict: Vec<u8> },
    /// The client failed, or sent garbage: send `verdict` and hang up.
    Refused { verdict: Vec<u8> },
}

impl ServerHandshake {
    /// A handshake for a new connection, and the challenge frame to send on it.
    pub(crate) fn start(key: AuthKey, id: ServerId) -> io::Result<(ServerHandshake, Vec<u8>)> {
        let nonce = random_nonce()?;
        let challenge = wire::encode_frame(&Challenge { nonce }).map_err(io::Error::other)?;
        Ok((ServerHandshake { key, nonce, id }, challenge))
    }

    /// Judges the client's answer at the front of `input`: the handshake decoder, which any
    /// host that reaches the port can feed anything.
    pub(crate) fn step(&self, input: &[u8]) -> Step {
        let refused = || Step::Refused {
            verdict: frame(&Verdict::Failure),
        };
        let Some(header) = input.get(..HEADER_LEN) else {
            return Step::Incomplete;
        };
        let len = u64::from_le_bytes(header.try_into().unwrap_or_default());
        if len > MAX_HANDSHAKE_FRAME - HEADER_LEN as u64 {
            return refused();
        }
        let Some(payload) = wire::complete_frame(input) else {
            return Step::Incomplete;
        };
        match wire::decode::<Answer>(payload) {
            Ok(answer) if self.key.verify(CLIENT_LABEL, &self.nonce, &answer.digest) => {
                let verdict = Verdict::Welcome {
                    digest: self.key.digest(SERVER_LABEL, &answer.nonce),
                    pid: self.id.pid,
                    token: self.id.token,
                };
                Step::Accepted {
                    consumed: HEADER_LEN + payload.len(),
                    verdict: frame(&verdict),
                }
            }
            _ => refused(),
        }
    }
}

/// `value` as one frame; the handshake's messages always encode.
fn frame<T: Serialize>(value: &T) -> Vec<u8> {
    wire::encode_frame(value).unwrap_or_default()
}

/// Connects to the manager at `addr` and passes the handshake with `key`; the connection, made
/// blocking again, and who the server is.
pub(crate) fn connect(
    addr: SocketAddr,
    key: &AuthKey,
) -> Result<(OwnedFd, ServerId), ManagerError> {
    let unreachable = |source: io::Error| ManagerError::Unreachable { addr, source };
    let mut stream = TcpStream::connect_timeout(&addr, HANDSHAKE_PATIENCE).map_err(unreachable)?;
    stream.set_nodelay(true).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(HANDSHAKE_PATIENCE))
        .map_err(unreachable)?;
    stream
        .set_write_timeout(Some(HANDSHAKE_PATIENCE))
        .map_err(unreachable)?;
    let id = answer_challenge(&mut stream, key, addr)?;
    stream.set_read_timeout(None).map_err(unreachable)?;
    stream.set_write_timeout(None).map_err(unreachable)?;
    Ok((stream.into(), id))
}

/// The client's side of the handshake on `stream`.
fn answer_challenge(
    stream: &mut TcpStream,
    key: &AuthKey,
    addr: SocketAddr,
) -> Result<ServerId, ManagerError> {
    let unreachable = |source: io::Error| ManagerError::Unreachable { addr, source };
    let challenge: Challenge = read_handshake_frame(stream, addr)?;
    let nonce = random_nonce().map_err(unreachable)?;
    let answer = Answer {
        digest: key.digest(CLIENT_LABEL, &challenge.nonce),
        nonce,
    };
    stream.write_all(&frame(&answer)).map_err(unreachable)?;
    let refused = |reason: String| ManagerError::Authentication { reason };
    match read_handshake_frame(stream, addr)? {
        Verdict::Welcome { digest, pid, token } if key.verify(SERVER_LABEL, &nonce, &digest) => {
            Ok(ServerId { pid, token })
        }
        Verdict::Welcome { .. } => Err(refused(format!(
            "the server at {addr} does not know the authkey"
        ))),
        Verdict::Failure => Err(refused(format!(
            "the manager at {addr} refused the authkey"
        ))),
    }
}

/// Reads one handshake frame from `stream` and decodes it as `T`.
fn read_handshake_frame<T: serde::de::DeserializeOwned>(
    stream: &mut TcpStream,
    addr: SocketAddr,
) -> Result<T, ManagerError> {
    let malformed = |why: String| ManagerError::Authentication {
        reason: format!("the peer at {addr} broke the handshake: {why}"),
    };
    let mut header = [0; HEADER_LEN];
    stream
        .read_exact(&mut header)
        .map_err(|source| ManagerError::Unreachable { addr, source })?;
    let len = u64::from_le_bytes(header);
    if len > MAX_HANDSHAKE_FRAME - HEADER_LEN as u64 {
        return Err(malformed(format!("a frame of {len} bytes")));
    }
    let mut payload = vec![0; len as usize];
    stream
        .read_exact(&mut payload)
        .map_err(|source| ManagerError::Unreachable { addr, source })?;
    wire::decode(&payload).map_err(|e| malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: ServerId = ServerId {
        pid: 7,
        token: [1, 2],
    };

    fn handshake(key: &[u8]) -> (ServerHandshake, Nonce) {
        let (server, challenge) = ServerHandshake::start(AuthKey::new(key).unwrap(), ID).unwrap();
        let challenge: Challenge = wire::decode(wire::complete_frame(&challenge).unwrap()).unwrap();
        (server, challenge.nonce)
    }

    #[test]
    fn the_right_key_is_welcomed_and_the_welcome_proves_the_server_knows_it() {
        let (server, nonce) = handshake(b"secret");
        let key = AuthKey::new(b"secret").unwrap();
        let mine = [9; 32];
        let mut input = frame(&Answer {
            digest: key.digest(CLIENT_LABEL, &nonce),
            nonce: mine,
        });
        let answer_len = input.len();
        input.extend_from_slice(b"next request");
        let Step::Accepted { consumed, verdict } = server.step(&input) else {
            panic!("refused");
        };
        assert_eq!(consumed, answer_len);
        let verdict: Verdict = wire::decode(wire::complete_frame(&verdict).unwrap()).unwrap();
        let Verdict::Welcome { digest, pid, token } = verdict else {
            panic!("not welcomed");
        };
        assert!(key.verify(SERVER_LABEL, &mine, &digest));
        assert!(!key.verify(CLIENT_LABEL, &mine, &digest), "labels differ");
        assert_eq!((pid, token), (ID.pid, ID.token));
    }

    #[test]
    fn a_wrong_key_or_a_replayed_digest_is_refused() {
        let (server, nonce) = handshake(b"secret");
        let wrong = AuthKey::new(b"guess").unwrap();
        let answer = frame(&Answer {
            digest: wrong.digest(CLIENT_LABEL, &nonce),
            nonce: [0; 32],
        });
        assert!(matches!(server.step(&answer), Step::Refused { .. }));
        let right = AuthKey::new(b"secret").unwrap();
        let other_direction = frame(&Answer {
            digest: right.digest(SERVER_LABEL, &nonce),
            nonce: [0; 32],
        });
        assert!(matches!(
            server.step(&other_direction),
            Step::Refused { .. }
        ));
    }

    #[test]
    fn a_partial_answer_waits_and_an_oversized_header_is_refused_unread() {
        let (server, _) = handshake(b"k");
        let answer = frame(&Answer {
            digest: [0; 32],
            nonce: [0; 32],
        });
        for cut in 0..answer.len() {
            assert_eq!(
                server.step(&answer[..cut]),
                Step::Incomplete,
                "cut at {cut}"
            );
        }
        let huge = u64::MAX.to_le_bytes();
        assert!(matches!(server.step(&huge), Step::Refused { .. }));
    }

    /// The handshake decoder fed a few thousand pseudo-random streams: garbage and mutated
    /// answers are refused or wait for more, never accepted, never a panic.
    #[test]
    fn garbage_is_never_accepted_and_never_panics() {
        let (server, nonce) = handshake(b"secret");
        let key = AuthKey::new(b"secret").unwrap();
        let valid = frame(&Answer {
            digest: key.digest(CLIENT_LABEL, &nonce),
            nonce: [3; 32],
        });
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..4000 {
            let mut input = if round % 2 == 0 {
                let mut mutated = valid.clone();
                // The digest's bytes: the client's nonce is not signed.
                let at = HEADER_LEN + next() as usize % 32;
                mutated[at] ^= (next() as u8) | 1;
                mutated
            } else {
                let len = next() % 100;
                let mut garbage = len.to_le_bytes().to_vec();
                garbage.extend((0..next() % 120).map(|_| next() as u8));
                garbage
            };
            if next() % 4 == 0 {
                input.truncate(next() as usize % (input.len() + 1));
            }
            assert!(!matches!(server.step(&input), Step::Accepted { .. }));
        }
    }

    #[test]
    fn keys_are_one_to_32_bytes_and_do_not_show_in_debug() {
        assert!(AuthKey::new(b"").is_err());
        assert!(AuthKey::new(&[1; 33]).is_err());
        let key = AuthKey::new(b"hunter2").unwrap();
        assert_eq!(key.as_bytes(), b"hunter2");
        assert!(!format!("{key:?}").contains("hunter2"));
        assert_eq!(AuthKey::random().unwrap().as_bytes().len(), MAX_AUTHKEY);
    }
}
