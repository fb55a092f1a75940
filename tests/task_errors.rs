//! A task's failure tells the caller where it happened: the file and line of a panic (and its
//! backtrace under `RUST_BACKTRACE`), as Python attaches the remote traceback, and for a map the
//! item it failed on.

use multiproc::pool::Callbacks;
#[path = "support/unencodable.rs"]
mod unencodable;

use multiproc::error::TaskFailure;
use multiproc::prelude::*;
use multiproc::Error;
use std::process::Command;

/// Panics with a message that gives the line of its `panic!`.
#[process_task]
fn explode(tag: u32) -> u32 {
    panic!("{tag} exploded on line {}", line!())
}

/// Squares `x`, and panics on the items of `bad`.
#[process_task]
fn square_unless(x: u64, bad: Vec<u64>) -> u64 {
    if bad.contains(&x) {
        panic!("item {x} is bad")
    }
    x * x
}

#[process_task]
fn square_or_panic(x: u64) -> u64 {
    if x == 137 || x == 400 {
        panic!("{x} is not welcome")
    }
    x * x
}

/// The location a panic of [`explode`] must report, from the line its message gives.
fn explode_location(message: &str) -> String {
    let line = message.rsplit(' ').next().expect("a line number");
    format!("{}:{line}:", file!())
}

/// Checks that `err` is [`explode`]'s panic with `tag`, located in its text and its field.
fn assert_located(err: &Error, tag: u32) {
    let Error::Panicked {
        message, location, ..
    } = err
    else {
        panic!("expected a panic, got {err:?}");
    };
    assert!(message.starts_with(&format!("{tag} exploded")), "{message}");
    let expected = explode_location(message);
    let location = location.as_deref().expect("a location");
    assert!(location.starts_with(&expected), "{location} vs {expected}");
    let text = err.to_string();
    assert!(text.contains(&format!(" at {expected}")), "{text}");
}

#[test]
fn a_process_panic_gives_its_file_and_line() -> multiproc::Result<()> {
    let err = Process::new(task!(explode, 1)).start()?.join().unwrap_err();
    assert_located(&err, 1);
    Ok(())
}

#[test]
fn a_closure_panic_gives_its_file_and_line() -> multiproc::Result<()> {
    let line = line!() + 1;
    let p = Process::fork(|| -> u32 { panic!("closure gives up") })?;
    let err = p.join().unwrap_err();
    let text = err.to_string();
    let expected = format!(
        "the task panicked in process {} at {}:{line}:",
        p.pid(),
        file!()
    );
    assert!(text.starts_with(&expected), "{text}");
    assert!(text.contains(": closure gives up"), "{text}");
    Ok(())
}

#[test]
fn a_pool_panic_gives_its_file_and_line_in_every_call() -> multiproc::Result<()> {
    let pool = Pool::new(2)?;
    assert_located(&pool.apply(task!(explode, 2)).unwrap_err(), 2);
    assert_located(&pool.apply_async(task!(explode, 3)).get().unwrap_err(), 3);
    assert_located(&pool.map(task!(explode), [4]).unwrap_err(), 4);
    assert_located(&pool.map_async(task!(explode), [5]).get().unwrap_err(), 5);
    assert_located(&pool.starmap(task!(explode), [(6,)]).unwrap_err(), 6);
    let mut lazy = pool.imap(task!(explode), [7]);
    assert_located(&lazy.next().expect("one item").unwrap_err(), 7);
    Ok(())
}

#[test]
fn an_apply_names_its_task_but_no_item() -> multiproc::Result<()> {
    let pool = Pool::new(1)?;
    let err = pool.apply(task!(explode, 8)).unwrap_err();
    assert!(
        matches!(&err, Error::Panicked { task: Some(name), item: None, .. } if name.ends_with("::explode"))
    );
    assert!(err.to_string().starts_with("task `"), "{err}");
    Ok(())
}

