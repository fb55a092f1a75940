//! Page hints, and every decision to prefault: to map fresh memory in, writable, before it is
//! written, in one system call (`madvise(MADV_POPULATE_WRITE)`) rather than a page fault per page.
//!
//! Two places prefault, each a [`Prefault`] use with a short name: a pool worker's result ring
//! as the worker starts, and the result vector of a map. They are the uses measured to pay
//! (`docs/BENCHMARKS.md`); three others tried (an early part's buffer, a chunk's argument buffer,
//! a reader's buffer) gained nothing and were removed. One switch, the environment variable
//! `MULTIPROC_PREFAULT` ([`SWITCH`]), read once, turns prefaulting off: `0` for every use, or a
//! comma-separated list of the uses to turn off, each with a leading `-`
//! (`MULTIPROC_PREFAULT=-ring`), so that each use can be measured on and off in one run. Unset or
//! `1`, every use is on. Prefaulting is only a hint: whether it is on or off, and whatever the
//! kernel, a program computes the same results.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// The size of a memory page.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf only reads a constant of the system.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

/// The places that prefault, each named for the [`SWITCH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prefault {
    /// `result_vector`: the room of a map's result vector, ahead of the results by a paced
    /// submitter while it waits for them, and where a part of them is about to be decoded by
    /// the pool's result thread (`pool/gather.rs`).
    ResultVector,
    /// `ring`: a pool worker's whole result ring, as the worker starts (`pool/ring.rs`).
    Ring,
}

impl Prefault {
    /// Every use.
    pub(crate) const ALL: [Prefault; 2] = [Prefault::ResultVector, Prefault::Ring];

    /// The use's name for the switch.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Prefault::ResultVector => "result_vector",
            Prefault::Ring => "ring",
        }
    }

    fn bit(self) -> u32 {
        1 << self as u32
    }

    /// Whether the [`SWITCH`] leaves this use on.
    pub(crate) fn is_on(self) -> bool {
        off_uses() & self.bit() == 0
    }
}

/// The environment variable that turns prefaulting off, for every use (`0`) or by name
/// (`-ring,-result_vector`).
pub(crate) const SWITCH: &str = "MULTIPROC_PREFAULT";

/// The bits of the uses the switch turns off, or [`UNREAD`].
static OFF: AtomicU32 = AtomicU32::new(UNREAD);
/// [`OFF`] before the switch is read: no use has this bit.
const UNREAD: u32 = 1 << 31;

/// Reads the [`SWITCH`] now, if it has not been read yet. A process calls this before it forks
/// workers, so that they never read the environment (whose lock another thread of the parent
/// may have held at the fork).
pub(crate) fn read_switch() {
    off_uses();
}

/// The bits of the uses the switch turns off. A race between two first readers is harmless:
/// both read the same value.
fn off_uses() -> u32 {
    let off = OFF.load(Relaxed);
    if off != UNREAD {
        return off;
    }
    let off = parse_switch(std::env::var(SWITCH).ok().as_deref());
    OFF.store(off, Relaxed);
    off
}

/// The bits of the uses that the switch's value turns off; a word it does not know turns nothing
/// off and is reported once, on stderr.
fn parse_switch(value: Option<&str>) -> u32 {
    let mut off = 0;
    let words = value.unwrap_or("").split(',').map(str::trim);
    for word in words.filter(|word| !word.is_empty()) {
        let named = word
            .strip_prefix('-')
            .and_then(|name| Prefault::ALL.into_iter().find(|u| u.name() == name));
        match (word, named) {
            ("0", _) => off |= Prefault::ALL.iter().fold(0, |all, u| all | u.bit()),
            ("1", _) => {}
            (_, Some(named)) => off |= named.bit(),
            _ => {
                let names: Vec<&str> = Prefault::ALL.iter().map(|u| u.name()).collect();
                eprintln!(
                    "multiproc: {SWITCH}: `{word}` is not 0, 1 or -NAME with NAME one of {}",
                    names.join(", ")
                );
            }
        }
    }
    off
}

/// For `by`, if the switch leaves it on: maps in, writable, every page that holds part of `room`,
/// in one system call rather than a page fault per page as each is first written; a room on
/// fewer than [`PREFAULT_PAGES`] pages is left to fault in. Only a hint, as [`prefault_pages`].
/// Worth it for fresh memory only (see [`is_fresh`]): prefaulting a page that is mapped already
/// costs the call and gains nothing.
pub(crate) fn prefault<T>(by: Prefault, room: &mut [MaybeUninit<T>]) {
    let (first, len) = whole_pages(room);
    if len >= PREFAULT_PAGES * page_size() {
        prefault_pages(by, first as *mut u8, len);
    }
}

