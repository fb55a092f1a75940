//! A long `imap` with a progress bar: results arrive lazily, in input order, and an iterator
//! adapter redraws the bar as each one comes in. Only a few tasks are in flight at a time, so
//! the same code works on an endless input.

use multiproc::prelude::*;
use std::io::Write;
use std::time::Duration;

#[process_task]
fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(15));
    x * x
}

/// Wraps an iterator of known length and draws a bar on stderr as it is consumed.
struct Progress<I> {
    inner: I,
    done: usize,
    total: usize,
}

impl<I: Iterator> Iterator for Progress<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.inner.next();
        if item.is_some() {
            self.done += 1;
            let filled = self.done * 30 / self.total.max(1);
            eprint!(
                "\r[{}{}] {}/{}",
                "#".repeat(filled),
                " ".repeat(30 - filled),
                self.done,
                self.total
            );
            if self.done == self.total {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        }
        item
    }
}

pub fn run() -> multiproc::Result<()> {
    let pool = Pool::new(4)?;
    let total = 60;
    let results = Progress {
        inner: pool.imap(task!(slow_square), 0..total as u64),
        done: 0,
        total,
    };
    let sum = results.sum::<multiproc::Result<u64>>()?;
    println!("sum of squares below {total}: {sum}");
    Ok(())
}
