//! Queues across real processes: order, many producers, encode errors, large items with the
//! parent joining first, processes killed while putting and getting, bounds and timeouts,
//! close, task_done and join, and handles passed as task arguments.

mod common;

use multiproc::prelude::*;
use multiproc::queue::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, TaskDoneError, TryGetError, TryPutError,
};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use std::time::{Duration, Instant};

#[path = "support/unencodable.rs"]
mod unencodable;
use unencodable::Item;

fn about(elapsed: Duration, ms: u64) -> bool {
    elapsed >= Duration::from_millis(ms - 10) && elapsed < Duration::from_secs(2)
}

#[process_task]
fn produce(q: Queue<(u32, u32)>, producer: u32, n: u32) {
    for i in 0..n {
        q.put((producer, i)).expect("put");
    }
}

#[test]
fn items_from_each_producer_arrive_in_order() -> multiproc::Result<()> {
    let q = Queue::new()?;
    let n = 2000;
    let producers: Vec<_> = (0..3)
        .map(|p| Process::new(task!(produce, q.clone(), p, n)).start())
        .collect::<Result<_, _>>()?;
    let mut next = [0u32; 3];
    for _ in 0..3 * n {
        let (p, i) = q.get_timeout(Duration::from_secs(20))?;
        assert_eq!(i, next[p as usize], "producer {p} out of order");
        next[p as usize] += 1;
    }
    assert_eq!(next, [n; 3]);
    for p in producers {
        p.join()?;
    }
    assert!(q.is_empty());
    assert!(matches!(q.try_get(), Err(TryGetError::Empty)));
    Ok(())
}

#[process_task]
fn consume_sum(q: Queue<Option<u64>>) -> u64 {
    let mut sum = 0;
    while let Some(x) = q.get().expect("get") {
        sum += x;
    }
    sum
}

#[test]
fn several_consumers_share_the_items() -> multiproc::Result<()> {
    let q = Queue::bounded(16)?;
    let consumers: Vec<_> = (0..2)
        .map(|_| Process::new(task!(consume_sum, q.clone())).start())
        .collect::<Result<_, _>>()?;
    for x in 1..=1000u64 {
        q.put(Some(x))?;
    }
    for _ in &consumers {
        q.put(None)?;
    }
    let mut total = 0;
    for c in consumers {
        total += c.join()?;
    }
    assert_eq!(total, 1000 * 1001 / 2);
    Ok(())
}

#[test]
fn an_unencodable_item_fails_at_put_and_comes_back() -> multiproc::Result<()> {
    let q = Queue::new()?;
    let err = q.put(Item::Bad(7)).unwrap_err();
    let message = err.to_string();
    // The codec's message, introduced once.
    assert_eq!(message.matches("could not encode").count(), 1, "{message}");
    match err {
        PutError::Encode(item, _) => assert_eq!(item, Item::Bad(7)),
        other => panic!("expected an encode error, got {other:?}"),
    }
    assert!(q.is_empty());
    q.put(Item::Good(8))?;
    assert_eq!(q.get()?, Item::Good(8));
    Ok(())
}

const MB: usize = 1 << 20;

#[process_task]
fn put_megabytes(q: Queue<ByteBuf>, count: u32) {
    for i in 0..count {
        q.put(ByteBuf::from(vec![i as u8; MB])).expect("put");
    }
}

fn check_megabytes(q: &Queue<ByteBuf>, count: u32) -> multiproc::Result<()> {
    for i in 0..count {
        let item = q.get_timeout(Duration::from_secs(20))?;
        assert_eq!(item.len(), MB);
        assert!(item.iter().all(|&b| b == i as u8), "item {i} damaged");
    }
    assert!(q.is_empty());
    Ok(())
}

#[test]
fn a_child_that_put_large_items_exits_at_once_even_if_joined_first() -> multiproc::Result<()> {
    let q = Queue::new()?;
    let count = 40;
    let child = Process::new(task!(put_megabytes, q.clone(), count)).start()?;
    // CPython deadlocks here: its child waits for the parent to read before it can exit.
    let joined = child.join_timeout(Duration::from_secs(20))?;
    assert!(joined.is_some(), "the child did not exit");
    assert_eq!(q.qsize(), count as usize);
    check_megabytes(&q, count)
}

