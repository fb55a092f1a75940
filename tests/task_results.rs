//! A task may return a `Result`: its error comes back to the caller typed, whether the crate's
//! own `multiproc::Error` (so `?` works inside tasks) or any serde error type of the user's, as
//! Python raises a task's exception again in the caller.

use multiproc::prelude::*;
use multiproc::{Error, SharedMemory};
use serde::{Deserialize, Serialize};

/// Attaches to a segment that does not exist: fails with `?` on a `ShmError`.
#[process_task]
fn attach_missing(name: String) -> multiproc::Result<u32> {
    let segment = SharedMemory::attach(&name)?;
    Ok(segment.size() as u32)
}

/// Puts on a queue it closed: fails with `?` on a `PutError`.
#[process_task]
fn put_after_close(queue: Queue<u32>) -> multiproc::Result<u32> {
    queue.close();
    queue.put(1)?;
    Ok(1)
}

/// Reads a file that does not exist: fails with `?` on an `io::Error`.
#[process_task]
fn read_missing(path: String) -> multiproc::Result<usize> {
    Ok(std::fs::read(path)?.len())
}

/// Starts a child that panics, and passes its failure on with `?`.
#[process_task]
fn join_a_panic() -> multiproc::Result<u32> {
    Process::fork(|| -> u32 { panic!("the grandchild gives up") })?.join()
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum DivError {
    ByZero,
    NotExact { remainder: u32 },
}

#[process_task]
fn divide(a: u32, b: u32) -> Result<u32, DivError> {
    match (a.checked_div(b), a.checked_rem(b)) {
        (None, _) | (_, None) => Err(DivError::ByZero),
        (Some(q), Some(0)) => Ok(q),
        (_, Some(remainder)) => Err(DivError::NotExact { remainder }),
    }
}

#[process_task]
fn halve(x: u32) -> Result<u32, DivError> {
    divide(x, 2)
}

const MISSING: &str = "multiproc-task-results-no-such-segment";

/// The error `SharedMemory::attach(MISSING)` gives here.
fn missing_here() -> Error {
    SharedMemory::attach(MISSING).unwrap_err().into()
}

/// Checks that `e` is the remote form of [`missing_here`].
fn assert_missing(e: &Error) {
    assert!(
        matches!(e, Error::Remote(r) if r.kind() == Some("Shm")),
        "{e:?}"
    );
    assert_eq!(e.to_string(), missing_here().to_string());
}

#[test]
fn a_process_task_returns_multiprocs_own_error() -> multiproc::Result<()> {
    let child = Process::new(task!(attach_missing, MISSING.to_string())).start()?;
    assert_missing(&child.join()?.unwrap_err());

    let queue = Queue::new()?;
    let child = Process::new(task!(put_after_close, queue)).start()?;
    let e = child.join()?.unwrap_err();
    assert!(
        matches!(&e, Error::Remote(r) if r.kind() == Some("Queue")),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "the queue is closed");
    Ok(())
}

#[test]
fn plain_errors_come_back_as_their_own_variant() -> multiproc::Result<()> {
    let missing = "/nonexistent/multiproc-task-results".to_string();
    let e = Process::new(task!(read_missing, missing))
        .start()?
        .join()?
        .unwrap_err();
    assert!(
        matches!(&e, Error::Io(io) if io.raw_os_error() == Some(libc::ENOENT)),
        "{e:?}"
    );

    let e = Process::new(task!(join_a_panic))
        .start()?
        .join()?
        .unwrap_err();
    match e {
        Error::Panicked {
            message, location, ..
        } => {
            assert_eq!(message, "the grandchild gives up");
            assert!(location.is_some_and(|l| l.starts_with(file!())));
        }
        other => panic!("expected the grandchild's panic, got {other:?}"),
    }
    Ok(())
}

#[test]
fn a_pool_task_returns_multiprocs_own_error() -> multiproc::Result<()> {
    let pool = Pool::new(2)?;
    assert_missing(
        &pool
            .apply(task!(attach_missing, MISSING.to_string()))?
            .unwrap_err(),
    );
    let names = vec![MISSING.to_string(); 20];
    let outcomes = pool.map(task!(attach_missing), names)?;
    assert_eq!(outcomes.len(), 20);
    outcomes
        .iter()
        .for_each(|o| assert_missing(o.as_ref().unwrap_err()));
    Ok(())
}

#[test]
fn a_users_error_type_comes_back_typed() -> multiproc::Result<()> {
    let child = Process::new(task!(divide, 7, 0)).start()?;
    assert_eq!(child.join()?, Err(DivError::ByZero));
    let child = Process::new(task!(divide, 8, 2)).start()?;
    assert_eq!(child.join()?, Ok(4));

    let pool = Pool::new(2)?;
    assert_eq!(
        pool.apply(task!(divide, 7, 2))?,
        Err(DivError::NotExact { remainder: 1 })
    );
    let halves = pool.map(task!(halve), 0..6)?;
    let expected: Vec<_> = (0..6)
        .map(|x| match x % 2 {
            0 => Ok(x / 2),
            _ => Err(DivError::NotExact { remainder: 1 }),
        })
        .collect();
    assert_eq!(halves, expected);
    Ok(())
}
