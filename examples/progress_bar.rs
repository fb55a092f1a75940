//! A progress bar over a pool's lazy `imap`, drawn by indicatif: results arrive in input order as
//! the workers answer, and the bar moves on with each one. Only a few tasks are in flight at a
//! time, so the same code works on an input too long to hold in memory.
//!
//! `cargo run --example progress_bar`

use indicatif::{ProgressBar, ProgressIterator, ProgressStyle};
use multiproc::prelude::*;
use std::time::Duration;

#[process_task]
fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(10));
    x * x
}

fn main() -> multiproc::Result<()> {
    let pool = Pool::new(4)?;
    let total = 200u64;

    // `progress_count` wraps any iterator; `imap` cannot know its length, so we give it.
    let style = ProgressStyle::with_template("{bar:40} {pos}/{len} squares, {elapsed} elapsed")
        .expect("a valid template");
    let bar = ProgressBar::new(total).with_style(style);
    let sum = pool
        .imap(task!(slow_square), 0..total)
        .progress_with(bar)
        .sum::<multiproc::Result<u64>>()?;
    assert_eq!(sum, (0..total).map(|x| x * x).sum::<u64>());

    // The shortest form: the default bar, length given.
    let done = pool
        .imap_unordered(task!(slow_square), 0..50u64)
        .progress_count(50)
        .filter(Result::is_ok)
        .count();
    assert_eq!(done, 50);

    println!("sum of squares below {total}: {sum}");
    pool.close();
    pool.join()
}
