//! Checks that hold under every start method that runs a task by name in a fresh process
//! (spawn, forkserver): each takes the context that starts the children.

use multiproc::prelude::*;
use multiproc::{Context, SharedMemory, StartMethod};
use std::sync::Mutex;
use std::time::Duration;

#[process_task]
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[process_task]
pub fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[process_task]
pub fn leave(code: i32) {
    multiproc::exit(code)
}

#[process_task]
fn bump(counter: Value<i64>, lock: Lock, queue: Queue<String>, shm: SharedMemory) {
    let _held = lock.lock().unwrap();
    counter.fetch_add(1);
    shm.write_at(0, b"started").unwrap();
    queue.put("from the child".to_string()).unwrap();
}

/// A `Value`, a `Lock`, a `Queue` and a `SharedMemory` reach the child and work there.
pub fn handles_reach_the_child(ctx: Context) -> multiproc::Result<()> {
    let counter = Value::new(41i64)?;
    let lock = Lock::new()?;
    let queue = Queue::new()?;
    let shm = SharedMemory::create(None, 16)?;
    let p = ctx
        .process(task!(
            bump,
            counter.clone(),
            lock.clone(),
            queue.clone(),
            SharedMemory::attach(shm.name())?
        ))
        .start()?;
    p.join()?;
    assert_eq!(counter.get(), 42);
    assert_eq!(queue.get()?, "from the child");
    let mut read = [0u8; 7];
    shm.read_at(0, &mut read)?;
    assert_eq!(&read, b"started");
    shm.unlink()?;
    assert!(lock.try_acquire()?, "the child released the lock");
    Ok(())
}

#[process_task]
fn reply(mut end: Connection<String>) {
    let asked = end.recv().unwrap();
    end.send(&format!("{asked}!")).unwrap();
}

/// A pipe end reaches the child, and the parent may close its own copy of it at once.
pub fn a_pipe_end_reaches_the_child(ctx: Context) -> multiproc::Result<()> {
    let (mut here, there) = Pipe::<String>::duplex()?;
    let p = ctx.process(task!(reply, there)).start()?;
    here.send(&"hi".to_string())?;
    assert_eq!(here.recv()?, "hi!");
    p.join()?;
    Ok(())
}

#[process_task]
fn fail(message: String) -> u32 {
    panic!("{message}")
}

/// A panic, an exit code and a signal come back as under fork.
pub fn panics_exit_codes_and_signals_are_reported_as_under_fork(ctx: Context) {
    let err = ctx
        .process(task!(fail, "no".to_string()))
        .start()
        .unwrap()
        .join()
        .unwrap_err();
    assert!(
        matches!(&err, multiproc::Error::Panicked { message, .. } if message == "no"),
        "{err}"
    );
    assert!(
        err.to_string().contains("by_name.rs:"),
        "the location: {err}"
    );

    let p = ctx.process(task!(leave, 3)).start().unwrap();
    assert!(matches!(
        p.join(),
        Err(multiproc::Error::Exited { code: 3, .. })
    ));
    assert_eq!(p.exitcode(), Some(3));

    let p = ctx.process(task!(nap, 60_000)).start().unwrap();
    assert!(p.is_alive());
    p.terminate().unwrap();
    assert!(matches!(
        p.join(),
        Err(multiproc::Error::Signaled { signal: 15, .. })
    ));
    assert_eq!(p.exitcode(), Some(-15));

    let p = ctx.process(task!(nap, 60_000)).start().unwrap();
    p.kill().unwrap();
    let _ = p.join();
    assert_eq!(p.exitcode(), Some(-9));
}

#[process_task]
fn grandchild(method: String) -> i64 {
    let ctx = multiproc::get_context(method.parse().unwrap()).unwrap();
    ctx.process(task!(add, 20, 22))
        .start()
        .unwrap()
        .join()
        .unwrap()
}

/// A child starts a grandchild by the same method.
pub fn a_child_starts_a_grandchild(ctx: Context) {
    let method = ctx.start_method().to_string();
    let p = ctx.process(task!(grandchild, method)).start().unwrap();
    assert_eq!(p.join().unwrap(), 42);
}

static HELD_BY_ANOTHER_THREAD: Mutex<u32> = Mutex::new(7);

#[process_task]
fn touch_the_mutex() -> u32 {
    *HELD_BY_ANOTHER_THREAD.lock().unwrap()
}

/// A lock that another thread of the parent holds at the start does not hang the child, which
/// a forked child would wait for for ever.
pub fn a_lock_another_thread_holds_does_not_hang_the_child(ctx: Context) {
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (taken, wait_taken) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _guard = HELD_BY_ANOTHER_THREAD.lock().unwrap();
        taken.send(()).unwrap();
        let _ = held.recv();
    });
    wait_taken.recv().unwrap();
    let p = ctx.process(task!(touch_the_mutex)).start().unwrap();
    let value = p.join_timeout(Duration::from_secs(30));
    release.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(
        value.unwrap(),
        Some(7),
        "a forked child would wait for ever here"
    );
}

/// A closure is refused at `start`, with the method named and the way out.
pub fn a_closure_is_refused_at_start(ctx: Context) {
    let err = ctx.from_fn(|| 1).start().unwrap_err();
    let method: StartMethod = ctx.start_method();
    assert!(
        matches!(
            err,
            multiproc::Error::Start(multiproc::process::StartError::ClosureNeedsFork(m)) if m == method
        ),
        "{err}"
    );
    assert!(err.to_string().contains("#[process_task]"), "{err}");
}
