//! A program whose constructors start a thread cannot use the forkserver start method: the
//! server, which runs every constructor, would have two threads and fork half of itself. It says
//! so at the start, with the reason; spawn still works.

use multiproc::prelude::*;
use multiproc::process::StartError;
use multiproc::{get_context, StartMethod};

/// A constructor, as a library's `#[ctor]` would be, that starts a thread in every process of
/// this program, the fork server included.
#[used]
#[link_section = ".init_array"]
static START_A_THREAD: extern "C" fn() = start_a_thread;

extern "C" fn start_a_thread() {
    let _ = std::thread::Builder::new().spawn(|| loop {
        std::thread::park();
    });
}

#[process_task]
fn one() -> u32 {
    1
}

#[test]
fn a_server_with_two_threads_refuses_to_serve_and_says_why() {
    let err = get_context(StartMethod::Forkserver)
        .unwrap()
        .process(task!(one))
        .start()
        .unwrap_err();
    assert!(
        matches!(
            &err,
            multiproc::Error::Start(StartError::Unavailable {
                method: StartMethod::Forkserver,
                ..
            })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("more than one thread"), "{err}");
    let spawned = get_context(StartMethod::Spawn)
        .unwrap()
        .process(task!(one))
        .start()
        .unwrap();
    assert_eq!(spawned.join().unwrap(), 1);
}
