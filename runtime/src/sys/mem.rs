//! Page hints: the size of a page, and prefaulting, which maps fresh memory in, writable,
//! before it is written, in one system call (`madvise(MADV_POPULATE_WRITE)`) rather than a page
//! fault per page.
//!
//! One place prefaults: a pool worker's result ring, as the worker starts (`pool/ring.rs`). It
//! is the one use measured to pay (`docs/BENCHMARKS.md`: three times the tasks per second at
//! chunksize 1); every other use tried gained nothing and was removed. The environment variable
//! `MULTIPROC_PREFAULT` ([`SWITCH`]), read once, turns it off with `0`, so that it can be
//! measured on and off in one run. Prefaulting is only a hint: whether it is on or off, and
//! whatever the kernel, a program computes the same results.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

/// The size of a memory page.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf only reads a constant of the system.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

/// The environment variable that turns prefaulting off (`0`); unset or `1`, it is on.
pub(crate) const SWITCH: &str = "MULTIPROC_PREFAULT";

/// The switch as read: [`UNREAD`], [`ON`] or [`OFF`].
static STATE: AtomicU8 = AtomicU8::new(UNREAD);
const UNREAD: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;

/// Reads the [`SWITCH`] now, if it has not been read yet. A process calls this before it forks
/// workers, so that they never read the environment (whose lock another thread of the parent
/// may have held at the fork).
pub(crate) fn read_switch() {
    is_on();
}

/// Whether the [`SWITCH`] leaves prefaulting on. A race between two first readers is harmless:
/// both read the same value.
pub(crate) fn is_on() -> bool {
    let state = match STATE.load(Relaxed) {
        UNREAD => {
            let state = parse_switch(std::env::var(SWITCH).ok().as_deref());
            STATE.store(state, Relaxed);
            state
        }
        state => state,
    };
    state == ON
}

/// [`ON`] or [`OFF`] for the switch's value; a value other than `0` or `1` leaves prefaulting
/// on and is reported, on stderr.
fn parse_switch(value: Option<&str>) -> u8 {
    match value.map(str::trim) {
        None | Some("" | "1") => ON,
        Some("0") => OFF,
        Some(other) => {
            eprintln!("multiproc: {SWITCH}: `{other}` is not 0 or 1; prefaulting stays on");
            ON
        }
    }
}

/// If the switch leaves it on: maps in, writable, the pages of `len` bytes at `first` (a page
/// boundary), in one system call: the pages a writer would otherwise fault in one at a time.
/// Only a hint: on a kernel without `MADV_POPULATE_WRITE` (before Linux 5.14), or for a range
/// that is not all mapped writable, the pages fault in as they are written.
pub(crate) fn prefault_pages(first: *mut u8, len: usize) {
    if is_on() {
        // SAFETY: populating writes no byte (a page keeps its bytes, a fresh one reads as zero)
        // and changes no mapping, whatever the range: a range not all mapped writable only fails.
        unsafe { libc::madvise(first.cast(), len, libc::MADV_POPULATE_WRITE) };
    }
}

/// Why prefaulting cannot be seen at work here, if it cannot: the kernel lacks
/// `MADV_POPULATE_WRITE` (Linux before 5.14 fails it with `EINVAL`), or the switch turns it off.
/// For tests that count page faults or resident pages.
#[cfg(test)]
pub(crate) fn unavailable() -> Option<String> {
    if !is_on() {
        return Some(format!("{SWITCH} turns prefaulting off"));
    }
    let page = page_size();
    // SAFETY: a new private one-page mapping at an address the kernel chooses; nothing refers to
    // it, and it is unmapped below.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if map == libc::MAP_FAILED {
        return Some("no memory for a probe".to_owned());
    }
    // SAFETY: populating the page just mapped writes no byte of it.
    let populated = unsafe { libc::madvise(map, page, libc::MADV_POPULATE_WRITE) };
    let error = std::io::Error::last_os_error();
    // SAFETY: the mapping made above, which nothing refers to.
    unsafe { libc::munmap(map, page) };
    (populated != 0).then(|| format!("the kernel lacks MADV_POPULATE_WRITE ({error})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minor page faults this thread has taken so far.
    fn minor_faults() -> i64 {
        // SAFETY: getrusage writes one `rusage` into the zeroed value it is given.
        unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
            usage.ru_minflt
        }
    }

    #[test]
    fn the_switch_is_0_or_1_and_anything_else_leaves_it_on() {
        assert_eq!(parse_switch(None), ON);
        assert_eq!(parse_switch(Some("1")), ON);
        assert_eq!(parse_switch(Some(" 0 ")), OFF);
        assert_eq!(
            parse_switch(Some("-ring")),
            ON,
            "an unknown value does nothing"
        );
    }

    #[test]
    fn prefaulted_pages_are_written_without_a_page_fault() {
        if let Some(why) = unavailable() {
            eprintln!("skipped: {why}");
            return;
        }
        let page = page_size();
        let pages = 32;
        // Fresh anonymous pages, so that a first write to each would fault.
        // SAFETY: a new private mapping at an address the kernel chooses; nothing refers to it.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * pages * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(map, libc::MAP_FAILED);
        let (warm, cold) = (
            map.cast::<u8>(),
            map.cast::<u8>().wrapping_add(pages * page),
        );
        prefault_pages(warm, pages * page);
        let write_pages = |half: *mut u8| {
            let before = minor_faults();
            for at in (0..pages * page).step_by(page) {
                // SAFETY: `at` is inside the half, which is mapped writable and which nothing
                // else refers to.
                unsafe { half.add(at).write_volatile(1) };
            }
            minor_faults() - before
        };
        assert_eq!(write_pages(warm), 0);
        assert!(
            write_pages(cold) >= pages as i64,
            "fresh pages fault when written"
        );
        // SAFETY: the mapping made above; nothing refers to it any more.
        unsafe { libc::munmap(map, 2 * pages * page) };
    }
}
