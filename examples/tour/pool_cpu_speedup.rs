//! A CPU-bound `map`: the same eight computations in this process, then on a pool with one
//! worker per CPU; on a machine with several CPUs the pool finishes several times sooner (when the CPUs are not busy with other work).

use multiproc::prelude::*;
use std::time::Instant;

/// Counts the primes below `limit`, by trial division: pure computation.
#[process_task]
fn count_primes(limit: u64) -> u64 {
    (2..limit)
        .filter(|n| (2..).take_while(|d| d * d <= *n).all(|d| n % d != 0))
        .count() as u64
}

pub fn run() -> multiproc::Result<()> {
    let work = vec![150_000u64; 8];

    let start = Instant::now();
    let serial: Vec<u64> = work.iter().map(|&n| count_primes(n)).collect();
    let one = start.elapsed();

    let pool = Pool::new(cpu_count())?;
    let start = Instant::now();
    let parallel = pool.map_chunked(task!(count_primes), work, 1)?;
    let many = start.elapsed();

    assert_eq!(serial, parallel);
    println!(
        "{} primes below 150000, 8 times: {:.0} ms in one process, {:.0} ms on {} workers ({:.2}x)",
        parallel[0],
        one.as_secs_f64() * 1e3,
        many.as_secs_f64() * 1e3,
        pool.processes(),
        one.as_secs_f64() / many.as_secs_f64()
    );
    Ok(())
}
