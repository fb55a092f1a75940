//! Manager rows: a dict set+get round trip (over the Unix socket, and over TCP on 127.0.0.1
//! after the authkey handshake), 8 processes' atomic increments of one key, a manager's start to
//! its first answered operation, and a method call on a custom object, each beside CPython's
//! `Manager` (`benches/py_manager_bench.py`).

use crate::harness::{scaled, Ref, Row};
use multiproc::managers::{manager_object, DictProxy, Manager};
use multiproc::prelude::*;
use std::time::Instant;

/// Microseconds per `insert` then `get` on one dict proxy: the median of 5 runs.
fn set_get(scale: f64) -> f64 {
    let manager = Manager::start().expect("manager");
    insert_get_us(&manager.dict::<u64, u64>().expect("dict"), scale)
}

/// As [`set_get`], through a proxy looked up by a client connected over TCP.
fn set_get_tcp(scale: f64) -> f64 {
    let manager = Manager::builder()
        .listen(([127, 0, 0, 1], 0))
        .authkey(b"bench")
        .start()
        .expect("manager");
    let d = manager.dict::<u64, u64>().expect("dict");
    manager.publish("d", &d).expect("publish");
    let client = Manager::connect(manager.address().expect("address"), b"bench").expect("connect");
    insert_get_us(&client.lookup("d").expect("lookup"), scale)
}

/// Microseconds per `insert` then `get` on `d`: the median of 5 runs.
fn insert_get_us(d: &DictProxy<u64, u64>, scale: f64) -> f64 {
    let n = scaled(20_000.0, scale);
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for i in 0..n {
                d.insert(i % 64, i).expect("insert");
                assert_eq!(d.get(&(i % 64)).expect("get"), Some(i));
            }
            start.elapsed().as_secs_f64() * 1e6 / n as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[2]
}

#[process_task]
fn fetch_add_loop(d: DictProxy<u64, u64>, go: Event, n: u64) {
    go.wait();
    for _ in 0..n {
        d.fetch_add(&0, 1).expect("fetch_add");
    }
}

/// Increments per second of 8 processes each doing `n` `fetch_add`s of one key.
fn fetch_add_8(scale: f64) -> f64 {
    let n = scaled(10_000.0, scale);
    let manager = Manager::start().expect("manager");
    let d = manager.dict::<u64, u64>().expect("dict");
    let go = Event::new().expect("event");
    let children: Vec<_> = (0..8)
        .map(|_| {
            Process::new(task!(fetch_add_loop, d.clone(), go.clone(), n))
                .start()
                .expect("start")
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let start = Instant::now();
    go.set();
    for child in children {
        child.join().expect("join");
    }
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(d.get(&0).expect("get"), Some(8 * n), "the total is exact");
    (8 * n) as f64 / elapsed
}

/// Milliseconds from `Manager::start` to the first answered operation (a new dict and an
/// insert), the median of 9 starts; shutdown not included.
fn start_to_first_op(_scale: f64) -> f64 {
    let mut times: Vec<f64> = (0..9)
        .map(|_| {
            let start = Instant::now();
            let manager = Manager::start().expect("manager");
            let d = manager.dict::<u64, u64>().expect("dict");
            d.insert(0, 1).expect("insert");
            let elapsed = start.elapsed().as_secs_f64() * 1e3;
            manager.shutdown().expect("shutdown");
            elapsed
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[4]
}

/// A counter served by the manager, CPython's `BaseManager.register("Counter", Counter)`.
pub struct Counter {
    total: u64,
}

#[manager_object]
impl Counter {
    pub fn new(start: u64) -> Self {
        Counter { total: start }
    }

    pub fn incr(&mut self, by: u64) -> u64 {
        self.total += by;
        self.total
    }
}

/// Microseconds per `counter.incr(1)` on a custom object: the median of 5 runs.
fn custom_call(scale: f64) -> f64 {
    let n = scaled(20_000.0, scale);
    let manager = Manager::start().expect("manager");
    let counter = CounterProxy::new(&manager, 0).expect("counter");
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                counter.incr(1).expect("incr");
            }
            start.elapsed().as_secs_f64() * 1e6 / n as f64
        })
        .collect();
    assert_eq!(counter.incr(0).expect("incr"), 5 * n, "every call counted");
    runs.sort_by(f64::total_cmp);
    runs[2]
}

fn py(suite: &'static str) -> Option<Ref> {
    Some(Ref {
        suite,
        bench: suite,
        params: &[],
    })
}

pub fn rows() -> Vec<Row> {
    vec![
        Row {
            label: "Manager dict insert+get round trip",
            unit: "us",
            higher_is_better: false,
            ours: set_get,
            python: py("manager_set_get"),
            c_floor: None,
        },
        Row {
            label: "Manager over TCP (127.0.0.1) dict insert+get round trip",
            unit: "us",
            higher_is_better: false,
            ours: set_get_tcp,
            python: py("manager_tcp_set_get"),
            c_floor: None,
        },
        Row {
            label: "Manager 8 processes x fetch_add (CPython: lock, get, set, release)",
            unit: "ops/s",
            higher_is_better: true,
            ours: fetch_add_8,
            python: py("manager_locked_increment"),
            c_floor: None,
        },
        Row {
            label: "Manager start to first operation",
            unit: "ms",
            higher_is_better: false,
            ours: start_to_first_op,
            python: py("manager_start"),
            c_floor: None,
        },
        Row {
            label: "Manager custom object method call (Counter.incr)",
            unit: "us",
            higher_is_better: false,
            ours: custom_call,
            python: py("manager_custom_call"),
            c_floor: None,
        },
    ]
}
