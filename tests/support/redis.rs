//! A Redis server of a test's own, on 127.0.0.1 at a free port with a temporary directory, killed
//! by PID when dropped; and worker nodes, which are the test binary itself in worker mode.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `redis-server` is installed (CI installs it; elsewhere the tests are skipped).
pub fn available() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A running `redis-server`.
pub struct Redis {
    child: Child,
    pub port: u16,
    dir: PathBuf,
    args: Vec<String>,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}

impl Redis {
    /// A server with `args` added to the defaults (no snapshots, no AOF unless asked).
    pub fn start(args: &[&str]) -> Redis {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("mp-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("make the server's directory");
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let child = spawn(port, &dir, &args);
        let redis = Redis {
            child,
            port,
            dir,
            args,
        };
        redis.wait_ready();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut buf = [0; 64];
                if s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).is_ok_and(|n| n > 0) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    /// Kills the server with SIGKILL, by PID, and reaps it.
    pub fn kill(&mut self) {
        unsafe_kill(self.child.id() as i32, libc::SIGKILL);
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port and directory (what AOF kept comes back).
    pub fn restart(&mut self) {
        self.child = spawn(self.port, &self.dir, &self.args);
        self.wait_ready();
    }

    /// Runs `redis-cli` against the server and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

fn spawn(port: u16, dir: &std::path::Path, args: &[String]) -> Child {
    Command::new("redis-server")
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
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .expect("start redis-server")
}

fn unsafe_kill(pid: i32, signal: i32) {
    // SAFETY: kill takes any pid and signal; it only sends a signal.
    unsafe {
        libc::kill(pid, signal);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A worker node: this test binary in worker mode, killed by PID when dropped.
pub struct Node {
    child: Child,
}

impl Node {
    /// A node serving `pool` on `url` with `processes` local processes and `key` (none: insecure
    /// loopback).
    pub fn start(url: &str, pool: &str, processes: usize, key: Option<&str>) -> Node {
        let exe = std::env::current_exe().expect("the test binary");
        Node::start_binary(&exe, url, pool, processes, key)
    }

    /// A node that is the program `exe` in worker mode.
    pub fn start_binary(
        exe: &std::path::Path,
        url: &str,
        pool: &str,
        processes: usize,
        key: Option<&str>,
    ) -> Node {
        let mut cmd = Command::new(exe);
        cmd.env("MULTIPROC_WORKER", url)
            .env("MULTIPROC_POOL", pool)
            .env("MULTIPROC_PROCESSES", processes.to_string());
        match key {
            Some(key) => cmd.env("MULTIPROC_CLUSTER_KEY", key),
            None => cmd.env("MULTIPROC_INSECURE_LOOPBACK", "1"),
        };
        Node {
            child: cmd.spawn().expect("start a worker node"),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: i32) {
        unsafe_kill(self.pid(), signal);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Waits until `nodes` worker nodes of pool `pool` have registered, or panics after 20 s.
pub fn wait_for_nodes(redis: &Redis, pool: &str, nodes: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let key = format!("mp:{{{pool}}}:workers");
    while redis.cli(&["HLEN", &key]).parse::<usize>().unwrap_or(0) < nodes {
        assert!(
            Instant::now() < deadline,
            "the worker nodes did not register"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The HMAC key of the tests' pools and nodes.
pub const KEY: &str = "test-key";

/// A cluster pool named `name` on `redis`, signed with [`KEY`].
pub fn keyed_pool(redis: &Redis, name: &str) -> multiproc::cluster::Pool {
    multiproc::cluster::Pool::builder(&redis.url())
        .pool(name)
        .key(KEY)
        .build()
        .expect("build")
}

/// A test: its name and its body, which fails by panicking.
pub type Test = (&'static str, fn());

/// Runs `tests` (those whose name contains an argument, if any are given), each in turn, and
/// panics at the end if one failed; skips them all when `redis-server` is missing, except under
/// CI, where that is a failure.
pub fn run_tests(tests: &[Test]) {
    if !available() {
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
    for (name, test) in tests {
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
