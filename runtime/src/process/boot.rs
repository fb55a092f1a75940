//! The start of a spawned child, before `main` (Python's `spawn.spawn_main`).
//!
//! A child started by the spawn method is this program executed again, with `MULTIPROC_BOOT`
//! in its environment naming a descriptor that holds its [`Boot`]: who it is, the task's name
//! and encoded arguments, and the descriptors it was given. The hook below runs among the
//! program's constructors, before `main`. In an ordinary process it only records that it is
//! linked in. In a spawned child it first runs every constructor after it itself (so that the
//! task registry and any other `inventory` are complete), then runs the task, sends the result
//! and leaves with `_exit`: `main` never runs in a child, so a program cannot start itself
//! again by accident (Python's fork-bomb guard). A child that cannot boot says why on stderr and
//! exits with [`BOOT_FAILED`]. The fork server boots the same way, under a task name no task can
//! have (`forkserver`), and so do its children, from the [`Boot`] that comes with each request.

use super::children;
use super::current::{self, Identity, WireIdentity};
use super::method::{self, StartError, StartMethod};
use super::{fork, forkserver};
use crate::error::Error;
use crate::sys::transfer;
use crate::task::registry;
use crate::wire::{self, TaskFailure};
use serde::{Deserialize, Serialize};
use std::ffi::{c_char, c_int, CStr};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// The environment variable that makes a process a spawned child.
pub(super) const MARKER: &str = "MULTIPROC_BOOT";

/// The version of [`Boot`] this build writes and reads.
pub(super) const VERSION: u32 = 1;

/// The exit code of a child that could not boot (`EX_SOFTWARE`).
pub(crate) const BOOT_FAILED: i32 = 70;

/// What a spawned child is sent; a child of the fork server gets it with its request.
#[derive(Serialize, Deserialize)]
pub(super) struct Boot {
    pub(super) version: u32,
    /// Repeated in the marker, so that a stale or foreign marker is refused.
    pub(super) nonce: u64,
    pub(super) identity: WireIdentity,
    /// The parent's start method, by name, and whether it was chosen on purpose: the child's
    /// own default (Python's spawn sends it too).
    pub(super) start_method: (String, bool),
    pub(super) task: String,
    pub(super) args: Vec<u8>,
    /// The write end of the result pipe.
    pub(super) result: RawFd,
    /// A daemonic child's end of the hang-up pipe.
    pub(super) hangup: Option<RawFd>,
    /// The descriptors that the handles among the arguments name by slot (`sys::transfer`).
    pub(super) handles: Vec<RawFd>,
}

impl Boot {
    /// The boot of a child of this process that runs `task` on `args`, as `identity`, with the
    /// descriptors `result`, `hangup` and `handles` (numbers in this process).
    pub(super) fn new(
        identity: WireIdentity,
        task: &str,
        args: Vec<u8>,
        (result, hangup, handles): (RawFd, Option<RawFd>, Vec<RawFd>),
    ) -> Self {
        Boot {
            version: VERSION,
            nonce: crate::sys::random_u64(),
            identity,
            start_method: method::chosen().map_or(
                (StartMethod::Fork.name().to_owned(), false),
                |(m, explicit)| (m.name().to_owned(), explicit),
            ),
            task: task.to_owned(),
            args,
            result,
            hangup,
            handles,
        }
    }

