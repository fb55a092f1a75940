//! The cluster pool when things fail: a node killed (with and without retries), a local worker
//! process killed, a node stopped past its heartbeat, Redis restarted, a caller killed; and the
//! large bodies that travel in pieces. Worker nodes (and the killed caller) are this binary in
//! another mode; its own small harness, as `cluster.rs`.

// Each test binary uses part of the harness.
#[allow(dead_code)]
#[path = "support/redis.rs"]
mod redis;

use multiproc::cluster::{self, ClusterError};
use multiproc::prelude::*;
use multiproc::Error;
use redis::{keyed_pool as pool, run_tests, wait_for_nodes, Node, Redis, Test, KEY};
use std::time::{Duration, Instant};

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

/// Appends `x` to the file `log`, then works as [`slow_page`] for 20 ms: the log counts the
/// runs. 2,000 of them take 40 s on one process, far past a dead caller's 10 s heartbeat.
#[process_task]
fn logged_page(x: u64, log: String) -> Vec<u64> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .expect("open the log");
    writeln!(file, "{x}").expect("log");
    slow_page(x, 20)
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
        pool.map(task!(slow, ms = 0), 0..10u64).unwrap()[9],
        9,
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

const TESTS: &[Test] = &[
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
    ("redis_restarted_mid_map", redis_restarted_mid_map),
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
];

fn main() {
    cluster::serve_if_worker().expect("worker mode");
    if let Ok(url) = std::env::var("CLUSTER_TEST_CALLER") {
        orphan_caller(&url, &std::env::var("CLUSTER_TEST_LOG").unwrap());
    }
    run_tests(TESTS);
}