#[test]
fn a_child_that_put_large_items_loses_nothing_when_read_first() -> multiproc::Result<()> {
    let q = Queue::new()?;
    let count = 40;
    let child = Process::new(task!(put_megabytes, q.clone(), count)).start()?;
    check_megabytes(&q, count)?;
    child.join()?;
    Ok(())
}

/// Items whose every byte says which item it is, large enough that a kill often lands inside
/// the copy into or out of shared memory.
fn stamped(i: u32) -> Vec<u32> {
    vec![i; 1 << 18]
}

fn is_stamped(item: &[u32]) -> bool {
    item.len() == 1 << 18 && item.iter().all(|&x| x == item[0])
}

#[process_task]
fn put_forever(q: Queue<Vec<u32>>) {
    for i in 0.. {
        q.put(stamped(i)).expect("put");
        // Keep the queue from filling its shared memory: wait while it is long.
        while q.qsize() > 16 {
            std::thread::yield_now();
        }
    }
}

#[process_task]
fn get_forever(q: Queue<Vec<u32>>) {
    loop {
        let item = q.get().expect("get");
        assert!(is_stamped(&item));
    }
}

#[test]
fn processes_killed_while_putting_and_getting_leave_the_queue_working() -> multiproc::Result<()> {
    let q = Queue::new()?;
    for round in 0..4u64 {
        let putters: Vec<_> = (0..2)
            .map(|_| Process::new(task!(put_forever, q.clone())).start())
            .collect::<Result<_, _>>()?;
        let getter = Process::new(task!(get_forever, q.clone())).start()?;
        std::thread::sleep(Duration::from_millis(60 + 37 * round));
        for p in putters.iter().chain([&getter]) {
            p.kill()?;
        }
        for p in putters.iter().chain([&getter]) {
            assert!(matches!(
                p.join(),
                Err(multiproc::Error::Signaled { signal: 9, .. })
            ));
        }
        // Whatever the kills interrupted, every item left is whole and the queue goes on.
        while let Ok(item) = q.try_get() {
            assert!(is_stamped(&item), "a damaged item after round {round}");
        }
        let start = Instant::now();
        q.put_timeout(stamped(7), Duration::from_secs(5))
            .map_err(multiproc::Error::from)?;
        assert_eq!(q.get_timeout(Duration::from_secs(5))?, stamped(7));
        assert!(start.elapsed() < Duration::from_secs(3));
    }
    Ok(())
}

#[test]
fn bounded_queues_are_full_and_timeouts_take_about_their_time() -> multiproc::Result<()> {
    let q = Queue::bounded(2)?;
    assert_eq!(q.maxsize(), 2);
    q.try_put(1u8)?;
    q.put(2)?;
    assert!(q.is_full());
    assert!(matches!(q.try_put(3), Err(TryPutError::Full(3))));
    let start = Instant::now();
    assert!(matches!(
        q.put_timeout(4, Duration::from_millis(200)),
        Err(PutTimeoutError::Timeout(4))
    ));
    assert!(about(start.elapsed(), 200), "{:?}", start.elapsed());
    assert_eq!(q.get()?, 1);
    assert_eq!(q.try_get()?, 2);
    let start = Instant::now();
    assert_eq!(
        q.get_timeout(Duration::from_millis(200)),
        Err(GetTimeoutError::Timeout)
    );
    assert!(about(start.elapsed(), 200), "{:?}", start.elapsed());
    Ok(())
}

#[process_task]
fn put_later(q: Queue<u8>, delay_ms: u64) {
    std::thread::sleep(Duration::from_millis(delay_ms));
    q.put(42).expect("put");
}

#[test]
fn a_blocked_get_wakes_when_another_process_puts() -> multiproc::Result<()> {
    let q = Queue::new()?;
    let child = Process::new(task!(put_later, q.clone(), 150)).start()?;
    let start = Instant::now();
    assert_eq!(q.get()?, 42);
    assert!(about(start.elapsed(), 150), "{:?}", start.elapsed());
    child.join()?;
    Ok(())
}

