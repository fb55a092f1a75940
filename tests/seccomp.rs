//! Handles reach children with `pidfd_getfd` denied, as Docker's default seccomp profile and
//! Yama's `ptrace_scope=1` deny it: the crate passes descriptors with `SCM_RIGHTS` only.
//!
//! A test binary without libtest's harness, so that the filter is installed once, in this
//! process, before any child or forkserver exists; every process started afterwards inherits it.

#[path = "support/by_name.rs"]
mod by_name;

use multiproc::prelude::*;
use multiproc::{get_context, StartMethod};
use std::io;

/// Makes `pidfd_getfd` fail with `EPERM` in this process and every process it starts.
fn deny_pidfd_getfd() {
    // The filter compares the syscall number only: this binary runs one ABI, so the
    // architecture check a sandbox would add changes nothing here.
    let nr = libc::SYS_pidfd_getfd as u32;
    let mut program = [
        bpf_stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0), // seccomp_data.nr
        bpf_jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, nr, 0, 1),
        bpf_stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
        bpf_stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let filter = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "PR_SET_NO_NEW_PRIVS: {}", io::Error::last_os_error());
    // SAFETY: `filter` points at `program`, a valid BPF program of `len` instructions that
    // lives until the call returns; the kernel copies it.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &filter as *const libc::sock_fprog,
        )
    };
    assert_eq!(rc, 0, "PR_SET_SECCOMP: {}", io::Error::last_os_error());
}

fn bpf_stmt(code: u32, k: u32) -> libc::sock_filter {
    bpf_jump(code, k, 0, 0)
}

fn bpf_jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// What `pidfd_getfd` of this process's standard input gives: a descriptor, or the error.
fn take_own_stdin() -> io::Result<()> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, std::process::id(), 0) };
    assert!(pidfd >= 0, "pidfd_open: {}", io::Error::last_os_error());
    // SAFETY: pidfd_getfd takes a pidfd, a descriptor number and flags, and returns a new
    // descriptor or -1; it reads no memory of ours.
    let taken = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, 0, 0) };
    let result = if taken < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: `taken` is a descriptor this call just created and nothing else owns.
        unsafe { libc::close(taken as i32) };
        Ok(())
    };
    // SAFETY: `pidfd` was opened above and is closed once.
    unsafe { libc::close(pidfd as i32) };
    result
}

fn main() {
    deny_pidfd_getfd();
    let denied = take_own_stdin().expect_err("the filter denies pidfd_getfd");
    assert_eq!(denied.raw_os_error(), Some(libc::EPERM), "{denied}");

    for method in [
        StartMethod::Spawn,
        StartMethod::Forkserver,
        StartMethod::Fork,
    ] {
        let ctx = get_context(method).unwrap();
        by_name::handles_reach_the_child(ctx).unwrap();
        by_name::a_pipe_end_reaches_the_child(ctx).unwrap();
        by_name::a_child_starts_a_grandchild(ctx);
        by_name::panics_exit_codes_and_signals_are_reported_as_under_fork(ctx);
        if method != StartMethod::Fork {
            by_name::a_lock_another_thread_holds_does_not_hang_the_child(ctx);
            by_name::a_closure_is_refused_at_start(ctx);
        }
        println!("handles under {method} with pidfd_getfd denied: ok");
    }
    let pool = Pool::builder()
        .processes(2)
        .start_method(StartMethod::Spawn)
        .build()
        .unwrap();
    let counter = Value::new(0i64).unwrap();
    pool.map(task!(bump_counter, counter.clone()), 0..10i64)
        .unwrap();
    assert_eq!(counter.get(), 45);
    println!("a Value reaches spawned pool workers with pidfd_getfd denied: ok");
}

#[process_task]
fn bump_counter(counter: Value<i64>, by: i64) {
    counter.fetch_add(by);
}
