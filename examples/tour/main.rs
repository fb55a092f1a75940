//! The tour: every tutorial pattern, one after another, briefly.
//!
//! `cargo run --release --example tour` runs them all; `cargo run --example tour -- NAME` runs
//! one (`-- --list` lists the names). Each pattern is a module of this example, a `run`
//! function that a reader can copy.

mod args_kwargs;
mod barrier;
mod condition_producer;
mod daemon;
mod joinable_workers;
mod lock_print;
mod manager_dict_list;
mod pids;
mod pipe_echo;
mod pool_apply_map;
mod pool_cpu_speedup;
mod pool_long_tasks;
mod pool_progress;
mod process_class;
mod queue_producer_consumer;
mod rlock_twice;
mod shared_value;
mod sing_dance;
mod wait_children;
mod watch_drink_eat;

type Pattern = fn() -> multiproc::Result<()>;

/// The patterns in the order of the tutorials: name, title, body.
const PATTERNS: &[(&str, &str, Pattern)] = &[
    (
        "watch_drink_eat",
        "three processes watch, drink and eat",
        watch_drink_eat::run,
    ),
    (
        "sing_dance",
        "sing and dance: one after another, then at once",
        sing_dance::run,
    ),
    ("args_kwargs", "args and kwargs", args_kwargs::run),
    ("pids", "pids and parent pids", pids::run),
    (
        "daemon",
        "daemonic and non-daemonic children at exit",
        daemon::run,
    ),
    (
        "process_class",
        "a struct as the process body",
        process_class::run,
    ),
    (
        "lock_print",
        "ten processes print under a Lock",
        lock_print::run,
    ),
    ("rlock_twice", "an RLock acquired twice", rlock_twice::run),
    (
        "shared_value",
        "a global is not shared, a Value is",
        shared_value::run,
    ),
    (
        "manager_dict_list",
        "Manager: processes fill a shared dict and list",
        manager_dict_list::run,
    ),
    (
        "condition_producer",
        "Condition: a producer and a consumer",
        condition_producer::run,
    ),
    ("barrier", "Barrier: three processes meet", barrier::run),
    (
        "pool_long_tasks",
        "Pool(4): apply_async long tasks, close, join",
        pool_long_tasks::run,
    ),
    (
        "pool_apply_map",
        "Pool: apply, apply_async with callbacks, map",
        pool_apply_map::run,
    ),
    (
        "pool_cpu_speedup",
        "Pool: a CPU-bound map and its speedup",
        pool_cpu_speedup::run,
    ),
    (
        "pool_progress",
        "Pool: imap with a progress bar",
        pool_progress::run,
    ),
    (
        "queue_producer_consumer",
        "Queue: a producer and a consumer",
        queue_producer_consumer::run,
    ),
    (
        "joinable_workers",
        "JoinableQueue: workers call task_done, the parent joins",
        joinable_workers::run,
    ),
    (
        "pipe_echo",
        "Pipe: an echo between parent and child",
        pipe_echo::run,
    ),
    (
        "wait_children",
        "wait: over several children's connections",
        wait_children::run,
    ),
];

fn main() -> multiproc::Result<()> {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    if wanted.iter().any(|w| w == "--list") {
        for (name, title, _) in PATTERNS {
            println!("{name:24} {title}");
        }
        return Ok(());
    }
    if let Some(unknown) = wanted
        .iter()
        .find(|w| PATTERNS.iter().all(|(n, ..)| n != w))
    {
        eprintln!("no pattern named `{unknown}`; `--list` lists them");
        std::process::exit(2);
    }
    for (name, title, pattern) in PATTERNS {
        if wanted.is_empty() || wanted.iter().any(|w| w == name) {
            println!("\n== {title}");
            pattern()?;
        }
    }
    Ok(())
}
