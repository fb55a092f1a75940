//! A map on two worker nodes through Redis: `cargo run --example cluster --features cluster`.
//!
//! It uses the Redis at `REDIS_URL`, or starts a `redis-server` of its own on 127.0.0.1; then it
//! starts two worker nodes, which are this very binary in worker mode (`MULTIPROC_WORKER`), runs
//! a map on them, and stops what it started. On real machines, run the same binary on each
//! worker machine with `MULTIPROC_WORKER=redis://user:password@head:6379` and
//! `MULTIPROC_CLUSTER_KEY` set (see the README, "Past one machine").

use multiproc::cluster;
use multiproc::prelude::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[process_task]
fn square(x: u64) -> u64 {
    x * x
}

/// The example's HMAC key; a real deployment reads it from the environment.
const KEY: &str = "example key";

/// A child process killed by PID when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a `redis-server` on a free port of 127.0.0.1; returns its URL and guard.
fn start_redis() -> std::io::Result<(String, Guard)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = std::env::temp_dir();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()?;
    let guard = Guard(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(std::io::Error::other("redis-server did not start"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((format!("redis://127.0.0.1:{port}"), guard))
}

/// Starts a worker node: this binary again, in worker mode.
fn start_node(url: &str) -> std::io::Result<Guard> {
    let child = Command::new(std::env::current_exe()?)
        .env("MULTIPROC_WORKER", url)
        .env("MULTIPROC_POOL", "example")
        .env("MULTIPROC_PROCESSES", "1")
        .env("MULTIPROC_CLUSTER_KEY", KEY)
        .spawn()?;
    Ok(Guard(child))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    cluster::serve_if_worker()?;
    let (url, _redis) = match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let (url, guard) = start_redis()?;
            (url, Some(guard))
        }
    };
    let _nodes = [start_node(&url)?, start_node(&url)?];
    let pool = cluster::Pool::builder(&url)
        .pool("example")
        .key(KEY)
        .build()?;
    let squares = pool.map(task!(square), 0..10_000u64)?;
    println!(
        "squares of 0..10000 on two nodes: sum {}, last {}",
        squares.iter().sum::<u64>(),
        squares[9_999]
    );
    pool.close();
    pool.join()?;
    Ok(())
}
