//! The spawn start method: a task runs in a new execution of this test binary, before `main`,
//! with the handles among its arguments passed as inherited descriptors.

use multiproc::prelude::*;
use multiproc::{get_context, Context, SharedMemory, StartMethod};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn spawn() -> Context {
    get_context(StartMethod::Spawn).unwrap()
}

#[process_task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[process_task]
fn whoami() -> (String, i32, bool, String) {
    let parent = parent_process().map_or(0, |p| p.pid());
    let marker = std::env::var_os("MULTIPROC_BOOT").is_some();
    let method = multiproc::get_start_method().to_string();
    (current_process().name().to_string(), parent, marker, method)
}

#[test]
fn a_task_runs_in_a_spawned_child() {
    let p = spawn().process(task!(add, 2, 3)).start().unwrap();
    assert_eq!(p.join().unwrap(), 5);
    assert_eq!(p.exitcode(), Some(0));
}

#[test]
fn a_spawned_child_knows_its_name_and_parent() {
    let p = spawn().process(task!(whoami)).name("sp").start().unwrap();
    let (name, parent, marker, _) = p.join().unwrap();
    assert_eq!(name, "sp");
    assert_eq!(parent, std::process::id() as i32);
    assert!(!marker, "the marker is removed before the task runs");
}

#[process_task]
fn bump(counter: Value<i64>, lock: Lock, queue: Queue<String>, shm: SharedMemory) {
    let _held = lock.lock().unwrap();
    counter.fetch_add(1);
    shm.write_at(0, b"spawned").unwrap();
    queue.put("from the child".to_string()).unwrap();
}

#[test]
fn handles_reach_a_spawned_child() -> multiproc::Result<()> {
    let counter = Value::new(41i64)?;
    let lock = Lock::new()?;
    let queue = Queue::new()?;
    let shm = SharedMemory::create(None, 16)?;
    let p = spawn()
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
    assert_eq!(&read, b"spawned");
    shm.unlink()?;
    assert!(lock.try_acquire()?, "the child released the lock");
    Ok(())
}

#[process_task]
fn reply(mut end: Connection<String>) {
    let asked = end.recv().unwrap();
    end.send(&format!("{asked}!")).unwrap();
}

#[test]
fn a_pipe_end_reaches_a_spawned_child_and_the_parent_may_close_its_copy() -> multiproc::Result<()> {
    let (mut here, there) = Pipe::<String>::duplex()?;
    let p = spawn().process(task!(reply, there)).start()?;
    here.send(&"hi".to_string())?;
    assert_eq!(here.recv()?, "hi!");
    p.join()?;
    Ok(())
}

#[process_task]
fn fail(message: String) -> u32 {
    panic!("{message}")
}

#[process_task]
fn leave(code: i32) {
    multiproc::exit(code)
}

#[process_task]
fn nap(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms))
}

#[test]
fn panics_exit_codes_and_signals_are_reported_as_under_fork() {
    let err = spawn()
        .process(task!(fail, "no".to_string()))
        .start()
        .unwrap()
        .join()
        .unwrap_err();
    assert!(
        matches!(&err, multiproc::Error::Panicked { message, .. } if message == "no"),
        "{err}"
    );
    assert!(err.to_string().contains("spawn.rs:"), "the location: {err}");

    let p = spawn().process(task!(leave, 3)).start().unwrap();
    assert!(matches!(
        p.join(),
        Err(multiproc::Error::Exited { code: 3, .. })
    ));

    let p = spawn().process(task!(nap, 60_000)).start().unwrap();
    p.terminate().unwrap();
    let _ = p.join();
    assert_eq!(p.exitcode(), Some(-15));
}

#[test]
fn a_spawned_child_starts_its_own_children_by_its_parents_method() {
    // The child's default is the parent's, unless the environment says otherwise.
    let p = spawn().process(task!(whoami)).start().unwrap();
    let (.., method) = p.join().unwrap();
    let expected = multiproc::get_start_method().to_string();
    assert_eq!(method, expected);
}

#[process_task]
fn grandchild() -> i64 {
    let ctx = get_context(StartMethod::Spawn).unwrap();
    ctx.process(task!(add, 20, 22))
        .start()
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn a_spawned_child_spawns_a_grandchild() {
    let p = spawn().process(task!(grandchild)).start().unwrap();
    assert_eq!(p.join().unwrap(), 42);
}

static HELD_BY_ANOTHER_THREAD: Mutex<u32> = Mutex::new(7);

#[process_task]
fn touch_the_mutex() -> u32 {
    *HELD_BY_ANOTHER_THREAD.lock().unwrap()
}

#[test]
fn a_lock_another_thread_holds_does_not_hang_a_spawned_child() {
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (taken, wait_taken) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _guard = HELD_BY_ANOTHER_THREAD.lock().unwrap();
        taken.send(()).unwrap();
        let _ = held.recv();
    });
    wait_taken.recv().unwrap();
    let p = spawn().process(task!(touch_the_mutex)).start().unwrap();
    let value = p.join_timeout(Duration::from_secs(30));
    release.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(
        value.unwrap(),
        Some(7),
        "a forked child would wait for ever here"
    );
}

#[test]
fn a_closure_in_a_spawn_context_is_refused_at_start() {
    let err = spawn().from_fn(|| 1).start().unwrap_err();
    assert!(
        matches!(
            err,
            multiproc::Error::Start(multiproc::process::StartError::ClosureNeedsFork(
                StartMethod::Spawn
            ))
        ),
        "{err}"
    );
    assert!(err.to_string().contains("#[process_task]"), "{err}");
}

#[test]
fn a_garbage_marker_exits_70_without_running_main() {
    let started = Instant::now();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--list"])
        .env("MULTIPROC_BOOT", "garbage")
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(70));
    assert!(
        out.stdout.is_empty(),
        "main ran: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("MULTIPROC_BOOT") && stderr.contains("cannot boot"),
        "{stderr}"
    );
}

#[test]
fn a_marker_naming_a_closed_descriptor_exits_70() {
    let out = Command::new(std::env::current_exe().unwrap())
        .env("MULTIPROC_BOOT", "1:987:5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(70));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("descriptor 987"));
}

#[test]
fn spawn_is_among_the_start_methods_of_an_executable() {
    let methods = multiproc::get_all_start_methods();
    assert!(methods.contains(&StartMethod::Spawn), "{methods:?}");
    assert!(methods.contains(&StartMethod::Fork));
    assert_eq!(spawn().start_method(), StartMethod::Spawn);
}
