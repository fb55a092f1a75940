//! Process: results, exit codes, timeouts, names, arguments — across real processes.

mod common;
#[path = "support/unencodable.rs"]
mod unencodable_item;

use multiproc::error::TaskFailure;
use multiproc::prelude::*;
use multiproc::Error;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[process_task]
fn square(x: u64) -> u64 {
    x * x
}

#[process_task]
fn dance(name: String, #[default(4)] num: u32) -> String {
    format!("{name} dances {num} times")
}

#[process_task]
fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[process_task]
fn boom(message: String) -> u32 {
    panic!("{message}")
}

#[process_task]
fn exit_with(code: i32) -> u32 {
    multiproc::exit(code)
}

#[process_task]
fn std_exit_with(code: i32) -> u32 {
    std::process::exit(code)
}

#[process_task]
fn unit_exit_zero() {
    multiproc::exit(0)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Circle { radius: f64 },
    Square(f64),
    Empty,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Drawing {
    title: String,
    shapes: Vec<Shape>,
    tags: HashMap<String, Vec<i32>>,
    parent: Option<Box<Drawing>>,
}

#[process_task]
fn echo(
    text: String,
    bytes: Vec<u8>,
    drawing: Drawing,
    pair: (i8, char),
) -> (String, Vec<u8>, Drawing, (i8, char)) {
    (text, bytes, drawing, pair)
}

#[test]
fn join_returns_what_the_task_returned() -> multiproc::Result<()> {
    let by_args = Process::new(task!(square)).args((12,)).start()?;
    let by_name = Process::new(task!(square, x = 5)).start()?;
    let positional = Process::new(task!(dance, "Yuki".to_string(), 3)).start()?;
    let defaulted = Process::new(task!(dance, name = "Nagato".to_string())).start()?;
    let short_tuple = Process::new(task!(dance))
        .args(("Mikuru".to_string(),))
        .start()?;
    assert_eq!(by_args.join()?, 144);
    assert_eq!(by_name.join()?, 25);
    assert_eq!(positional.join()?, "Yuki dances 3 times");
    assert_eq!(defaulted.join()?, "Nagato dances 4 times");
    assert_eq!(short_tuple.join()?, "Mikuru dances 4 times");
    Ok(())
}

#[test]
fn arguments_of_many_types_round_trip() -> multiproc::Result<()> {
    let inner = Drawing {
        title: "inner".into(),
        shapes: vec![Shape::Empty],
        tags: HashMap::new(),
        parent: None,
    };
    let drawing = Drawing {
        title: "ünïcödé ✓".into(),
        shapes: vec![
            Shape::Circle { radius: 1.5 },
            Shape::Square(2.0),
            Shape::Empty,
        ],
        tags: HashMap::from([("a".into(), vec![1, -2, 3]), ("b".into(), vec![])]),
        parent: Some(Box::new(inner)),
    };
    let bytes: Vec<u8> = (0..=255).collect();
    let sent = ("text".to_string(), bytes, drawing, (-7, 'λ'));
    let call = task!(
        echo,
        sent.0.clone(),
        sent.1.clone(),
        drawing = sent.2.clone(),
        pair = sent.3
    );
    assert_eq!(Process::new(call).start()?.join()?, sent);
    Ok(())
}

#[test]
fn exit_codes_follow_python() -> multiproc::Result<()> {
    let returned = Process::new(task!(square, 3)).start()?;
    returned.join()?;
    assert_eq!(returned.exitcode(), Some(0));

    let panicked = Process::new(task!(boom, "kaboom".to_string())).start()?;
    match panicked.join() {
        Err(Error::Panicked { pid, message, .. }) => {
            assert_eq!(pid, panicked.pid());
            assert_eq!(message, "kaboom");
        }
        other => panic!("expected a panic error, got {other:?}"),
    }
    assert_eq!(panicked.exitcode(), Some(1));

    for (handle, code) in [
        (Process::new(task!(exit_with, 7)).start()?, 7),
        (Process::new(task!(std_exit_with, 5)).start()?, 5),
    ] {
        assert!(matches!(handle.join(), Err(Error::Exited { code: c, .. }) if c == code));
        assert_eq!(handle.exitcode(), Some(code));
    }

    let terminated = Process::new(task!(sleep_ms, 60_000)).start()?;
    terminated.terminate()?;
    assert!(matches!(
        terminated.join(),
        Err(Error::Signaled { signal: 15, .. })
    ));
    assert_eq!(terminated.exitcode(), Some(-15));

    let killed = Process::new(task!(sleep_ms, 60_000)).start()?;
    killed.kill()?;
    assert!(matches!(
        killed.join(),
        Err(Error::Signaled { signal: 9, .. })
    ));
    assert_eq!(killed.exitcode(), Some(-9));
    Ok(())
}

#[test]
fn exit_zero_is_success_for_a_unit_task_only() -> multiproc::Result<()> {
    Process::new(task!(unit_exit_zero)).start()?.join()?;
    let valued = Process::new(task!(exit_with, 0)).start()?;
    assert!(matches!(valued.join(), Err(Error::Exited { code: 0, .. })));
    Ok(())
}

#[test]
fn exitcode_and_is_alive_while_running() -> multiproc::Result<()> {
    let p = Process::new(task!(sleep_ms, 60_000)).start()?;
    assert_eq!(p.exitcode(), None);
    assert!(p.is_alive());
    p.kill()?;
    assert!(p.join().is_err());
    assert!(!p.is_alive());
    Ok(())
}

#[test]
fn join_timeout_returns_after_about_the_timeout() -> multiproc::Result<()> {
    let p = Process::new(task!(sleep_ms, 60_000)).start()?;
    let start = Instant::now();
    assert!(p.join_timeout(Duration::from_millis(200))?.is_none());
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(195) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );

    let start = Instant::now();
    assert!(p.join_timeout(Duration::ZERO)?.is_none());
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "a zero timeout polls"
    );

    let quick = Process::new(task!(square, 9)).start()?;
    assert_eq!(quick.join_timeout(Duration::from_secs(30))?, Some(81));
    p.kill()?;
    Ok(())
}

