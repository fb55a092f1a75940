//! Descriptors that travel beside an encoded value to a process that does not share this one's
//! descriptor table (Python's `duplicate_for_child` in `popen_spawn_posix`).
//!
//! A handle (a shared segment, a pipe end) serialises as the number of a descriptor in the
//! sending process. A forked child has the same numbers; a child started by exec, or forked by
//! the fork server, does not. While a value is encoded for such a child inside [`collecting`],
//! each handle [`offer`]s its descriptor here: the table keeps a duplicate, and the handle writes
//! the duplicate's slot instead of its number. The table goes to the child with the value (the
//! descriptors inherited, or sent with `SCM_RIGHTS`), and while the child decodes inside
//! [`receiving`], each handle [`take`]s its slot back. The sender may close its own descriptor as
//! soon as the value is encoded, and neither side needs `/proc/<pid>/fd` or `pidfd_getfd`, which
//! sandboxes refuse.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

thread_local! {
    /// The descriptors offered while encoding for another process, by slot.
    static OUTGOING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    /// The descriptors that came with the value being decoded, by slot.
    static INCOMING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    /// Whether the value being encoded goes to another machine (a cluster pool's call).
    static PORTABLE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `encode` for a process on another machine: handles that only work on this one (shared
/// memory, descriptors) refuse to encode inside it, through [`local_only`].
#[cfg(feature = "cluster")]
pub(crate) fn portable<R>(encode: impl FnOnce() -> R) -> R {
    let outer = PORTABLE.with(|flag| flag.replace(true));
    let result = encode();
    PORTABLE.with(|flag| flag.set(outer));
    result
}

/// The error a handle to `what` gives when it is encoded for another machine (inside
/// [`portable`]): its memory or descriptor exists on this machine only.
pub(crate) fn local_only<E: serde::ser::Error>(what: &str) -> Result<(), E> {
    if PORTABLE.with(Cell::get) {
        return Err(E::custom(format_args!(
            "{what} only works on one machine and cannot be sent to a cluster pool"
        )));
    }
    Ok(())
}

/// Runs `encode` with a fresh table, and returns its result and the descriptors offered during
/// it, in slot order.
pub(crate) fn collecting<R>(encode: impl FnOnce() -> R) -> (R, Vec<OwnedFd>) {
    let outer = OUTGOING.with(|t| t.borrow_mut().replace(Vec::new()));
    let result = encode();
    let fds = OUTGOING.with(|t| std::mem::replace(&mut *t.borrow_mut(), outer));
    (result, fds.unwrap_or_default())
}

/// When a value is being encoded for a process started by exec: keeps a duplicate of `fd` for
/// it, and returns the slot that names it. `None` otherwise: the number itself is good.
pub(crate) fn offer(fd: BorrowedFd<'_>) -> Option<io::Result<u32>> {
    OUTGOING.with(|table| {
        let mut table = table.borrow_mut();
        let table = table.as_mut()?;
        let slot = match u32::try_from(table.len()) {
            Ok(slot) => slot,
            Err(_) => return Some(Err(io::Error::other("too many descriptors"))),
        };
        Some(fd.try_clone_to_owned().map(|fd| {
            table.push(fd);
            slot
        }))
    })
}

/// Runs `decode` with `fds` as the table that slots name; the descriptors nobody took are
/// closed after it.
pub(crate) fn receiving<R>(fds: Vec<OwnedFd>, decode: impl FnOnce() -> R) -> R {
    let outer = INCOMING.with(|t| t.borrow_mut().replace(fds));
    let result = decode();
    INCOMING.with(|t| *t.borrow_mut() = outer);
    result
}

/// A descriptor of this process for the one sent in `slot`: a duplicate, since several handles
/// may name one slot. An error when no table is being received or the slot is not in it (forged
/// or stale bytes).
pub(crate) fn take(slot: u32) -> io::Result<OwnedFd> {
    INCOMING.with(|table| {
        let table = table.borrow();
        let fd = table
            .as_ref()
            .ok_or_else(|| io::Error::other("a descriptor slot outside a process start"))?
            .get(slot as usize)
            .ok_or_else(|| io::Error::other(format!("no descriptor was sent in slot {slot}")))?;
        fd.as_fd().try_clone_to_owned()
    })
}

/// A descriptor as a serde value, for a process started by exec: it serialises as the slot it
/// is [`offer`]ed in (an error outside [`collecting`], where no table would carry it) and
/// deserialises as the descriptor [`take`]n from that slot. `F` is what it holds: a
/// [`BorrowedFd`] to send, an [`OwnedFd`] or a [`File`](std::fs::File) received.
pub(crate) struct Descriptor<F>(pub(crate) F);

impl<F: AsFd> serde::Serialize for Descriptor<F> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        local_only::<S::Error>("a descriptor")?;
        let slot = offer(self.0.as_fd()).ok_or_else(|| {
            S::Error::custom("a descriptor can only be sent to a process being started")
        })?;
        slot.map_err(S::Error::custom)?.serialize(serializer)
    }
}

impl<'de, F: From<OwnedFd>> serde::Deserialize<'de> for Descriptor<F> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let slot = u32::deserialize(deserializer)?;
        let fd = take(slot).map_err(serde::de::Error::custom)?;
        Ok(Descriptor(F::from(fd)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn an_offered_descriptor_is_taken_back_by_its_slot() {
        let (read, _write) = crate::sys::pipe().unwrap();
        assert!(offer(read.as_fd()).is_none(), "no table, no slot");
        let (slots, fds) = collecting(|| {
            let a = offer(read.as_fd()).unwrap().unwrap();
            let b = offer(read.as_fd()).unwrap().unwrap();
            (a, b)
        });
        assert_eq!(slots, (0, 1));
        assert_eq!(fds.len(), 2);
        let ino = |fd: BorrowedFd<'_>| nix::sys::stat::fstat(fd.as_raw_fd()).unwrap().st_ino;
        let taken = receiving(fds, || take(1).unwrap());
        assert_eq!(ino(taken.as_fd()), ino(read.as_fd()));
    }

    #[test]
    fn a_slot_outside_a_table_or_past_its_end_is_an_error() {
        assert!(take(0).is_err());
        let err = receiving(Vec::new(), || take(3).unwrap_err());
        assert!(err.to_string().contains("slot 3"), "{err}");
    }

    #[test]
    fn a_descriptor_value_travels_by_slot_and_only_to_a_process_being_started() {
        let (read, _write) = crate::sys::pipe().unwrap();
        let err = crate::wire::encode(&Descriptor(read.as_fd())).unwrap_err();
        assert!(err.to_string().contains("process being started"), "{err}");
        let (bytes, fds) = collecting(|| crate::wire::encode(&Descriptor(read.as_fd())));
        let bytes = bytes.unwrap();
        assert_eq!(fds.len(), 1);
        let ino = |fd: BorrowedFd<'_>| nix::sys::stat::fstat(fd.as_raw_fd()).unwrap().st_ino;
        let taken: Descriptor<OwnedFd> = receiving(fds, || crate::wire::decode(&bytes)).unwrap();
        assert_eq!(ino(taken.0.as_fd()), ino(read.as_fd()));
        let stale = crate::wire::decode::<Descriptor<OwnedFd>>(&bytes);
        assert!(stale.is_err(), "a slot outside a process start");
    }
}
