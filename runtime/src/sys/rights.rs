//! Messages with descriptors attached: a Unix `SOCK_SEQPACKET` socket pair, and `sendmsg` and
//! `recvmsg` with `SCM_RIGHTS` (what Python's `multiprocessing.reduction.sendfds` and `recvfds`
//! do).
//!
//! A sequenced-packet socket keeps each message whole, descriptors included: several threads
//! may send on one socket at once, and the reader gets each message and its descriptors
//! together, never a mixture.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The most descriptors one message may carry (the kernel's `SCM_MAX_FD`).
pub(crate) const MAX_FDS: usize = 253;

/// A connected pair of sequenced-packet Unix sockets, both ends closed on exec.
pub(crate) fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io::Error::from)
}

/// Sends `bytes` with copies of `fds` attached, in one message. A peer gone is `BrokenPipe`,
/// never SIGPIPE; more than [`MAX_FDS`] descriptors is `InvalidInput`.
pub(crate) fn send_with_fds(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} descriptors in one message; at most {MAX_FDS} can travel together",
                fds.len()
            ),
        ));
    }
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let rights = [ControlMessage::ScmRights(&raw)];
    let control: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &rights };
    loop {
        match sendmsg::<UnixAddr>(
            socket.as_raw_fd(),
            &[IoSlice::new(bytes)],
            control,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => {}
            Err(error) => return Err(error.into()),
        }
    }
}

/// One received message: its bytes and the descriptors that came with it (close-on-exec).
pub(crate) struct Received {
    pub(crate) bytes: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
}

/// Receives one message of at most `max_bytes` bytes and [`MAX_FDS`] descriptors. `Ok(None)`
/// at end of file (an empty message without descriptors reads the same: send none), or when
/// `wait` is false and no message is there. A message cut short (too
/// long, or too many descriptors) is an error, its descriptors closed.
pub(crate) fn recv_with_fds(
    socket: BorrowedFd<'_>,
    max_bytes: usize,
    wait: bool,
) -> io::Result<Option<Received>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
    let mut bytes = vec![0u8; max_bytes];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut flags = MsgFlags::MSG_CMSG_CLOEXEC;
    if !wait {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    let (len, msg_flags, raw) = loop {
        let mut iov = [IoSliceMut::new(&mut bytes)];
        match recvmsg::<UnixAddr>(socket.as_raw_fd(), &mut iov, Some(&mut space), flags) {
            Ok(msg) => {
                let mut raw = Vec::new();
                for cmsg in msg.cmsgs()? {
                    if let ControlMessageOwned::ScmRights(fds) = cmsg {
                        raw.extend(fds);
                    }
                }
                break (msg.bytes, msg.flags, raw);
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) if !wait => return Ok(None),
            Err(error) => return Err(error.into()),
        }
    };
    let fds: Vec<OwnedFd> = raw
        .into_iter()
        // SAFETY: the kernel installed these descriptors in this process for this message;
        // nothing else owns them.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    if msg_flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a message with its descriptors did not fit and was cut short",
        ));
    }
    if len == 0 && fds.is_empty() {
        return Ok(None);
    }
    bytes.truncate(len);
    Ok(Some(Received { bytes, fds }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_message_arrives_whole_with_its_descriptors() {
        let (a, b) = seqpacket_pair().unwrap();
        let (read, write) = crate::sys::pipe().unwrap();
        send_with_fds(a.as_fd(), b"hello", &[read.as_fd(), write.as_fd()]).unwrap();
        send_with_fds(a.as_fd(), b"bare", &[]).unwrap();
        let first = recv_with_fds(b.as_fd(), 64, true).unwrap().unwrap();
        assert_eq!(first.bytes, b"hello");
        assert_eq!(first.fds.len(), 2);
        nix::unistd::write(&first.fds[1], b"x").unwrap();
        let mut got = [0u8; 1];
        assert_eq!(nix::unistd::read(read.as_raw_fd(), &mut got).unwrap(), 1);
        let second = recv_with_fds(b.as_fd(), 64, true).unwrap().unwrap();
        assert_eq!(
            (second.bytes.as_slice(), second.fds.len()),
            (&b"bare"[..], 0)
        );
        assert!(recv_with_fds(b.as_fd(), 64, false).unwrap().is_none());
        drop(a);
        assert!(recv_with_fds(b.as_fd(), 64, true).unwrap().is_none(), "EOF");
    }

    #[test]
    fn too_many_descriptors_or_a_gone_peer_are_errors() {
        let (a, b) = seqpacket_pair().unwrap();
        let many = vec![b.as_fd(); MAX_FDS + 1];
        let err = send_with_fds(a.as_fd(), b"x", &many).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("254 descriptors"), "{err}");
        drop(b);
        let err = send_with_fds(a.as_fd(), b"x", &[]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn a_message_longer_than_the_buffer_is_an_error() {
        let (a, b) = seqpacket_pair().unwrap();
        send_with_fds(a.as_fd(), &[7u8; 100], &[]).unwrap();
        let err = recv_with_fds(b.as_fd(), 10, true).err().unwrap();
        assert!(err.to_string().contains("cut short"), "{err}");
    }
}
