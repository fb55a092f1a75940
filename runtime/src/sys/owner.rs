//! Who holds a lock, and whether they still live.
//!
//! A lock word records its holder as a 64-bit *owner id*: the low 32 bits are a pid (for a
//! `Lock`, held by a process) or a thread id (for an `RLock`, held by a thread), the high 32
//! bits the low bits of that process's or thread's start time, in clock ticks since boot, from
//! `/proc/<id>/stat`. glibc owns each thread's kernel robust list, so we cannot register our own;
//! instead a waiter that has slept a while asks [`is_dead`]: the id is dead if `/proc/<id>` is
//! gone, is a zombie, or belongs to a process that started at another time. The start time is
//! what guards against pid reuse (`pid_max` is only 32768 on many machines, and a busy machine
//! goes round it in seconds): a new process under a dead holder's pid has a different start
//! time, unless it started within the same clock tick, 10 ms, which the pid allocator's round
//! trip makes practically impossible.
//!
//! Both ids are cached (a process's in a static, a thread's in a thread-local) and forgotten in a
//! forked child by a `pthread_atfork` handler, so the fast paths of the locks read memory only.
//! The same handlers count this process's forks ([`fork_stamp`]), so that the block allocator
//! can tell whether a child may have inherited a block.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

/// The bits of an owner id that hold the pid or thread id (Linux ids are below 2^22).
pub(crate) const ID_MASK: u64 = 0x3fff_ffff;

static PROCESS: AtomicU64 = AtomicU64::new(0);
static PID: AtomicU32 = AtomicU32::new(0);

thread_local! {
    static THREAD: Cell<u64> = const { Cell::new(0) };
}

/// This process's pid, cached.
#[inline]
pub(crate) fn pid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => learn_pid(),
        pid => pid,
    }
}

#[cold]
fn learn_pid() -> u32 {
    let pid = std::process::id();
    if watch_fork() {
        PID.store(pid, Ordering::Relaxed);
    }
    pid
}

/// This process's owner id (pid and start time), cached.
#[inline]
pub(crate) fn process() -> u64 {
    match PROCESS.load(Ordering::Relaxed) {
        0 => learn_process(),
        id => id,
    }
}

#[cold]
fn learn_process() -> u64 {
    let id = owner_id(pid(), "/proc/self/stat");
    if watch_fork() {
        PROCESS.store(id, Ordering::Relaxed);
    }
    id
}

/// The calling thread's owner id (thread id and start time), cached.
#[inline]
pub(crate) fn thread() -> u64 {
    THREAD.with(|cached| match cached.get() {
        0 => learn_thread(cached),
        id => id,
    })
}

#[cold]
fn learn_thread(cached: &Cell<u64>) -> u64 {
    // SAFETY: gettid has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() } as u32;
    let id = owner_id(tid, "/proc/thread-self/stat");
    if watch_fork() {
        cached.set(id);
    }
    id
}

/// The pid or thread id in an owner id.
pub(crate) fn os_id(owner: u64) -> u32 {
    (owner & ID_MASK) as u32
}

fn owner_id(id: u32, stat: &str) -> u64 {
    let start = std::fs::read_to_string(stat)
        .ok()
        .and_then(|s| parse_stat(&s))
        .map_or(0, |(_, start)| start);
    u64::from(id) | (u64::from(start) << 32)
}

/// Whether the process or thread `owner` names has ended (or its id now names another one).
pub(crate) fn is_dead(owner: u64) -> bool {
    let id = os_id(owner);
    let started = (owner >> 32) as u32;
    match std::fs::read_to_string(format!("/proc/{id}/stat")) {
        Err(_) => true,
        Ok(stat) => match parse_stat(&stat) {
            None => false,
            Some((state, start)) => matches!(state, 'Z' | 'X' | 'x') || start != started,
        },
    }
}

/// The state letter and the low 32 bits of the start time in a `/proc/<id>/stat` line.
fn parse_stat(stat: &str) -> Option<(char, u32)> {
    // The command name (field 2) may contain spaces and parentheses: fields after it are
    // counted from its last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // `rest` starts at field 3 (state); starttime is field 22.
    let start: u64 = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start as u32))
}

/// Forks this process has begun (counted before each one and again after it in the parent).
static FORKS: AtomicU64 = AtomicU64::new(0);
/// Forks under way: begun and not yet returned in this parent.
static FORKING: AtomicU64 = AtomicU64::new(0);

