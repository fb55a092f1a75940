//! Page hints: mapping fresh memory in before it is written, in one system call rather than a
//! page fault per page.

use std::mem::MaybeUninit;

/// The size of a memory page.
pub fn page_size() -> usize {
    // SAFETY: sysconf only reads a constant of the system.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

/// Maps in, writable, every page that holds part of `room`, in one system call rather than a
/// page fault per page as each is first written; a room on fewer than [`PREFAULT_PAGES`] pages
/// is left to fault in. Only a hint, as [`populate_for_write`]. Worth it for fresh memory only
/// (see [`is_fresh`]): mapping a page that is mapped already costs about a tenth of a fault.
pub(crate) fn prefault<T>(room: &mut [MaybeUninit<T>]) {
    let (first, len) = whole_pages(room);
    if len >= PREFAULT_PAGES * page_size() {
        populate_for_write(first as *mut u8, len);
    }
}

/// [`prefault`] if `room` [`is_fresh`].
pub(crate) fn prefault_fresh<T>(room: &mut [MaybeUninit<T>]) {
    if is_fresh(room) {
        prefault(room);
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

/// The fewest pages [`prefault`] maps in: the call costs about what a fault or two does, and
/// over four pages it saves about a third of their faults' cost (measured in C on a virtual
/// machine, where faults are dear).
const PREFAULT_PAGES: usize = 4;

/// Maps in, writable, the pages of `len` bytes at `first` (a page boundary), in one system call:
/// the pages a writer would otherwise fault in one at a time. Only a hint: on a kernel without
/// `MADV_POPULATE_WRITE` (before Linux 5.14), or for a range that is not all mapped writable, the
/// pages fault in as they are written.
pub(crate) fn populate_for_write(first: *mut u8, len: usize) {
    // SAFETY: populating writes no byte (a page keeps its bytes, a fresh one reads as zero) and
    // changes no mapping, whatever the range: a range not all mapped writable only fails.
    unsafe { libc::madvise(first.cast(), len, libc::MADV_POPULATE_WRITE) };
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
    fn fresh_room_once_prefaulted_is_written_without_a_page_fault() {
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
        prefault_fresh(&mut warm[1..pages * page - 1]);
        assert!(!is_fresh(warm));
        // Too few pages to be worth the call: all of `cold` faults below.
        prefault(&mut cold[..(PREFAULT_PAGES - 1) * page]);
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