/// Whether `room` is fresh memory worth [`prefault`]: it spans at least [`PREFAULT_PAGES`]
/// pages and its last page is not mapped in yet (an allocation is fresh from its end, where the
/// allocator has just taken memory from the system, or not at all).
pub(crate) fn is_fresh<T>(room: &[MaybeUninit<T>]) -> bool {
    let page = page_size();
    let (first, len) = whole_pages(room);
    len >= PREFAULT_PAGES * page && !is_mapped(first + len - page)
}

/// Whether the page at `page` (a page boundary) is mapped in; a page outside any mapping counts
/// as mapped, as there is nothing to map in.
fn is_mapped(page: usize) -> bool {
    let mut resident = 0u8;
    // SAFETY: mincore reads the page tables for one page and writes one byte, into `resident`;
    // a page outside any mapping only makes it fail.
    let ret = unsafe { libc::mincore(page as *mut libc::c_void, 1, &mut resident) };
    ret != 0 || resident & 1 == 1
}

/// The first address and the length of the pages that hold part of `room`.
fn whole_pages<T>(room: &[MaybeUninit<T>]) -> (usize, usize) {
    let page = page_size();
    let start = room.as_ptr() as usize;
    let end = start + std::mem::size_of_val(room);
    let first = start - start % page;
    (first, end.div_ceil(page) * page - first)
}

/// The fewest pages [`prefault`] maps in: below that, the call costs about what the faults it
/// spares do.
const PREFAULT_PAGES: usize = 4;

/// For `by`, if the switch leaves it on: maps in, writable, the pages of `len` bytes at `first`
/// (a page boundary), in one system call: the pages a writer would otherwise fault in one at a
/// time. Only a hint: on a kernel without `MADV_POPULATE_WRITE` (before Linux 5.14), or for a
/// range that is not all mapped writable, the pages fault in as they are written.
pub(crate) fn prefault_pages(by: Prefault, first: *mut u8, len: usize) {
    if by.is_on() {
        // SAFETY: populating writes no byte (a page keeps its bytes, a fresh one reads as zero)
        // and changes no mapping, whatever the range: a range not all mapped writable only fails.
        unsafe { libc::madvise(first.cast(), len, libc::MADV_POPULATE_WRITE) };
    }
}

/// Why prefaulting cannot be seen at work here, if it cannot: the kernel lacks
/// `MADV_POPULATE_WRITE` (Linux before 5.14 fails it with `EINVAL`), or the switch turns `by`
/// off. For tests that count page faults or resident pages.
#[cfg(test)]
pub(crate) fn unavailable(by: Prefault) -> Option<String> {
    if !by.is_on() {
        return Some(format!("{SWITCH} turns `{}` off", by.name()));
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
    fn the_switch_turns_every_use_or_named_uses_off() {
        let all = Prefault::ALL.iter().fold(0, |all, u| all | u.bit());
        assert_eq!(parse_switch(None), 0);
        assert_eq!(parse_switch(Some("1")), 0);
        assert_eq!(parse_switch(Some("0")), all);
        assert_eq!(
            parse_switch(Some("-ring, -result_vector")),
            Prefault::Ring.bit() | Prefault::ResultVector.bit()
        );
        assert_eq!(
            parse_switch(Some("-nonsense,ring")),
            0,
            "unknown words do nothing"
        );
        let names: Vec<&str> = Prefault::ALL.iter().map(|u| u.name()).collect();
        assert_eq!(names, ["result_vector", "ring"]);
    }

    #[test]
    fn fresh_room_once_prefaulted_is_written_without_a_page_fault() {
        // Any use will do: the test needs one the switch leaves on.
        let by = Prefault::ResultVector;
        if let Some(why) = unavailable(by) {
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
        // SAFETY: the mapping is 2 * pages * page bytes, readable and writable, and only this
        // slice refers to it until it is unmapped below.
        let room: &mut [MaybeUninit<u8>] =
            unsafe { std::slice::from_raw_parts_mut(map.cast(), 2 * pages * page) };
        let (cold, warm) = room.split_at_mut(pages * page);
        assert!(is_fresh(warm));
        // A page past the first's start and short of the last's end: whole pages are mapped in.
        prefault(by, &mut warm[1..pages * page - 1]);
        assert!(!is_fresh(warm));
        // Too few pages to be worth the call: all of `cold` faults below.
        prefault(by, &mut cold[..(PREFAULT_PAGES - 1) * page]);
        let write_pages = |half: &mut [MaybeUninit<u8>]| {
            let before = minor_faults();
            half.iter_mut().step_by(page).for_each(|byte| {
                byte.write(1);
            });
            minor_faults() - before
        };
        assert_eq!(write_pages(warm), 0);
        assert!(
            write_pages(cold) >= pages as i64,
            "fresh pages fault when written"
        );
        assert!(!is_fresh(cold));
        // SAFETY: the mapping made above; `room` is not used again.
        unsafe { libc::munmap(map, 2 * pages * page) };
    }
}