#[test]
fn join_can_be_repeated() -> multiproc::Result<()> {
    let p = Process::new(task!(square, 4)).start()?;
    assert_eq!(p.join()?, 16);
    assert_eq!(p.join()?, 16);
    assert_eq!(p.join_timeout(Duration::ZERO)?, Some(16));
    Ok(())
}

/// Returns a value whose serialisation always fails.
#[process_task]
fn unencodable() -> unencodable_item::Item {
    unencodable_item::Item::Bad(0)
}

#[test]
fn a_result_that_cannot_be_encoded_is_reported() -> multiproc::Result<()> {
    let p = Process::new(task!(unencodable)).start()?;
    match p.join() {
        Err(Error::Task {
            failure: TaskFailure::Encode(_),
            pid,
            ..
        }) => assert_eq!(pid, p.pid()),
        other => panic!("expected an encoding failure, got {other:?}"),
    }
    assert_eq!(p.exitcode(), Some(1));
    Ok(())
}

#[test]
fn a_closure_runs_in_a_child() -> multiproc::Result<()> {
    let base = 40;
    let p = Process::fork(move || (base + 2, std::process::id() as i32))?;
    let (value, pid) = p.join()?;
    assert_eq!(value, 42);
    assert_eq!(pid, p.pid());
    assert_ne!(pid, std::process::id() as i32);
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct Recorder {
    path: std::path::PathBuf,
    word: String,
}

#[process_task]
impl Run for Recorder {
    fn run(self) {
        let line = format!("{} from {}", self.word, current_process().name());
        std::fs::write(&self.path, line).expect("write the record");
    }
}

#[test]
fn a_struct_runs_as_the_process_body() -> multiproc::Result<()> {
    let path = std::env::temp_dir().join(format!("multiproc-recorder-{}", std::process::id()));
    let body = Recorder {
        path: path.clone(),
        word: "hello".into(),
    };
    let p = Process::new(body).name("recorder").start()?;
    p.join()?;
    let written = std::fs::read_to_string(&path).map_err(Error::Io)?;
    let _ = std::fs::remove_file(&path);
    assert_eq!(written, "hello from recorder");
    Ok(())
}

#[test]
fn names_follow_python() -> multiproc::Result<()> {
    assert_eq!(current_process().name(), "MainProcess");
    assert!(!current_process().daemon());
    assert!(parent_process().is_none());

    let named = Process::fork(|| current_process().name().to_string())?;
    let default_name = named.name().to_string();
    assert!(default_name.starts_with("Process-"), "{default_name}");
    assert_eq!(named.join()?, default_name);

    let given = Process::from_fn(|| current_process().name().to_string())
        .name("worker-a")
        .start()?;
    assert_eq!(given.name(), "worker-a");
    assert_eq!(given.join()?, "worker-a");

    let nested = Process::fork(|| -> Result<(String, String), String> {
        let me = current_process().name().to_string();
        let child =
            Process::fork(|| current_process().name().to_string()).map_err(|e| e.to_string())?;
        Ok((me, child.join().map_err(|e| e.to_string())?))
    })?;
    let (me, grandchild) = nested.join()?.expect("the grandchild ran");
    assert_eq!(grandchild, format!("{me}:1"));
    Ok(())
}

#[test]
fn pids_are_distinct_and_the_parent_is_known() -> multiproc::Result<()> {
    let me = std::process::id() as i32;
    let children: Vec<_> = (0..5)
        .map(|_| {
            Process::fork(|| {
                let parent = parent_process().expect("a child has a parent");
                (
                    current_process().pid(),
                    parent.pid(),
                    parent.is_alive(),
                    parent.name().to_string(),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    let mut pids = Vec::new();
    for child in &children {
        let (pid, parent, alive, parent_name) = child.join()?;
        assert_eq!(pid, child.pid());
        assert_eq!(parent, me);
        assert!(alive);
        assert_eq!(parent_name, "MainProcess");
        pids.push(pid);
    }
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 5);
    Ok(())
}

#[test]
fn a_hundred_processes_start_and_join() -> multiproc::Result<()> {
    let handles: Vec<_> = (0..100u64)
        .map(|i| Process::new(task!(square, i)).start())
        .collect::<Result<_, _>>()?;
    let results: Vec<u64> = handles.iter().map(|h| h.join()).collect::<Result<_, _>>()?;
    assert_eq!(results, (0..100u64).map(|i| i * i).collect::<Vec<_>>());
    Ok(())
}

#[test]
fn a_child_starts_a_grandchild() -> multiproc::Result<()> {
    let child = Process::fork(|| -> Result<(u64, i32, i32), String> {
        let grandchild = Process::fork(|| parent_process().map(|p| p.pid()).unwrap_or(0))
            .map_err(|e| e.to_string())?;
        let square = Process::new(task!(square, 11))
            .start()
            .map_err(|e| e.to_string())?;
        let value = square.join().map_err(|e| e.to_string())?;
        Ok((
            value,
            grandchild.join().map_err(|e| e.to_string())?,
            current_process().pid(),
        ))
    })?;
    let (value, grandchild_parent, child_pid) = child.join()?.expect("the grandchildren ran");
    assert_eq!(value, 121);
    assert_eq!(grandchild_parent, child_pid);
    Ok(())
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

#[test]
fn a_global_changed_in_a_child_is_unchanged_in_the_parent() -> multiproc::Result<()> {
    let before = COUNTER.load(Ordering::SeqCst);
    let child = Process::fork(|| COUNTER.fetch_add(100, Ordering::SeqCst) + 100)?;
    assert_eq!(child.join()?, before + 100);
    assert_eq!(COUNTER.load(Ordering::SeqCst), before);
    Ok(())
}

#[process_task]
fn big_result(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn a_large_result_arrives_whole() -> multiproc::Result<()> {
    // Larger than the 1 MiB pipe buffer a child asks for, so that it arrives in pieces.
    let len = 3 << 20;
    let quick = Process::new(task!(big_result, len)).start()?;
    let bytes = quick.join()?;
    assert_eq!(bytes.len(), len);
    assert!(bytes.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));

    let timed = Process::new(task!(big_result, len)).start()?;
    let mut result = None;
    while result.is_none() {
        result = timed.join_timeout(Duration::from_millis(1))?;
    }
    assert_eq!(result.map(|b| b.len()), Some(len));
    Ok(())
}

#[test]
fn cpu_count_is_the_number_of_cpus_this_process_may_use() {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it for this
    // process (pid 0), and CPU_COUNT only reads it.
    let allowed = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        libc::CPU_COUNT(&set) as usize
    };
    assert_eq!(cpu_count(), allowed);
}

#[test]
fn a_timeout_too_large_for_a_deadline_waits_instead_of_panicking() -> multiproc::Result<()> {
    let child = Process::fork(|| 7u8)?;
    assert_eq!(child.join_timeout(Duration::MAX)?, Some(7));
    let (mut a, b) = Pipe::<u8>::duplex()?;
    a.send(&1)?;
    assert!(b.poll(Some(Duration::MAX))?);
    let pool = Pool::new(1)?;
    #[process_task]
    fn seven() -> u8 {
        7
    }
    assert_eq!(
        pool.apply_async(task!(seven)).get_timeout(Duration::MAX)?,
        7
    );
    Ok(())
}
