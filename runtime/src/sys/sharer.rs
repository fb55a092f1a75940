//! Lending descriptors to other processes (Python's `multiprocessing.resource_sharer`).
//!
//! A handle sent through a queue or a pipe travels as bytes; the descriptor it stands for must
//! reach the receiving process some other way. Taking it from the sender's table
//! (`pidfd_getfd`, `/proc/<pid>/fd`) needs ptrace rights that sandboxes refuse, and fails once the
//! sender has closed its copy. Instead the sender [`lend`]s a duplicate: it is kept here under a
//! random key, and a thread of the crate's own serves it, once, by `SCM_RIGHTS` to whoever
//! connects to this process's abstract socket with that key and runs as the same user
//! ([`borrow`]). The sender may close its own copy at once (Python's `conn.send(w); w.close()`).
//! A loan never borrowed stays until the process exits, as in Python. A standing loan
//! ([`lend_standing`]) serves a shared segment to any number of borrowers, for as long as the
//! lender keeps the segment ([`revoke_standing`]).

use super::fork_safe::ForkSafeLock;
use super::rights::{recv_with_fds, send_with_fds};
use super::threads::OwnThread;
use super::{owner, random_u64};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// What names a lent descriptor: the lender, its socket's token, and the loan's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Loan {
    pid: u32,
    token: u64,
    key: u64,
}

/// This process's loans and the socket that serves them.
#[derive(Default)]
struct Lender {
    /// The process the rest belongs to: a forked child finds its parent's here, and starts anew.
    pid: u32,
    token: u64,
    /// The listening socket, owned by the serving thread (a raw number, so that a forked child,
    /// where that thread does not exist, can close its copy).
    listener: Option<RawFd>,
    loans: BTreeMap<u64, Lent>,
    /// The keys of the standing loans, by the inode of what they lend.
    standing: BTreeMap<u64, u64>,
}

/// A lent descriptor.
struct Lent {
    fd: OwnedFd,
    /// Whether it is served to every borrower (a standing loan) or to the first only.
    standing: bool,
}

static LENDER: ForkSafeLock<Lender> = ForkSafeLock::new(Lender {
    pid: 0,
    token: 0,
    listener: None,
    loans: BTreeMap::new(),
    standing: BTreeMap::new(),
});

/// The abstract socket address of `pid`'s lender.
fn address(pid: u32, token: u64) -> io::Result<UnixAddr> {
    UnixAddr::new_abstract(format!("multiproc-fd-{pid}-{token:016x}").as_bytes())
        .map_err(io::Error::from)
}

/// Runs `f` on this process's lender, made ready first: a forked child's starts anew, and the
/// socket listens before any loan is handed out.
fn with_lender<R>(f: impl FnOnce(&mut Lender) -> io::Result<R>) -> io::Result<R> {
    let me = owner::pid();
    LENDER.with(|lender| {
        if lender.pid != me {
            forget_parents(lender, me);
        }
        if lender.listener.is_none() {
            lender.listener = Some(start_serving(me, lender.token)?);
        }
        f(lender)
    })
}

impl Lender {
    fn loan(&self, key: u64) -> Loan {
        Loan {
            pid: self.pid,
            token: self.token,
            key,
        }
    }

    /// The descriptor a loan names, for one borrower: a copy of a standing loan's, or a
    /// one-time loan's own, which is then gone.
    fn hand_out(&mut self, key: u64) -> Option<OwnedFd> {
        match self.loans.get(&key)? {
            Lent { fd, standing: true } => fd.try_clone().ok(),
            Lent {
                standing: false, ..
            } => self.loans.remove(&key).map(|lent| lent.fd),
        }
    }
}

/// Lends a duplicate of `fd` to whichever process borrows it first.
pub(crate) fn lend(fd: BorrowedFd<'_>) -> io::Result<Loan> {
    let fd = fd.try_clone_to_owned()?;
    with_lender(|lender| {
        let key = random_u64();
        let standing = false;
        lender.loans.insert(key, Lent { fd, standing });
        Ok(lender.loan(key))
    })
}

/// Lends a duplicate of `fd`, the file of inode `ino`, to every process that borrows it, until
/// [`revoke_standing`]; lending the same inode again gives the same loan.
pub(crate) fn lend_standing(ino: u64, fd: BorrowedFd<'_>) -> io::Result<Loan> {
    with_lender(|lender| {
        if let Some(&key) = lender.standing.get(&ino) {
            return Ok(lender.loan(key));
        }
        let fd = fd.try_clone_to_owned()?;
        let key = random_u64();
        lender.loans.insert(key, Lent { fd, standing: true });
        lender.standing.insert(ino, key);
        Ok(lender.loan(key))
    })
}

/// Ends the standing loan of inode `ino`, if this process made one.
pub(crate) fn revoke_standing(ino: u64) {
    let me = owner::pid();
    LENDER.with(|lender| {
        if lender.pid == me {
            if let Some(key) = lender.standing.remove(&ino) {
                lender.loans.remove(&key);
            }
        }
    });
}

/// In a forked child: drops what the parent lent (the child's copies) and closes its copy of
/// the parent's socket; the child serves its own loans on a socket of its own.
fn forget_parents(lender: &mut Lender, me: u32) {
    if let Some(listener) = lender.listener.take() {
        // SAFETY: the number belongs to the parent's serving thread, which does not exist in
        // this process; nothing here owns or uses it.
        unsafe { libc::close(listener) };
    }
    lender.loans.clear();
    lender.standing.clear();
    lender.pid = me;
    lender.token = random_u64();
}

