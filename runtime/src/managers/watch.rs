//! Watching for a manager's answer before sleeping for it, while watching pays.
//!
//! An answer is a server's turn away: a few microseconds when the server runs on another CPU,
//! against some 15 to 30 µs of sleeping and being woken on this machine. So a client looks for
//! it a while before it sleeps in `read`. But when more clients than CPUs are busy (eight
//! processes counting on one key), looking only takes the CPU from the server: then answers
//! come late, the watch stops paying, and the client sleeps straight away, looking again only
//! now and then to learn whether it pays again (the adaptive spinning of glibc's mutexes).

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

/// How long a client looks for an answer before it sleeps.
const BUDGET: Duration = Duration::from_micros(40);

/// After a watch that did not pay, the calls that sleep at once before the next watch.
const RETRY_EVERY: u32 = 64;

/// Pauses between two looks: each look is a system call.
const PAUSES: u32 = 64;

/// Whether watching paid lately, on one connection.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    misses: u32,
}

impl Watch {
    /// Looks for something to read on `fd` for up to [`BUDGET`], if watching paid last time
    /// (or now and then, to find out); whether it came.
    pub(crate) fn answer(&mut self, fd: BorrowedFd<'_>) -> bool {
        if self.misses > 0 && !self.misses.is_multiple_of(RETRY_EVERY) {
            self.misses += 1;
            return false;
        }
        let start = Instant::now();
        loop {
            if readable(fd) {
                self.misses = 0;
                return true;
            }
            if start.elapsed() >= BUDGET {
                self.misses += 1;
                return false;
            }
            for _ in 0..PAUSES {
                std::hint::spin_loop();
            }
        }
    }
}

/// Whether `fd` has bytes to read (or its end) now, without waiting.
fn readable(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    crate::sys::poll_fds(&mut fds, Some(Instant::now())).is_ok() && fds[0].revents != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_watch_that_does_not_pay_is_skipped_until_its_retry() {
        let (here, mut there) = UnixStream::pair().unwrap();
        let mut watch = Watch::default();
        assert!(!watch.answer(here.as_fd()), "nothing to read");
        for _ in 1..RETRY_EVERY {
            there.write_all(b"x").unwrap();
            assert!(!watch.answer(here.as_fd()), "skipped, ready or not");
        }
        assert!(watch.answer(here.as_fd()), "the retry looks, and sees");
        assert!(watch.answer(here.as_fd()), "and watching pays again");
    }
}
