//! A pool whose input iterator panics: a lazy map hands out the results of the items before the
//! panic, then the panic as its last item; a map lets the panic go on in the caller; the pool
//! serves the next map either way.

use multiproc::prelude::*;
use multiproc::Error;
use std::panic::{catch_unwind, AssertUnwindSafe};
// Only some of the shared tasks and helpers are used here.
#[allow(dead_code)]
#[path = "support/pool_tasks.rs"]
mod pool_tasks;
#[path = "support/unencodable.rs"]
mod unencodable_item;
use pool_tasks::*;

/// The items `0..len`, whose iterator panics as it produces item `bad`.
fn panicking_at(bad: u64, len: u64) -> impl Iterator<Item = u64> {
    (0..len).inspect(move |&i| {
        if i == bad {
            panic!("input broke at {i}");
        }
    })
}

/// Asserts that `error` is the input's panic while it produced item `bad`, as `panicking_at`
/// raises it.
fn assert_input_panic(error: &Error, bad: usize) {
    let Error::InputPanicked {
        item,
        message,
        location,
        ..
    } = error
    else {
        panic!("expected the input's panic, got {error:?}");
    };
    assert_eq!(*item, bad);
    assert_eq!(*message, format!("input broke at {bad}"));
    let location = location.as_deref().expect("the panic's location");
    assert!(
        location.starts_with("tests/pool_input_panic.rs:"),
        "{location}"
    );
    let text = error.to_string();
    let expected = format!(
        "the input iterator panicked producing item {bad} at {location}: input broke at {bad}"
    );
    assert!(text.starts_with(&expected), "{text}");
}

/// Asserts that `pool` still runs a map, and returns its results.
fn assert_serves_a_map(pool: &Pool) {
    let squares: Vec<u64> = (0..20).map(|x| x * x).collect();
    assert_eq!(pool.map(task!(square), 0..20).unwrap(), squares);
    let lazy: Vec<u64> = pool
        .imap(task!(square), 0..20)
        .map(Result::unwrap)
        .collect();
    assert_eq!(lazy, squares);
}

/// The panic message `payload` carries.
fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_else(|| format!("{:?}", payload.type_id()))
}

/// Runs `imap_chunked` over an input that panics at item `bad` of 10, and checks its items:
/// the squares of the items before `bad` in order, then the input's panic, then the end.
fn check_ordered(pool: &Pool, bad: u64, chunksize: usize) {
    let mut lazy = pool.imap_chunked(task!(square), panicking_at(bad, 10), chunksize);
    for x in 0..bad {
        assert_eq!(lazy.next().unwrap().unwrap(), x * x, "item {x}");
    }
    let failure = lazy.next().expect("the input's panic").unwrap_err();
    assert_input_panic(&failure, bad as usize);
    assert!(lazy.next().is_none());
    assert!(lazy.next().is_none());
}

/// As [`check_ordered`], for `imap_unordered_chunked`: the squares in any order, the panic last.
fn check_unordered(pool: &Pool, bad: u64, chunksize: usize) {
    let lazy = pool.imap_unordered_chunked(task!(square), panicking_at(bad, 10), chunksize);
    let mut items: Vec<_> = lazy.collect();
    let last = items.pop().expect("the input's panic").unwrap_err();
    assert_input_panic(&last, bad as usize);
    let mut values: Vec<u64> = items.into_iter().map(Result::unwrap).collect();
    values.sort_unstable();
    assert_eq!(values, (0..bad).map(|x| x * x).collect::<Vec<_>>());
}

#[test]
fn imap_yields_the_results_before_a_panicking_input_then_the_panic() {
    let pool = Pool::new(2).unwrap();
    check_ordered(&pool, 5, 1);
    assert_serves_a_map(&pool);
}

#[test]
fn imap_runs_the_part_of_a_chunk_read_before_the_input_panicked() {
    let pool = Pool::new(2).unwrap();
    // Chunks [0, 1, 2] and [3, 4]: the panic comes as the second chunk reads its third item.
    check_ordered(&pool, 5, 3);
    assert_serves_a_map(&pool);
}

#[test]
fn imap_unordered_yields_the_results_before_a_panicking_input_then_the_panic() {
    let pool = Pool::new(2).unwrap();
    check_unordered(&pool, 5, 1);
    check_unordered(&pool, 5, 3);
    assert_serves_a_map(&pool);
}

#[test]
fn an_input_that_panics_at_once_gives_only_its_panic() {
    let pool = Pool::new(2).unwrap();
    check_ordered(&pool, 0, 1);
    check_ordered(&pool, 0, 4);
    check_unordered(&pool, 0, 2);
    assert_serves_a_map(&pool);
}

#[test]
fn a_pool_whose_imap_input_panicked_closes_and_joins() {
    let pool = Pool::new(2).unwrap();
    let mut lazy = pool.imap(
        task!(nap),
        (0..10).map(|i| if i < 3 { 50 } else { panic!("no more") }),
    );
    assert_eq!(lazy.next().unwrap().unwrap(), 50);
    let rest: Vec<_> = lazy.by_ref().collect();
    assert_eq!(rest.len(), 3);
    assert!(
        matches!(&rest[2], Err(Error::InputPanicked { item: 3, .. })),
        "{rest:?}"
    );
    // The lazy map, still alive, no longer holds the pool open.
    pool.close();
    pool.join().unwrap();
    drop(lazy);
}

#[test]
fn a_pool_whose_imap_input_panicked_drops_without_hanging() {
    let pool = Pool::new(2).unwrap();
    let got: Vec<_> = pool
        .imap_chunked(task!(nap), panicking_at(4, 10).map(|_| 100), 2)
        .collect();
    assert_eq!(got.len(), 5);
    drop(pool);
}

#[test]
fn map_lets_a_panic_of_its_input_go_on_in_the_caller() {
    let pool = Pool::new(2).unwrap();
    // An input of known length is read as its chunks are sent: some ran before the panic.
    let known = catch_unwind(AssertUnwindSafe(|| {
        pool.map_chunked(task!(square), panicking_at(5, 10), 2)
    }));
    assert_eq!(message(known.unwrap_err().as_ref()), "input broke at 5");
    assert_serves_a_map(&pool);
    // Any other input is read whole first (as Python reads it), so nothing was sent.
    let unknown = catch_unwind(AssertUnwindSafe(|| {
        pool.map(task!(square), panicking_at(3, 10).filter(|_| true))
    }));
    assert_eq!(message(unknown.unwrap_err().as_ref()), "input broke at 3");
    assert_serves_a_map(&pool);
    let started = catch_unwind(AssertUnwindSafe(|| {
        pool.map_async(task!(square), panicking_at(7, 10))
    }));
    assert_eq!(message(started.unwrap_err().as_ref()), "input broke at 7");
    assert_serves_a_map(&pool);
    pool.close();
    pool.join().unwrap();
}
