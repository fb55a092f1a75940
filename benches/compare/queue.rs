//! Queue and pipe rows: one producer process, one consumer (this process), small messages and
//! 1 MiB messages, as the kit's `queue_*` and `pipe_*` benchmarks measure them.
//!
//! The clock starts when the producer is released (after it has started) and stops at the last
//! receive; every run checks what arrived (count and sum, or length and content).

use crate::harness::{scaled, Ref, Row};
use multiproc::prelude::*;
use serde_bytes::ByteBuf;
use std::time::Instant;

const MIB: usize = 1 << 20;

/// A 1 MiB payload whose bytes repeat 0..=255, as the kit's.
fn payload() -> ByteBuf {
    ByteBuf::from((0..MIB).map(|i| i as u8).collect::<Vec<u8>>())
}

fn check_payload(bytes: &[u8]) {
    assert!(bytes.len() == MIB && bytes[..256].iter().enumerate().all(|(i, &b)| b == i as u8));
}

#[process_task]
fn queue_put_ints(q: Queue<Option<u64>>, go: Connection<()>, n: u64) {
    let mut go = go;
    go.recv().expect("go");
    for i in 0..n {
        q.put(Some(i)).expect("put");
    }
    q.put(None).expect("put");
}

#[process_task]
fn queue_put_large(q: Queue<Option<ByteBuf>>, go: Connection<()>, n: u64) {
    let mut go = go;
    let item = Some(payload());
    go.recv().expect("go");
    for _ in 0..n {
        q.put(item.clone()).expect("put");
    }
    q.put(None).expect("put");
}

/// Starts a producer task, waits until it runs, releases it, and times `consume`.
fn timed<R>(
    start: impl FnOnce(Connection<()>) -> multiproc::Result<ProcessHandle<R>>,
    consume: impl FnOnce(),
) -> f64
where
    R: serde::de::DeserializeOwned,
{
    let (go_reader, mut go) = Pipe::<()>::simplex().expect("pipe");
    let child = start(go_reader).expect("start");
    let t0 = Instant::now();
    go.send(&()).expect("go");
    consume();
    let seconds = t0.elapsed().as_secs_f64();
    child.join().expect("join");
    seconds
}

fn queue_small(scale: f64) -> f64 {
    let n = scaled(200_000.0, scale);
    let q = Queue::new().expect("queue");
    let seconds = timed(
        |go| Process::new(task!(queue_put_ints, q.clone(), go, n)).start(),
        || {
            let mut sum = 0;
            while let Some(x) = q.get().expect("get") {
                sum += x;
            }
            assert_eq!(sum, n * (n - 1) / 2);
        },
    );
    n as f64 / seconds
}

fn queue_large(scale: f64) -> f64 {
    let n = scaled(500.0, scale);
    let q = Queue::new().expect("queue");
    let seconds = timed(
        |go| Process::new(task!(queue_put_large, q.clone(), go, n)).start(),
        || {
            let mut got = 0;
            while let Some(item) = q.get().expect("get") {
                check_payload(&item);
                got += 1;
            }
            assert_eq!(got, n);
        },
    );
    (n as usize * MIB) as f64 / seconds / 1e6
}

#[process_task]
fn pipe_send_ints(conn: Connection<Option<u64>>, go: Connection<()>, n: u64) {
    let (mut conn, mut go) = (conn, go);
    go.recv().expect("go");
    for i in 0..n {
        conn.send(&Some(i)).expect("send");
    }
    conn.send(&None).expect("send");
}

#[process_task]
fn pipe_send_large(conn: Connection<()>, go: Connection<()>, n: u64) {
    let (mut conn, mut go) = (conn, go);
    let item = payload();
    go.recv().expect("go");
    for _ in 0..n {
        conn.send_bytes(&item).expect("send_bytes");
    }
    conn.send_bytes(&[]).expect("send_bytes");
}

/// The receiving and sending ends of a pipe, two-way or one-way.
fn pipe<T>(duplex: bool) -> (Connection<T>, Connection<T>) {
    if duplex {
        Pipe::duplex().expect("pipe")
    } else {
        Pipe::simplex().expect("pipe")
    }
}

