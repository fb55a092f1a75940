//! The cluster pool against a real `redis-server` on loopback, with worker nodes that are this
//! binary in worker mode. Its own small harness (`harness = false`): a node must become a
//! worker before any test runs, in `main`.

#[path = "support/redis.rs"]
mod redis;

use multiproc::cluster::{self, ClusterError};
use multiproc::prelude::*;
use multiproc::Error;
use redis::{wait_for_nodes, Node, Redis};
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

/// Kills its own process at item `bad`.
#[process_task]
fn die_on(x: u64, bad: u64) -> u64 {
    if x == bad {
        // SAFETY: kill only sends a signal, to this very process.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    std::thread::sleep(Duration::from_millis(1));
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

const KEY: &str = "test-key";

fn pool(redis: &Redis, name: &str) -> cluster::Pool {
    cluster::Pool::builder(&redis.url())
        .pool(name)
        .key(KEY)
        .build()
        .expect("build")
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

/// Sleeps `ms`, then returns 4 KiB: a chunk's results then come back in parts of 32 calls.
#[process_task]
fn slow_page(x: u64, ms: u64) -> Vec<u64> {
    std::thread::sleep(Duration::from_millis(ms));
    vec![x; 512]
}

/// The calls answered so far of the chunks in progress in `pool`.
fn answered(redis: &Redis, pool: &str) -> u64 {
    let values = redis.cli(&["HVALS", &format!("mp:{{{pool}}}:prog")]);
    values.lines().filter_map(|v| v.parse::<u64>().ok()).sum()
}

/// Runs a 1000-call chunk on one node and SIGKILLs the node once some calls are answered.
fn sigkill_a_node_mid_chunk() {
    let redis = Redis::start(&[]);
    let node = Node::start(&redis.url(), "kill", 1, Some(KEY));
    wait_for_nodes(&redis, "kill", 1);
    let pool = pool(&redis, "kill");
    let started = Instant::now();
    let imap = pool.imap_chunked(task!(slow_page, ms = 5), 0..1000u64, 1000);
    let collector = std::thread::spawn(move || imap.collect::<Vec<_>>());
    while answered(&redis, "kill") < 300 {
        assert!(started.elapsed() < Duration::from_secs(20), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    node.signal(libc::SIGKILL);
    let outcomes = collector.join().unwrap();
    assert_eq!(outcomes.len(), 1000, "every call answered once");
    let ok = outcomes.iter().take_while(|r| r.is_ok()).count();
    assert!(
        (300..1000).contains(&ok),
        "the kill came mid-chunk, after {ok} calls"
    );
    let node_pid = format!(":{}:", node.pid());
    for (i, r) in outcomes.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(v[0], i as u64),
            Err(Error::Cluster(ClusterError::WorkerLost { node })) => {
                assert!(i >= ok);
                assert!(node.contains(&node_pid), "{node} names the node");
            }
            Err(e) => panic!("unexpected failure: {e}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "failed within a few seconds"
    );
}

/// Appends `x` to the file `log`, then works as [`slow_page`]: the log counts the runs.
#[process_task]
fn logged_page(x: u64, log: String) -> Vec<u64> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .expect("open the log");
    writeln!(file, "{x}").expect("log");
    slow_page(x, 5)
}

/// As [`sigkill_a_node_mid_chunk`], with retries: another node runs the unanswered calls.
fn sigkill_a_node_mid_chunk_with_retry() {
    let redis = Redis::start(&[]);
    let node = Node::start(&redis.url(), "retry", 1, Some(KEY));
    wait_for_nodes(&redis, "retry", 1);
    let pool = cluster::Pool::builder(&redis.url())
        .pool("retry")
        .key(KEY)
        .on_worker_lost(cluster::Lost::Retry(1))
        .build()
        .unwrap();
    let log = std::env::temp_dir().join(format!("mp-retry-{}", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let task = task!(logged_page, log = log.display().to_string());
    let imap = pool.imap_chunked(task, 0..1000u64, 1000);
    let collector = std::thread::spawn(move || imap.collect::<Vec<_>>());
    let started = Instant::now();
    while answered(&redis, "retry") < 300 {
        assert!(started.elapsed() < Duration::from_secs(20), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    node.signal(libc::SIGKILL);
    let _other = Node::start(&redis.url(), "retry", 1, Some(KEY));
    let outcomes = collector.join().unwrap();
    for (i, outcome) in outcomes.iter().enumerate() {
        assert_eq!(outcome.as_ref().expect("every call succeeds")[0], i as u64);
    }
    let runs = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let mut counts = vec![0u32; 1000];
    runs.lines()
        .for_each(|x| counts[x.parse::<usize>().unwrap()] += 1);
    assert!(counts.iter().all(|&c| c >= 1), "every call ran");
    let twice = counts.iter().filter(|&&c| c > 1).count();
    assert!(
        twice <= 100,
        "{twice} calls ran twice: only the unanswered ones may"
    );
    assert!(counts.iter().all(|&c| c <= 2), "no call ran three times");
}

fn sigkill_a_local_worker_process_on_a_node() {
    let redis = Redis::start(&[]);
    let _node = Node::start(&redis.url(), "local", 2, Some(KEY));
    wait_for_nodes(&redis, "local", 1);
    let pool = pool(&redis, "local");
    let outcomes: Vec<_> = pool
        .imap_chunked(task!(die_on, bad = 50), 0..100u64, 100)
        .collect();
    // The calls the dead process answered stay answered; the rest of its chunk fails.
    let ok = outcomes.iter().take_while(|r| r.is_ok()).count();
    assert!(ok <= 50, "call 50 killed its process");
    for (i, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Ok(v) => assert!(i < ok && *v == i as u64),
            Err(Error::Signaled { signal: 9, .. }) => assert!(i >= ok),
            Err(e) => panic!("call {i}: {e}"),
        }
    }
    assert_eq!(
        pool.map(task!(square), 0..10u32).unwrap()[9],
        81,
        "the node goes on"
    );
}

fn a_node_stopped_past_its_heartbeat_has_its_late_results_refused() {
    let redis = Redis::start(&[]);
    let node = Node::start(&redis.url(), "stop", 1, Some(KEY));
    wait_for_nodes(&redis, "stop", 1);
    let pool = pool(&redis, "stop");
    let pending = pool.map_async(task!(slow, ms = 100), (0..30u64).collect::<Vec<_>>());
    std::thread::sleep(Duration::from_millis(300));
    node.signal(libc::SIGSTOP);
    // Another node takes the chunks the stopped one had not taken.
    let _other = Node::start(&redis.url(), "stop", 1, Some(KEY));
    let err = pending.get_timeout(Duration::from_secs(20)).unwrap_err();
    let stopped = format!(":{}:", node.pid());
    assert!(
        matches!(&err, Error::Cluster(ClusterError::WorkerLost { node }) if node.contains(&stopped)),
        "{err:?}"
    );
    // Nothing reads the reply stream once the pool is gone: a late result would stay there.
    drop(pool);
    let lengths = || {
        let streams = redis.cli(&["--scan", "--pattern", "mp:{stop}:r:*"]);
        let lens = streams.lines().map(|s| redis.cli(&["XLEN", s]));
        lens.collect::<Vec<_>>()
    };
    let before = lengths();
    node.signal(libc::SIGCONT);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        lengths(),
        before,
        "the stopped node's late results were refused"
    );
    assert_eq!(redis.cli(&["HLEN", "mp:{stop}:prog"]), "0");
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

fn redis_restarted_mid_map() {
    for aof in [true, false] {
        let args: &[&str] = if aof {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &[]
        };
        let mut redis = Redis::start(args);
        let _node = Node::start(&redis.url(), "restart", 1, Some(KEY));
        wait_for_nodes(&redis, "restart", 1);
        let pool = cluster::Pool::builder(&redis.url())
            .pool("restart")
            .key(KEY)
            .engine_deadline(Duration::from_secs(10))
            .build()
            .unwrap();
        let pending = pool.map_async_with(
            task!(slow, ms = 20),
            0..200u64,
            Some(10),
            Default::default(),
        );
        std::thread::sleep(Duration::from_millis(500));
        redis.kill();
        std::thread::sleep(Duration::from_millis(200));
        redis.restart();
        let outcome = pending.get_timeout(Duration::from_secs(60));
        if aof {
            assert_eq!(
                outcome.unwrap(),
                (0..200).collect::<Vec<u64>>(),
                "with AOF the map completes"
            );
        } else {
            assert!(
                matches!(outcome, Err(Error::Cluster(ClusterError::EngineLost(_)))),
                "without persistence: {outcome:?}"
            );
        }
    }
}

/// The bytes reversed: a result as large as the argument, which depends on all of it.
#[process_task]
fn reversed(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.reverse();
    bytes
}

/// Redis's `used_memory`.
fn used_memory(redis: &Redis) -> u64 {
    let info = redis.cli(&["INFO", "memory"]);
    let line = info
        .lines()
        .find(|l| l.starts_with("used_memory:"))
        .unwrap();
    line.trim_start_matches("used_memory:")
        .trim()
        .parse()
        .unwrap()
}

/// A byte pattern of `len` that no shift or reversal of it matches.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn large_payloads_travel_in_pieces_and_leave_nothing_behind() {
    let size: usize = std::env::var("CLUSTER_TEST_LARGE_MIB").map_or(32, |v| v.parse().unwrap());
    let redis = Redis::start(&[]);
    let _node = Node::start(&redis.url(), "large", 2, Some(KEY));
    wait_for_nodes(&redis, "large", 1);
    let pool = pool(&redis, "large");
    pool.apply(task!(reversed, vec![1, 2])).unwrap();
    let baseline = used_memory(&redis);
    let big = pattern(size << 20);
    let mut expected = big.clone();
    expected.reverse();
    assert!(
        pool.apply(task!(reversed, big)).unwrap() == expected,
        "{size} MiB came back"
    );
    let mebibytes: Vec<Vec<u8>> = (0..32).map(|i| pattern((1 << 20) + i)).collect();
    let back = pool
        .map_chunked(task!(reversed), mebibytes.clone(), 1)
        .unwrap();
    for (sent, got) in mebibytes.iter().zip(&back) {
        assert!(
            sent.iter().rev().eq(got.iter()),
            "a 1 MiB call came back reversed"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while used_memory(&redis) > baseline + (1 << 20) {
        assert!(
            Instant::now() < deadline,
            "Redis holds {} bytes more than its baseline",
            used_memory(&redis) - baseline
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        redis.cli(&["--scan", "--pattern", "mp:{large}:blob:*"]),
        "",
        "no piece is left"
    );
}

fn terminate_deletes_the_callers_queued_work() {
    let redis = Redis::start(&[]);
    // No node serves this pool: the calls stay queued.
    let pool = pool(&redis, "term");
    let pending = pool.apply_async(task!(reversed, pattern(10 << 20)));
    let one_chunk = Some(10);
    let small = pool.map_async_with(
        task!(reversed),
        vec![vec![1u8]; 10],
        one_chunk,
        Default::default(),
    );
    assert_eq!(redis.cli(&["XLEN", "mp:{term}:tasks"]), "2");
    let blobs = redis.cli(&["--scan", "--pattern", "mp:{term}:blob:*"]);
    assert_eq!(blobs.lines().count(), 2, "10 MiB go as two pieces");
    pool.terminate();
    let terminated = |e| matches!(e, Error::Pool(multiproc::pool::PoolError::Terminated));
    assert!(terminated(pending.get().unwrap_err()));
    assert!(terminated(small.get().unwrap_err()));
    assert_eq!(redis.cli(&["XLEN", "mp:{term}:tasks"]), "0");
    assert_eq!(redis.cli(&["--scan", "--pattern", "mp:{term}:blob:*"]), "");
}

type Test = (&'static str, fn());

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
    ("sigkill_a_node_mid_chunk", sigkill_a_node_mid_chunk),
    (
        "sigkill_a_node_mid_chunk_with_retry",
        sigkill_a_node_mid_chunk_with_retry,
    ),
    (
        "sigkill_a_local_worker_process_on_a_node",
        sigkill_a_local_worker_process_on_a_node,
    ),
    (
        "a_node_stopped_past_its_heartbeat_has_its_late_results_refused",
        a_node_stopped_past_its_heartbeat_has_its_late_results_refused,
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
        "large_payloads_travel_in_pieces_and_leave_nothing_behind",
        large_payloads_travel_in_pieces_and_leave_nothing_behind,
    ),
    (
        "terminate_deletes_the_callers_queued_work",
        terminate_deletes_the_callers_queued_work,
    ),
    (
        "a_killed_callers_work_is_dropped",
        a_killed_callers_work_is_dropped,
    ),
    (
        "a_node_of_another_build_refuses_by_fingerprint",
        a_node_of_another_build_refuses_by_fingerprint,
    ),
    (
        "handles_for_one_machine_are_refused",
        handles_for_one_machine_are_refused,
    ),
    ("redis_restarted_mid_map", redis_restarted_mid_map),
];

/// The caller of [`a_killed_callers_work_is_dropped`], a child process: queues 2000 logged calls
/// on the Redis at `url` and waits to be killed.
fn orphan_caller(url: &str, log: &str) -> ! {
    let pool = cluster::Pool::builder(url)
        .pool("orphan")
        .key(KEY)
        .build()
        .unwrap();
    let task = task!(logged_page, log = log.to_string());
    let _pending = pool.map_async_with(task, 0..2000u64, Some(10), Default::default());
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

fn a_killed_callers_work_is_dropped() {
    let redis = Redis::start(&[]);
    let _node = Node::start(&redis.url(), "orphan", 1, Some(KEY));
    wait_for_nodes(&redis, "orphan", 1);
    let log = std::env::temp_dir().join(format!("mp-orphan-{}", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let mut caller = std::process::Command::new(std::env::current_exe().unwrap())
        .env("CLUSTER_TEST_CALLER", redis.url())
        .env("CLUSTER_TEST_LOG", &log)
        .spawn()
        .unwrap();
    let runs = || std::fs::read_to_string(&log).map_or(0, |s| s.lines().count());
    let started = Instant::now();
    while runs() < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the caller's work never ran"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    caller.kill().unwrap();
    caller.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while redis.cli(&["XLEN", "mp:{orphan}:tasks"]) != "0" {
        assert!(
            Instant::now() < deadline,
            "the dead caller's chunks stayed queued"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The chunks the node had taken before the caller was declared dead finish first.
    std::thread::sleep(Duration::from_secs(1));
    let settled = runs();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(runs(), settled, "the dead caller's calls stopped running");
    assert!(settled < 2000, "only {settled} of 2000 calls ran");
    let replies = redis.cli(&["--scan", "--pattern", "mp:{orphan}:r:*"]);
    for reply in replies.lines() {
        let ttl: i64 = redis.cli(&["PTTL", reply]).parse().unwrap();
        assert!(ttl > 0, "the reply stream {reply} expires");
    }
    let _ = std::fs::remove_file(&log);
}

fn main() {
    cluster::serve_if_worker().expect("worker mode");
    if let Ok(url) = std::env::var("CLUSTER_TEST_CALLER") {
        orphan_caller(&url, &std::env::var("CLUSTER_TEST_LOG").unwrap());
    }
    if !redis::available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server is required under CI"
        );
        println!("skipped: redis-server is not installed");
        return;
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = Vec::new();
    for (name, test) in TESTS {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(test);
        let secs = started.elapsed().as_secs_f32();
        match outcome {
            Ok(()) => println!("test {name} ... ok ({secs:.1} s)"),
            Err(_) => {
                println!("test {name} ... FAILED ({secs:.1} s)");
                failed.push(*name);
            }
        }
    }
    assert!(failed.is_empty(), "failed: {failed:?}");
}