#[test]
fn close_makes_put_and_get_errors_for_this_process() -> multiproc::Result<()> {
    let q = Queue::new()?;
    q.put(1u8)?;
    let clone = q.clone();
    q.close();
    assert!(matches!(clone.put(2), Err(PutError::Closed(2))));
    assert_eq!(q.get(), Err(GetError::Closed));
    // A handle that travelled to another process starts open; the item is still there.
    let bytes = common::encode(&q);
    let child = Process::fork(move || -> Result<u8, String> {
        let q: Queue<u8> = common::decode(&bytes)?;
        q.get().map_err(|e| e.to_string())
    })?;
    assert_eq!(child.join()?, Ok(1));
    Ok(())
}

#[process_task]
fn worker(q: JoinableQueue<u32>, results: Queue<u32>) {
    while let Ok(x) = q.get() {
        results.put(x * x).expect("put");
        q.task_done().expect("task_done");
    }
}

#[test]
fn joinable_queue_join_waits_for_every_task_done() -> multiproc::Result<()> {
    let q = JoinableQueue::new()?;
    let results = Queue::new()?;
    let workers: Vec<_> = (0..2)
        .map(|_| {
            Process::new(task!(worker, q.clone(), results.clone()))
                .daemon(true)
                .start()
        })
        .collect::<Result<_, _>>()?;
    for x in 0..100 {
        q.put(x)?;
    }
    q.join();
    assert_eq!(results.qsize(), 100);
    let mut squares: Vec<u32> = (0..100).map(|_| results.get()).collect::<Result<_, _>>()?;
    squares.sort_unstable();
    assert_eq!(squares, (0..100).map(|x| x * x).collect::<Vec<_>>());
    for w in &workers {
        w.kill()?;
    }
    Ok(())
}

#[test]
fn task_done_more_times_than_items_is_an_error() -> multiproc::Result<()> {
    let q = JoinableQueue::new()?;
    q.put("a".to_string())?;
    assert!(!q.join_timeout(Duration::from_millis(50)));
    assert_eq!(q.get()?, "a");
    q.task_done()?;
    assert_eq!(q.task_done(), Err(TaskDoneError));
    assert!(q.join_timeout(Duration::ZERO));
    Ok(())
}

#[test]
fn simple_queue_puts_and_gets_across_processes() -> multiproc::Result<()> {
    let q = SimpleQueue::new()?;
    assert!(q.is_empty());
    let child = {
        let q = q.clone();
        Process::fork(move || {
            for word in ["red", "green", "blue"] {
                q.put(word.to_string()).expect("put");
            }
        })?
    };
    let got: Vec<String> = (0..3).map(|_| q.get()).collect::<Result<_, _>>()?;
    assert_eq!(got, ["red", "green", "blue"]);
    child.join()?;
    q.close();
    assert!(matches!(q.put("x".into()), Err(PutError::Closed(_))));
    Ok(())
}

#[test]
fn handles_are_clone_send_sync_and_serde() {
    fn check<H: Clone + Send + Sync + Serialize + for<'de> Deserialize<'de>>() {}
    check::<Queue<String>>();
    check::<JoinableQueue<String>>();
    check::<SimpleQueue<String>>();
}

#[test]
fn errors_say_what_happened_through_predicates() -> multiproc::Result<()> {
    let q = Queue::bounded(1)?;
    q.put(1u8)?;
    let full = q.try_put(2).unwrap_err();
    assert!(full.is_full() && !full.is_closed() && !full.is_timeout());
    assert_eq!(full.clone().into_inner(), 2);
    let timed_out = q.put_timeout(3, Duration::from_millis(10)).unwrap_err();
    assert!(timed_out.is_timeout() && !timed_out.is_full());
    assert_eq!(q.get()?, 1);
    assert!(q.try_get().unwrap_err().is_empty());
    assert!(q
        .get_timeout(Duration::from_millis(10))
        .unwrap_err()
        .is_timeout());
    q.close();
    assert!(q.put(4).unwrap_err().is_closed());
    assert!(q.try_get().unwrap_err().is_closed());
    let as_crate_error: multiproc::Error = q.get().unwrap_err().into();
    assert!(matches!(as_crate_error, multiproc::Error::Queue(ref e) if e.is_closed()));
    Ok(())
}

#[process_task]
fn put_blocking(q: Queue<u8>, item: u8) {
    q.put(item).expect("put");
}

#[process_task]
fn get_blocking(q: Queue<u8>, out: Queue<u8>) {
    out.put(q.get().expect("get")).expect("put");
}

