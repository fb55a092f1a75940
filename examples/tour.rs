//! The tour: every tutorial pattern, one after another, briefly.
//!
//! `cargo run --release --example tour`. Each pattern is also an example of its own
//! (`cargo run --example sing_dance`); their code is in `examples/patterns/`.

#[path = "patterns/args_kwargs.rs"]
mod args_kwargs;
#[path = "patterns/barrier.rs"]
mod barrier;
#[path = "patterns/condition_producer.rs"]
mod condition_producer;
#[path = "patterns/daemon.rs"]
mod daemon;
#[path = "patterns/joinable_workers.rs"]
mod joinable_workers;
#[path = "patterns/lock_print.rs"]
mod lock_print;
#[path = "patterns/pids.rs"]
mod pids;
#[path = "patterns/pipe_echo.rs"]
mod pipe_echo;
#[path = "patterns/pool_apply_map.rs"]
mod pool_apply_map;
#[path = "patterns/pool_cpu_speedup.rs"]
mod pool_cpu_speedup;
#[path = "patterns/pool_long_tasks.rs"]
mod pool_long_tasks;
#[path = "patterns/pool_progress.rs"]
mod pool_progress;
#[path = "patterns/process_class.rs"]
mod process_class;
#[path = "patterns/queue_producer_consumer.rs"]
mod queue_producer_consumer;
#[path = "patterns/rlock_twice.rs"]
mod rlock_twice;
#[path = "patterns/shared_value.rs"]
mod shared_value;
#[path = "patterns/sing_dance.rs"]
mod sing_dance;
#[path = "patterns/wait_children.rs"]
mod wait_children;
#[path = "patterns/watch_drink_eat.rs"]
mod watch_drink_eat;

type Pattern = fn() -> multiproc::Result<()>;

/// The patterns in the order of the tutorials.
const PATTERNS: &[(&str, Pattern)] = &[
    (
        "000 three processes watch, drink and eat",
        watch_drink_eat::run,
    ),
    (
        "001 sing and dance: one after another, then at once",
        sing_dance::run,
    ),
    ("001 args and kwargs", args_kwargs::run),
    ("001 pids and parent pids", pids::run),
    (
        "001/004 daemonic and non-daemonic children at exit",
        daemon::run,
    ),
    ("003 a struct as the process body", process_class::run),
    ("003 ten processes print under a Lock", lock_print::run),
    ("003 an RLock acquired twice", rlock_twice::run),
    ("004 a global is not shared, a Value is", shared_value::run),
    (
        "004 Condition: a producer and a consumer",
        condition_producer::run,
    ),
    ("Barrier: three processes meet", barrier::run),
    (
        "003 Pool(4): apply_async long tasks, close, join",
        pool_long_tasks::run,
    ),
    (
        "004 Pool: apply, apply_async with callbacks, map",
        pool_apply_map::run,
    ),
    (
        "Pool: a CPU-bound map and its speedup",
        pool_cpu_speedup::run,
    ),
    ("Pool: imap with a progress bar", pool_progress::run),
    (
        "Queue: a producer and a consumer",
        queue_producer_consumer::run,
    ),
    (
        "JoinableQueue: workers call task_done, the parent joins",
        joinable_workers::run,
    ),
    ("Pipe: an echo between parent and child", pipe_echo::run),
    (
        "wait: over several children's connections",
        wait_children::run,
    ),
];

fn main() -> multiproc::Result<()> {
    for (title, pattern) in PATTERNS {
        println!("\n== {title}");
        pattern()?;
    }
    Ok(())
}
