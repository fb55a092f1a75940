//! Executing the running program again in a new process (`posix_spawn` of `/proc/self/exe`),
//! with chosen descriptors inherited under their own numbers.
//!
//! `posix_spawn` rather than `std::process::Command`: std forks (rather than cloning with a
//! shared address space) as soon as a `pre_exec` hook is set, and it resets signal dispositions
//! the child should keep as they are. `/proc/self/exe` rather than the program's path: a binary
//! replaced on disk since it started is never run by mistake.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStringExt;

/// Owns a `posix_spawn_file_actions_t` and destroys it when dropped.
struct FileActions(libc::posix_spawn_file_actions_t);

impl FileActions {
    fn new() -> io::Result<Self> {
        // SAFETY: an all-zero value is a valid place for init to write; it is only used after
        // init succeeded.
        let mut actions = FileActions(unsafe { std::mem::zeroed() });
        // SAFETY: initialises the object it is given.
        check(unsafe { libc::posix_spawn_file_actions_init(&mut actions.0) })?;
        Ok(actions)
    }

    /// Keeps `fd` open in the child under its own number: `dup2(fd, fd)` clears close-on-exec
    /// there, and only there.
    fn inherit(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let fd = fd.as_raw_fd();
        // SAFETY: an initialised object; the call records the action, it does not touch `fd`.
        check(unsafe { libc::posix_spawn_file_actions_adddup2(&mut self.0, fd, fd) })
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

/// Owns a `posix_spawnattr_t` and destroys it when dropped.
struct Attributes(libc::posix_spawnattr_t);

impl Attributes {
    /// Attributes that start the child with no signal blocked, whatever the calling thread
    /// blocks.
    fn unblocked() -> io::Result<Self> {
        // SAFETY: as in `FileActions::new`.
        let mut attr = Attributes(unsafe { std::mem::zeroed() });
        // SAFETY: initialises the object it is given.
        check(unsafe { libc::posix_spawnattr_init(&mut attr.0) })?;
        // SAFETY: an empty set, written by sigemptyset before it is read.
        let mut empty: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: sigemptyset writes the set it is given.
        unsafe { libc::sigemptyset(&mut empty) };
        // SAFETY: an initialised object and a valid set, copied by the call.
        check(unsafe { libc::posix_spawnattr_setsigmask(&mut attr.0, &empty) })?;
        // SAFETY: an initialised object.
        check(unsafe {
            libc::posix_spawnattr_setflags(&mut attr.0, libc::POSIX_SPAWN_SETSIGMASK as _)
        })?;
        Ok(attr)
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: initialised in `unblocked`, destroyed once.
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}

/// Turns strings into the C strings of an argument or environment vector; an interior NUL is
/// an error.
fn c_strings(strings: impl IntoIterator<Item = OsString>) -> io::Result<Vec<CString>> {
    strings
        .into_iter()
        .map(|s| {
            CString::new(s.into_vec()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
        })
        .collect()
}

/// A NULL-terminated vector of pointers into `strings`, which must outlive it.
fn pointers(strings: &[CString]) -> Vec<*mut libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect()
}

/// Starts this program again with arguments `args` and environment `env` (`KEY=value`
/// strings); the descriptors in `inherit` stay open in it under the same numbers, every other
/// descriptor closed on exec stays closed. Returns the child's pid.
pub(crate) fn exec_self(
    args: impl IntoIterator<Item = OsString>,
    env: impl IntoIterator<Item = OsString>,
    inherit: &[BorrowedFd<'_>],
) -> io::Result<i32> {
    let args = c_strings(args)?;
    let env = c_strings(env)?;
    let mut actions = FileActions::new()?;
    for fd in inherit {
        actions.inherit(*fd)?;
    }
    let attr = Attributes::unblocked()?;
    let (argv, envp) = (pointers(&args), pointers(&env));
    let mut pid: libc::pid_t = 0;
    // SAFETY: the path is a NUL-terminated string; the actions and attributes are initialised;
    // `argv` and `envp` are NULL-terminated vectors of NUL-terminated strings that live until the
    // call returns (the child has its own copies after exec).
    check(unsafe {
        libc::posix_spawn(
            &mut pid,
            c"/proc/self/exe".as_ptr(),
            &actions.0,
            &attr.0,
            argv.as_ptr(),
            envp.as_ptr(),
        )
    })?;
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interior_nul_is_an_error_not_a_truncated_argument() {
        let err = exec_self([OsString::from("a\0b")], [], &[]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