/// Waits until `child` has had time to block in its call (it cannot say so itself).
fn let_it_block() {
    std::thread::sleep(Duration::from_millis(200));
}

#[test]
fn try_put_and_put_timeout_keep_their_time_while_another_process_waits_in_put(
) -> multiproc::Result<()> {
    let q = Queue::bounded(1)?;
    q.put(1u8)?;
    let child = Process::new(task!(put_blocking, q.clone(), 2)).start()?;
    let_it_block();
    let start = Instant::now();
    assert!(matches!(q.try_put(3), Err(TryPutError::Full(3))));
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    let start = Instant::now();
    assert!(q
        .put_timeout(4, Duration::from_millis(100))
        .unwrap_err()
        .is_timeout());
    assert!(about(start.elapsed(), 100), "{:?}", start.elapsed());
    assert_eq!(q.get()?, 1);
    child.join()?;
    assert_eq!(q.get()?, 2, "the blocked put went in once there was room");
    Ok(())
}

#[test]
fn try_get_and_get_timeout_keep_their_time_while_another_process_waits_in_get(
) -> multiproc::Result<()> {
    let (q, out) = (Queue::new()?, Queue::new()?);
    let child = Process::new(task!(get_blocking, q.clone(), out.clone())).start()?;
    let_it_block();
    let start = Instant::now();
    assert!(q.try_get().unwrap_err().is_empty());
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    let start = Instant::now();
    assert!(q
        .get_timeout(Duration::from_millis(100))
        .unwrap_err()
        .is_timeout());
    assert!(about(start.elapsed(), 100), "{:?}", start.elapsed());
    q.put(7)?;
    assert_eq!(out.get()?, 7, "the blocked get took the item");
    child.join()?;
    Ok(())
}

#[process_task]
fn get_until_shutdown(q: Queue<u8>) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    loop {
        match q.get() {
            Ok(item) => got.push(item),
            Err(e) => return (got, e.is_shutdown()),
        }
    }
}

#[process_task]
fn put_until_shutdown(q: Queue<u8>) -> bool {
    loop {
        if let Err(e) = q.put(0) {
            return e.is_shutdown();
        }
    }
}

#[test]
fn a_shutdown_refuses_puts_and_lets_gets_drain_then_fail_in_every_process() -> multiproc::Result<()>
{
    let q = Queue::new()?;
    q.put(1u8)?;
    q.put(2)?;
    q.shutdown(false);
    let refused = q.put(3).unwrap_err();
    assert!(refused.is_shutdown(), "{refused}");
    assert_eq!(refused.to_string(), "the queue is shut down");
    assert_eq!(refused.into_inner(), 3);
    let child = Process::new(task!(get_until_shutdown, q.clone())).start()?;
    assert_eq!(child.join()?, (vec![1, 2], true));
    Ok(())
}

#[test]
fn a_shutdown_wakes_a_get_blocked_in_another_process() -> multiproc::Result<()> {
    let q = Queue::new()?;
    let child = Process::new(task!(get_until_shutdown, q.clone())).start()?;
    let_it_block();
    q.put(7)?;
    let start = Instant::now();
    q.shutdown(false);
    assert_eq!(child.join()?, (vec![7], true));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    Ok(())
}

#[test]
fn a_shutdown_fails_a_put_blocked_on_a_full_queue_in_another_process() -> multiproc::Result<()> {
    let q = Queue::bounded(2)?;
    let child = Process::new(task!(put_until_shutdown, q.clone())).start()?;
    let_it_block();
    assert_eq!(q.qsize(), 2, "the child fills the queue, then blocks");
    let start = Instant::now();
    q.shutdown(false);
    assert!(
        child.join()?,
        "the blocked put failed with a shutdown error"
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    Ok(())
}

#[test]
fn an_immediate_shutdown_drops_what_is_left_and_releases_join() -> multiproc::Result<()> {
    let q = JoinableQueue::new()?;
    q.put(1u8)?;
    q.put(2)?;
    assert!(!q.join_timeout(Duration::from_millis(10)));
    q.shutdown(true);
    assert!(q.get().unwrap_err().is_shutdown());
    assert_eq!(q.qsize(), 0, "what was left is dropped");
    assert!(q.join_timeout(Duration::ZERO), "join returns");
    assert!(q.put(3).unwrap_err().is_shutdown());
    Ok(())
}
