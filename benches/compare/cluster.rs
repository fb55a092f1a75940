//! Cluster rows (feature `cluster`): the cluster pool on a `redis-server` of its own on
//! loopback, with one worker node of 2 processes (this bench binary in worker mode). There is
//! no CPython figure: Ray and Dask are the anchors, measured apart (see docs/BENCHMARKS.md).

use crate::harness::{scaled, Row};
#[path = "../../tests/support/redis.rs"]
#[allow(dead_code)]
mod redis;

use multiproc::cluster;
use multiproc::prelude::*;
use redis::{wait_for_nodes, Node, Redis};
use std::time::Instant;

#[process_task]
fn cluster_square(x: u64) -> u64 {
    x * x
}

/// A result as large as the argument.
#[process_task]
fn echo_bytes(bytes: Vec<u8>) -> Vec<u8> {
    bytes
}

/// A Redis, a node of 2 processes and a pool on them, warmed up.
fn cluster2() -> (Redis, Node, cluster::Pool) {
    let redis = Redis::start(&[]);
    let node = Node::start(&redis.url(), "bench", 2, None);
    wait_for_nodes(&redis, "bench", 1);
    let pool = cluster::Pool::builder(&redis.url())
        .pool("bench")
        .insecure_loopback()
        .build()
        .expect("cluster pool");
    pool.map(task!(cluster_square), 0..1000).expect("warm-up");
    (redis, node, pool)
}

fn map_small(scale: f64) -> f64 {
    let n = scaled(200_000.0, scale);
    let (_redis, _node, pool) = cluster2();
    let start = Instant::now();
    let out = pool.map(task!(cluster_square), 0..n).expect("map");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(out.len() as u64, n);
    n as f64 / secs
}

fn apply_roundtrip(scale: f64) -> f64 {
    let n = scaled(2_000.0, scale);
    let (_redis, _node, pool) = cluster2();
    let start = Instant::now();
    for i in 0..n {
        assert_eq!(pool.apply(task!(cluster_square, i)).expect("apply"), i * i);
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// Megabytes per second each way, of calls with a 1 MiB argument and a 1 MiB result.
fn mebibyte_calls(scale: f64) -> f64 {
    let n = scaled(64.0, scale);
    let (_redis, _node, pool) = cluster2();
    let arg = vec![7u8; 1 << 20];
    let start = Instant::now();
    let out = pool
        .map_chunked(task!(echo_bytes), (0..n).map(|_| arg.clone()), 1)
        .expect("map");
    let secs = start.elapsed().as_secs_f64();
    assert!(out.iter().all(|r| r.len() == 1 << 20));
    n as f64 * (1 << 20) as f64 / 1e6 / secs
}

pub fn rows() -> Vec<Row> {
    vec![
        Row {
            label: "cluster Pool(2).map x*x, 200k, default chunksize",
            unit: "tasks/s",
            higher_is_better: true,
            ours: map_small,
            python: None,
            c_floor: None,
        },
        Row {
            label: "cluster Pool(2).apply round trip",
            unit: "us",
            higher_is_better: false,
            ours: apply_roundtrip,
            python: None,
            c_floor: None,
        },
        Row {
            label: "cluster Pool(2).map 1 MiB arg + 1 MiB result",
            unit: "MB/s",
            higher_is_better: true,
            ours: mebibyte_calls,
            python: None,
            c_floor: None,
        },
    ]
}