    /// The descriptors the boot names, in the order [`with_descriptors`](Boot::with_descriptors)
    /// takes them: the result pipe, the hang-up pipe if any, the handles.
    pub(super) fn descriptors(&self) -> impl Iterator<Item = RawFd> + '_ {
        std::iter::once(self.result)
            .chain(self.hangup)
            .chain(self.handles.iter().copied())
    }

    /// The boot with its descriptors renumbered to `fds` (received by the fork server, in
    /// [`descriptors`](Boot::descriptors) order); an error if their count differs.
    pub(super) fn with_descriptors(mut self, fds: Vec<RawFd>) -> Result<Self, String> {
        let expected = self.descriptors().count();
        if fds.len() != expected {
            return Err(format!(
                "{} descriptors came where {expected} were sent",
                fds.len()
            ));
        }
        let mut fds = fds.into_iter();
        self.result = fds.next().unwrap_or(-1);
        self.hangup = self.hangup.and_then(|_| fds.next());
        self.handles = fds.collect();
        Ok(self)
    }

    /// Takes the descriptors the boot names: the result pipe, the hang-up pipe, the handles.
    pub(super) fn adopt_descriptors(
        &self,
    ) -> std::io::Result<(OwnedFd, Option<OwnedFd>, Vec<OwnedFd>)> {
        let result = adopt(self.result)?;
        let hangup = self.hangup.map(adopt).transpose()?;
        let handles = self
            .handles
            .iter()
            .map(|&fd| adopt(fd))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok((result, hangup, handles))
    }
}

type InitFn = unsafe extern "C" fn(c_int, *const *const c_char, *const *const c_char);

// After std's own constructor (`.init_array.00099`, which records `argv`), before every
// constructor without a priority (inventory's, the task registry's).
#[used]
#[link_section = ".init_array.00150"]
static HOOK: InitFn = hook;

/// Set by the hook in every process that has it linked in and run.
static LINKED: AtomicBool = AtomicBool::new(false);

/// Set while a spawned child runs the constructors after the hook.
static BOOTSTRAPPING: AtomicBool = AtomicBool::new(false);

extern "C" {
    static __init_array_start: [Option<InitFn>; 0];
    static __init_array_end: [Option<InitFn>; 0];
}

/// The constructor: see the module documentation.
unsafe extern "C" fn hook(argc: c_int, argv: *const *const c_char, envp: *const *const c_char) {
    LINKED.store(true, Ordering::Release);
    // SAFETY: constructors run on the one thread there is, so nothing changes the environment
    // while it is read; the pointer, if not null, is a NUL-terminated string of the environment.
    let marker = unsafe { libc::getenv(c"MULTIPROC_BOOT".as_ptr()) };
    if marker.is_null() {
        return;
    }
    // SAFETY: as above, a NUL-terminated string, copied before the environment changes.
    let marker = unsafe { CStr::from_ptr(marker) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: still the one thread; a grandchild must not see the marker.
    unsafe { libc::unsetenv(c"MULTIPROC_BOOT".as_ptr()) };
    BOOTSTRAPPING.store(true, Ordering::Release);
    // SAFETY: called from the constructor with glibc's arguments, once.
    unsafe { run_later_constructors(argc, argv, envp) };
    BOOTSTRAPPING.store(false, Ordering::Release);
    let code = std::panic::catch_unwind(|| run(&marker)).unwrap_or_else(|_| {
        eprintln!("multiproc: the spawned child panicked while booting");
        BOOT_FAILED
    });
    fork::exit_child(code)
}

/// Runs the constructors that come after the hook in `.init_array`, as the C library would
/// after the hook returned; the hook never returns, so each still runs once.
///
/// # Safety
///
/// Called once, from the hook, with the arguments the C library gave it.
unsafe fn run_later_constructors(
    argc: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) {
    // The linker defines both symbols around the `.init_array` section of this executable, an
    // array of function pointers; only their addresses are taken here.
    let start = std::ptr::addr_of!(__init_array_start).cast::<Option<InitFn>>();
    let end = std::ptr::addr_of!(__init_array_end).cast::<Option<InitFn>>();
    let mut at = start;
    let mut after_hook = false;
    while at < end {
        // SAFETY: `at` is within the array (start <= at < end), aligned as the linker laid it.
        let entry = unsafe { at.read() };
        if after_hook {
            if let Some(init) = entry.filter(|&f| f as usize != usize::MAX) {
                // SAFETY: a constructor of this program, called with the C library's arguments,
                // as the C library would call it.
                unsafe { init(argc, argv, envp) };
            }
        } else if entry.is_some_and(|f| f as usize == hook as *const () as usize) {
            after_hook = true;
        }
        // SAFETY: one step within the array, or to its end.
        at = unsafe { at.add(1) };
    }
}

/// Boots from the marker and runs the task; returns the exit code.
fn run(marker: &str) -> i32 {
    match read_boot(marker) {
        Ok(boot) if boot.task == forkserver::SERVE => forkserver::serve(boot),
        Ok(boot) => run_task(boot),
        Err(why) => {
            eprintln!("multiproc: {MARKER}={marker:?}: this process cannot boot: {why}");
            BOOT_FAILED
        }
    }
}

/// Reads and checks the [`Boot`] the marker names.
fn read_boot(marker: &str) -> Result<Boot, String> {
    let bad = || "the marker is not `1:<descriptor>:<nonce>`".to_owned();
    let mut parts = marker.split(':');
    let (Some("1"), Some(fd), Some(nonce), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let fd: RawFd = fd.parse().map_err(|_| bad())?;
    let nonce: u64 = nonce.parse().map_err(|_| bad())?;
    let bytes = adopt(fd)
        .and_then(read_file)
        .map_err(|e| format!("descriptor {fd}: {e}"))?;
    let boot: Boot = wire::decode(&bytes).map_err(|e| format!("bad boot data: {e}"))?;
    if boot.version != VERSION || boot.nonce != nonce {
        return Err("the boot data is not the marker's".to_owned());
    }
    Ok(boot)
}

/// All of the file `fd` (a boot's memfd, read from its start).
pub(super) fn read_file(fd: OwnedFd) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Takes ownership of an inherited descriptor, after checking that it is open, and closes it
/// on exec again, so that this child's own children do not inherit it.
fn adopt(fd: RawFd) -> std::io::Result<OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(libc::EBADF));
    }
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    // SAFETY: `fd` is open (fcntl succeeded) and was inherited for this process alone, which
    // takes it once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Takes the identity and descriptors, runs the task and sends its result; the exit code.
