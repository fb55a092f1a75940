//! How many threads this process has besides the crate's own: what makes a fork hazardous.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The crate's own threads alive now (a pool's result thread, a reaper).
static OWN: AtomicUsize = AtomicUsize::new(0);

/// Held by a thread of the crate's own for its lifetime, so that it is not counted as the
/// user's. Made before the thread is started and moved into it, so that it counts from the
/// moment the thread exists.
pub(crate) struct OwnThread(());

impl OwnThread {
    /// Counts one thread as the crate's own until the value is dropped.
    pub(crate) fn count() -> Self {
        OWN.fetch_add(1, Ordering::Relaxed);
        OwnThread(())
    }
}

impl Drop for OwnThread {
    fn drop(&mut self) {
        OWN.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The threads of this process that are not the crate's own, the calling one included; `None`
/// if `/proc` cannot say.
pub(crate) fn others() -> Option<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let total = num_threads(&stat)?;
    Some(total.saturating_sub(OWN.load(Ordering::Relaxed)).max(1))
}

/// Field 20 of a `/proc/<pid>/stat` line; the fields are counted after the command name, which
/// may hold spaces and parentheses.
fn num_threads(stat: &str) -> Option<usize> {
    let after_name = stat.rsplit_once(')')?.1;
    after_name.split_whitespace().nth(17)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_count_is_read_after_the_command_name() {
        let line = "42 (a) b c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 7 0 123456 19 20";
        assert_eq!(num_threads(line), Some(7));
    }

    #[test]
    fn own_threads_are_not_counted() {
        let (started, wait_started) = std::sync::mpsc::channel();
        let (stop, wait_stop) = std::sync::mpsc::channel::<()>();
        let own = OwnThread::count();
        let helper = std::thread::spawn(move || {
            let _own = own;
            started.send(()).unwrap();
            let _ = wait_stop.recv();
        });
        wait_started.recv().unwrap();
        let total = num_threads(&std::fs::read_to_string("/proc/self/stat").unwrap()).unwrap();
        // Other tests run on threads of their own meanwhile: compare with the total only.
        assert!(others().unwrap() < total, "the helper is not counted");
        stop.send(()).unwrap();
        helper.join().unwrap();
    }
}
