//! The cluster pool against a real `redis-server` on loopback, with worker nodes that are this
//! binary in worker mode: results, refusals and security. Its own small harness (`harness =
//! false`): a node must become a worker before any test runs, in `main`. The failures of nodes,
//! Redis and callers are in `cluster_faults.rs`.

// Each test binary uses part of the harness.
#[allow(dead_code)]
#[path = "support/redis.rs"]
mod redis;

use multiproc::cluster::{self, ClusterError};
use multiproc::prelude::*;
use multiproc::Error;
use redis::{keyed_pool as pool, run_tests, wait_for_nodes, Node, Redis, Test, KEY};
use std::time::{Duration, Instant};

/// `examples/cluster.rs` (a crate also named `cluster`) registers `cluster::square` taking and
/// returning `u64`: this one takes `u32`, so the example's build has another fingerprint for it.
#[process_task]
fn square(x: u32) -> u64 {
    u64::from(x) * u64::from(x)
}

#[process_task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[process_task]
fn fail_on(x: u64, bad: u64) -> u64 {
    if x == bad {
        panic!("bad item {x}");
    }
    x
}

/// Sleeps `ms` then returns `x`.
#[process_task]
fn slow(x: u64, ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    x
}

/// Creates the file `path`: a side effect that shows whether a call ran.
#[process_task]
fn touch(path: String) {
    std::fs::write(path, b"ran").expect("write");
}

#[process_task]
fn queue_len(q: Queue<u32>) -> bool {
    q.is_empty()
}

fn map_equals_local_map() {
    let redis = Redis::start(&[]);
    let _nodes = [
        Node::start(&redis.url(), "eq", 1, Some(KEY)),
        Node::start(&redis.url(), "eq", 1, Some(KEY)),
    ];
    wait_for_nodes(&redis, "eq", 2);
    let pool = pool(&redis, "eq");
    assert_eq!(pool.processes(), 2);
    let local = Pool::new(2).unwrap();
    let items: Vec<u32> = (0..20_000).collect();
    assert_eq!(
        pool.map(task!(square), items.clone()).unwrap(),
        local.map(task!(square), items.clone()).unwrap()
    );
    assert_eq!(
        pool.map_chunked(task!(square), 0..7u32, 3).unwrap(),
        [0, 1, 4, 9, 16, 25, 36]
    );
    assert_eq!(pool.starmap(task!(add), [(1, 2), (3, 4)]).unwrap(), [3, 7]);
    // Generic code takes either pool.
    fn sum_of_squares(pool: &impl cluster::Map) -> u64 {
        pool.map(task!(square), 0..1000u32).unwrap().iter().sum()
    }
    assert_eq!(sum_of_squares(&pool), sum_of_squares(&local));
    assert_eq!(pool.apply(task!(add, 20, 22)).unwrap(), 42);
    let mut unordered: Vec<u64> = pool
        .imap_unordered(task!(square), 0..100u32)
        .map(Result::unwrap)
        .collect();
    unordered.sort();
    assert_eq!(unordered, (0..100u64).map(|x| x * x).collect::<Vec<_>>());
    let (tx, rx) = std::sync::mpsc::channel();
    let callbacks =
        multiproc::pool::Callbacks::new().on_success(move |v: &Vec<u64>| tx.send(v.len()).unwrap());
    let pending = pool.map_async_with(task!(square), 0..10u32, None, callbacks);
    assert_eq!(pending.get().unwrap().len(), 10);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        10,
        "the callback ran once"
    );
    assert_eq!(
        pool.map(task!(square), Vec::<u32>::new()).unwrap(),
        Vec::<u64>::new()
    );
    pool.close();
    pool.join().unwrap();
    assert!(matches!(
        pool.apply(task!(square, 1)),
        Err(Error::Pool(multiproc::pool::PoolError::NotRunning))
    ));
}

fn imap_window_holds_over_an_endless_input() {
    let redis = Redis::start(&[]);
    let _node = Node::start(&redis.url(), "win", 1, Some(KEY));
    wait_for_nodes(&redis, "win", 1);
    let pool = pool(&redis, "win");
    let mut imap = pool.imap(task!(slow, ms = 2), 0u64..);
    let mut most = 0;
    for expected in 0..200u64 {
        assert_eq!(imap.next().unwrap().unwrap(), expected);
        most = most.max(imap.in_flight());
        let queued: usize = redis.cli(&["XLEN", "mp:{win}:tasks"]).parse().unwrap();
        assert!(
            queued <= 8,
            "{queued} entries queued, beyond the window of 8"
        );
    }
    assert!(most <= 8, "{most} chunks in flight, beyond the window of 8");
}

fn a_panic_in_call_500_of_1000_fails_only_that_call() {
    let redis = Redis::start(&[]);
    let _node = Node::start(&redis.url(), "panic", 2, Some(KEY));
    wait_for_nodes(&redis, "panic", 1);
    let pool = pool(&redis, "panic");
    let err = pool.map(task!(fail_on, bad = 500), 0..1000u64).unwrap_err();
    assert!(
        matches!(&err, Error::Panicked { message, item: Some(500), .. } if message == "bad item 500"),
        "{err:?}"
    );
    let outcomes: Vec<_> = pool
        .imap_chunked(task!(fail_on, bad = 500), 0..1000u64, 1000)
        .collect();
    assert_eq!(outcomes.len(), 1000);
    for (i, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Ok(v) => assert_eq!(*v, i as u64),
            Err(e) => assert_eq!(i, 500, "only call 500 fails: {e}"),
        }
    }
}