/// A stamp of the forks this process has made: two calls return the same stamp only if no fork
/// began or ended between them. `None` while a fork is under way, or while the fork handlers
/// are not registered yet (forks are not counted then).
///
/// Why a stamp taken and compared again proves that no child inherited what was made between:
/// the prepare handler counts a fork before the child's copy of memory is made, and the parent
/// handler after it; glibc holds its fork-handler lock from the prepare handlers to the parent
/// handlers, so a handler registration that returned did not overlap a fork half counted.
pub(crate) fn fork_stamp() -> Option<u64> {
    if !watch_fork() {
        return None;
    }
    let forks = FORKS.load(Ordering::SeqCst);
    (FORKING.load(Ordering::SeqCst) == 0).then_some(forks)
}

/// Whether the fork handler that makes a child forget the cached ids is registered: 0 not yet,
/// 1 while a thread registers it, 2 once it is.
static FORK_WATCH: AtomicU8 = AtomicU8::new(0);

/// Registers the fork handler if no thread has begun to, and says whether ids may be cached
/// now: only once the handler is in place, or a child forked in between would keep its
/// parent's ids. It never waits for the registering thread (a `Once` would): a child forked
/// while that thread registers would wait for it for ever, since that thread does not exist in
/// the child. Until registration is over, ids are computed anew at each call.
fn watch_fork() -> bool {
    extern "C" fn fork_begins() {
        FORKING.fetch_add(1, Ordering::SeqCst);
        FORKS.fetch_add(1, Ordering::SeqCst);
    }
    extern "C" fn fork_ends() {
        FORKS.fetch_add(1, Ordering::SeqCst);
        FORKING.fetch_sub(1, Ordering::SeqCst);
    }
    extern "C" fn forget_ids() {
        PID.store(0, Ordering::Relaxed);
        PROCESS.store(0, Ordering::Relaxed);
        let _ = THREAD.try_with(|cached| cached.set(0));
        // The child has only the forking thread: no fork of its own is under way.
        FORKS.fetch_add(1, Ordering::SeqCst);
        FORKING.store(0, Ordering::SeqCst);
        // This handler runs, so it is registered, in the child as in its parent.
        FORK_WATCH.store(2, Ordering::Relaxed);
    }
    match FORK_WATCH.compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire) {
        Ok(_) => {
            // SAFETY: registers handlers that only update atomics and a thread-local cell,
            // which is safe around a fork and in its child.
            unsafe { libc::pthread_atfork(Some(fork_begins), Some(fork_ends), Some(forget_ids)) };
            FORK_WATCH.store(2, Ordering::Release);
            true
        }
        Err(state) => state == 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_ids_are_alive_and_distinct() {
        assert_eq!(os_id(process()), std::process::id());
        assert!(!is_dead(process()));
        assert!(!is_dead(thread()));
        let other = std::thread::spawn(thread).join().unwrap();
        assert_ne!(other, thread());
        assert!(is_dead(other), "a thread that ended is dead");
    }

    #[test]
    fn a_child_forked_while_the_fork_handler_is_being_registered_does_not_wait() {
        // As if another thread were registering the handler at the moment of the fork.
        FORK_WATCH.store(1, Ordering::SeqCst);
        PID.store(0, Ordering::SeqCst);
        let child = crate::Process::fork(pid).unwrap();
        let child_pid = child.join().unwrap();
        assert_eq!(child_pid, child.pid() as u32);
        assert_eq!(pid(), std::process::id(), "uncached, still right");
        FORK_WATCH.store(0, Ordering::SeqCst);
        assert!(watch_fork());
        assert_eq!(pid(), std::process::id());
    }

    #[test]
    fn a_fork_changes_the_stamp() {
        // Other tests fork too: a stamp is `None` while one of their forks is under way.
        let stamp = || loop {
            match fork_stamp() {
                Some(stamp) => break stamp,
                None => std::thread::yield_now(),
            }
        };
        let before = stamp();
        crate::Process::fork(|| ()).unwrap().join().unwrap();
        assert_ne!(before, stamp());
    }

    #[test]
    fn same_pid_other_start_time_is_dead() {
        let me = process();
        assert!(is_dead(me ^ (1 << 32)));
    }

    #[test]
    fn stat_with_parentheses_in_the_name_parses() {
        let line = "42 (a) b) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 123456 19 20";
        assert_eq!(parse_stat(line), Some(('S', 123456)));
    }
}
