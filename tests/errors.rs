//! Every public error type converts into `multiproc::Error`, so `?` works on all of them.

use multiproc::error::{CodecError, TaskFailure};
use multiproc::pool::PoolError;
use multiproc::prelude::*;
use multiproc::process::CloseError;
use multiproc::queue::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, QueueError, TaskDoneError, TryGetError,
    TryPutError,
};
use multiproc::shm::ShmError;
use multiproc::sync::{LockGuard, OwnerDied, SyncError, TryLockError};
use multiproc::{ConnectionError, Error, SharedMemory};
use std::time::Duration;

/// Compiles only if `multiproc::Error: From<E>`.
fn converts<E>()
where
    Error: From<E>,
{
}

#[test]
fn every_public_error_type_converts_into_error() {
    converts::<std::io::Error>();
    converts::<ShmError>();
    converts::<SyncError>();
    converts::<OwnerDied<LockGuard<'static>>>();
    converts::<TryLockError<LockGuard<'static>>>();
    converts::<PutError<u8>>();
    converts::<TryPutError<u8>>();
    converts::<PutTimeoutError<u8>>();
    converts::<GetError>();
    converts::<TryGetError>();
    converts::<GetTimeoutError>();
    converts::<TaskDoneError>();
    converts::<QueueError>();
    converts::<PoolError>();
    converts::<ConnectionError>();
    converts::<CodecError>();
    converts::<CloseError<()>>();
    // `TaskFailure` only ever arrives inside `Error::Task`/`Error::Panicked`, with the pid of
    // the child it happened in; on its own it has no pid to convert with.
    let _ = TaskFailure::Panicked {
        message: String::new(),
        location: None,
        backtrace: None,
    };
}

/// Runs `f` and returns its error, which must be there.
fn fails<T: std::fmt::Debug>(f: impl FnOnce() -> multiproc::Result<T>) -> Error {
    f().expect_err("the operation should fail")
}

#[test]
fn question_mark_works_on_each_error_from_the_api() {
    let e = fails(|| Ok(std::fs::read("/nonexistent/multiproc")?));
    assert!(matches!(e, Error::Io(_)), "{e:?}");

    let e = fails(|| Ok(SharedMemory::attach("multiproc-no-such-segment-19")?));
    assert!(matches!(e, Error::Shm(ShmError::NotFound(_))), "{e:?}");

    let lock = Lock::new().unwrap();
    let e = fails(|| Ok(lock.release()?));
    assert!(matches!(e, Error::Sync(SyncError::NotLocked)), "{e:?}");
    let held = lock.lock().unwrap();
    let e = fails(|| Ok(lock.try_lock().map(drop)?));
    assert!(matches!(e, Error::Sync(SyncError::WouldBlock)), "{e:?}");
    drop(held);

    let sem = Semaphore::new(u32::MAX).unwrap();
    let e = fails(|| Ok(sem.release()?));
    assert!(
        matches!(e, Error::Sync(SyncError::SemaphoreOverflow)),
        "{e:?}"
    );

    let q = Queue::<u8>::bounded(1).unwrap();
    let e = fails(|| Ok(q.try_get()?));
    assert!(matches!(e, Error::Queue(QueueError::Empty)), "{e:?}");
    let e = fails(|| Ok(q.get_timeout(Duration::from_millis(10))?));
    assert!(matches!(e, Error::Queue(QueueError::Timeout)), "{e:?}");
    q.put(1).unwrap();
    let e = fails(|| Ok(q.try_put(2)?));
    assert!(matches!(e, Error::Queue(QueueError::Full)), "{e:?}");
    let e = fails(|| Ok(q.put_timeout(2, Duration::from_millis(10))?));
    assert!(matches!(e, Error::Queue(QueueError::Timeout)), "{e:?}");
    q.close();
    let e = fails(|| Ok(q.put(3)?));
    assert!(matches!(e, Error::Queue(QueueError::Closed)), "{e:?}");
    let e = fails(|| Ok(q.get()?));
    assert!(e.to_string().contains("closed"), "{e:?}");

    let jq = JoinableQueue::<u8>::new().unwrap();
    let e = fails(|| Ok(jq.task_done()?));
    assert!(e.to_string().contains("task_done()"), "{e:?}");

    let e = fails(|| Ok(Err(PoolError::NotReady)?));
    assert!(matches!(e, Error::Pool(PoolError::NotReady)), "{e:?}");
    let pool = Pool::new(1).unwrap();
    pool.close(); // returns (): nothing to convert
    pool.join().unwrap();

    let (mut a, b) = Pipe::<u8>::duplex().unwrap();
    drop(b);
    let e = fails(|| Ok(a.recv()?));
    assert!(matches!(e, Error::Connection(_)), "{e:?}");

    let child = Process::fork(|| std::thread::sleep(Duration::from_millis(300))).unwrap();
    let pid = child.pid();
    let e = fails(|| Ok(child.close()?));
    assert!(
        matches!(e, Error::StillRunning { pid: p } if p == pid),
        "{e:?}"
    );
    assert_eq!(e.to_string(), format!("process {pid} is still running"));
}
