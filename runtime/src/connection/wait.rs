//! Waiting for several things at once (Python's `multiprocessing.connection.wait`): connections
//! with a message to read and processes that ended, through one `poll(2)`.

use crate::sys;
use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

/// Something [`wait`] can wait for: a [`Connection`](super::Connection) (ready when a message or
/// the end of the stream can be read), a [`ProcessHandle`](crate::ProcessHandle) (ready when the process has ended,
/// Python's `sentinel`), or a raw descriptor (ready when readable).
pub trait Waitable {
    /// The descriptor that becomes readable when the object is ready; `None` if it never will
    /// (the writing end of a one-way pipe).
    fn wait_fd(&self) -> Option<BorrowedFd<'_>>;

    /// Whether the object is ready already, without looking at the descriptor (a connection
    /// that has read a message ahead into its buffer).
    fn ready_now(&self) -> bool {
        false
    }
}

impl Waitable for BorrowedFd<'_> {
    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(*self)
    }
}

impl<W: Waitable + ?Sized> Waitable for &W {
    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        (**self).wait_fd()
    }

    fn ready_now(&self) -> bool {
        (**self).ready_now()
    }
}

/// Waits until at least one of `objects` is ready, or until `timeout` passes (`None`: no
/// limit), and returns the indices of those ready, in order (Python's
/// `multiprocessing.connection.wait(object_list, timeout)`, which returns the objects).
/// After a timeout the list is empty.
///
/// Mix kinds with trait objects: `wait(&[&conn as &dyn Waitable, &process], None)`.
///
/// # Errors
///
/// The [`io::Error`] of `poll(2)`, if it fails.
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
/// use multiproc::Waitable;
/// use std::time::Duration;
///
/// # fn main() -> multiproc::Result<()> {
/// let (mut a, b) = Pipe::<u8>::duplex()?;
/// let sleeper = Process::fork(|| std::thread::sleep(Duration::from_secs(60)))?;
/// let objects: [&dyn Waitable; 2] = [&b, &sleeper];
/// assert!(wait(&objects, Some(Duration::ZERO))?.is_empty());
/// a.send(&1)?;
/// assert_eq!(wait(&objects, None)?, [0]);
/// sleeper.kill()?;
/// let _ = sleeper.join();
/// assert_eq!(wait(&objects, None)?, [0, 1]);
/// # Ok(())
/// # }
/// ```
pub fn wait<W: Waitable>(objects: &[W], timeout: Option<Duration>) -> io::Result<Vec<usize>> {
    let deadline = timeout.and_then(crate::util::deadline);
    ready(objects, deadline)
}

/// The indices of the ready objects, waiting until `deadline` if none is ready at once.
pub(super) fn ready<W: Waitable>(
    objects: impl IntoIterator<Item = W>,
    deadline: Option<Instant>,
) -> io::Result<Vec<usize>> {
    let objects: Vec<W> = objects.into_iter().collect();
    let buffered: Vec<usize> = (0..objects.len())
        .filter(|&i| objects[i].ready_now())
        .collect();
    let (indices, fds): (Vec<usize>, Vec<BorrowedFd<'_>>) = objects
        .iter()
        .enumerate()
        .filter_map(|(i, object)| object.wait_fd().map(|fd| (i, fd)))
        .unzip();
    let deadline = if buffered.is_empty() {
        deadline
    } else {
        Some(Instant::now())
    };
    let polled = sys::poll(&fds, libc::POLLIN, deadline)?;
    let mut ready: Vec<usize> = indices
        .into_iter()
        .zip(polled)
        .filter_map(|(i, is_ready)| is_ready.then_some(i))
        .chain(buffered)
        .collect();
    ready.sort_unstable();
    ready.dedup();
    Ok(ready)
}
