//! A manager's locks, events and queues: waits parked on the server, its timeouts, a dead lock
//! holder reported, and parked waits ended by the manager's death or shutdown.

use multiproc::managers::{
    DictProxy, EventProxy, LockProxy, Manager, ManagerError, QueueProxy, ServerError,
};
use multiproc::prelude::*;
use std::time::{Duration, Instant};

mod common;

fn about(elapsed: Duration, expected: Duration) -> bool {
    elapsed >= expected && elapsed < expected + Duration::from_secs(2)
}

#[process_task]
fn hold_lock(lock: LockProxy, held: EventProxy, for_ms: u64) -> multiproc::Result<()> {
    lock.acquire()?;
    held.set()?;
    std::thread::sleep(Duration::from_millis(for_ms));
    lock.release()?;
    Ok(())
}

#[test]
fn a_lock_held_by_a_child_makes_the_parent_wait() {
    let manager = Manager::start().unwrap();
    let (lock, held) = (manager.lock().unwrap(), manager.event().unwrap());
    let child = Process::new(task!(hold_lock, lock.clone(), held.clone(), 300))
        .start()
        .unwrap();
    assert!(held.wait_timeout(Duration::from_secs(20)).unwrap());
    assert!(lock.is_locked().unwrap());
    assert!(!lock.try_acquire().unwrap());
    let start = Instant::now();
    assert!(!lock.acquire_timeout(Duration::from_millis(50)).unwrap());
    assert!(about(start.elapsed(), Duration::from_millis(50)));
    lock.acquire().unwrap();
    child.join().unwrap().unwrap();
    lock.release().unwrap();
    assert!(matches!(
        lock.release(),
        Err(ManagerError::Server(ServerError::NotLocked))
    ));
}

#[process_task]
fn die_holding(lock: LockProxy) -> u32 {
    lock.acquire().expect("acquire");
    multiproc::exit(3)
}