pub(super) fn run_task(boot: Boot) -> i32 {
    // Before the process takes a child's identity: a child that cannot run its task leaves as
    // it came.
    let entry = match registry::lookup(&boot.task) {
        Ok(entry) => entry,
        Err(e) => {
            eprintln!(
                "multiproc: a spawned child cannot run `{}`: {}",
                boot.task,
                Error::from(e)
            );
            return BOOT_FAILED;
        }
    };
    let (result, hangup, handles) = match boot.adopt_descriptors() {
        Ok(descriptors) => descriptors,
        Err(e) => {
            eprintln!("multiproc: a spawned child's descriptors are missing: {e}");
            return BOOT_FAILED;
        }
    };
    // What std's start-up would have done before `main`: a write to a closed pipe is an error,
    // not a fatal signal.
    // SAFETY: sets a signal's disposition to ignore; no handler runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // A grandchild forked from here closes what this child holds for its parent, as a forked
    // child does.
    let for_parent = [
        Some(result.as_raw_fd()),
        hangup.as_ref().map(|fd| fd.as_raw_fd()),
    ];
    children::registry().reset_in_child(for_parent);
    current::enter_child(Identity::from_wire(boot.identity));
    if let Ok(method) = boot.start_method.0.parse() {
        method::inherit(method, boot.start_method.1);
    }
    crate::task::panic::prepare_fork();
    if let Some(hangup) = &hangup {
        fork::die_with_parent(hangup);
    }
    let outcome = transfer::receiving(handles, || entry.invoke(&boot.args));
    let code = if outcome.is_ok() { 0 } else { 1 };
    fork::send_result(&result, &outcome_frame(outcome));
    code
}

/// The frame of a task's outcome whose output is already encoded: the same bytes as the frame
/// of `Result<Output, TaskFailure>`, which the parent decodes.
fn outcome_frame(outcome: Result<Vec<u8>, TaskFailure>) -> Vec<u8> {
    let failed = |failure: TaskFailure| wire::encode_frame(&Err::<(), _>(failure));
    let frame = match outcome {
        // `Ok` is variant 0, one byte, followed by the output.
        Ok(output) => wire::encode_frame(&Ok::<(), TaskFailure>(())).map(|mut frame| {
            frame.extend_from_slice(&output);
            let len = (frame.len() - wire::HEADER_LEN) as u64;
            frame[..wire::HEADER_LEN].copy_from_slice(&len.to_le_bytes());
            frame
        }),
        Err(failure) => failed(failure),
    };
    frame
        .or_else(|e| failed(TaskFailure::Encode(e.detail())))
        .unwrap_or_default()
}