#[test]
fn a_map_names_the_item_that_panicked() -> multiproc::Result<()> {
    let pool = Pool::new(2)?;
    let err = pool.map(task!(square_or_panic), 0..500).unwrap_err();
    match &err {
        Error::Panicked {
            message,
            task: Some(task),
            item: Some(137),
            ..
        } => {
            assert_eq!(message, "137 is not welcome");
            assert!(task.ends_with("::square_or_panic"), "{task}");
        }
        other => panic!("expected item 137's panic, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.starts_with("task `"), "{text}");
    assert!(
        text.contains("::square_or_panic` panicked on item 137 in process "),
        "{text}"
    );
    Ok(())
}

/// The item a panic names, if `err` is a panic.
fn panicked_item(err: &Error) -> Option<usize> {
    match err {
        Error::Panicked { item, .. } => *item,
        _ => None,
    }
}

#[test]
fn a_map_reports_its_earliest_failing_item_whatever_the_chunks() -> multiproc::Result<()> {
    let pool = Pool::new(2)?;
    for chunksize in [1, 7, 64, 500] {
        let paced = pool.map_chunked(task!(square_or_panic), 0..500, chunksize);
        let callbacks = Callbacks::new();
        let all_at_once = pool
            .map_async_with(task!(square_or_panic), 0..500, Some(chunksize), callbacks)
            .get();
        for err in [paced.unwrap_err(), all_at_once.unwrap_err()] {
            assert_eq!(
                panicked_item(&err),
                Some(137),
                "chunksize {chunksize}: {err}"
            );
        }
    }
    Ok(())
}

/// Returns `x`, as a value that cannot be encoded if it is 42.
#[process_task]
fn refuse_42(x: u32) -> unencodable::Item {
    match x {
        42 => unencodable::Item::Bad(x),
        _ => unencodable::Item::Good(x),
    }
}

#[test]
fn a_map_names_the_item_whose_result_did_not_encode() -> multiproc::Result<()> {
    let pool = Pool::new(2)?;
    let err = pool.map_chunked(task!(refuse_42), 0..100, 8).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Task {
                item: Some(42),
                task: Some(_),
                failure: TaskFailure::Encode(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("::refuse_42` failed on item 42 in process "),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_starmap_names_the_item_that_panicked() -> multiproc::Result<()> {
    let pool = Pool::new(2)?;
    let items = (0..300u64).map(|x| (x, vec![250, 99]));
    let err = pool
        .starmap_chunked(task!(square_unless), items, 9)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Panicked { item: Some(99), message, .. } if message == "item 99 is bad"),
        "{err}"
    );
    assert!(err.to_string().contains("panicked on item 99 "), "{err}");
    Ok(())
}

#[test]
fn a_lazy_map_names_the_item_of_each_failure() -> multiproc::Result<()> {
    let pool = Pool::new(2)?;
    for ordered in [true, false] {
        let results: Vec<_> = match ordered {
            true => pool
                .imap_chunked(task!(square_or_panic), 0..500, 7)
                .collect(),
            false => pool
                .imap_unordered_chunked(task!(square_or_panic), 0..500, 7)
                .collect(),
        };
        assert_eq!(results.len(), 500);
        let mut failed: Vec<usize> = results
            .iter()
            .filter_map(|r| match r {
                Ok(_) => None,
                Err(Error::Panicked {
                    item: Some(item),
                    message,
                    ..
                }) => {
                    assert_eq!(*message, format!("{item} is not welcome"));
                    Some(*item)
                }
                Err(other) => panic!("expected a numbered panic, got {other:?}"),
            })
            .collect();
        failed.sort();
        assert_eq!(failed, [137, 400], "ordered: {ordered}");
    }
    Ok(())
}

/// Marks the runs of this test binary that [`a_backtrace_comes_with_the_panic_under_rust_backtrace`]
/// starts with `RUST_BACKTRACE` set.
const BACKTRACE_RUN: &str = "MULTIPROC_TEST_BACKTRACE_RUN";

/// In a run of its own, with `RUST_BACKTRACE` set to 1 or 0: checks that a panic's backtrace is
/// there or not.
fn backtrace_of_a_task_panic() {
    let wanted = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
    let err = Process::new(task!(explode, 9))
        .start()
        .expect("start")
        .join()
        .unwrap_err();
    let pool = Pool::new(1).expect("pool");
    let mapped = pool.map(task!(explode), [10]).unwrap_err();
    for err in [err, mapped] {
        let Error::Panicked { backtrace, .. } = &err else {
            panic!("expected a panic, got {err:?}");
        };
        let text = err.to_string();
        match backtrace {
            Some(backtrace) => {
                assert!(wanted, "a backtrace without RUST_BACKTRACE: {text}");
                assert!(backtrace.contains("explode"), "{backtrace}");
                assert!(text.contains("\nstack backtrace:\n"), "{text}");
            }
            None => assert!(!wanted, "no backtrace under RUST_BACKTRACE: {text}"),
        }
    }
}

#[test]
fn a_backtrace_comes_with_the_panic_under_rust_backtrace() {
    if std::env::var_os(BACKTRACE_RUN).is_some() {
        return backtrace_of_a_task_panic();
    }
    for setting in ["1", "full", "0"] {
        let run = Command::new(std::env::current_exe().expect("this test binary"))
            .args([
                "--exact",
                "a_backtrace_comes_with_the_panic_under_rust_backtrace",
            ])
            .env(BACKTRACE_RUN, "1")
            .env("RUST_BACKTRACE", setting)
            .output()
            .expect("run the test binary");
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(run.status.success(), "RUST_BACKTRACE={setting}: {stdout}");
        assert!(stdout.contains("1 passed"), "{stdout}");
    }
}
