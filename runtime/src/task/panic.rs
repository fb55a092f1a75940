//! What a task's panic tells its caller: the message, where it panicked and, when asked for
//! with `RUST_BACKTRACE`, the backtrace (Python sends the remote traceback along with the
//! exception).
//!
//! Only the panic hook sees a panic's location, so the crate installs one hook per process, in
//! the parent before its first fork (setting a hook takes a lock that another thread may hold
//! at the fork). The hook records the location on the panicking thread while a task runs there
//! under [`catch_panic`], then passes the panic on to the hook installed before it, unless the
//! thread is a pool worker's, whose tasks' panics are the caller's to report, not the worker's
//! to print. A program that sets a hook of its own after its first process started replaces
//! this one: its tasks' panics then come without their location.

use crate::wire::TaskFailure;
use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// Where and how a task panicked, as the hook saw it.
struct Caught {
    location: Option<String>,
    backtrace: Option<String>,
}

thread_local! {
    /// Whether a task runs under [`catch_panic`] on this thread. A `Cell`, so that arming costs
    /// next to nothing per task: a pool worker runs millions.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    /// Whether [`CAUGHT`] holds a record; read before it, so that the common case (no panic)
    /// never touches the `RefCell`.
    static HAS_CAUGHT: Cell<bool> = const { Cell::new(false) };
    /// What the hook recorded of the last panic of an armed task on this thread.
    static CAUGHT: RefCell<Option<Caught>> = const { RefCell::new(None) };
    /// Whether a panic on this thread is a pool task's, to be left unprinted: the caller gets it
    /// as its error, as CPython's pool prints nothing for a task's exception. Set only on a
    /// worker's own thread; a thread a task starts prints its panics as usual.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Whether a task's panic carries its backtrace: [`NO_BACKTRACE`], [`SHORT`], [`FULL`]
/// (`RUST_BACKTRACE=full`), or [`UNREAD`]. Read once, as std reads it for its own panic
/// messages, in the parent before its first fork: a child inherits it and never reads the
/// environment, whose lock another thread of the parent may have held at the fork.
static BACKTRACE: AtomicU8 = AtomicU8::new(UNREAD);
const NO_BACKTRACE: u8 = 0;
const SHORT: u8 = 1;
const FULL: u8 = 2;
const UNREAD: u8 = u8::MAX;

/// Makes ready, in the parent, what a child's tasks need to report their panics: the hook, and
/// whether `RUST_BACKTRACE` asks for backtraces.
pub(crate) fn prepare_fork() {
    if BACKTRACE.load(Ordering::Relaxed) == UNREAD {
        let style = match std::env::var_os("RUST_BACKTRACE") {
            None => NO_BACKTRACE,
            Some(value) if value == "0" => NO_BACKTRACE,
            Some(value) if value == "full" => FULL,
            Some(_) => SHORT,
        };
        BACKTRACE.store(style, Ordering::Relaxed);
    }
    install_hook();
}

/// Leaves a pool task's panics on this thread unprinted from now on.
pub(crate) fn quiet_here() {
    QUIET.set(true);
}

/// Installs the hook, once per process.
fn install_hook() {
    // Not a `Once`: a child forked while another thread installs the hook would wait for it for
    // ever if it started a process. A child forked meanwhile merely reports no location.
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::Relaxed) {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        record(info);
        // A thread being torn down has no flag left: it is not a worker's.
        if !QUIET.try_with(Cell::get).unwrap_or(false) {
            previous(info);
        }
    }));
}

/// Records the panic `info` if a task runs on this thread; the last panic wins, so a panic the
/// task caught itself is replaced by the one that ends it.
fn record(info: &PanicHookInfo<'_>) {
    if !ARMED.try_with(Cell::get).unwrap_or(false) {
        return;
    }
    let caught = Caught {
        location: info.location().map(ToString::to_string),
        backtrace: backtrace(),
    };
    let _ = CAUGHT.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = Some(caught);
            HAS_CAUGHT.set(true);
        }
    });
}

/// Takes what the hook recorded, if anything.
fn take_caught() -> Option<Caught> {
    if !HAS_CAUGHT.replace(false) {
        return None;
    }
    CAUGHT.take()
}

/// The backtrace of the panicking thread, if one was asked for.
fn backtrace() -> Option<String> {
    match BACKTRACE.load(Ordering::Relaxed) {
        SHORT => Some(Backtrace::force_capture().to_string()),
        FULL => Some(format!("{:#}", Backtrace::force_capture())),
        _ => None,
    }
}

/// Runs `body`, turning a panic into [`TaskFailure::Panicked`] with the panic's message, and its
/// location and backtrace as the hook recorded them.
pub(crate) fn catch_panic<R>(body: impl FnOnce() -> R) -> Result<R, TaskFailure> {
    // A record left by a panic the previous task caught itself must not be taken for this
    // task's (say, if a hook of the program's own replaced ours since).
    let _ = take_caught();
    let outer = ARMED.replace(true);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    ARMED.set(outer);
    outcome.map_err(|payload| {
        let caught = take_caught();
        let (location, backtrace) = caught.map_or((None, None), |c| (c.location, c.backtrace));
        TaskFailure::Panicked {
            message: panic_message(payload.as_ref()),
            location,
            backtrace,
        }
    })
}

/// The message a panic was raised with.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_owned())
}
