//! Who this process is: its name, daemon flag and parent, as Python's `current_process()` and
//! `parent_process()` report them.
//!
//! The main process is `"MainProcess"`. A child gets its identity at fork, before its body runs:
//! Python's scheme, `Process-N` for the N-th child a process starts and `Process-1:2` for the
//! second child of the first. The identity lives in an atomic pointer, so that setting it in a
//! freshly forked child takes no lock another thread of the parent might have held.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::os::fd::{BorrowedFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, Ordering};

/// What a process knows of itself.
#[derive(Debug)]
pub(crate) struct Identity {
    name: Cow<'static, str>,
    daemon: bool,
    /// Python's `_identity`: the child numbers from the main process down to this one.
    path: Vec<u32>,
    parent: Option<ParentProcess>,
}

static MAIN: Identity = Identity {
    name: Cow::Borrowed("MainProcess"),
    daemon: false,
    path: Vec::new(),
    parent: None,
};

/// The identity of this process; null in the main process.
static CURRENT: AtomicPtr<Identity> = AtomicPtr::new(std::ptr::null_mut());

/// How many children this process has started, for their default names.
static STARTED: AtomicU32 = AtomicU32::new(0);

fn identity() -> &'static Identity {
    let current = CURRENT.load(Ordering::Acquire);
    if current.is_null() {
        &MAIN
    } else {
        // SAFETY: a non-null CURRENT comes from Box::into_raw in `enter_child` and is never freed.
        unsafe { &*current }
    }
}

/// Whether this process is a child started by this library.
pub(crate) fn is_child() -> bool {
    !CURRENT.load(Ordering::Acquire).is_null()
}

/// Whether this process is daemonic (and so may not start children).
pub(crate) fn is_daemon() -> bool {
    identity().daemon
}

/// The identity of the next child this process starts, boxed before the fork so that the child
/// need not allocate.
pub(crate) fn next_child(name: Option<String>, daemon: bool) -> Box<Identity> {
    let me = identity();
    let mut path = me.path.clone();
    path.push(STARTED.fetch_add(1, Ordering::Relaxed) + 1);
    let name = name.unwrap_or_else(|| {
        let numbers: Vec<String> = path.iter().map(u32::to_string).collect();
        format!("Process-{}", numbers.join(":"))
    });
    Box::new(Identity {
        name: Cow::Owned(name),
        daemon,
        path,
        parent: Some(ParentProcess {
            pid: std::process::id() as i32,
            name: me.name.to_string(),
        }),
    })
}

impl Identity {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The identity as it travels to a child started by exec.
    pub(crate) fn to_wire(&self) -> WireIdentity {
        let parent = self.parent.as_ref();
        WireIdentity {
            name: self.name.to_string(),
            daemon: self.daemon,
            path: self.path.clone(),
            parent_pid: parent.map_or(0, ParentProcess::pid),
            parent_name: parent.map(|p| p.name.clone()).unwrap_or_default(),
        }
    }

    /// The identity a child started by exec was sent.
    pub(crate) fn from_wire(wire: WireIdentity) -> Box<Identity> {
        Box::new(Identity {
            name: Cow::Owned(wire.name),
            daemon: wire.daemon,
            path: wire.path,
            parent: Some(ParentProcess {
                pid: wire.parent_pid,
                name: wire.parent_name,
            }),
        })
    }
}

/// An [`Identity`] as it travels to a child started by exec, which inherits no memory. The
/// default is the fork server's, which is nobody's child as far as the user can tell.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct WireIdentity {
    name: String,
    daemon: bool,
    path: Vec<u32>,
    parent_pid: i32,
    parent_name: String,
}

/// A pidfd of this process's parent, in a child whose parent in the kernel's eyes is another
/// process (the fork server forked it); -1 otherwise.
static PARENT_PIDFD: AtomicI32 = AtomicI32::new(-1);

/// The process [`PARENT_PIDFD`] was set in: a child it forks has a parent of its own.
static PARENT_PIDFD_IN: AtomicU32 = AtomicU32::new(0);

/// In a child forked by the fork server: watches the real parent through `pidfd`, kept open for
/// the life of this process.
pub(crate) fn watch_parent(pidfd: OwnedFd) {
    PARENT_PIDFD_IN.store(std::process::id(), Ordering::Release);
    PARENT_PIDFD.store(pidfd.into_raw_fd(), Ordering::Release);
}

/// The pidfd [`watch_parent`] keeps, if it was set in this very process.
fn parent_pidfd() -> Option<BorrowedFd<'static>> {
    let fd = PARENT_PIDFD.load(Ordering::Acquire);
    let mine = PARENT_PIDFD_IN.load(Ordering::Acquire) == std::process::id();
    // SAFETY: a descriptor stored by `watch_parent`, whose ownership it gave up: it is never
    // closed, in this process (the check above) or in a child forked from it, which inherits it.
    (fd >= 0 && mine).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
}