fn a_forged_or_unsigned_entry_is_rejected_and_never_run() {
    let redis = Redis::start(&[]);
    let _node = Node::start(&redis.url(), "forge", 1, Some(KEY));
    wait_for_nodes(&redis, "forge", 1);
    redis.cli(&[
        "XADD",
        "mp:{forge}:tasks",
        "*",
        "m",
        "garbage",
        "a",
        "",
        "h",
        "nope",
    ]);
    let path = std::env::temp_dir().join(format!("mp-forged-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let wrong = cluster::Pool::builder(&redis.url())
        .pool("forge")
        .key("wrong key")
        .build()
        .unwrap();
    let pending = wrong.apply_async(task!(touch, path.display().to_string()));
    assert!(matches!(
        pending.get_timeout(Duration::from_secs(3)),
        Err(Error::Pool(multiproc::pool::PoolError::Timeout))
    ));
    let deadline = Instant::now() + Duration::from_secs(5);
    while redis.cli(&["XLEN", "mp:{forge}:tasks"]) != "0" {
        assert!(
            Instant::now() < deadline,
            "the forged entries were not dropped"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!path.exists(), "a call signed with the wrong key ran");
    let good = pool(&redis, "forge");
    good.apply(task!(touch, path.display().to_string()))
        .unwrap();
    assert!(path.exists(), "a call signed with the key runs");
    let _ = std::fs::remove_file(&path);
}

fn a_wrong_password_or_a_missing_key_is_refused() {
    let redis = Redis::start(&["--requirepass", "right"]);
    let url = format!("redis://:wrong@127.0.0.1:{}", redis.port);
    let err = cluster::Pool::builder(&url).key(KEY).build().unwrap_err();
    assert!(
        matches!(err, Error::Cluster(ClusterError::Engine(_))),
        "{err:?}"
    );
    let none = cluster::Pool::builder(&redis.url())
        .key(KEY)
        .build()
        .unwrap_err();
    assert!(
        matches!(none, Error::Cluster(ClusterError::Engine(_))),
        "{none:?}"
    );
    let url = format!("redis://:right@127.0.0.1:{}", redis.port);
    cluster::Pool::builder(&url).key(KEY).build().unwrap();
    let keyless = cluster::Pool::builder(&url).build().unwrap_err();
    assert!(
        matches!(keyless, Error::Cluster(ClusterError::NoKey { .. })),
        "{keyless:?}"
    );
    let far = cluster::Pool::builder("redis://192.0.2.1:6379")
        .insecure_loopback()
        .build();
    assert!(
        matches!(far, Err(Error::Cluster(ClusterError::NoKey { .. }))),
        "{far:?}"
    );
}

fn an_evicting_redis_is_refused() {
    let redis = Redis::start(&["--maxmemory-policy", "allkeys-lru"]);
    let err = cluster::Pool::builder(&redis.url())
        .key(KEY)
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Cluster(ClusterError::Evicting { policy }) if policy == "allkeys-lru"),
        "{err:?}"
    );
}

/// A node of another build (the `cluster` example, whose `cluster::square` takes `u64`) refuses
/// this build's `cluster::square` (which takes `u32`) by its fingerprint.
fn a_node_of_another_build_refuses_by_fingerprint() {
    let example = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("examples/cluster"))
        .unwrap();
    if !example.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "build the example first: cargo build --features cluster --example cluster"
        );
        println!("skipped: {} is not built", example.display());
        return;
    }
    let redis = Redis::start(&[]);
    let _node = Node::start_binary(&example, &redis.url(), "build", 1, Some(KEY));
    wait_for_nodes(&redis, "build", 1);
    let pool = pool(&redis, "build");
    let err = pool.apply(task!(square, 3)).unwrap_err();
    assert!(
        matches!(&err, Error::Cluster(ClusterError::TaskMismatch { task, reason, .. })
            if task.ends_with("square") && reason.contains("fingerprint")),
        "{err:?}"
    );
}

fn handles_for_one_machine_are_refused() {
    let redis = Redis::start(&[]);
    let pool = pool(&redis, "handles");
    let q = Queue::new().unwrap();
    let err = pool.apply(task!(queue_len, q)).unwrap_err();
    assert!(
        err.to_string().contains("only works on one machine"),
        "{err}"
    );
}

const TESTS: &[Test] = &[
    ("map_equals_local_map", map_equals_local_map),
    (
        "imap_window_holds_over_an_endless_input",
        imap_window_holds_over_an_endless_input,
    ),
    (
        "a_panic_in_call_500_of_1000_fails_only_that_call",
        a_panic_in_call_500_of_1000_fails_only_that_call,
    ),
    (
        "a_forged_or_unsigned_entry_is_rejected_and_never_run",
        a_forged_or_unsigned_entry_is_rejected_and_never_run,
    ),
    (
        "a_wrong_password_or_a_missing_key_is_refused",
        a_wrong_password_or_a_missing_key_is_refused,
    ),
    ("an_evicting_redis_is_refused", an_evicting_redis_is_refused),
    (
        "a_node_of_another_build_refuses_by_fingerprint",
        a_node_of_another_build_refuses_by_fingerprint,
    ),
    (
        "handles_for_one_machine_are_refused",
        handles_for_one_machine_are_refused,
    ),
];

fn main() {
    cluster::serve_if_worker().expect("worker mode");
    run_tests(TESTS);
}
