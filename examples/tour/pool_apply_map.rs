//! Tutorial 004: the pool's ways to run a function: `apply` (wait for each call, in order),
//! `apply_async` with a `callback` and an `error_callback` (exactly one runs, in the parent),
//! and `map` (one call per item, results in input order).

use multiproc::pool::Callbacks;
use multiproc::prelude::*;
use std::sync::mpsc;

#[process_task]
fn square(x: u64) -> u64 {
    x * x
}

#[process_task]
fn checked_sqrt(x: i64) -> i64 {
    assert!(x >= 0, "no square root of {x}");
    (x as f64).sqrt() as i64
}

pub fn run() -> multiproc::Result<()> {
    let pool = Pool::new(3)?;

    // apply: synchronous, one call after another.
    for x in 1..=3 {
        println!("apply: {x}^2 = {}", pool.apply(task!(square, x))?);
    }

    // apply_async with callbacks: they run in this process when the result arrives.
    let (tx, rx) = mpsc::channel();
    let pending: Vec<_> = [16, -1, 81]
        .into_iter()
        .map(|x| {
            let (ok, err) = (tx.clone(), tx.clone());
            pool.apply_async_with(
                task!(checked_sqrt, x),
                Callbacks::new()
                    .on_success(move |root| drop(ok.send(format!("callback: sqrt({x}) = {root}"))))
                    .on_error(move |e| drop(err.send(format!("error_callback: {e}")))),
            )
        })
        .collect();
    drop(tx);
    for result in pending {
        result.wait();
    }
    for line in rx {
        println!("{line}");
    }

    // map: the whole list at once, results in input order.
    let squares = pool.map(task!(square), 0..10)?;
    println!("map: {squares:?}");

    pool.close();
    pool.join()
}