fn pipe_small(duplex: bool, scale: f64) -> f64 {
    let n = scaled(200_000.0, scale);
    let (mut reader, writer) = pipe(duplex);
    let seconds = timed(
        |go| Process::new(task!(pipe_send_ints, writer, go, n)).start(),
        || {
            let mut sum = 0;
            while let Some(x) = reader.recv().expect("recv") {
                sum += x;
            }
            assert_eq!(sum, n * (n - 1) / 2);
        },
    );
    n as f64 / seconds
}

fn pipe_large(duplex: bool, scale: f64) -> f64 {
    let n = scaled(500.0, scale);
    let (mut reader, writer) = pipe(duplex);
    let seconds = timed(
        |go| Process::new(task!(pipe_send_large, writer, go, n)).start(),
        || {
            let mut got = 0;
            loop {
                let bytes = reader.recv_bytes().expect("recv_bytes");
                if bytes.is_empty() {
                    break;
                }
                check_payload(&bytes);
                got += 1;
            }
            assert_eq!(got, n);
        },
    );
    (n as usize * MIB) as f64 / seconds / 1e6
}

pub fn rows() -> Vec<Row> {
    vec![
        Row {
            label: "Queue small msgs (ints), 1 producer -> 1 consumer",
            unit: "msgs/s",
            higher_is_better: true,
            ours: queue_small,
            python: Some(Ref {
                suite: "queue_small",
                bench: "queue_small",
                params: &[("queue", "Queue")],
            }),
            c_floor: Some(Ref {
                suite: "spsc_ring",
                bench: "spsc_ring",
                params: &[],
            }),
        },
        Row {
            label: "Queue 1 MiB msgs",
            unit: "MB/s",
            higher_is_better: true,
            ours: queue_large,
            python: Some(Ref {
                suite: "queue_large",
                bench: "queue_large",
                params: &[("queue", "Queue")],
            }),
            c_floor: Some(Ref {
                suite: "shm_ring_large",
                bench: "shm_ring_large",
                params: &[],
            }),
        },
        Row {
            label: "Pipe small msgs, duplex send/recv",
            unit: "msgs/s",
            higher_is_better: true,
            ours: |scale| pipe_small(true, scale),
            python: Some(Ref {
                suite: "pipe_small",
                bench: "pipe_small",
                params: &[("duplex", "true")],
            }),
            c_floor: Some(Ref {
                suite: "pipe_small",
                bench: "pipe_small",
                params: &[("transport", "pipe")],
            }),
        },
        Row {
            label: "Pipe small msgs, simplex send/recv",
            unit: "msgs/s",
            higher_is_better: true,
            ours: |scale| pipe_small(false, scale),
            python: Some(Ref {
                suite: "pipe_small",
                bench: "pipe_small",
                params: &[("duplex", "false")],
            }),
            c_floor: Some(Ref {
                suite: "pipe_small",
                bench: "pipe_small",
                params: &[("transport", "pipe")],
            }),
        },
        Row {
            label: "Pipe 1 MiB msgs, duplex send_bytes/recv_bytes",
            unit: "MB/s",
            higher_is_better: true,
            ours: |scale| pipe_large(true, scale),
            python: Some(Ref {
                suite: "pipe_large",
                bench: "pipe_large",
                params: &[("api", "send_bytes/recv_bytes"), ("duplex", "true")],
            }),
            c_floor: Some(Ref {
                suite: "pipe_large",
                bench: "pipe_large",
                params: &[("transport", "pipe(F_SETPIPE_SZ=1MiB)")],
            }),
        },
        Row {
            label: "Pipe 1 MiB msgs, simplex send_bytes/recv_bytes",
            unit: "MB/s",
            higher_is_better: true,
            ours: |scale| pipe_large(false, scale),
            python: Some(Ref {
                suite: "pipe_large",
                bench: "pipe_large",
                params: &[("api", "send_bytes/recv_bytes"), ("duplex", "false")],
            }),
            c_floor: Some(Ref {
                suite: "pipe_large",
                bench: "pipe_large",
                params: &[("transport", "pipe(F_SETPIPE_SZ=1MiB)")],
            }),
        },
    ]
}