/// Binds this process's socket and starts the thread that serves it; returns the socket's
/// number (the thread owns it).
fn start_serving(me: u32, token: u64) -> io::Result<RawFd> {
    let listener = socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::bind(listener.as_raw_fd(), &address(me, token)?)?;
    socket::listen(&listener, socket::Backlog::new(64)?)?;
    let number = listener.as_raw_fd();
    let own = OwnThread::count();
    std::thread::Builder::new()
        .name("multiproc-fd-lender".to_owned())
        .stack_size(64 * 1024)
        .spawn(move || {
            let _own = own;
            serve(listener)
        })?;
    Ok(number)
}

/// The serving thread: one request per connection, for as long as the process lives.
fn serve(listener: OwnedFd) {
    loop {
        let Ok(raw) = socket::accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) else {
            // Out of descriptors, say: try again later rather than spin.
            std::thread::sleep(std::time::Duration::from_millis(10));
            continue;
        };
        // SAFETY: accept4 just returned this descriptor; nothing else owns it.
        let peer = unsafe { OwnedFd::from_raw_fd(raw) };
        let _ = answer(peer.as_fd());
    }
}

/// Answers one borrower: a byte (1: here it is, 0: no such loan) and the descriptor.
fn answer(peer: BorrowedFd<'_>) -> io::Result<()> {
    let credentials = socket::getsockopt(&peer, socket::sockopt::PeerCredentials)?;
    // SAFETY: geteuid has no preconditions.
    if credentials.uid() != unsafe { libc::geteuid() } {
        return send_with_fds(peer, &[0], &[]);
    }
    // A peer that connects and says nothing must not hold up the others.
    let patience = nix::sys::time::TimeVal::new(1, 0);
    socket::setsockopt(&peer, socket::sockopt::ReceiveTimeout, &patience)?;
    let Some(request) = recv_with_fds(peer, 8, true)? else {
        return Ok(());
    };
    let key = request.bytes.try_into().map(u64::from_le_bytes).ok();
    let lent = key.and_then(|key| LENDER.with(|lender| lender.hand_out(key)));
    match lent {
        Some(fd) => send_with_fds(peer, &[1], &[fd.as_fd()]),
        None => send_with_fds(peer, &[0], &[]),
    }
}

/// Takes the descriptor `loan` names: from this process's own loans, or from the lender's
/// socket. Each loan is taken once.
pub(crate) fn borrow(loan: &Loan) -> io::Result<OwnedFd> {
    let missing = || {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "process {} lent no such descriptor (it was taken already, or the bytes are \
                 forged)",
                loan.pid
            ),
        )
    };
    if loan.pid == owner::pid() {
        return LENDER
            .with(|lender| (lender.token == loan.token).then(|| lender.hand_out(loan.key)))
            .flatten()
            .ok_or_else(missing);
    }
    let gone = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot reach process {}, which lent the descriptor: {e}",
                loan.pid
            ),
        )
    };
    let stream = socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::connect(stream.as_raw_fd(), &address(loan.pid, loan.token)?)
        .map_err(|e| gone(e.into()))?;
    send_with_fds(stream.as_fd(), &loan.key.to_le_bytes(), &[]).map_err(gone)?;
    let reply = recv_with_fds(stream.as_fd(), 1, true).map_err(gone)?;
    match reply {
        Some(mut reply) if reply.bytes == [1] && reply.fds.len() == 1 => Ok(reply.fds.remove(0)),
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn inode(fd: BorrowedFd<'_>) -> u64 {
        nix::sys::stat::fstat(fd.as_raw_fd()).unwrap().st_ino
    }

    #[test]
    fn a_loan_is_borrowed_once_in_the_same_process() {
        let (read, _write) = crate::sys::pipe().unwrap();
        let loan = lend(read.as_fd()).unwrap();
        let ino = inode(read.as_fd());
        drop(read);
        let taken = borrow(&loan).unwrap();
        assert_eq!(inode(taken.as_fd()), ino);
        assert_eq!(borrow(&loan).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_forged_loan_is_an_error() {
        let (read, _write) = crate::sys::pipe().unwrap();
        let loan = lend(read.as_fd()).unwrap();
        let forged = Loan {
            key: loan.key ^ 1,
            ..loan
        };
        assert!(borrow(&forged).is_err());
        let nobody = Loan {
            pid: u32::MAX,
            ..loan
        };
        assert!(borrow(&nobody).is_err());
    }

    #[test]
    fn a_standing_loan_serves_every_borrower_until_revoked() {
        let (read, _write) = crate::sys::pipe().unwrap();
        let ino = inode(read.as_fd());
        let loan = lend_standing(ino, read.as_fd()).unwrap();
        assert_eq!(
            lend_standing(ino, read.as_fd()).unwrap(),
            loan,
            "one loan per inode"
        );
        drop(read);
        for _ in 0..2 {
            assert_eq!(inode(borrow(&loan).unwrap().as_fd()), ino);
        }
        revoke_standing(ino);
        assert!(borrow(&loan).is_err());
    }
}
