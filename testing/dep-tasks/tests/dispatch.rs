//! A child runs a task of a dependency crate by name, under every start method, from a
//! `Process` and from a `Pool`.

use multiproc::prelude::*;
use multiproc::{get_context, StartMethod};
use multiproc_dep_tasks::{bump, join_words};

fn words() -> Vec<String> {
    ["spawn", "and", "forkserver"].map(String::from).to_vec()
}

#[test]
fn a_process_runs_a_task_of_a_dependency_under_every_method() {
    for method in [
        StartMethod::Fork,
        StartMethod::Spawn,
        StartMethod::Forkserver,
    ] {
        let ctx = get_context(method).unwrap();
        let p = ctx
            .process(task!(join_words, words(), '+'))
            .start()
            .unwrap();
        assert_eq!(p.join().unwrap(), "spawn+and+forkserver", "{method}");
        assert_eq!(p.exitcode(), Some(0), "{method}");
    }
}

#[test]
fn pool_workers_run_a_task_of_a_dependency_under_every_method() {
    for method in [
        StartMethod::Fork,
        StartMethod::Spawn,
        StartMethod::Forkserver,
    ] {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .unwrap();
        let counter = Value::new(0i64).unwrap();
        let pids = pool.map(task!(bump, counter.clone()), 1..=100).unwrap();
        assert_eq!(counter.get(), 5050, "{method}");
        assert!(
            pids.iter().all(|&pid| pid != std::process::id()),
            "{method}: every call ran in a worker"
        );
        pool.close();
        pool.join().unwrap();
    }
}