#[test]
fn a_lock_whose_holder_died_passes_on_with_the_report() {
    let manager = Manager::start().unwrap();
    let lock = manager.lock().unwrap();
    let child = Process::new(task!(die_holding, lock.clone()))
        .start()
        .unwrap();
    let pid = child.pid();
    assert!(child.join().is_err());
    match lock.acquire() {
        Err(ManagerError::OwnerDied { pid: dead }) => assert_eq!(dead, pid),
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert!(lock.is_locked().unwrap(), "the lock is now this process's");
    lock.release().unwrap();
    assert!(lock.try_acquire().unwrap(), "reported once only");
}

#[test]
fn a_waiter_gets_the_lock_of_a_holder_that_dies_while_it_waits() {
    let manager = Manager::start().unwrap();
    let (lock, held) = (manager.lock().unwrap(), manager.event().unwrap());
    let holder = {
        let (lock, held) = (lock.clone(), held.clone());
        Process::fork(move || {
            lock.acquire().expect("acquire");
            held.set().expect("set");
            std::thread::sleep(Duration::from_secs(60));
        })
        .unwrap()
    };
    assert!(held.wait_timeout(Duration::from_secs(20)).unwrap());
    let killer = {
        let pid = holder.pid();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            // SAFETY: kill has no memory preconditions; the pid is our child's, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        })
    };
    let start = Instant::now();
    let got = lock.acquire_timeout(Duration::from_secs(20));
    assert!(matches!(got, Err(ManagerError::OwnerDied { pid }) if pid == holder.pid()));
    assert!(start.elapsed() < Duration::from_secs(5));
    killer.join().unwrap();
    let _ = holder.join();
}

#[process_task]
fn set_later(event: EventProxy, after_ms: u64) -> multiproc::Result<()> {
    std::thread::sleep(Duration::from_millis(after_ms));
    Ok(event.set()?)
}

#[test]
fn an_event_wakes_a_waiter_in_another_process_and_times_out_on_the_server() {
    let manager = Manager::start().unwrap();
    let event = manager.event().unwrap();
    let start = Instant::now();
    assert!(!event.wait_timeout(Duration::from_millis(200)).unwrap());
    assert!(about(start.elapsed(), Duration::from_millis(200)));
    let child = Process::new(task!(set_later, event.clone(), 100))
        .start()
        .unwrap();
    assert!(event.wait().unwrap());
    assert!(event.is_set().unwrap());
    child.join().unwrap().unwrap();
    event.clear().unwrap();
    assert!(!event.is_set().unwrap());
    assert!(!event.wait_timeout(Duration::ZERO).unwrap());
}

#[process_task]
fn post(inboxes: DictProxy<String, QueueProxy<String>>, to: String) -> multiproc::Result<()> {
    let inbox = inboxes.get(&to)?.expect("an inbox");
    inbox.put(format!("hello {to}"))?;
    Ok(())
}

#[test]
fn a_queue_kept_in_a_dict_carries_items_between_processes() {
    let manager = Manager::start().unwrap();
    let inboxes: DictProxy<String, QueueProxy<String>> = manager.dict().unwrap();
    inboxes
        .insert("bob".to_string(), manager.queue().unwrap())
        .unwrap();
    let inbox = inboxes.get(&"bob".to_string()).unwrap().unwrap();
    assert_eq!(inbox.try_get().unwrap(), None);
    let child = Process::new(task!(post, inboxes.clone(), "bob".to_string()))
        .start()
        .unwrap();
    assert_eq!(inbox.get().unwrap(), "hello bob");
    child.join().unwrap().unwrap();
    inbox.put("again".to_string()).unwrap();
    assert_eq!(inbox.qsize().unwrap(), 1);
    assert_eq!(
        inbox
            .get_timeout(Duration::from_secs(1))
            .unwrap()
            .as_deref(),
        Some("again")
    );
    let start = Instant::now();
    assert_eq!(inbox.get_timeout(Duration::from_millis(100)).unwrap(), None);
    assert!(about(start.elapsed(), Duration::from_millis(100)));
    assert!(inbox.is_empty().unwrap());
}

#[process_task]
fn wait_for_an_item(q: QueueProxy<u32>, waiting: Event) -> String {
    waiting.set();
    match q.get() {
        Ok(item) => format!("item {item}"),
        Err(ManagerError::Gone { .. }) => "gone".to_string(),
        Err(ManagerError::ShutDown) => "shut down".to_string(),
        Err(other) => format!("{other}"),
    }
}

/// Starts a child blocked in `q.get()` on a new manager's queue, and waits until it is parked.
fn parked_getter(manager: &Manager) -> ProcessHandle<String> {
    let q = manager.queue::<u32>().unwrap();
    let waiting = Event::new().unwrap();
    let child = Process::new(task!(wait_for_an_item, q.clone(), waiting.clone()))
        .start()
        .unwrap();
    assert!(waiting.wait_timeout(Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(100));
    child
}

#[test]
fn a_get_parked_when_the_manager_is_killed_fails_gone_within_a_second() {
    let manager = Manager::start().unwrap();
    let child = parked_getter(&manager);
    // SAFETY: kill has no memory preconditions; the pid is the manager's server.
    assert_eq!(unsafe { libc::kill(manager.pid(), libc::SIGKILL) }, 0);
    let outcome = child.join_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!(outcome.as_deref(), Some("gone"));
}

#[test]
fn shutdown_answers_a_parked_get_and_returns_in_its_bound() {
    let manager = Manager::start().unwrap();
    let child = parked_getter(&manager);
    let start = Instant::now();
    manager.shutdown().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "no escalation needed"
    );
    let outcome = child.join_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(outcome.as_deref(), Some("shut down"));
}

#[process_task]
fn take_a_slot(slots: multiproc::managers::SemaphoreProxy, took: Event) -> multiproc::Result<()> {
    slots.acquire()?;
    took.set();
    Ok(())
}

#[test]
fn a_semaphore_makes_a_child_wait_for_a_unit_the_parent_gives_back() {
    let manager = Manager::start().unwrap();
    let slots = manager.semaphore(1).unwrap();
    slots.acquire().unwrap();
    let took = Event::new().unwrap();
    let child = Process::new(task!(take_a_slot, slots.clone(), took.clone()))
        .start()
        .unwrap();
    assert!(
        !took.wait_timeout(Duration::from_millis(200)),
        "no unit free"
    );
    slots.release().unwrap();
    assert!(took.wait_timeout(Duration::from_secs(20)));
    child.join().unwrap().unwrap();
    assert_eq!(slots.get_value().unwrap(), 0, "the child kept its unit");
    slots.release().unwrap();
    slots.release().unwrap();
    assert_eq!(
        slots.get_value().unwrap(),
        2,
        "an unbounded semaphore may grow"
    );
}

#[test]
fn a_managed_value_is_read_written_and_changed_atomically() {
    let manager = Manager::start().unwrap();
    let v = manager.value(1.5f64).unwrap();
    v.set(&2.5).unwrap();
    assert_eq!(v.update_with(|x| *x *= 2.0).unwrap(), 5.0);
    assert_eq!(v.get().unwrap(), 5.0);
}

#[process_task]
fn release_someone_elses(lock: LockProxy) -> String {
    match lock.release() {
        Err(e) => e.to_string(),
        Ok(()) => "released".to_string(),
    }
}

#[test]
fn a_reentrant_lock_is_released_only_by_its_holder() {
    let manager = Manager::start().unwrap();
    let rlock = manager.rlock().unwrap();
    rlock.acquire().unwrap();
    rlock.acquire().unwrap();
    let child = Process::new(task!(release_someone_elses, rlock.clone()))
        .start()
        .unwrap();
    let said = child.join().unwrap();
    assert!(said.contains("does not hold"), "{said}");
    rlock.release().unwrap();
    rlock.release().unwrap();
    assert!(!rlock.is_locked().unwrap());
    // A plain lock is released by anyone, as in Python.
    let lock = manager.lock().unwrap();
    lock.acquire().unwrap();
    let child = Process::new(task!(release_someone_elses, lock.clone()))
        .start()
        .unwrap();
    assert_eq!(child.join().unwrap(), "released");
    assert!(!lock.is_locked().unwrap());
}

#[process_task]
fn meet(barrier: multiproc::managers::BarrierProxy) -> multiproc::Result<usize> {
    Ok(barrier.wait()?)
}

#[test]
fn a_barrier_releases_its_parties_together_and_breaks_on_a_timeout() {
    let manager = Manager::start().unwrap();
    let barrier = manager.barrier(3).unwrap();
    assert_eq!(barrier.parties().unwrap(), 3);
    let children: Vec<_> = (0..2)
        .map(|_| Process::new(task!(meet, barrier.clone())).start().unwrap())
        .collect();
    let mut indexes = vec![barrier.wait().unwrap()];
    for child in children {
        indexes.push(child.join().unwrap().unwrap());
    }
    indexes.sort();
    assert_eq!(indexes, [0, 1, 2]);

    // One party waits, another times out: both are told the barrier broke.
    let waiter = Process::new(task!(meet, barrier.clone())).start().unwrap();
    assert!(common::eventually(Duration::from_secs(20), || {
        barrier.n_waiting().unwrap() == 1
    }));
    let start = Instant::now();
    let timed_out = barrier.wait_timeout(Duration::from_millis(100));
    assert!(matches!(
        timed_out,
        Err(ManagerError::Server(ServerError::BrokenBarrier))
    ));
    assert!(about(start.elapsed(), Duration::from_millis(100)));
    let err = waiter.join().unwrap().unwrap_err();
    assert!(err.to_string().contains("broken"), "{err}");
    assert!(barrier.broken().unwrap());
    barrier.reset().unwrap();
    assert!(!barrier.broken().unwrap());
}

#[process_task]
fn work_through(q: QueueProxy<u32>, done: DictProxy<u32, u32>) -> multiproc::Result<()> {
    while let Some(item) = q.get_timeout(Duration::from_millis(200))? {
        done.insert(item, item * 2)?;
        q.task_done()?;
    }
    Ok(())
}

#[test]
fn join_returns_once_workers_marked_every_item_done() {
    let manager = Manager::start().unwrap();
    let q = manager.queue::<u32>().unwrap();
    let done = manager.dict::<u32, u32>().unwrap();
    for item in 0..20 {
        q.put(item).unwrap();
    }
    let workers: Vec<_> = (0..2)
        .map(|_| {
            Process::new(task!(work_through, q.clone(), done.clone()))
                .start()
                .unwrap()
        })
        .collect();
    q.join().unwrap();
    assert_eq!(
        done.len().unwrap(),
        20,
        "every item done before join returned"
    );
    for worker in workers {
        worker.join().unwrap().unwrap();
    }
    assert!(matches!(
        q.task_done(),
        Err(ManagerError::Server(ServerError::TaskDoneTooManyTimes))
    ));
}

#[process_task]
fn consume_when_ready(
    cond: multiproc::managers::ConditionProxy,
    items: DictProxy<String, u32>,
    holding: Event,
) -> multiproc::Result<u32> {
    cond.acquire()?;
    holding.set();
    while items.get(&"ready".to_string())?.is_none() {
        cond.wait_timeout(Duration::from_secs(20))?;
    }
    let item = items.get(&"ready".to_string())?.unwrap_or_default();
    cond.release()?;
    Ok(item)
}

#[test]
fn a_condition_wakes_a_waiter_in_another_process_which_holds_the_lock_again() {
    let manager = Manager::start().unwrap();
    let cond = manager.condition().unwrap();
    let items = manager.dict::<String, u32>().unwrap();
    let holding = Event::new().unwrap();
    let child = Process::new(task!(
        consume_when_ready,
        cond.clone(),
        items.clone(),
        holding.clone()
    ))
    .start()
    .unwrap();
    // The child holds the lock, then waits: the lock is free only while it sleeps.
    assert!(holding.wait_timeout(Duration::from_secs(20)));
    assert!(common::eventually(Duration::from_secs(20), || {
        cond.acquire_timeout(Duration::from_millis(10)).unwrap()
    }));
    items.insert("ready".to_string(), 42).unwrap();
    cond.notify_all().unwrap();
    cond.release().unwrap();
    assert_eq!(child.join().unwrap().unwrap(), 42);
    assert!(matches!(
        cond.notify(1),
        Err(ManagerError::Server(ServerError::NotHeld))
    ));
    assert!(matches!(
        cond.wait(),
        Err(ManagerError::Server(ServerError::NotHeld))
    ));
}