/// Makes `identity` this process's own. Called in the child right after fork.
pub(crate) fn enter_child(identity: Box<Identity>) {
    STARTED.store(0, Ordering::Relaxed);
    CURRENT.store(Box::into_raw(identity), Ordering::Release);
}

/// This process, as Python's `multiprocessing.current_process()` describes it.
///
/// Its [`Display`](fmt::Display) is Python's `repr`: `<Process name='MainProcess' pid=4242
/// parent=None started>` in the main process, `<Process name='Process-1' pid=4243 parent=4242
/// started daemon>` in a daemonic child (CPython 3.11 says `_MainProcess` for the main one and
/// leaves out the pid in a child; both are always `started`).
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
///
/// # fn main() -> multiproc::Result<()> {
/// let me = current_process();
/// assert_eq!(
///     me.to_string(),
///     format!("<Process name='MainProcess' pid={} parent=None started>", me.pid())
/// );
/// let child = Process::fork(|| current_process().to_string())?;
/// let pid = child.pid();
/// assert_eq!(
///     child.join()?,
///     format!("<Process name='Process-1' pid={pid} parent={} started>", me.pid())
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentProcess {
    name: String,
    pid: i32,
    daemon: bool,
    parent: Option<i32>,
}

impl fmt::Display for CurrentProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<Process name={:?} pid={} parent=",
            PyStr(&self.name),
            self.pid
        )?;
        match self.parent {
            Some(pid) => write!(f, "{pid}")?,
            None => f.write_str("None")?,
        }
        f.write_str(" started")?;
        if self.daemon {
            f.write_str(" daemon")?;
        }
        f.write_str(">")
    }
}

/// A name quoted as Python's `repr` of a `str` quotes it: in single quotes, unless it holds a
/// single quote and no double one.
struct PyStr<'a>(&'a str);

impl fmt::Debug for PyStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quote = if self.0.contains('\'') && !self.0.contains('"') {
            '"'
        } else {
            '\''
        };
        f.write_char(quote)?;
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if c == quote => write!(f, "\\{c}")?,
                c if c.is_control() => write!(f, "\\x{:02x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        f.write_char(quote)
    }
}

impl CurrentProcess {
    /// `"MainProcess"`, the name given at start, or `Process-N`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether the process is daemonic.
    pub fn daemon(&self) -> bool {
        self.daemon
    }
}

/// The process this code runs in (Python's `current_process()`).
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
///
/// # fn main() -> multiproc::Result<()> {
/// assert_eq!(current_process().name(), "MainProcess");
/// let p = Process::fork(|| current_process().name().to_string())?;
/// assert_eq!(p.join()?, p.name());
/// # Ok(())
/// # }
/// ```
pub fn current_process() -> CurrentProcess {
    let me = identity();
    CurrentProcess {
        name: me.name.to_string(),
        pid: std::process::id() as i32,
        daemon: me.daemon,
        parent: me.parent.as_ref().map(ParentProcess::pid),
    }
}

/// The process that started this one (Python's `parent_process()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentProcess {
    pid: i32,
    name: String,
}

impl ParentProcess {
    /// The parent's process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The parent's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the parent still runs. When it ends, the kernel hands this process to another
    /// parent, so the check is exact and immune to pid reuse; a child of the fork server,
    /// whose kernel parent is the server, watches a pidfd of its real parent instead.
    pub fn is_alive(&self) -> bool {
        match parent_pidfd() {
            Some(pidfd) => {
                crate::sys::poll(&[pidfd], libc::POLLIN, Some(std::time::Instant::now()))
                    .is_ok_and(|ready| !ready[0])
            }
            None => nix::unistd::getppid().as_raw() == self.pid,
        }
    }
}

/// The parent of this process, or `None` in the main process (Python's `parent_process()`).
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
///
/// # fn main() -> multiproc::Result<()> {
/// assert!(parent_process().is_none());
/// let p = Process::fork(|| {
///     let parent = parent_process().expect("a child has a parent");
///     (parent.pid(), parent.name().to_string(), parent.is_alive())
/// })?;
/// let me = current_process();
/// assert_eq!(p.join()?, (me.pid(), "MainProcess".to_string(), true));
/// # Ok(())
/// # }
/// ```
pub fn parent_process() -> Option<ParentProcess> {
    identity().parent.clone()
}

/// The number of CPUs this process may run on (Python's `cpu_count()`, less any affinity mask:
/// Python 3.13's `process_cpu_count()`); at least 1.
///
/// # Examples
///
/// ```
/// let workers = multiproc::cpu_count();
/// assert!(workers >= 1);
/// ```
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