/// Why this program cannot start children by spawn, or `None` if it can.
pub(crate) fn spawn_unavailable() -> Option<&'static str> {
    if !LINKED.load(Ordering::Acquire) {
        return Some("the crate's start-up hook did not run in this program");
    }
    if !in_main_executable() {
        return Some(
            "the crate is in a shared library: executing the program again would not reach it",
        );
    }
    None
}

/// Whether the hook is part of the main executable rather than of a shared library (then
/// `/proc/self/exe` is another program, say a Python interpreter).
fn in_main_executable() -> bool {
    fn base(address: usize) -> Option<usize> {
        let mut info = std::mem::MaybeUninit::<libc::Dl_info>::uninit();
        // SAFETY: dladdr fills `info` for an address of a loaded object and returns non-zero;
        // it only reads the loader's tables.
        let found = unsafe { libc::dladdr(address as *const libc::c_void, info.as_mut_ptr()) };
        // SAFETY: dladdr returned non-zero, so it filled `info`.
        (found != 0).then(|| unsafe { info.assume_init() }.dli_fbase as usize)
    }
    // SAFETY: getauxval reads the auxiliary vector; AT_PHDR is the main program's headers.
    let main_headers = unsafe { libc::getauxval(libc::AT_PHDR) } as usize;
    base(main_headers).is_some() && base(main_headers) == base(hook as *const () as usize)
}

/// An error if this process is still booting as a spawned child: a constructor that runs
/// before the task may not start processes.
pub(crate) fn check_not_bootstrapping() -> Result<(), StartError> {
    if BOOTSTRAPPING.load(Ordering::Acquire) {
        Err(StartError::Bootstrapping)
    } else {
        Ok(())
    }
}

/// The marker's value for a boot written to descriptor `fd`.
pub(super) fn marker(fd: RawFd, nonce: u64) -> String {
    format!("1:{fd}:{nonce}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    fn boot(task: &str, nonce: u64) -> Boot {
        Boot {
            version: VERSION,
            nonce,
            identity: current::next_child(Some("boot-test".into()), false).to_wire(),
            start_method: ("spawn".into(), false),
            task: task.into(),
            args: Vec::new(),
            result: -1,
            hangup: None,
            handles: Vec::new(),
        }
    }

    /// A marker naming a memfd that holds `boot`, and the memfd (kept open by the caller).
    fn written(boot: &Boot, nonce: u64) -> (String, std::fs::File) {
        let fd = nix::sys::memfd::memfd_create(
            c"boot-test",
            nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
        )
        .unwrap();
        let mut file = std::fs::File::from(fd);
        file.write_all(&wire::encode(boot).unwrap()).unwrap();
        file.rewind().unwrap();
        (marker(file.as_raw_fd(), nonce), file)
    }

    #[test]
    fn an_unknown_task_fails_the_boot_before_the_process_becomes_a_child() {
        assert_eq!(run_task(boot("no::such::task", 1)), BOOT_FAILED);
        assert!(!current::is_child());
    }

    #[test]
    fn a_boot_whose_nonce_is_not_the_markers_is_refused() {
        let (marker, file) = written(&boot("x", 7), 8);
        let err = read_boot(&marker).err().expect("refused");
        assert!(err.contains("not the marker's"), "{err}");
        // `read_boot` took the descriptor; forget the file's copy of it.
        std::mem::forget(file);
    }

    #[test]
    fn malformed_markers_are_refused() {
        for bad in ["", "1", "2:3:4", "1:x:4", "1:3:y", "1:3:4:5"] {
            assert!(read_boot(bad).is_err(), "{bad:?}");
        }
    }
}
